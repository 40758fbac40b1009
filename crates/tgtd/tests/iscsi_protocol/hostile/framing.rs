//! Broken framing: garbage, truncated PDUs, data segments past MaxRecvDataSegmentLength (in login
//! and in the full feature phase, up to a 16 MiB DataSegmentLength), and bad AHS lengths.

use crate::common::initiator::{text_keys, write_u32, Connection, Pdu, OP_LOGIN, OP_NOP_IN, OP_R2T, OP_SCSI_RSP};
use crate::hostile::arena::{Arena, HOSTILE, IQN};
use crate::hostile::wire::*;
use std::io::Write;
use std::time::{Duration, Instant};

/// Bytes that never form a header the target can use: every byte has its top bit set, so the
/// DataSegmentLength of any 48 of them is over 8 MiB.
fn garbage(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(7919) >> 3) as u8 | 0x80).collect()
}

/// The first Login Request, as the initiator helper builds it, with `keys` as its text.
fn login_request(conn: &Connection, keys: &[u8]) -> [u8; 48] {
    let mut bhs = [0u8; 48];
    bhs[0] = 0x40 | OP_LOGIN;
    bhs[1] = 0x81; // T, CSG 0, NSG 1
    bhs[5..8].copy_from_slice(&(keys.len() as u32).to_be_bytes()[1..]);
    bhs[8..14].copy_from_slice(&conn.isid);
    write_u32(&mut bhs, 16, 0x7000_0000);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    bhs
}

fn first_keys() -> Vec<u8> {
    text_keys(&[("InitiatorName", HOSTILE), ("SessionType", "Normal"), ("TargetName", IQN), ("AuthMethod", "None")])
}

#[test]
fn garbage_before_and_after_login() {
    let mut arena = Arena::start();
    // Before login: the first PDU must be a Login Request (RFC 7143 6.3); anything else ends it.
    let mut conn = arena.connect();
    conn.stream.write_all(&garbage(4096)).unwrap();
    let answer = expect_closed(&mut conn, "garbage instead of a login");
    assert!(answer.is_empty(), "garbage got an answer: {answer:?}");
    arena.check("garbage instead of a login");

    // In full feature phase the first 48 bytes announce a data segment far past our limit: a
    // protocol error (Reject 0x04 with the header), and the connection ends, as the stream can
    // no longer be followed.
    let mut conn = arena.login(&[]);
    let junk = garbage(4096);
    conn.stream.write_all(&junk).unwrap();
    let answer = expect_closed(&mut conn, "garbage after login");
    let header: [u8; 48] = junk[..48].try_into().unwrap();
    let reject = Pdu { bhs: answer[..48].try_into().expect("a Reject"), data: answer[48..].to_vec() };
    expect_reject(&reject, 0x04, &header);
    arena.finish("garbage");
}

#[test]
fn truncated_pdus() {
    let mut arena = Arena::start();
    // Half a Login Request, then the connection goes.
    let mut conn = arena.connect();
    let bhs = login_request(&conn, &first_keys());
    conn.stream.write_all(&bhs[..20]).unwrap();
    drop(conn);
    arena.check("half a login header");

    // A whole login header whose data segment stops short, then the connection goes.
    let mut conn = arena.connect();
    let keys = first_keys();
    conn.stream.write_all(&login_request(&conn, &keys)).unwrap();
    conn.stream.write_all(&keys[..keys.len() / 2]).unwrap();
    drop(conn);
    arena.check("half a login data segment");

    // Logged in: half a BHS, and a NOP-Out that announces 4000 bytes and brings 100.
    let mut conn = arena.login(&[]);
    conn.stream.write_all(&nop_out(&conn, 5)[..30]).unwrap();
    drop(conn);
    arena.check("half a header after login");
    let mut conn = arena.login(&[]);
    let mut bhs = nop_out(&conn, 6);
    bhs[5..8].copy_from_slice(&4000u32.to_be_bytes()[1..]);
    conn.stream.write_all(&bhs).unwrap();
    conn.stream.write_all(&[0x55; 100]).unwrap();
    drop(conn);
    arena.check("a short data segment after login");
    arena.finish("truncated PDUs");
}

#[test]
fn oversize_data_segments() {
    let mut arena = Arena::start();
    // A Login Request announcing 16 MiB: initiator error (0x0200) at once, without waiting for
    // the data (login PDUs carry at most 8192 bytes).
    let mut conn = arena.connect();
    let mut bhs = login_request(&conn, &[]);
    bhs[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    let started = Instant::now();
    conn.stream.write_all(&bhs).unwrap();
    let rsp = conn.recv().expect("a Login Response");
    assert_eq!(login_status(&rsp), (0x02, 0x00));
    expect_closed(&mut conn, "16 MiB login segment");
    assert!(started.elapsed() < Duration::from_secs(2), "the target waited for the announced data");
    arena.check("a 16 MiB login segment");

    // A Login Request with 9000 bytes of real text: past 8192, the same answer.
    let mut conn = arena.connect();
    let mut keys = first_keys();
    keys.extend(text_keys(&[("X-org.rtgt.padding", &"p".repeat(9000 - keys.len() - 20))]));
    let bhs = login_request(&conn, &keys);
    send_raw(&mut conn, &bhs, &[], &keys);
    let rsp = conn.recv().expect("a Login Response");
    assert_eq!(login_status(&rsp), (0x02, 0x00));
    expect_closed(&mut conn, "9000-byte login segment");
    arena.check("a 9000-byte login segment");

    // Full feature phase, NOP-Out announcing 0xFFFFFF bytes: Reject (protocol error), then close.
    let mut conn = arena.login(&[]);
    let mut bhs = nop_out(&conn, 9);
    bhs[5..8].copy_from_slice(&[0xff, 0xff, 0xff]);
    conn.stream.write_all(&bhs).unwrap();
    expect_reject(&conn.recv().expect("a Reject"), 0x04, &bhs);
    expect_closed(&mut conn, "16 MiB NOP-Out");
    arena.check("a 16 MiB NOP-Out");
    arena.finish("oversize data segments");
}

#[test]
fn segments_past_max_recv_data_segment_length() {
    let mut arena = Arena::start();
    // The target is told to declare 8192 (tgt's default; rtgt's is 256 KiB); a WRITE with 8704
    // bytes of immediate data is then refused whole.
    let update = "--lld iscsi --mode target --op update --tid 1 --name MaxRecvDataSegmentLength --value 8192";
    arena.tgtd.tgtadm_ok(&update.split(' ').collect::<Vec<_>>());
    let mut conn = arena.login(&[]);
    assert_eq!(conn.target_mrdsl, 8192);
    let data = pattern(8704, 1);
    let bhs = command(&mut conn, 1, 0xa0, data.len() as u32, &write10(100, 17));
    conn.send(&bhs, &data).unwrap();
    let mut sent = bhs;
    sent[5..8].copy_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    expect_reject(&conn.recv().expect("a Reject"), 0x04, &sent);
    expect_closed(&mut conn, "immediate data past MaxRecvDataSegmentLength");
    arena.check("immediate data past MaxRecvDataSegmentLength");
    arena.assert_unwritten(100, 17, "oversize immediate data");

    // The same in a Data-Out answering an R2T.
    let mut conn = arena.login(&[("ImmediateData", "No")]);
    let bhs = command(&mut conn, 2, 0xa0, 16 * 1024, &write10(200, 32));
    conn.send(&bhs, &[]).unwrap();
    let r2t = conn.recv().expect("an R2T");
    assert_eq!(r2t.opcode(), OP_R2T);
    let mut dout = data_out(&conn, 2, r2t.u32_at(20), 0, 0, true);
    conn.send(&dout, &pattern(8704, 2)).unwrap();
    dout[5..8].copy_from_slice(&8704u32.to_be_bytes()[1..]);
    expect_reject(&conn.recv().expect("a Reject"), 0x04, &dout);
    expect_closed(&mut conn, "Data-Out past MaxRecvDataSegmentLength");
    arena.check("a Data-Out past MaxRecvDataSegmentLength");
    arena.assert_unwritten(200, 32, "oversize Data-Out");
    arena.finish("segments past MaxRecvDataSegmentLength");
}

#[test]
fn bad_ahs_lengths() {
    let mut arena = Arena::start();
    let mut conn = arena.login(&[]);
    // (TotalAHSLength in words, AHS bytes): an AHSLength past the AHS, an AHSLength of 0, 1020
    // bytes of zeros, and an Extended CDB past the largest CDB.
    let mut long_cdb = vec![0, 61, 1, 0];
    long_cdb.resize(64, 0xee);
    let cases: Vec<(u8, Vec<u8>)> =
        vec![(1, vec![0, 40, 1, 0]), (1, vec![0, 0, 1, 0]), (255, vec![0; 1020]), (16, long_cdb)];
    for (i, (words, ahs)) in cases.iter().enumerate() {
        let itt = 10 + i as u32;
        let mut bhs = command(&mut conn, itt, 0xc0, 4096, &read10(0, 8));
        bhs[4] = *words;
        send_raw(&mut conn, &bhs, ahs, &[]);
        // 11.17.1: an invalid field is rejected (0x09); the session goes on.
        expect_reject(&conn.recv().expect("a Reject"), 0x09, &bhs);
        let nop = conn.ping(b"still").unwrap();
        assert_eq!((nop.opcode(), &nop.data[..]), (OP_NOP_IN, &b"still"[..]), "AHS case {i}");
        arena.check("a bad AHS");
    }
    // A good command on the same session still runs.
    let itt = conn.itt();
    let bhs = command(&mut conn, itt, 0xc0, 512, &read10(0, 1));
    conn.send(&bhs, &[]).unwrap();
    let answer = conn.recv().unwrap();
    // A SCSI Response, or a Data-In with the status (S bit): byte 3 is the status either way.
    assert!(answer.opcode() == OP_SCSI_RSP || answer.bhs[1] & 0x01 != 0, "{answer:?}");
    assert_eq!(answer.bhs[3], 0, "status of a good READ after the bad AHS");
    drop(conn);
    arena.finish("bad AHS lengths");
}
