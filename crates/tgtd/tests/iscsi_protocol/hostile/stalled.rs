//! Connections that stop reading their sockets while the target has read data for them, against
//! the send timeout (`--iscsi send_timeout=`). An attacker sends two READs of 64 MiB and reads
//! nothing: the first holds the daemon's whole read budget (`read_budget=64M`), so a bystander's
//! 4 MiB READ waits; once the attacker's socket has taken no byte for the send timeout its
//! connection is closed, the budget comes back and the bystander's READ completes. A slow
//! initiator that keeps reading, for several times the timeout in all, is never cut. Each runs with
//! the read data spliced to the socket (no digest; the arena turns splicing on) and copied
//! (DataDigest=CRC32C, which needs the bytes).

use crate::common::initiator::{Connection, Pdu, OP_DATA_IN, OP_SCSI_RSP};
use crate::hostile::arena::{Arena, HOSTILE, IQN};
use crate::hostile::reads::read16;
use crate::hostile::wire::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The send timeout the daemon runs with here, in seconds.
const SEND_TIMEOUT: u64 = 2;
/// One READ of the MAXIMUM TRANSFER LENGTH.
const BIG: u32 = 64 << 20;

/// One PDU, with a data digest after a data segment when the connection negotiated one.
fn recv(conn: &mut Connection, data_digest: bool) -> std::io::Result<Pdu> {
    if !data_digest {
        return conn.recv();
    }
    let mut bhs = [0u8; 48];
    conn.stream.read_exact(&mut bhs)?;
    let len = u32::from_be_bytes([0, bhs[5], bhs[6], bhs[7]]) as usize;
    let mut data = vec![0u8; len.next_multiple_of(4)];
    if len > 0 {
        conn.stream.read_exact(&mut data)?;
        let mut dd = [0u8; 4];
        conn.stream.read_exact(&mut dd)?;
        assert_eq!(dd, crc32c::crc32c(&data).to_le_bytes(), "the target's data digest");
    }
    data.truncate(len);
    Ok(Pdu { bhs, data })
}

/// A hostile session, its read data copied (DataDigest) or spliced; its unit attentions taken.
fn login(arena: &mut Arena, copied: bool) -> Connection {
    let mut conn = arena.connect();
    let keys: &[(&str, &str)] = if copied { &[("DataDigest", "CRC32C")] } else { &[] };
    conn.login(HOSTILE, Some(IQN), keys).expect("the hostile client logs in");
    for itt in 1.. {
        let tur = command(&mut conn, itt, 0x80, 0, &[0u8; 6]);
        conn.stream.write_all(&tur).unwrap();
        let rsp = recv(&mut conn, copied).expect("TEST UNIT READY");
        assert_eq!(rsp.opcode(), OP_SCSI_RSP);
        conn.exp_stat_sn = rsp.u32_at(24).wrapping_add(1);
        if rsp.bhs[3] == 0 {
            break;
        }
        assert!(itt < 5, "the disk never became ready");
    }
    conn
}

fn send_read(conn: &mut Connection, itt: u32, bytes: u32) {
    let read = command(conn, itt, 0xc0, bytes, &read16(0, bytes / BLOCK as u32));
    conn.stream.write_all(&read).unwrap();
}

fn stalled_reader_is_cut_and_its_budget_freed(copied: bool) {
    let timeout = format!("send_timeout={SEND_TIMEOUT}");
    let mut arena = Arena::start_with(&["read_budget=64M", &timeout]);
    let mut attacker = login(&mut arena, copied);
    send_read(&mut attacker, 0x100, BIG);
    send_read(&mut attacker, 0x101, BIG);
    // The first READ runs and fills the attacker's socket; its 64 MiB are the daemon's budget.
    std::thread::sleep(Duration::from_millis(500));

    // 4 MiB: past what a connection holding nothing may always have, so it waits for the budget.
    let asked = Instant::now();
    let data = arena.read(16 * 1024, 8192);
    let waited = asked.elapsed();
    eprintln!("the bystander's 4 MiB READ waited {waited:?}");
    assert_eq!(data.len(), 4 << 20);
    assert!(waited > Duration::from_millis(500), "the bystander's READ did not wait for the budget ({waited:?})");
    assert!(waited < Duration::from_secs(SEND_TIMEOUT + 8), "the bystander's READ waited {waited:?}");

    // The attacker's connection is closed: reading now brings what the sockets held, then the end,
    // not the rest of its READs.
    let got = expect_closed(&mut attacker, "a connection that stopped reading");
    assert!(got.len() < BIG as usize, "the attacker received {} bytes: its connection went on", got.len());
    let log = arena.tgtd.log();
    assert!(log.contains("accepted no reply bytes within the send timeout"), "the closure is logged:\n{log}");
    arena.finish("a connection that stopped reading");
}

#[test]
fn a_stalled_reader_is_cut_and_its_read_budget_freed_spliced() {
    stalled_reader_is_cut_and_its_budget_freed(false);
}

#[test]
fn a_stalled_reader_is_cut_and_its_read_budget_freed_copied() {
    stalled_reader_is_cut_and_its_budget_freed(true);
}

/// An 8 MiB READ (more than the sockets hold) read in 256 KiB gulps 0.4 s apart (the whole
/// transfer takes about 13 s, more than three send timeouts of 3 s): the connection is never cut.
/// The target's socket signals room only once a good part of its buffer has drained, which takes
/// this reader a long while: the peer's acknowledgements count as progress meanwhile
/// (`send_timeout` in the iscsi crate). The timeout is wide against the gulps, so that the test
/// thread stalling for a second on a loaded machine cannot cut the connection.
fn slow_reader_is_never_cut(copied: bool) {
    const SEND_TIMEOUT: Duration = Duration::from_secs(3);
    let mut arena = Arena::start_with(&[&format!("send_timeout={}", SEND_TIMEOUT.as_secs())]);
    let mut slow = login(&mut arena, copied);
    let size: u32 = 8 << 20;
    send_read(&mut slow, 0x200, size);
    let started = Instant::now();
    let mut got = 0usize;
    let mut gulp = 0usize;
    loop {
        let pdu = recv(&mut slow, copied).unwrap_or_else(|e| {
            panic!("the slow reader's READ ended after {got} bytes, {:?}: {e}\n{}", started.elapsed(), arena.tgtd.log())
        });
        assert_eq!(pdu.opcode(), OP_DATA_IN, "{pdu:?}");
        got += pdu.data.len();
        gulp += pdu.data.len();
        if pdu.bhs[1] & 0x01 != 0 {
            assert_eq!(pdu.bhs[3], 0, "status of the slow READ");
            break;
        }
        if gulp >= 256 << 10 {
            gulp = 0;
            std::thread::sleep(Duration::from_millis(400));
        }
    }
    let took = started.elapsed();
    eprintln!("the slow reader took {took:?} for {got} bytes");
    assert_eq!(got, size as usize);
    assert!(took > 3 * SEND_TIMEOUT, "the transfer spanned too few timeouts to show anything ({took:?})");
    assert!(!arena.tgtd.log().contains("within the send timeout"), "a reading initiator was cut");
    drop(slow);
    arena.finish("a slow reader");
}

#[test]
fn a_slow_reader_is_never_cut_spliced() {
    slow_reader_is_never_cut(false);
}

#[test]
fn a_slow_reader_is_never_cut_copied() {
    slow_reader_is_never_cut(true);
}
