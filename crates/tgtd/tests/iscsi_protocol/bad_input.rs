//! Broken input: each gets the RFC's answer (Reject, a login error status) and the daemon goes on
//! serving other sessions. The hostile framing cases (garbage, truncated and oversize PDUs) are in
//! the hostile module.

use crate::common;

use common::initiator::{text_keys, write_u32, Connection, OP_LOGIN_RSP, OP_NOP_IN, OP_REJECT};
use common::{sparse_image, Tgtd};

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

type Keys = Vec<(String, String)>;

/// Issue 14: every Text Request in the full feature phase gets an answer within a second or two,
/// through the real daemon: SendTargets per RFC 7143 appendix C in a normal session (All refused,
/// empty and the session's own name answered), NotUnderstood for an unknown key, Reject for a
/// SendTargets value that is no target name; the session stays usable.
#[test]
fn text_requests_in_full_feature_phase_are_always_answered() {
    let tgtd = daemon();
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(INITIATOR, Some(IQN), &[]).unwrap();
    // Bounded wait: silence is a failure, not a hang.
    conn.stream.set_read_timeout(Some(std::time::Duration::from_millis(1500))).unwrap();
    let own = vec![
        ("TargetName".to_string(), IQN.to_string()),
        ("TargetAddress".to_string(), format!("{},1", tgtd.portal())),
    ];
    let pairs = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let cases: [(&str, &str, Keys); 6] = [
        ("SendTargets", "All", pairs("SendTargets", "Reject")),
        ("SendTargets", "", own.clone()),
        ("SendTargets", IQN, own.clone()),
        ("SendTargetsPlease", "All", pairs("SendTargetsPlease", "NotUnderstood")),
        ("SendTargets", "Alle", pairs("SendTargets", "Reject")),
        ("SendTargets", "A", pairs("SendTargets", "Reject")),
    ];
    for (key, value, expected) in cases {
        let mut bhs = [0u8; 48];
        bhs[0] = common::initiator::OP_TEXT;
        bhs[1] = 0x80;
        let itt = conn.itt();
        write_u32(&mut bhs, 16, itt);
        write_u32(&mut bhs, 20, 0xffff_ffff);
        write_u32(&mut bhs, 24, conn.cmd_sn);
        write_u32(&mut bhs, 28, conn.exp_stat_sn);
        conn.cmd_sn += 1;
        conn.send(&bhs, &text_keys(&[(key, value)])).unwrap();
        let rsp = conn.recv().unwrap_or_else(|e| panic!("no answer to {key}={value}: {e}"));
        assert_eq!(rsp.opcode(), common::initiator::OP_TEXT_RSP, "{key}={value}");
        assert_eq!((rsp.itt(), rsp.bhs[1] & 0xc0, rsp.u32_at(20)), (itt, 0x80, 0xffff_ffff), "{key}={value}");
        conn.exp_stat_sn = rsp.u32_at(24).wrapping_add(1);
        assert_eq!(common::initiator::parse_keys(&rsp.data), expected, "{key}={value}");
        assert_eq!(conn.ping(b"usable").unwrap().opcode(), OP_NOP_IN);
    }
    conn.logout().unwrap();
    still_serving(&tgtd);
}
