//! Hostile login text (RFC 7143 6.1, 11.12-11.13): far too many keys and a value far too long,
//! both sent over many Login Requests with the C bit; a missing NUL terminator; bad UTF-8; a
//! version the target does not speak; and logins that never finish (slow-loris), which the daemon
//! drops after its login timeout.

use crate::common::initiator::{text_keys, write_u32, Connection, OP_LOGIN};
use crate::hostile::arena::{Arena, HOSTILE, IQN, LOGIN_TIMEOUT_SECS};
use crate::hostile::wire::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// Login data the daemon keeps across C-bit PDUs (text::MAX_TEXT_LEN), plus the PDU that
/// crosses it: a refusal must come before the client sent more than this.
const TEXT_LIMIT: usize = 64 * 1024 + 8192;

/// A Login Request in the security stage: C bit (more text follows) or T bit to operational.
fn login_pdu(conn: &Connection, more: bool, keys: &[u8]) -> [u8; 48] {
    let mut bhs = [0u8; 48];
    bhs[0] = 0x40 | OP_LOGIN;
    bhs[1] = if more { 0x40 } else { 0x81 };
    bhs[5..8].copy_from_slice(&(keys.len() as u32).to_be_bytes()[1..]);
    bhs[8..14].copy_from_slice(&conn.isid);
    write_u32(&mut bhs, 16, 0x7000_0001);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    bhs
}

fn declarations() -> Vec<u8> {
    text_keys(&[("InitiatorName", HOSTILE), ("SessionType", "Normal"), ("TargetName", IQN), ("AuthMethod", "None")])
}

/// Send `text` in 8192-byte Login Requests with the C bit on all but the last, reading the
/// target's answer to each. Returns the first non-zero status and how many bytes were sent by
/// then; an empty answer to each partial PDU is required (6.3.4 / 11.13: C-bit acknowledgement).
fn send_long_text(conn: &mut Connection, text: &[u8]) -> ((u8, u8), usize) {
    let chunks: Vec<&[u8]> = text.chunks(8192).collect();
    let mut sent = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        let more = i + 1 < chunks.len();
        let bhs = login_pdu(conn, more, chunk);
        conn.send(&bhs, chunk).expect("the target closed before answering");
        sent += chunk.len();
        let rsp = conn.recv().expect("a Login Response");
        let status = login_status(&rsp);
        if status != (0, 0) || !more {
            return (status, sent);
        }
        assert!(rsp.data.is_empty(), "a partial text PDU is acknowledged with an empty response");
        conn.exp_stat_sn = rsp.u32_at(24).wrapping_add(1);
    }
    ((0, 0), sent)
}

#[test]
fn too_much_login_text() {
    let mut arena = Arena::start();
    // 10,000 keys (some 150 KB): refused as out of resources (0x0302) once past the daemon's
    // bound, without the daemon taking the rest.
    let mut text = declarations();
    for i in 0..10_000 {
        text.extend(text_keys(&[(&format!("X-org.rtgt.key{i:05}"), "1")]));
    }
    let mut conn = arena.connect();
    let (status, sent) = send_long_text(&mut conn, &text);
    assert_eq!(status, (0x03, 0x02), "10,000 keys");
    assert!(sent <= TEXT_LIMIT, "the target took {sent} bytes before refusing");
    expect_closed(&mut conn, "10,000 keys");
    arena.check("10,000 login keys");

    // More keys than the daemon keeps (256) within the byte bound: the same status.
    let mut text = declarations();
    for i in 0..400 {
        text.extend(text_keys(&[(&format!("X-k{i}"), "1")]));
    }
    assert!(text.len() < 8192);
    let mut conn = arena.connect();
    assert_eq!(send_long_text(&mut conn, &text).0, (0x03, 0x02), "400 keys");
    expect_closed(&mut conn, "400 keys");

    // One key with a 1 MiB value.
    let mut text = declarations();
    text.extend(text_keys(&[("X-org.rtgt.big", &"v".repeat(1 << 20))]));
    let mut conn = arena.connect();
    let (status, sent) = send_long_text(&mut conn, &text);
    assert_eq!(status, (0x03, 0x02), "a 1 MiB value");
    assert!(sent <= TEXT_LIMIT, "the target took {sent} bytes of the 1 MiB value before refusing");
    expect_closed(&mut conn, "a 1 MiB value");
    arena.check("a 1 MiB login value");
    arena.finish("too much login text");
}

#[test]
fn malformed_login_text() {
    let mut arena = Arena::start();
    // 6.1: every key=value pair, the last one too, ends with a NUL. Text cut short is an
    // initiator error (0x0200).
    let mut text = declarations();
    text.pop();
    let mut conn = arena.connect();
    assert_eq!(send_long_text(&mut conn, &text).0, (0x02, 0x00), "a missing NUL terminator");
    expect_closed(&mut conn, "a missing NUL terminator");
    arena.check("a missing NUL terminator");

    // 6.1: text is UTF-8. Bytes that are not: an initiator error.
    for bad in [&b"iqn.2026-11.org.rtgt.test:\xff\xfe"[..], b"iqn.2026-11.\xc3(", b"iqn.\xed\xa0\x80"] {
        let mut text = b"InitiatorName=".to_vec();
        text.extend_from_slice(bad);
        text.push(0);
        text.extend(text_keys(&[("SessionType", "Normal"), ("TargetName", IQN), ("AuthMethod", "None")]));
        let mut conn = arena.connect();
        assert_eq!(send_long_text(&mut conn, &text).0, (0x02, 0x00), "bad UTF-8 {bad:?}");
        expect_closed(&mut conn, "bad UTF-8");
        arena.check("bad UTF-8");
    }
    // A version we do not speak (Version-min 1, 11.12.4): 0x0205, and the response still echoes
    // the request's ISID, TSIH and ITT (11.13).
    let mut conn = arena.connect();
    let keys = declarations();
    let mut bhs = login_pdu(&conn, false, &keys);
    bhs[2] = 1; // Version-max
    bhs[3] = 1; // Version-min
    conn.send(&bhs, &keys).unwrap();
    let rsp = conn.recv().expect("a Login Response");
    assert_eq!(login_status(&rsp), (0x02, 0x05), "an unsupported version");
    assert_eq!(rsp.bhs[8..14], conn.isid, "the ISID of the request");
    assert_eq!(rsp.bhs[14..16], [0, 0], "the TSIH of the request");
    assert_eq!(rsp.itt(), 0x7000_0001, "the ITT of the request");
    expect_closed(&mut conn, "an unsupported version");
    // The same keys, well formed, log in.
    let mut conn = arena.connect();
    assert_eq!(send_long_text(&mut conn, &declarations()).0, (0, 0));
    drop(conn);
    arena.finish("malformed login text");
}

/// Whether the target has closed `conn` (EOF or reset now), without waiting.
fn is_closed(conn: &mut Connection) -> bool {
    conn.stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 512];
    let closed = loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => assert_eq!(buf[0] & 0x3f, 0x23, "only a Login Response may come ({n} bytes)"),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    conn.stream.set_nonblocking(false).unwrap();
    closed
}

#[test]
fn logins_that_never_finish_are_dropped() {
    let mut arena = Arena::start();
    let limit = Duration::from_secs(LOGIN_TIMEOUT_SECS);
    let started = Instant::now();
    // A connection that says nothing at all.
    let mut silent = arena.connect();
    // A login that went through its first exchange, then dribbles one byte of the next request
    // every 100 ms: each byte is progress on the socket but none on the login.
    let mut dribble = arena.connect();
    let first = declarations();
    let bhs = login_pdu(&dribble, false, &first);
    dribble.send(&bhs, &first).unwrap();
    assert_eq!(login_status(&dribble.recv().unwrap()), (0, 0));
    let next = login_pdu(&dribble, false, &text_keys(&[("MaxRecvDataSegmentLength", "8192")]));
    let (mut silent_gone, mut dribble_gone) = (None, None);
    let mut sent = 0;
    while (silent_gone.is_none() || dribble_gone.is_none()) && started.elapsed() < limit * 3 {
        if dribble_gone.is_none() && sent < next.len() {
            let _ = dribble.stream.write_all(&next[sent..sent + 1]);
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
        if silent_gone.is_none() && is_closed(&mut silent) {
            silent_gone = Some(started.elapsed());
        }
        if dribble_gone.is_none() && is_closed(&mut dribble) {
            dribble_gone = Some(started.elapsed());
        }
        // The bystander is served while both hang.
        arena.check("a hanging login");
    }
    assert!(sent < next.len(), "the whole header was dribbled before the timeout; slow the dribble");
    for (what, gone) in [("silent", silent_gone), ("dribbling", dribble_gone)] {
        let after = gone.unwrap_or_else(|| panic!("the {what} login was never dropped"));
        eprintln!("{what} login dropped after {after:?}");
        assert!(after >= limit - Duration::from_millis(100), "{what} login dropped before the timeout");
        assert!(after < limit + Duration::from_millis(1500), "{what} login kept for {after:?}");
    }
    arena.finish("logins that never finish");
}
