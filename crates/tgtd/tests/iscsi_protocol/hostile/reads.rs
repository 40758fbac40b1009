//! Large READs whose answers are never read: several sessions each send READs of the MAXIMUM
//! TRANSFER LENGTH (one of them a whole CmdSN window, another with an Expected Data Transfer Length
//! of 0, so that nothing would ever be sent of what the target reads) and stop reading their
//! sockets. The daemon runs with a small read budget (`--iscsi read_budget=128M`): its memory
//! must stay within that budget, one READ past it and the arena's slack, while a well-behaved
//! session's reads (small ones, and a 1 MiB one) are answered meanwhile. Then the attackers read
//! and every READ completes, with its data.

use crate::common::initiator::{Connection, OP_DATA_IN, OP_SCSI_RSP};
use crate::hostile::arena::{Arena, RSS_GROWTH_LIMIT_KIB};
use crate::hostile::wire::*;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

/// The daemon's read budget in this test.
const READ_BUDGET: u64 = 128 << 20;
/// One READ of the MAXIMUM TRANSFER LENGTH.
const SIZE: u32 = 64 << 20;
/// The blocks every READ starts with, written with `pattern(.., SEED)` first.
const MARKED: usize = 1 << 20;
const SEED: u8 = 77;

pub fn read16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x88;
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

/// One attacking session and what it sent.
struct Attacker {
    conn: Connection,
    itts: Vec<u32>,
    /// The READs carry an Expected Data Transfer Length of 0 and no R bit.
    expects_nothing: bool,
}

/// Send `reads` READs of SIZE bytes from LBA 0 at once, without reading anything.
fn attack(arena: &mut Arena, first_itt: u32, reads: u32, expects_nothing: bool) -> Attacker {
    let mut conn = arena.login(&[]);
    let (flags, edtl) = if expects_nothing { (0x80, 0) } else { (0xc0, SIZE) };
    let mut wire = Vec::new();
    let itts: Vec<u32> = (first_itt..first_itt + reads).collect();
    for &itt in &itts {
        wire.extend_from_slice(&command(&mut conn, itt, flags, edtl, &read16(0, SIZE / BLOCK as u32)));
    }
    conn.stream.write_all(&wire).unwrap();
    Attacker { conn, itts, expects_nothing }
}

/// Read every answer of the attacker: each READ ends GOOD with all its data (the marked blocks
/// first), or, expecting nothing, with a SCSI Response reporting the whole transfer as overflow.
fn drain(mut a: Attacker) -> usize {
    a.conn.stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let marked = pattern(MARKED, SEED);
    let mut received: HashMap<u32, usize> = HashMap::new();
    let mut done = 0;
    while done < a.itts.len() {
        let pdu = a.conn.recv().expect("the answers, once read");
        let itt = pdu.itt();
        assert!(a.itts.contains(&itt), "an answer for ITT {itt:#x}, never sent");
        match pdu.opcode() {
            OP_DATA_IN => {
                assert!(!a.expects_nothing, "Data-In for a READ that expected none");
                let got = received.entry(itt).or_default();
                let offset = pdu.u32_at(40) as usize;
                assert_eq!(offset, *got, "Data-In of ITT {itt:#x} in order");
                if offset < MARKED {
                    let end = (offset + pdu.data.len()).min(MARKED);
                    assert!(pdu.data[..end - offset] == marked[offset..end], "the data of ITT {itt:#x}");
                }
                *got += pdu.data.len();
                if pdu.bhs[1] & 0x01 != 0 {
                    assert_eq!(pdu.bhs[3], 0, "status of READ {itt:#x}");
                    assert_eq!(*got, SIZE as usize, "the whole transfer of READ {itt:#x}");
                    assert_eq!(pdu.bhs[1] & 0x06, 0, "no residual for READ {itt:#x}");
                    done += 1;
                }
            }
            OP_SCSI_RSP => {
                assert!(a.expects_nothing, "a SCSI Response without data for READ {itt:#x}");
                assert_eq!(pdu.bhs[3], 0, "status of READ {itt:#x}");
                assert_eq!(pdu.bhs[1] & 0x04, 0x04, "overflow for READ {itt:#x}");
                assert_eq!(pdu.u32_at(44), SIZE, "residual count of READ {itt:#x}");
                done += 1;
            }
            op => panic!("unexpected PDU {op:#x} while draining the READs"),
        }
    }
    done
}

#[test]
fn large_reads_never_read_are_held_within_the_read_budget() {
    let mut arena = Arena::start_with(&["read_budget=128M"]);
    let mut writer = arena.login(&[]);
    let w = writer.write10(LUN, 0, &pattern(MARKED, SEED), BLOCK as u32).unwrap();
    assert_eq!(w.status, 0);
    drop(writer);

    // A whole CmdSN window (128) of 64 MiB READs on one session, four READs on each of four more,
    // and sixteen with an Expected Data Transfer Length of 0 on another: 9.5 GiB asked for.
    let mut attackers = vec![attack(&mut arena, 0x1000, 128, false)];
    for s in 0..4 {
        attackers.push(attack(&mut arena, 0x2000 + s * 0x100, 4, false));
    }
    attackers.push(attack(&mut arena, 0x3000, 16, true));

    // Let the daemon take what it will: until its memory stops growing (4 s at most).
    let mut peak = arena.rss_growth_kib();
    let settle = Instant::now();
    let mut last = peak;
    while settle.elapsed() < Duration::from_secs(4) {
        std::thread::sleep(Duration::from_millis(250));
        let now = arena.rss_growth_kib();
        peak = peak.max(now);
        if now.abs_diff(last) < 512 && settle.elapsed() > Duration::from_secs(1) {
            break;
        }
        last = now;
    }
    // A well-behaved session is served meanwhile: its small WRITE and READ, and a 1 MiB READ
    // (one a connection holding no read data always gets).
    arena.check("large READs never read");
    assert!(arena.read(0, (MARKED / BLOCK) as u16) == pattern(MARKED, SEED), "the bystander's 1 MiB READ");
    peak = peak.max(arena.rss_growth_kib());
    let limit = ((READ_BUDGET + u64::from(SIZE)) >> 10) + RSS_GROWTH_LIMIT_KIB;
    eprintln!("tgtd VmRSS grew by at most {peak} KiB with the READs unread (limit {limit} KiB)");
    assert!(peak < limit, "tgtd's memory grew by {peak} KiB holding unread READs (limit {limit} KiB)");

    // The attackers read now, all at once: every READ completes.
    let started = Instant::now();
    let drains: Vec<_> = attackers.into_iter().map(|a| std::thread::spawn(move || drain(a))).collect();
    let completed: usize = drains.into_iter().map(|d| d.join().expect("an attacker's answers")).sum();
    eprintln!("{completed} READs completed in {:?} once read", started.elapsed());
    assert_eq!(completed, 128 + 4 * 4 + 16);
    arena.finish("large READs never read");
}
