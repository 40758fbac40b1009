//! Hostile and broken input: each gets the RFC's answer (Reject, a login error status, or the
//! connection closed) and the daemon goes on serving other sessions.

mod common;

use common::initiator::{text_keys, write_u32, Connection, OP_LOGIN_RSP, OP_NOP_IN, OP_REJECT};
use common::{sparse_image, Tgtd};
use std::io::Write;

const IQN: &str = "iqn.2026-11.org.rtgt.test:hostile";
const INITIATOR: &str = "iqn.2026-11.org.rtgt.test:initiator";

fn daemon() -> Tgtd {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "hostile.img", 4 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    tgtd
}

/// A fresh, well-behaved session still logs in and gets answers.
fn still_serving(tgtd: &Tgtd) {
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(INITIATOR, Some(IQN), &[]).expect("a good login after the bad input");
    let nop = conn.ping(b"ping").unwrap();
    assert_eq!(nop.opcode(), OP_NOP_IN);
    assert_eq!(nop.data, b"ping");
    conn.logout().unwrap();
}

#[test]
fn garbage_byte_stream_closes_the_connection() {
    let tgtd = daemon();
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(7919) >> 3) as u8 | 0x80).collect();
    let _ = conn.stream.write_all(&garbage);
    assert!(conn.closed_by_target(), "the target must drop a connection that speaks garbage");
    still_serving(&tgtd);
}

#[test]
fn truncated_pdu_then_hang_up_leaves_the_daemon_serving() {
    let tgtd = daemon();
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(INITIATOR, Some(IQN), &[]).unwrap();
    // Half a header, then the connection vanishes.
    conn.stream.write_all(&[0x01, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap();
    drop(conn);
    still_serving(&tgtd);
}

#[test]
fn oversize_data_segment_is_refused() {
    let tgtd = daemon();
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(INITIATOR, Some(IQN), &[]).unwrap();
    // A NOP-Out that claims a 16 MiB data segment, far past the MaxRecvDataSegmentLength we were given.
    let mut bhs = [0u8; 48];
    bhs[0] = 0x40;
    bhs[1] = 0x80;
    bhs[5..8].copy_from_slice(&[0xff, 0xff, 0xfc]);
    write_u32(&mut bhs, 16, 77);
    write_u32(&mut bhs, 20, 0xffff_ffff);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    conn.stream.write_all(&bhs).unwrap();
    // RFC 7143 allows a Reject (protocol error) before the close; in any case the target must not
    // wait for 16 MiB of data: it closes the connection.
    let mut rejected_or_closed = false;
    if let Ok(pdu) = conn.recv() {
        assert_eq!(pdu.opcode(), OP_REJECT, "only a Reject may answer an oversize segment");
    }
    if conn.closed_by_target() {
        rejected_or_closed = true;
    }
    assert!(rejected_or_closed, "the connection must be closed after an oversize data segment");
    still_serving(&tgtd);
}

#[test]
fn unknown_opcode_gets_a_reject() {
    let tgtd = daemon();
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(INITIATOR, Some(IQN), &[]).unwrap();
    let mut bhs = [0u8; 48];
    bhs[0] = 0x1c; // not an initiator opcode
    bhs[1] = 0x80;
    write_u32(&mut bhs, 16, 99);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    conn.send(&bhs, &[]).unwrap();
    let pdu = conn.recv().expect("a Reject");
    assert_eq!(pdu.opcode(), OP_REJECT);
    // Reason: command not supported (0x05) or protocol error (0x04); the data is the offending header.
    assert!(matches!(pdu.bhs[2], 0x04 | 0x05), "reject reason {:#x}", pdu.bhs[2]);
    assert_eq!(&pdu.data[..48], &bhs[..]);
    // The session survives a Reject.
    let nop = conn.ping(b"after").unwrap();
    assert_eq!(nop.opcode(), OP_NOP_IN);
    still_serving(&tgtd);
}

#[test]
fn bad_login_keys_get_login_errors() {
    let tgtd = daemon();
    // No InitiatorName: initiator error, missing parameter (0x0207).
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    let rsp = conn.login_step(false, 0, 1, &text_keys(&[("SessionType", "Normal"), ("TargetName", IQN)])).unwrap();
    assert_eq!(rsp.opcode(), OP_LOGIN_RSP);
    assert_eq!((rsp.bhs[36], rsp.bhs[37]), (0x02, 0x07));
    assert!(conn.closed_by_target());

    // A target that does not exist: 0x0203.
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    let keys = text_keys(&[("InitiatorName", INITIATOR), ("TargetName", "iqn.2026-11.nowhere:none")]);
    let rsp = conn.login_step(false, 0, 1, &keys).unwrap();
    assert_eq!((rsp.bhs[36], rsp.bhs[37]), (0x02, 0x03));

    // A key without '=' is a malformed text: initiator error, never a crash.
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    let mut keys = text_keys(&[("InitiatorName", INITIATOR), ("TargetName", IQN)]);
    keys.extend_from_slice(b"ThisIsNotAKey\0");
    let rsp = conn.login_step(false, 0, 1, &keys).unwrap();
    assert_eq!(rsp.opcode(), OP_LOGIN_RSP);
    assert_eq!(rsp.bhs[36], 0x02, "status class must be initiator error");

    // An unknown key is answered NotUnderstood and the login goes on.
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    let answered = conn.login(INITIATOR, Some(IQN), &[("X-com.example.Frobnicate", "Yes")]).expect("login");
    assert_eq!(common::initiator::key(&answered, "X-com.example.Frobnicate"), Some("NotUnderstood"));
    still_serving(&tgtd);
}
