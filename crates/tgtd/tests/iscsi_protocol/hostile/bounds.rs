//! Writes that announce more data than the target should hold: a transfer past the SCSI core's
//! MAXIMUM TRANSFER LENGTH (refused at once, nothing asked for or kept), and a full CmdSN window
//! of large writes fed as fast as the target asks (paced by its write budget: memory stays
//! bounded and other sessions are served meanwhile).

use crate::common::initiator::{Connection, OP_NOP_IN, OP_R2T, OP_SCSI_RSP};
use crate::hostile::arena::{Arena, RSS_GROWTH_LIMIT_KIB};
use crate::hostile::wire::*;
use std::collections::HashSet;
use std::io::Write;
use std::time::{Duration, Instant};

/// The SCSI core's MAXIMUM TRANSFER LENGTH in bytes (rtgt_scsi::MAX_TRANSFER_BYTES).
const MAX_TRANSFER: u32 = 64 << 20;
/// The write data one connection may hold before new writes wait for R2Ts (the daemon's
/// WRITE_DATA_BUDGET).
const WRITE_BUDGET: u64 = 64 << 20;
/// Where these cases write: past the bystander's blocks, on the arena's 128 MiB disk.
const LBA: u64 = (64 << 20) / BLOCK as u64;

fn write16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x8a;
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

/// A NOP-In answers a ping: the session is in step and nothing else was queued before it.
fn ping(conn: &mut Connection, what: &str) {
    let nop = conn.ping(b"").expect("a NOP-In");
    assert_eq!(nop.opcode(), OP_NOP_IN, "{what}: expected only the NOP-In, got {nop:?}");
}

/// The next PDU is the command's CHECK CONDITION with ILLEGAL REQUEST, INVALID FIELD IN CDB
/// (not an R2T).
fn expect_invalid_field(conn: &mut Connection, itt: u32, what: &str) {
    let rsp = conn.recv().expect("a SCSI Response");
    assert_eq!(rsp.opcode(), OP_SCSI_RSP, "{what}: answered with {rsp:?} instead of CHECK CONDITION");
    assert_eq!(rsp.itt(), itt, "{what}");
    assert_eq!(scsi_response(&rsp), (0, 0x02, 0x05, 0x24, 0x00), "{what}: INVALID FIELD IN CDB");
}

#[test]
fn writes_past_the_maximum_transfer_length_are_refused_at_once() {
    let mut arena = Arena::start();
    // InitialR2T=No, so that unsolicited data may follow the refused commands.
    let args = ["--mode", "target", "--op", "update", "--tid", "1", "--name", "InitialR2T", "--value", "No"];
    arena.tgtd.tgtadm_ok(&args);
    let keys = [("InitialR2T", "No"), ("ImmediateData", "Yes"), ("FirstBurstLength", "16384")];
    let mut conn = arena.login(&keys);
    assert!(!conn.initial_r2t);

    // WRITE(16) asking for 4 GiB less one block, and the Expected Data Transfer Length to match:
    // past MAXIMUM TRANSFER LENGTH (SBC-3 6.5.3). No R2T; the answer comes before any data.
    let blocks = (u32::MAX / BLOCK as u32) as u64;
    let bhs = command(&mut conn, 1, 0xa0, (blocks * BLOCK as u64) as u32, &write16(LBA, blocks as u32));
    conn.send(&bhs, &[]).unwrap();
    expect_invalid_field(&mut conn, 1, "a 4 GiB WRITE(16)");
    ping(&mut conn, "a 4 GiB WRITE(16)");

    // A WRITE(10) of 16 blocks announcing 4 GiB, with immediate and then unsolicited data: the
    // same answer at once; the unsolicited Data-Out is read and discarded, nothing is written.
    let bhs = command(&mut conn, 2, 0x20, u32::MAX, &write10(LBA as u32, 16));
    conn.send(&bhs, &pattern(8192, 40)).unwrap();
    expect_invalid_field(&mut conn, 2, "a WRITE(10) announcing 4 GiB");
    conn.send(&data_out(&conn, 2, 0xffff_ffff, 0, 8192, true), &pattern(8192, 41)).unwrap();
    expect_silence(&mut conn, 300, "unsolicited data for a refused write");
    ping(&mut conn, "unsolicited data for a refused write");
    arena.assert_unwritten(LBA as u32, 16, "a write past the maximum transfer length");

    // One block past the limit is refused; the limit itself is asked for with an R2T.
    let over = MAX_TRANSFER / BLOCK as u32 + 1;
    let bhs = command(&mut conn, 3, 0xa0, over * BLOCK as u32, &write16(LBA, over));
    conn.send(&bhs, &[]).unwrap();
    expect_invalid_field(&mut conn, 3, "one block past MAXIMUM TRANSFER LENGTH");
    let bhs = command(&mut conn, 4, 0xa0, MAX_TRANSFER, &write16(LBA, MAX_TRANSFER / BLOCK as u32));
    conn.send(&bhs, &[]).unwrap();
    let r2t = conn.recv().expect("an R2T");
    assert_eq!((r2t.opcode(), r2t.itt(), r2t.u32_at(40)), (OP_R2T, 4, 0), "a write of MAXIMUM TRANSFER LENGTH");
    arena.check("writes past the maximum transfer length");
    drop(conn);
    arena.finish("writes past the maximum transfer length");
}

/// What the flood saw: the most bytes of writes solicited and not yet answered at once, the
/// largest resident memory growth, and how many writes completed.
struct Flood {
    max_solicited: u64,
    max_rss_growth_kib: u64,
    completed: usize,
}

#[test]
fn a_window_of_large_writes_is_paced_by_the_write_budget() {
    let mut arena = Arena::start();
    let mut conn = arena.login(&[("ImmediateData", "No")]);
    // 128 WRITEs (the whole CmdSN window) of 60 MiB each: 7.5 GiB announced at once.
    const WRITES: u32 = 128;
    const SIZE: u32 = 60 << 20;
    let mut wire = Vec::new();
    for i in 0..WRITES {
        wire.extend_from_slice(&command(&mut conn, 1000 + i, 0xa0, SIZE, &write16(LBA, SIZE / BLOCK as u32)));
    }
    conn.stream.write_all(&wire).unwrap();
    let flood = feed(&mut arena, &mut conn, SIZE, 3);
    eprintln!(
        "solicited at most {} MiB at once; VmRSS grew by at most {} KiB; {} writes of 60 MiB done",
        flood.max_solicited >> 20,
        flood.max_rss_growth_kib,
        flood.completed
    );
    assert!(
        flood.max_solicited <= WRITE_BUDGET,
        "the target asked for {} MiB of writes at once (budget {} MiB)",
        flood.max_solicited >> 20,
        WRITE_BUDGET >> 20
    );
    let limit = (WRITE_BUDGET >> 10) + RSS_GROWTH_LIMIT_KIB;
    assert!(flood.max_rss_growth_kib < limit, "tgtd's memory grew by {} KiB", flood.max_rss_growth_kib);
    // The data of a completed write is on the disk.
    assert!(arena.read(LBA as u32, 16) == pattern(8192, 42), "a paced write's data");
    drop(conn);
    arena.finish("a window of large writes");
}

/// Answer every R2T with its data, in Data-Out PDUs of the target's MaxRecvDataSegmentLength,
/// until `writes` writes completed; the bystander works after the first one.
fn feed(arena: &mut Arena, conn: &mut Connection, size: u32, writes: usize) -> Flood {
    let chunk = pattern(conn.target_mrdsl as usize, 42);
    let mut solicited: HashSet<u32> = HashSet::new();
    let mut flood = Flood { max_solicited: 0, max_rss_growth_kib: 0, completed: 0 };
    let deadline = Instant::now() + Duration::from_secs(120);
    while flood.completed < writes {
        assert!(Instant::now() < deadline, "{} writes completed in two minutes", flood.completed);
        let pdu = conn.recv().expect("an R2T or a SCSI Response");
        match pdu.opcode() {
            OP_R2T => {
                let (itt, ttt, offset, len) = (pdu.itt(), pdu.u32_at(20), pdu.u32_at(40), pdu.u32_at(44));
                solicited.insert(itt);
                flood.max_solicited = flood.max_solicited.max(solicited.len() as u64 * size as u64);
                flood.max_rss_growth_kib = flood.max_rss_growth_kib.max(arena.rss_growth_kib());
                let (mut sent, mut data_sn) = (0, 0);
                while sent < len {
                    let n = (len - sent).min(chunk.len() as u32);
                    let bhs = data_out(conn, itt, ttt, data_sn, offset + sent, sent + n == len);
                    conn.send(&bhs, &chunk[..n as usize]).unwrap();
                    sent += n;
                    data_sn += 1;
                }
            }
            OP_SCSI_RSP => {
                let (response, status, ..) = scsi_response(&pdu);
                assert_eq!((response, status), (0, 0), "a paced write's status");
                assert!(solicited.remove(&pdu.itt()), "an answer for a write never asked for data");
                flood.completed += 1;
                if flood.completed == 1 {
                    arena.check("the first paced write");
                }
            }
            op => panic!("unexpected PDU {op:#x} during the flood"),
        }
    }
    flood
}
