//! The bounds on what initiators may hold, against the real daemon: sessions per target (MaxSessions)
//! and per daemon (`--iscsi max_sessions=`) refused with 0x0302, connections per session
//! (MaxConnections) refused with 0x0206, commands in flight (MaxQueueCmd, the CmdSN window), the
//! data segment and burst sizes a target caps, the write data all sessions together may hold
//! (`--iscsi write_budget=`), and how long a write may hold it without sending its Data-Out
//! (`--iscsi data_out_timeout=`).

use crate::common;

use common::initiator::{lun_field, write_u32, Connection, Pdu, OP_NOP_IN, OP_R2T, OP_SCSI_CMD, OP_SCSI_RSP};
use common::{sparse_image, Tgtd};
use std::time::Duration;

const INITIATOR: &str = "iqn.2024-01.test:limits";

fn target(tgtd: &Tgtd, tid: u32, iqn: &str) {
    let image = sparse_image(tgtd.dir.path(), &format!("disk{tid}.img"), 16 << 20);
    tgtd.add_disk_target(tid, iqn, &image);
}

fn set_param(tgtd: &Tgtd, tid: u32, name: &str, value: &str) {
    let tid = tid.to_string();
    tgtd.tgtadm_ok(&[
        "--lld", "iscsi", "--mode", "target", "--op", "update", "--tid", &tid, "--name", name, "--value", value,
    ]);
}

/// A connection with its own ISID (a new initiator port, so a new session rather than a
/// reinstatement of the last one).
fn connection(tgtd: &Tgtd, isid_tail: u8) -> Connection {
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.isid[5] = isid_tail;
    conn
}

fn login(tgtd: &Tgtd, isid_tail: u8, iqn: Option<&str>) -> Result<Connection, String> {
    let mut conn = connection(tgtd, isid_tail);
    conn.login(INITIATOR, iqn, &[]).map(|_| conn)
}

/// The first command of a new I_T nexus reports the power-on unit attention: take it out of the way.
fn clear_unit_attention(conn: &mut Connection) {
    let _ = conn.scsi(1, &[0u8; 6], &[], 0).unwrap();
}

const OUT_OF_RESOURCES: &str = "login status 0x0302";

/// Send a WRITE(10) of `blocks` blocks at LBA 0 on LUN 1 announcing `edtl` bytes, with no immediate
/// data, and return its ITT without waiting for anything.
fn announce_write(conn: &mut Connection, edtl: u32, blocks: u16) -> u32 {
    let mut bhs = [0u8; 48];
    bhs[0] = OP_SCSI_CMD;
    bhs[1] = 0x80 | 0x20 | 0x01;
    bhs[8..16].copy_from_slice(&lun_field(1));
    let itt = conn.itt();
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, edtl);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    conn.cmd_sn += 1;
    bhs[32] = 0x2a;
    bhs[39..41].copy_from_slice(&blocks.to_be_bytes());
    conn.send(&bhs, &[]).unwrap();
    itt
}

/// Answer the R2Ts of write `itt` (starting with `first`, if one was already read) with `data` until
/// its SCSI Response, which must be GOOD; returns the lengths the R2Ts asked for.
fn serve_r2ts(conn: &mut Connection, itt: u32, data: &[u8], first: Option<Pdu>) -> Vec<usize> {
    let mut asked = Vec::new();
    let mut next = first;
    loop {
        let pdu = match next.take() {
            Some(pdu) => pdu,
            None => conn.recv().unwrap(),
        };
        match pdu.opcode() {
            OP_R2T => {
                let (offset, len) = (pdu.u32_at(40) as usize, pdu.u32_at(44) as usize);
                asked.push(len);
                conn.send_data_out(1, itt, pdu.u32_at(20), &data[offset..offset + len], offset).unwrap();
            }
            OP_SCSI_RSP => {
                assert_eq!(pdu.bhs[3], 0, "the write failed: {pdu:?}");
                conn.exp_stat_sn = pdu.u32_at(24).wrapping_add(1);
                return asked;
            }
            OP_NOP_IN => {}
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
}

#[test]
fn a_target_takes_at_most_max_sessions() {
    let tgtd = Tgtd::start();
    let (full, other) = ("iqn.2024-01.test:limited", "iqn.2024-01.test:unlimited");
    target(&tgtd, 1, full);
    target(&tgtd, 2, other);
    set_param(&tgtd, 1, "MaxSessions", "2");
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show", "--tid", "1", "--json"]);
    assert!(show.contains("MaxSessions"), "show lists the bound: {show}");

    let mut first = login(&tgtd, 1, Some(full)).unwrap();
    let _second = login(&tgtd, 2, Some(full)).unwrap();
    assert_eq!(login(&tgtd, 3, Some(full)).err().as_deref(), Some(OUT_OF_RESOURCES));
    // Other targets are not bound by it, and a reinstatement (same initiator port) takes the
    // place of the session it replaces.
    login(&tgtd, 3, Some(other)).unwrap();
    login(&tgtd, 2, Some(full)).expect("reinstatement while the target is full");
    // A session that ends frees its place.
    first.logout().unwrap();
    let _third = wait_for_login(&tgtd, 3, full);
    assert!(tgtd.log().contains("target session limit reached"), "the refusal is logged: {}", tgtd.log());
}

/// The target ends a session right after the Logout Response: retry briefly until it is gone.
fn wait_for_login(tgtd: &Tgtd, isid_tail: u8, iqn: &str) -> Connection {
    for _ in 0..100 {
        match login(tgtd, isid_tail, Some(iqn)) {
            Ok(conn) => return conn,
            Err(e) if e == OUT_OF_RESOURCES => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("login failed: {e}"),
        }
    }
    panic!("the place of a logged-out session never became free");
}

#[test]
fn the_daemon_takes_at_most_max_sessions_of_every_kind() {
    let tgtd = Tgtd::start_with(&["--iscsi", "max_sessions=2"]);
    let (a, b) = ("iqn.2024-01.test:a", "iqn.2024-01.test:b");
    target(&tgtd, 1, a);
    target(&tgtd, 2, b);
    let _one = login(&tgtd, 1, Some(a)).unwrap();
    let discovery = login(&tgtd, 2, None).unwrap();
    // Full: a normal and a discovery login are refused alike, on any target.
    assert_eq!(login(&tgtd, 3, Some(b)).err().as_deref(), Some(OUT_OF_RESOURCES));
    assert_eq!(login(&tgtd, 4, None).err().as_deref(), Some(OUT_OF_RESOURCES));
    assert!(tgtd.log().contains("daemon session limit reached"), "{}", tgtd.log());
    drop(discovery); // a dropped connection ends its session too
    let _two = wait_for_login(&tgtd, 3, b);
    // Raised at run time, the bound lets the next one in at once.
    tgtd.tgtadm_ok(&["--mode", "system", "--op", "update", "--name", "max_sessions", "--value", "3"]);
    login(&tgtd, 5, Some(a)).expect("room after raising max_sessions");
}

#[test]
fn connections_per_session_stop_at_max_connections() {
    let tgtd = Tgtd::start();
    let iqn = "iqn.2024-01.test:mc";
    target(&tgtd, 1, iqn);
    set_param(&tgtd, 1, "MaxConnections", "2");
    let mut lead = connection(&tgtd, 1);
    let answered = lead.login(INITIATOR, Some(iqn), &[("MaxConnections", "8")]).unwrap();
    assert_eq!(common::initiator::key(&answered, "MaxConnections"), Some("2"), "the target's bound wins");
    clear_unit_attention(&mut lead);
    let tsih = lead.tsih;
    let join = |cid: u16| {
        let mut conn = connection(&tgtd, 1);
        conn.tsih = tsih;
        conn.cid = cid;
        conn.login(INITIATOR, Some(iqn), &[]).map(|_| conn)
    };
    let mut second = join(1).expect("the second connection joins");
    assert_eq!(join(2).err().as_deref(), Some("login status 0x0206"), "too many connections");
    // Both connections serve the one session (CmdSN is counted session-wide).
    second.cmd_sn = lead.cmd_sn;
    assert_eq!(second.read10(1, 0, 1, 512).unwrap().status, 0);
    lead.cmd_sn = second.cmd_sn;
    assert_eq!(lead.read10(1, 0, 1, 512).unwrap().status, 0);
}

/// A SCSI command (TEST UNIT READY) with an explicit CmdSN.
fn test_unit_ready(conn: &mut Connection, cmd_sn: u32) {
    let mut bhs = [0u8; 48];
    bhs[0] = OP_SCSI_CMD;
    bhs[1] = 0x80 | 0x01;
    bhs[8..16].copy_from_slice(&lun_field(1));
    let itt = conn.itt();
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 24, cmd_sn);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    conn.send(&bhs, &[]).unwrap();
}

#[test]
fn commands_in_flight_are_bounded_by_max_queue_cmd() {
    let tgtd = Tgtd::start();
    let iqn = "iqn.2024-01.test:window";
    target(&tgtd, 1, iqn);
    set_param(&tgtd, 1, "MaxQueueCmd", "4");
    let mut conn = connection(&tgtd, 1);
    conn.login(INITIATOR, Some(iqn), &[]).unwrap();
    clear_unit_attention(&mut conn);
    let nop = conn.ping(b"window").unwrap();
    let (exp, max) = (nop.u32_at(28), nop.u32_at(32));
    assert_eq!(max.wrapping_sub(exp).wrapping_add(1), 4, "the window holds MaxQueueCmd commands");
    // A command past MaxCmdSN is dropped without an answer (RFC 7143 3.2.2.1) ...
    test_unit_ready(&mut conn, max.wrapping_add(1));
    conn.stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    assert!(conn.recv().is_err(), "a command outside the window must get no response");
    conn.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // ... while one inside it runs, and the answer's window has moved on by one.
    test_unit_ready(&mut conn, exp);
    let rsp = conn.recv().unwrap();
    assert_eq!((rsp.opcode(), rsp.bhs[3]), (OP_SCSI_RSP, 0), "{rsp:?}");
    assert_eq!((rsp.u32_at(28), rsp.u32_at(32)), (exp.wrapping_add(1), max.wrapping_add(1)));
}

#[test]
fn segment_and_burst_sizes_are_capped_by_the_target() {
    let tgtd = Tgtd::start();
    let iqn = "iqn.2024-01.test:bursts";
    target(&tgtd, 1, iqn);
    for (name, value) in
        [("MaxRecvDataSegmentLength", "4096"), ("MaxBurstLength", "16384"), ("FirstBurstLength", "8192")]
    {
        set_param(&tgtd, 1, name, value);
    }
    let mut conn = connection(&tgtd, 1);
    let offer = [("MaxBurstLength", "1048576"), ("FirstBurstLength", "262144"), ("ImmediateData", "Yes")];
    let answered = conn.login(INITIATOR, Some(iqn), &offer).unwrap();
    let key = |k| common::initiator::key(&answered, k).map(str::to_string);
    assert_eq!(key("MaxRecvDataSegmentLength").as_deref(), Some("4096"));
    assert_eq!(key("MaxBurstLength").as_deref(), Some("16384"));
    assert_eq!(key("FirstBurstLength").as_deref(), Some("8192"));
    clear_unit_attention(&mut conn);

    // A 64 KiB WRITE without immediate data: every R2T asks for at most MaxBurstLength.
    let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 251) as u8).collect();
    let itt = announce_write(&mut conn, data.len() as u32, 128);
    let r2ts = serve_r2ts(&mut conn, itt, &data, None);
    assert!(r2ts.iter().all(|&len| len <= 16384), "an R2T asked for more than MaxBurstLength: {r2ts:?}");
    assert!(r2ts.len() >= 4, "64 KiB in bursts of 16 KiB takes four R2Ts, got {r2ts:?}");
    assert_eq!(conn.read10(1, 0, 128, 512).unwrap().data_in, data);

    // A data segment past the declared MaxRecvDataSegmentLength ends the connection.
    let mut too_big = connection(&tgtd, 2);
    too_big.login(INITIATOR, Some(iqn), &offer).unwrap();
    too_big.target_mrdsl = 8192; // pretend we were allowed 8 KiB of immediate data
    let _ = too_big.write10(1, 0, &data[..8192], 512);
    assert!(too_big.closed_by_target(), "an oversize data segment must close the connection");
    assert_eq!(conn.read10(1, 0, 1, 512).unwrap().status, 0, "other sessions go on");
}

#[test]
fn a_write_claiming_more_data_than_any_lun_takes_is_refused_before_any_is_solicited() {
    let tgtd = Tgtd::start();
    let iqn = "iqn.2024-01.test:edtl";
    target(&tgtd, 1, iqn);
    let mut conn = connection(&tgtd, 1);
    conn.login(INITIATOR, Some(iqn), &[]).unwrap();
    clear_unit_attention(&mut conn);
    // WRITE(10) with an Expected Data Transfer Length of 1 GiB, past the 64 MiB MAXIMUM TRANSFER
    // LENGTH: the target must not ask for (and buffer) that much.
    announce_write(&mut conn, 1 << 30, u16::MAX);
    let rsp = conn.recv().unwrap();
    assert_eq!(rsp.opcode(), OP_SCSI_RSP, "no R2T may come first: {rsp:?}");
    conn.exp_stat_sn = rsp.u32_at(24).wrapping_add(1);
    assert_eq!(rsp.bhs[3], 2, "CHECK CONDITION");
    // Sense data after its 2-byte length: ILLEGAL REQUEST, INVALID FIELD IN CDB.
    assert_eq!((rsp.data[2 + 2] & 0x0f, rsp.data[2 + 12]), (0x05, 0x24), "{rsp:?}");
    assert_eq!(conn.read10(1, 0, 1, 512).unwrap().status, 0, "the session goes on");
}

#[test]
fn the_write_data_of_every_session_together_stays_within_the_daemon_budget() {
    // 24 MiB for the whole daemon; each connection alone could hold 64 MiB.
    let tgtd = Tgtd::start_with(&["--iscsi", "write_budget=24M"]);
    let iqn = "iqn.2024-01.test:budget";
    let image = sparse_image(tgtd.dir.path(), "budget.img", 64 << 20);
    tgtd.add_disk_target(1, iqn, &image);
    let mut first = login(&tgtd, 1, Some(iqn)).unwrap();
    let mut second = login(&tgtd, 2, Some(iqn)).unwrap();
    clear_unit_attention(&mut first);
    clear_unit_attention(&mut second);
    // The first session's 16 MiB write is asked for at once.
    let blocks = 32 * 1024;
    let itt = announce_write(&mut first, u32::from(blocks) * 512, blocks);
    let r2t = first.recv().unwrap();
    assert_eq!((r2t.opcode(), r2t.itt()), (OP_R2T, itt), "{r2t:?}");
    // The second session's 16 MiB would make 32 MiB held: no R2T while the first write holds its data.
    let waiting = announce_write(&mut second, u32::from(blocks) * 512, blocks);
    second.stream.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
    let early = second.recv();
    assert!(early.is_err(), "the second write was asked for its data at once: {early:?}");
    second.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // The first write's data arrives, it completes, and the second write gets its R2T.
    serve_r2ts(&mut first, itt, &vec![0x11u8; usize::from(blocks) * 512], Some(r2t));
    let r2t = second.recv().unwrap();
    assert_eq!((r2t.opcode(), r2t.itt()), (OP_R2T, waiting), "{r2t:?}");
}

#[test]
fn a_write_that_never_sends_its_data_out_gives_the_daemon_budget_back_after_the_timeout() {
    // 16 MiB for the whole daemon, and 2 s for a write's Data-Out.
    let tgtd = Tgtd::start_with(&["--iscsi", "write_budget=16M,data_out_timeout=2"]);
    let iqn = "iqn.2024-01.test:silent";
    let image = sparse_image(tgtd.dir.path(), "silent.img", 64 << 20);
    tgtd.add_disk_target(1, iqn, &image);
    let mut silent = login(&tgtd, 1, Some(iqn)).unwrap();
    let mut other = login(&tgtd, 2, Some(iqn)).unwrap();
    clear_unit_attention(&mut silent);
    clear_unit_attention(&mut other);
    // The silent session's 16 MiB write is admitted, takes the whole budget, and never gets its data.
    let blocks = 32 * 1024;
    let stalled = announce_write(&mut silent, u32::from(blocks) * 512, blocks);
    let r2t = silent.recv().unwrap();
    assert_eq!((r2t.opcode(), r2t.itt()), (OP_R2T, stalled), "{r2t:?}");
    let stalled_ttt = r2t.u32_at(20);
    // The other session's write waits for budget until the silent write times out, not forever.
    let started = std::time::Instant::now();
    let waiting = announce_write(&mut other, 8 * 512, 8);
    other.stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r2t = other.recv().expect("the waiting write never got its R2T: the stalled write kept the budget");
    assert_eq!((r2t.opcode(), r2t.itt()), (OP_R2T, waiting), "{r2t:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500), "the R2T came before the timeout");
    other.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    serve_r2ts(&mut other, waiting, &[0x22u8; 8 * 512], Some(r2t));
    // The silent write ended with CHECK CONDITION, ABORTED COMMAND, INITIATOR RESPONSE TIMEOUT.
    let rsp = silent.recv().unwrap();
    assert_eq!((rsp.opcode(), rsp.itt(), rsp.bhs[3]), (OP_SCSI_RSP, stalled, 2), "{rsp:?}");
    silent.exp_stat_sn = rsp.u32_at(24).wrapping_add(1);
    // Sense data after its 2-byte length.
    assert_eq!((rsp.data[2 + 2] & 0x0f, rsp.data[2 + 12], rsp.data[2 + 13]), (0x0b, 0x4b, 0x06), "{rsp:?}");
    // Its Data-Out, arriving late, is discarded, and the session goes on.
    silent.send_data_out(1, stalled, stalled_ttt, &[0u8; 512], 0).unwrap();
    assert_eq!(silent.read10(1, 0, 8, 512).unwrap().data_in, vec![0x22u8; 8 * 512], "the session goes on");
    assert!(tgtd.log().contains("no Data-Out within the timeout"), "the expiry is logged: {}", tgtd.log());
}
