//! kill -9 of the owner under a verified load that retries on the other path, as a multipath
//! initiator does: writers put numbered data through the owner, and retry a write that failed
//! (the connection died under it) through the other gateway until it answers GOOD, then go on
//! there. At the end every chunk read through the survivor holds exactly the last write that was
//! acknowledged for it: nothing lost, nothing stale, nothing torn.

use super::{read, start_gateway, wait_for, IQN};
use crate::common::initiator::Connection;
use crate::{conf, image, login_at, INITIATOR};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Blocks per chunk: one write covers one chunk.
const CHUNK_BLOCKS: u16 = 8;
const CHUNKS_PER_WRITER: u32 = 32;
const WRITERS: u32 = 2;

/// What write `seq` puts in `chunk`: every 512-byte block names its chunk, the write and its own
/// place, then bytes derived from all three, so a block from another write or another place, or a
/// write half done, cannot pass for this one.
fn chunk_data(chunk: u32, seq: u32) -> Vec<u8> {
    let mut data = vec![0u8; usize::from(CHUNK_BLOCKS) * 512];
    for (i, block) in data.chunks_mut(512).enumerate() {
        block[0..4].copy_from_slice(&chunk.to_be_bytes());
        block[4..8].copy_from_slice(&seq.to_be_bytes());
        block[8..12].copy_from_slice(&(i as u32).to_be_bytes());
        let mut x = chunk.wrapping_mul(0x9e37_79b9) ^ seq.wrapping_mul(0x85eb_ca6b) ^ (i as u32);
        for b in &mut block[12..] {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
    }
    data
}

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

/// A session of writer `w` (an initiator port of its own: ISID per writer) on `portal`.
fn session(portal: std::net::SocketAddr, w: u32) -> Connection {
    let mut c = Connection::connect(portal).unwrap();
    c.isid[5] = w as u8;
    c.login(INITIATOR, Some(IQN), &[]).unwrap();
    let _ = c.scsi(1, &[0; 6], &[], 0).unwrap();
    c
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
    let conf = conf();
    let name = image(&conf, 16);
    let a = start_gateway(&conf, &name, "gw-a", 1);
    let b = start_gateway(&conf, &name, "gw-b", 2);
    let stop = Arc::new(AtomicBool::new(false));
    let after_failover = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (mut ca, mut cb) = (session(a.portal(), w), session(b.portal(), w));
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
    let dir = a.crash();
    wait_for(40, "every writer goes on through b", || after_failover.load(Ordering::Acquire) >= 40);
    eprintln!("writes through b resumed within {:?} of kill -9", killed.elapsed());
    stop.store(true, Ordering::Release);
    let writers: Vec<Writer> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    let mut cb = login_at(b.portal(), IQN);
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
                panic!("chunk {chunk}: last acknowledged write {acked:?}, found (chunk, write) {seen:?}\n{}", b.log());
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
