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
const INITIATOR: &str = "iqn.2026-11.org.rtgt.test:initiator";
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
    daemon_with(STALL, &[])
}

/// The same with writes stalled for `stall` and extra tgtd arguments.
fn daemon_with(stall: Duration, extra: &[&str]) -> Tgtd {
    let tgtd = Tgtd::start_with(extra);
    let image = sparse_image(tgtd.dir.path(), "disk.img", 4 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "1"]);
    let rule = format!("fault=write:stall={}ms:lba={LBA}", stall.as_millis());
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
    tmf_on(conn, function, 1, referenced)
}

/// The same with `lun` in the request's LUN field.
fn tmf_on(conn: &mut Connection, function: u8, lun: u64, referenced: u32) -> u8 {
    let itt = 0x7000 + conn.itt();
    let mut bhs = [0u8; 48];
    bhs[0] = 0x42;
    bhs[1] = 0x80 | function;
    bhs[8..16].copy_from_slice(&lun_field(lun));
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

/// ABORT TASK names its task by the ITT; the LUN field need not be the task's (RFC 7143 11.5.1
/// lets it be anything for ABORT TASK). The answer still waits for that task's write, on LUN 1.
#[test]
fn abort_task_with_another_lun_field_waits_for_the_tasks_own_lun() {
    let tgtd = daemon();
    let mut conn = tgtd.session(IQN, 5, &[1]);
    let write = start_stalled_write(&tgtd, &mut conn, &block(0x12));
    assert_eq!(tmf_on(&mut conn, ABORT_TASK, 0, write.itt), 0, "FUNCTION COMPLETE");
    assert_answered_after_it_ended(&tgtd, &write, "ABORT TASK with LUN 0");
    check_after_answer(&mut conn, "ABORT TASK with LUN 0");
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

/// Connection reinstatement (RFC 7143 6.3.4): a new connection of the session with the CID of one
/// whose write is stalled replaces it; the write is aborted, and the new connection is logged in
/// only once it has ended.
#[test]
fn a_reinstated_connection_proceeds_only_once_the_old_connections_write_has_ended() {
    let tgtd = daemon();
    let mut old = tgtd.session(IQN, 6, &[1]);
    let write = start_stalled_write(&tgtd, &mut old, &block(0x66));
    // The old connection stays open: the initiator thinks it is dead and logs in again on the
    // same CID of the same session.
    let mut new = Connection::connect(tgtd.portal()).unwrap();
    (new.isid, new.tsih, new.cid, new.cmd_sn) = (old.isid, old.tsih, old.cid, old.cmd_sn);
    new.login(INITIATOR, Some(IQN), &[]).expect("connection reinstatement");
    assert_answered_after_it_ended(&tgtd, &write, "connection reinstatement");
    check_after_answer(&mut new, "connection reinstatement");
    drop(old);
}

/// A login that waits for aborted commands and runs out of its login time answers SERVICE
/// UNAVAILABLE before the timeout cuts it, and leaves no session behind: the daemon's only session
/// slot is free again for the next login.
#[test]
fn a_login_refused_while_aborted_io_runs_leaves_no_session_behind() {
    let stall = Duration::from_secs(5);
    let tgtd = daemon_with(stall, &["--iscsi", "max_sessions=1,login_timeout=2"]);
    let mut old = tgtd.session(IQN, 7, &[1]);
    let write = start_stalled_write(&tgtd, &mut old, &block(0x77));
    let stalled = write.sent;
    // The connection goes; its write is aborted but stays in the store for the stall.
    drop(old);
    std::thread::sleep(Duration::from_millis(300));
    let mut refused = Connection::connect(tgtd.portal()).unwrap();
    refused.isid[5] = 8;
    let started = Instant::now();
    let err = refused.login(INITIATOR, Some(IQN), &[]).expect_err("refused while the write runs");
    assert_eq!(err, "login status 0x0301", "SERVICE UNAVAILABLE, after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    drop(refused);
    std::thread::sleep((stall + Duration::from_millis(500)).saturating_sub(stalled.elapsed()));
    let mut next = Connection::connect(tgtd.portal()).unwrap();
    next.isid[5] = 9;
    next.login(INITIATOR, Some(IQN), &[]).expect("the refused login's session slot is free");
}
