//! An aborted write never changes the medium after the abort is answered (SAM-5 7.1: once a task
//! management function's response is delivered, the tasks it aborted no longer affect the medium;
//! RFC 7143 6.3.5: a reinstated session's tasks are terminated before the new session proceeds).
//! The store stalls the write (`fault=write:stall=`), which models a request a device already
//! holds: aborting the command cannot recall it, so the daemon must wait for it before answering
//! the abort (or the login that reinstates the session). Each test aborts a write only once the
//! store holds it and checks, right at the answer, that it has ended (the fault aid logs both);
//! then it reads the block and again once the stall is long over: both reads must agree, and a
//! write made after the answer must be what stays.

use crate::common;

use common::initiator::{lun_field, write_u32, Connection, OP_SCSI_CMD};
use common::{sparse_image, Tgtd};
use std::time::{Duration, Instant};

const IQN: &str = "iqn.2026-12.org.rtgt.test:aborted-io";
const BLOCK: usize = 512;
const LBA: u32 = 100;
const STALL: Duration = Duration::from_millis(1500);

const ABORT_TASK: u8 = 1;
const LOGICAL_UNIT_RESET: u8 = 5;
const OP_TMF_RSP: u8 = 0x22;

fn block(seed: u8) -> Vec<u8> {
    (0..BLOCK).map(|i| (i as u8).wrapping_mul(13) ^ seed).collect()
}

/// A daemon whose LUN 1 stalls every write to block `LBA`.
fn daemon() -> Tgtd {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "disk.img", 4 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "1"]);
    let rule = format!("fault=write:stall={}ms:lba={LBA}", STALL.as_millis());
    let out = tgtd.add_lun(1, 1, &["--backing-store", image.to_str().unwrap(), "--bsopts", &rule]);
    assert!(out.status.success(), "{}", common::text(&out));
    tgtd
}

/// How many writes the daemon's stores have stalled so far, and how many of those have ended
/// (performed, whether or not their command was aborted), from the fault aid's log lines.
fn stalled_writes(tgtd: &Tgtd) -> (usize, usize) {
    let log = tgtd.log();
    (log.matches("fault injection: write stalled").count(), log.matches("fault injection: stalled write ended").count())
}

/// A WRITE that the store holds.
struct StalledWrite {
    itt: u32,
    /// When it was sent: the store took it later, so it cannot have ended before `sent + STALL`.
    sent: Instant,
}

/// Send WRITE(10) of one block at `LBA` with its data as immediate data, without waiting for an
/// answer, and wait until the store holds it (stalled).
fn start_stalled_write(tgtd: &Tgtd, conn: &mut Connection, data: &[u8]) -> StalledWrite {
    let (before, _) = stalled_writes(tgtd);
    let itt = conn.itt();
    let mut bhs = [0u8; 48];
    bhs[0] = OP_SCSI_CMD;
    bhs[1] = 0x80 | 0x20 | 0x01; // final, write, simple
    bhs[8..16].copy_from_slice(&lun_field(1));
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, BLOCK as u32);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    conn.cmd_sn = conn.cmd_sn.wrapping_add(1);
    let mut cdb = [0u8; 10];
    cdb[0] = 0x2a;
    cdb[2..6].copy_from_slice(&LBA.to_be_bytes());
    cdb[8] = 1;
    bhs[32..42].copy_from_slice(&cdb);
    let sent = Instant::now();
    conn.send(&bhs, data).unwrap();
    while stalled_writes(tgtd).0 == before {
        assert!(sent.elapsed() < Duration::from_secs(10), "the WRITE never reached the store:\n{}", tgtd.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    // The abort follows at once: the whole stall is left for it to come while the store holds
    // the write, however late the store took it.
    StalledWrite { itt, sent }
}

/// Called at once when the answer that must wait for `write` (a TMF's, a login's) has come: every
/// write the store stalled has ended by then, so not before the stall after `write` was sent.
#[track_caller]
fn assert_answered_after_it_ended(tgtd: &Tgtd, write: &StalledWrite, what: &str) {
    let waited = write.sent.elapsed();
    let (stalled, ended) = stalled_writes(tgtd);
    assert!(ended == stalled, "{what}: answered while the aborted write was still in the store:\n{}", tgtd.log());
    assert!(waited >= STALL, "{what}: answered {waited:?} after the write was sent, sooner than its stall");
}

/// An immediate Task Management Function Request on LUN 1; returns its response code.
fn tmf(conn: &mut Connection, function: u8, referenced: u32) -> u8 {
    let itt = 0x7000 + conn.itt();
    let mut bhs = [0u8; 48];
    bhs[0] = 0x42;
    bhs[1] = 0x80 | function;
    bhs[8..16].copy_from_slice(&lun_field(1));
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, referenced);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    conn.send(&bhs, &[]).unwrap();
    // The aborted WRITE gets no answer (RFC 7143 4.2.3.3), so the next PDU is the TMF's.
    let rsp = conn.recv().expect("a Task Management Function Response");
    assert_eq!((rsp.opcode(), rsp.itt()), (OP_TMF_RSP, itt), "{rsp:?}");
    conn.exp_stat_sn = rsp.u32_at(24).wrapping_add(1);
    rsp.bhs[2]
}

fn read_block(conn: &mut Connection) -> Vec<u8> {
    let out = conn.read10(1, LBA, 1, BLOCK as u32).unwrap();
    assert_eq!(out.status, 0, "{out:?}");
    out.data_in
}

/// What the medium holds right after the abort's answer stays so, and a write made after the
/// answer is what the block ends up with: the aborted write never lands on top of it.
fn check_after_answer(conn: &mut Connection, what: &str) {
    let first = read_block(conn);
    std::thread::sleep(STALL + Duration::from_millis(700));
    let later = read_block(conn);
    assert!(
        later == first,
        "{what}: the aborted write changed the block after the answer ({:02x?} -> {:02x?})",
        &first[..4],
        &later[..4]
    );
    let newer = block(0x77);
    let started = Instant::now();
    assert_eq!(conn.write10(1, LBA, &newer, BLOCK as u32).unwrap().status, 0);
    // That write is stalled too; an aborted one from before, had it been left running, would
    // land within the same time.
    assert!(started.elapsed() >= STALL, "{what}: {:?}", started.elapsed());
    std::thread::sleep(Duration::from_millis(300));
    assert!(read_block(conn) == newer, "{what}: the write made after the answer is not what stays");
}

#[test]
fn abort_task_is_answered_only_once_the_aborted_write_has_ended() {
    let tgtd = daemon();
    let mut conn = tgtd.session(IQN, 1, &[1]);
    let write = start_stalled_write(&tgtd, &mut conn, &block(0x11));
    assert_eq!(tmf(&mut conn, ABORT_TASK, write.itt), 0, "FUNCTION COMPLETE");
    assert_answered_after_it_ended(&tgtd, &write, "ABORT TASK");
    check_after_answer(&mut conn, "ABORT TASK");
}

#[test]
fn lun_reset_is_answered_only_once_the_aborted_write_has_ended() {
    let tgtd = daemon();
    let mut writer = tgtd.session(IQN, 1, &[1]);
    let mut other = tgtd.session(IQN, 2, &[1]);
    let write = start_stalled_write(&tgtd, &mut writer, &block(0x22));
    // Another initiator resets the unit: the writer's task goes.
    assert_eq!(tmf(&mut other, LOGICAL_UNIT_RESET, 0), 0, "FUNCTION COMPLETE");
    assert_answered_after_it_ended(&tgtd, &write, "LOGICAL UNIT RESET");
    // Consume the reset's unit attention.
    for _ in 0..4 {
        if other.scsi(1, &[0; 6], &[], 0).unwrap().status == 0 {
            break;
        }
    }
    check_after_answer(&mut other, "LOGICAL UNIT RESET");
}

#[test]
fn a_reinstated_session_proceeds_only_once_the_old_sessions_write_has_ended() {
    let tgtd = daemon();
    let mut old = tgtd.session(IQN, 3, &[1]);
    let write = start_stalled_write(&tgtd, &mut old, &block(0x33));
    // The connection goes without a word, and the initiator logs in again with the same ISID
    // (RFC 7143 6.3.5 session reinstatement).
    drop(old);
    let mut new = tgtd.session(IQN, 3, &[1]);
    assert_answered_after_it_ended(&tgtd, &write, "session reinstatement");
    check_after_answer(&mut new, "session reinstatement");
}

/// The initiator's retry, sent the moment the abort is answered, to the same block: it is what
/// stays, never the aborted write.
#[test]
fn a_write_retried_at_once_after_abort_task_is_what_stays() {
    let tgtd = daemon();
    let mut conn = tgtd.session(IQN, 4, &[1]);
    let write = start_stalled_write(&tgtd, &mut conn, &block(0x44));
    assert_eq!(tmf(&mut conn, ABORT_TASK, write.itt), 0, "FUNCTION COMPLETE");
    assert_answered_after_it_ended(&tgtd, &write, "ABORT TASK");
    let retry = block(0x55);
    assert_eq!(conn.write10(1, LBA, &retry, BLOCK as u32).unwrap().status, 0);
    std::thread::sleep(STALL + Duration::from_millis(500));
    assert!(read_block(&mut conn) == retry, "the aborted write landed on top of the retry");
}
