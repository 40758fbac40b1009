//! Clients that go away or stop listening mid-command: TCP closed while a WRITE awaits its
//! Data-Out, while a READ's Data-In is on its way, and with many commands queued; and a client
//! that keeps sending READs but never reads an answer, which must not make the daemon hold every
//! answer in memory.

use crate::common::initiator::{Connection, OP_DATA_IN, OP_R2T};
use crate::hostile::arena::{status_kib, Arena};
use crate::hostile::wire::*;
use std::io::Write;
use std::time::{Duration, Instant};

#[test]
fn connections_that_vanish_mid_command() {
    let mut arena = Arena::start();
    // A WRITE awaiting its Data-Out.
    let mut conn = arena.login(&[("ImmediateData", "No")]);
    let bhs = command(&mut conn, 1, 0xa0, 65536, &write10(2000, 128));
    conn.send(&bhs, &[]).unwrap();
    assert_eq!(conn.recv().unwrap().opcode(), OP_R2T);
    drop(conn);
    arena.check("a close while a WRITE awaits Data-Out");
    arena.assert_unwritten(2000, 128, "a WRITE whose connection vanished");

    // A 4 MiB READ: the first Data-In arrives, then the connection goes.
    let mut conn = arena.login(&[]);
    let bhs = command(&mut conn, 2, 0xc0, 4 << 20, &read10(0, 8192));
    conn.send(&bhs, &[]).unwrap();
    assert_eq!(conn.recv().unwrap().opcode(), OP_DATA_IN);
    drop(conn);
    arena.check("a close while Data-In is sent");

    // A hundred commands in flight: READs, and WRITEs waiting for R2Ts, none answered.
    let mut conn = arena.login(&[("ImmediateData", "No")]);
    let mut wire = Vec::new();
    for i in 0..100u32 {
        let bhs = if i % 2 == 0 {
            command(&mut conn, 100 + i, 0xc0, 65536, &read10(i * 128, 128))
        } else {
            command(&mut conn, 100 + i, 0xa0, 8192, &write10(4000 + i * 16, 16))
        };
        wire.extend_from_slice(&bhs);
    }
    conn.stream.write_all(&wire).unwrap();
    drop(conn);
    arena.check("a close with a hundred commands in flight");
    // The same with a reset (SO_LINGER 0) instead of a FIN.
    let mut conn = arena.login(&[]);
    let mut wire = Vec::new();
    for i in 0..50u32 {
        wire.extend_from_slice(&command(&mut conn, 300 + i, 0xc0, 1 << 20, &read10(0, 2048)));
    }
    conn.stream.write_all(&wire).unwrap();
    reset(conn);
    arena.check("a reset with fifty READs in flight");
    arena.finish("connections that vanish");
}

/// Close with a TCP reset rather than a FIN.
fn reset(conn: Connection) {
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&conn.stream);
    // SAFETY: setsockopt on a socket we own, with a pointer to a live linger struct and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(conn);
}

#[test]
fn answers_never_read_do_not_pile_up() {
    let mut arena = Arena::start();
    let mut conn = arena.login(&[]);
    // Data in the blocks read, so that every answer really occupies memory (a hole may be
    // answered from pages never touched).
    let w = conn.write10(LUN, 0, &pattern(1 << 20, 17), BLOCK as u32).unwrap();
    assert_eq!(w.status, 0);
    // 256 READs of 1 MiB each, in CmdSN order, and not one answer read. Queued in the daemon
    // that would be 256 MiB; the daemon must instead stop reading requests until the answers
    // drain, so our writes eventually block (the test sees that as a write timeout).
    conn.stream.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let started = Instant::now();
    let mut sent = 0;
    for i in 0..256u32 {
        let bhs = command(&mut conn, 1000 + i, 0xc0, 1 << 20, &read10(0, 2048));
        if conn.stream.write_all(&bhs).is_err() {
            break;
        }
        sent += 1;
    }
    eprintln!("{sent} READs of 1 MiB sent in {:?} without reading an answer", started.elapsed());
    // Let the daemon take what it will: until its memory stops growing (3 s at most).
    let mut rss = status_kib(arena.pid(), "VmRSS:");
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(250));
        let now = status_kib(arena.pid(), "VmRSS:");
        let steady = now.abs_diff(rss) < 512;
        rss = now;
        if steady {
            break;
        }
    }
    eprintln!("tgtd VmRSS {rss} KiB while the answers wait");
    arena.assert_memory_bounded("unread answers");
    // Other sessions are served meanwhile.
    arena.check("a client that reads no answers");
    // Once it reads, everything it was admitted arrives, in order.
    conn.stream.set_write_timeout(None).unwrap();
    let mut answered = std::collections::BTreeSet::new();
    while answered.len() < sent as usize {
        let pdu = conn.recv().expect("the answers, once read");
        if pdu.opcode() == OP_DATA_IN && pdu.bhs[1] & 0x01 != 0 {
            assert_eq!(pdu.bhs[3], 0, "status of READ {:#x}", pdu.itt());
            assert!(answered.insert(pdu.itt()), "two answers for ITT {:#x}", pdu.itt());
        }
    }
    assert!(answered.iter().all(|itt| (1000..1000 + sent).contains(itt)));
    drop(conn);
    arena.finish("unread answers");
}
