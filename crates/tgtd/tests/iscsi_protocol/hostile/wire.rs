//! Raw PDUs for the hostile cases: headers built field by field (RFC 7143 section 11), PDUs with
//! an AHS or with right and wrong CRC32C digests, and the checks on what the target answers: a
//! Reject with a given reason, silence, a closed connection, a Login Response status.

use crate::common::initiator::{lun_field, write_u32, Connection, Pdu, OP_DATA_OUT, OP_REJECT, OP_SCSI_CMD};
use std::io::{Read, Write};
use std::time::Duration;

pub const LUN: u64 = 1;
pub const BLOCK: usize = 512;

/// A SCSI Command header on the connection's next CmdSN. `flags`: F 0x80, R 0x40, W 0x20.
pub fn command(conn: &mut Connection, itt: u32, flags: u8, edtl: u32, cdb: &[u8]) -> [u8; 48] {
    let cmd_sn = conn.cmd_sn;
    conn.cmd_sn = conn.cmd_sn.wrapping_add(1);
    command_at(conn, itt, flags, edtl, cdb, cmd_sn)
}

/// A SCSI Command header carrying `cmd_sn` as given (the connection's CmdSN is left alone).
pub fn command_at(conn: &Connection, itt: u32, flags: u8, edtl: u32, cdb: &[u8], cmd_sn: u32) -> [u8; 48] {
    let mut bhs = [0u8; 48];
    bhs[0] = OP_SCSI_CMD;
    bhs[1] = flags | 0x01; // task attribute SIMPLE
    bhs[8..16].copy_from_slice(&lun_field(LUN));
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, edtl);
    write_u32(&mut bhs, 24, cmd_sn);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    bhs[32..32 + cdb.len()].copy_from_slice(cdb);
    bhs
}

/// A NOP-Out ping header (immediate, reserved TTT).
pub fn nop_out(conn: &Connection, itt: u32) -> [u8; 48] {
    let mut bhs = [0u8; 48];
    bhs[0] = 0x40;
    bhs[1] = 0x80;
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, 0xffff_ffff);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    bhs
}

pub fn write10(lba: u32, blocks: u16) -> [u8; 10] {
    let mut cdb = [0u8; 10];
    cdb[0] = 0x2a;
    cdb[2..6].copy_from_slice(&lba.to_be_bytes());
    cdb[7..9].copy_from_slice(&blocks.to_be_bytes());
    cdb
}

pub fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    let mut cdb = write10(lba, blocks);
    cdb[0] = 0x28;
    cdb
}

/// A Data-Out header (11.7).
pub fn data_out(conn: &Connection, itt: u32, ttt: u32, data_sn: u32, offset: u32, last: bool) -> [u8; 48] {
    let mut bhs = [0u8; 48];
    bhs[0] = OP_DATA_OUT;
    bhs[1] = if last { 0x80 } else { 0 };
    bhs[8..16].copy_from_slice(&lun_field(LUN));
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, ttt);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    write_u32(&mut bhs, 36, data_sn);
    write_u32(&mut bhs, 40, offset);
    bhs
}

/// A pattern no block of a fresh disk holds.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1).collect()
}

/// Send header, AHS and data exactly as given (TotalAHSLength and DataSegmentLength are the
/// caller's), the data padded to four bytes.
pub fn send_raw(conn: &mut Connection, bhs: &[u8; 48], ahs: &[u8], data: &[u8]) {
    let mut wire = bhs.to_vec();
    wire.extend_from_slice(ahs);
    wire.extend_from_slice(data);
    wire.resize(wire.len().next_multiple_of(4), 0);
    conn.stream.write_all(&wire).expect("send");
}

/// The digest as it travels: CRC32C, least significant byte first (RFC 7143 13.1).
fn digest(bytes: &[u8]) -> [u8; 4] {
    crc32c::crc32c(bytes).to_le_bytes()
}

/// Send a PDU on a connection that negotiated HeaderDigest and DataDigest CRC32C, spoiling either.
pub fn send_digested(conn: &mut Connection, bhs: &[u8; 48], data: &[u8], bad_header: bool, bad_data: bool) {
    let mut header = *bhs;
    header[5..8].copy_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    let mut wire = header.to_vec();
    let mut hd = digest(&header);
    if bad_header {
        hd[0] ^= 0x5a;
    }
    wire.extend_from_slice(&hd);
    if !data.is_empty() {
        let mut padded = data.to_vec();
        padded.resize(data.len().next_multiple_of(4), 0);
        let mut dd = digest(&padded);
        if bad_data {
            dd[3] ^= 0xa5;
        }
        wire.extend_from_slice(&padded);
        wire.extend_from_slice(&dd);
    }
    conn.stream.write_all(&wire).expect("send");
}

/// Receive a PDU with both digests, checking them: the target's digests must be right too.
pub fn recv_digested(conn: &mut Connection) -> std::io::Result<Pdu> {
    let mut bhs = [0u8; 48];
    conn.stream.read_exact(&mut bhs)?;
    let mut hd = [0u8; 4];
    conn.stream.read_exact(&mut hd)?;
    assert_eq!(hd, digest(&bhs), "the target's header digest is wrong");
    let len = u32::from_be_bytes([0, bhs[5], bhs[6], bhs[7]]) as usize;
    let mut data = vec![0u8; len.next_multiple_of(4)];
    if len > 0 {
        conn.stream.read_exact(&mut data)?;
        let mut dd = [0u8; 4];
        conn.stream.read_exact(&mut dd)?;
        assert_eq!(dd, digest(&data), "the target's data digest is wrong");
    }
    data.truncate(len);
    Ok(Pdu { bhs, data })
}

/// The next PDU must be a Reject (11.17) with `reason`, carrying the rejected header.
pub fn expect_reject(pdu: &Pdu, reason: u8, rejected: &[u8; 48]) {
    assert_eq!(pdu.opcode(), OP_REJECT, "expected a Reject, got {pdu:?}");
    assert_eq!(pdu.bhs[2], reason, "Reject reason");
    assert_eq!(pdu.itt(), 0xffff_ffff, "a Reject carries the reserved ITT");
    assert!(pdu.data.len() >= 48, "a Reject carries the rejected header");
    // DataSegmentLength and digests may differ from what was sent; the rest is the header as sent.
    assert_eq!(pdu.data[..4], rejected[..4]);
    assert_eq!(pdu.data[8..48], rejected[8..48]);
}

/// Nothing at all arrives for `ms` milliseconds (a silently discarded PDU).
pub fn expect_silence(conn: &mut Connection, ms: u64, what: &str) {
    conn.stream.set_read_timeout(Some(Duration::from_millis(ms))).unwrap();
    let mut byte = [0u8; 1];
    match conn.stream.read(&mut byte) {
        Ok(0) => panic!("{what}: the target closed the connection instead of discarding the PDU"),
        Ok(_) => panic!("{what}: the target answered a PDU it must discard silently"),
        Err(e) => {
            assert!(matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut), "{what}: {e}")
        }
    }
    conn.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
}

/// The target closes the connection within five seconds; whatever it sends first is returned.
pub fn expect_closed(conn: &mut Connection, what: &str) -> Vec<u8> {
    conn.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                panic!("{what}: the target did not close the connection")
            }
            Err(_) => return got, // reset
        }
    }
}

/// Status class and detail of a Login Response (11.13.5).
pub fn login_status(pdu: &Pdu) -> (u8, u8) {
    assert_eq!(pdu.opcode(), crate::common::initiator::OP_LOGIN_RSP, "expected a Login Response, got {pdu:?}");
    (pdu.bhs[36], pdu.bhs[37])
}

/// SCSI Response fields: (response, status, sense key, ASC, ASCQ).
pub fn scsi_response(pdu: &Pdu) -> (u8, u8, u8, u8, u8) {
    assert_eq!(pdu.opcode(), crate::common::initiator::OP_SCSI_RSP, "expected a SCSI Response, got {pdu:?}");
    let sense = if pdu.data.len() >= 2 + 14 { &pdu.data[2..] } else { &[0u8; 14][..] };
    (pdu.bhs[2], pdu.bhs[3], sense[2] & 0x0f, sense[12], sense[13])
}
