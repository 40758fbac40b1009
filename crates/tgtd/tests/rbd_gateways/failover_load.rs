//! kill -9 of the owner under a verified load that retries on the other path, as a multipath
//! initiator does: writers put numbered data through the owner, and retry a write that failed
//! (the connection died under it) through the other gateway until it answers GOOD, then go on
//! there. At the end every chunk read through the survivor holds exactly the last write that was
//! acknowledged for it: nothing lost, nothing stale, nothing torn.

use super::{chunk_data, read, session_with_isid, wait_for, TwoGateways, CHUNK_BLOCKS, IQN};
use crate::common::initiator::Connection;
use crate::login_at;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHUNKS_PER_WRITER: u32 = 32;
const WRITERS: u32 = 2;

fn lba(chunk: u32) -> u32 {
    chunk * u32::from(CHUNK_BLOCKS)
}

/// Write through `c`; `None` when the path failed (the connection broke, or the command did not
/// complete with GOOD).
fn try_write(c: &mut Connection, chunk: u32, data: &[u8], fua: bool) -> Option<()> {
    let out = if fua {
        // WRITE(10) with FUA; the crate's write_fua unwraps, and a broken path is expected here.
        let mut cdb = [0u8; 10];
        cdb[0] = 0x2a;
        cdb[1] = 0x08;
        cdb[2..6].copy_from_slice(&lba(chunk).to_be_bytes());
        cdb[7..9].copy_from_slice(&CHUNK_BLOCKS.to_be_bytes());
        c.scsi(1, &cdb, data, 0).ok()?
    } else {
        c.write10(1, lba(chunk), data, 512).ok()?
    };
    (out.status == 0).then_some(())
}

/// Retry through the other path until GOOD: NOT READY (ASYMMETRIC ACCESS STATE TRANSITION) while the
/// owner it forwards to is gone and not yet replaced, unit attentions as its state changes;
/// anything else is a failure of the test.
fn write_until_good(c: &mut Connection, chunk: u32, data: &[u8]) {
    let started = Instant::now();
    loop {
        let out = c.write10(1, lba(chunk), data, 512).expect("the surviving path stays up");
        if out.status == 0 {
            return;
        }
        let key = out.sense_code().0;
        assert!(key == 0x02 || key == 0x06, "retry through the survivor: {:x?}", out.sense_code());
        assert!(started.elapsed() < Duration::from_secs(30), "the survivor never took the write");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One writer's record: for each of its chunks, the last acknowledged write.
struct Writer {
    first: u32,
    acked: Vec<Option<u32>>,
    through_owner: usize,
    retried: usize,
}

#[test]
fn kill_9_of_the_owner_under_a_retrying_load_loses_nothing_and_leaves_nothing_stale() {
    let gw = TwoGateways::start();
    let stop = Arc::new(AtomicBool::new(false));
    let after_failover = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            // Each writer an initiator port of its own: its own ISID on both paths.
            let (mut ca, mut cb) =
                (session_with_isid(gw.a.portal(), w as u8), session_with_isid(gw.b.portal(), w as u8));
            let (stop, after_failover) = (stop.clone(), after_failover.clone());
            std::thread::spawn(move || {
                let first = w * CHUNKS_PER_WRITER;
                let mut me =
                    Writer { first, acked: vec![None; CHUNKS_PER_WRITER as usize], through_owner: 0, retried: 0 };
                let mut owner_up = true;
                let mut seq = 0u32;
                while !stop.load(Ordering::Acquire) {
                    seq += 1;
                    // A stride through the chunks, so that each is rewritten often.
                    let i = seq.wrapping_mul(7) % CHUNKS_PER_WRITER;
                    let chunk = first + i;
                    let data = chunk_data(chunk, seq);
                    if owner_up {
                        if try_write(&mut ca, chunk, &data, seq.is_multiple_of(8)).is_some() {
                            me.through_owner += 1;
                            me.acked[i as usize] = Some(seq);
                            continue;
                        }
                        // The owner's path failed under this write: the initiator retries it elsewhere.
                        owner_up = false;
                        me.retried += 1;
                    }
                    write_until_good(&mut cb, chunk, &data);
                    me.acked[i as usize] = Some(seq);
                    after_failover.fetch_add(1, Ordering::Release);
                }
                me
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let killed = Instant::now();
    let dir = gw.a.crash();
    wait_for(40, "every writer goes on through b", || after_failover.load(Ordering::Acquire) >= 40);
    eprintln!("writes through b resumed within {:?} of kill -9", killed.elapsed());
    stop.store(true, Ordering::Release);
    let writers: Vec<Writer> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let mut cb = login_at(gw.b.portal(), IQN);
    let mut checked = 0;
    for w in &writers {
        assert!(w.through_owner >= 10, "the load ran through the owner before the kill: {}", w.through_owner);
        assert_eq!(w.retried, 1, "each writer failed over once");
        for (i, acked) in w.acked.iter().enumerate() {
            let chunk = w.first + i as u32;
            let want = acked.map_or_else(|| vec![0u8; usize::from(CHUNK_BLOCKS) * 512], |seq| chunk_data(chunk, seq));
            let got = read(&mut cb, lba(chunk), CHUNK_BLOCKS);
            if got != want {
                let seen = (
                    u32::from_be_bytes(got[0..4].try_into().unwrap()),
                    u32::from_be_bytes(got[4..8].try_into().unwrap()),
                );
                panic!(
                    "chunk {chunk}: last acknowledged write {acked:?}, found (chunk, write) {seen:?}\n{}",
                    gw.b.log()
                );
            }
            checked += 1;
        }
    }
    eprintln!(
        "{checked} chunks hold their last acknowledged write ({} writes through a, {} in all)",
        writers.iter().map(|w| w.through_owner).sum::<usize>(),
        writers.iter().map(|w| w.through_owner).sum::<usize>() + after_failover.load(Ordering::Acquire)
    );
    drop(dir);
}
