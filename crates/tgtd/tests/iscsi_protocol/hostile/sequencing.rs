//! Commands and data out of order or out of bounds: CmdSN outside the window, Data-Out for tags
//! the target never gave or past what it asked for, unsolicited data past FirstBurstLength, and
//! an Initiator Task Tag used twice.

use crate::common::initiator::{Connection, Pdu, OP_NOP_IN, OP_R2T};
use crate::hostile::arena::Arena;
use crate::hostile::wire::*;

/// ExpCmdSN and MaxCmdSN as the target states them now (from a NOP-In).
fn window(conn: &mut Connection) -> (u32, u32) {
    let nop = conn.ping(b"").expect("a NOP-In");
    assert_eq!(nop.opcode(), OP_NOP_IN);
    (nop.u32_at(28), nop.u32_at(32))
}

/// A WRITE of `blocks` at `lba` without immediate data; returns the R2T.
fn write_awaiting_r2t(conn: &mut Connection, itt: u32, lba: u32, blocks: u16) -> Pdu {
    let bhs = command(conn, itt, 0xa0, blocks as u32 * BLOCK as u32, &write10(lba, blocks));
    conn.send(&bhs, &[]).unwrap();
    let r2t = conn.recv().expect("an R2T");
    assert_eq!(r2t.opcode(), OP_R2T, "{r2t:?}");
    assert_eq!(r2t.itt(), itt);
    r2t
}

/// The task ended with CHECK CONDITION and sense key ABORTED COMMAND; returns ASC and ASCQ.
fn expect_aborted_command(conn: &mut Connection, itt: u32, what: &str) -> (u8, u8) {
    let rsp = conn.recv().expect("a SCSI Response");
    assert_eq!(rsp.itt(), itt, "{what}");
    let (response, status, key, asc, ascq) = scsi_response(&rsp);
    assert_eq!((response, status, key), (0, 0x02, 0x0b), "{what}: CHECK CONDITION, ABORTED COMMAND");
    (asc, ascq)
}

#[test]
fn cmdsn_outside_the_window_is_dropped_unexecuted() {
    let mut arena = Arena::start();
    let mut conn = arena.login(&[("ImmediateData", "Yes")]);
    let (exp, max) = window(&mut conn);
    assert_eq!(exp, conn.cmd_sn);
    // RFC 7143 3.2.2.1: a non-immediate command outside [ExpCmdSN, MaxCmdSN] is silently ignored.
    for (i, cmd_sn) in
        [max.wrapping_add(1), max.wrapping_add(1000), exp.wrapping_sub(1), exp.wrapping_sub(50)].into_iter().enumerate()
    {
        let lba = 600 + i as u32 * 16;
        let bhs = command_at(&conn, 100 + i as u32, 0xa0, 8192, &write10(lba, 16), cmd_sn);
        conn.send(&bhs, &pattern(8192, 6)).unwrap();
        expect_silence(&mut conn, 300, "a command outside the window");
        assert_eq!(window(&mut conn).0, exp, "ExpCmdSN moved for a dropped command");
        arena.assert_unwritten(lba, 16, "a command outside the window");
    }
    // The session is in step: the next command in the window runs.
    let w = conn.write10(LUN, 700, &pattern(8192, 7), BLOCK as u32).unwrap();
    assert_eq!(w.status, 0);
    assert_eq!(arena.read(700, 16), pattern(8192, 7));
    drop(conn);
    arena.finish("CmdSN outside the window");
}

#[test]
fn data_out_for_unknown_tags_or_past_the_range() {
    let mut arena = Arena::start();
    let mut conn = arena.login(&[("ImmediateData", "No")]);
    // An ITT with no task: the data is discarded (the task may have been aborted, 11.7).
    let dout = data_out(&conn, 0x5555, 0x77, 0, 0, true);
    conn.send(&dout, &pattern(4096, 8)).unwrap();
    expect_silence(&mut conn, 300, "Data-Out for an unknown ITT");
    window(&mut conn);
    arena.check("Data-Out for an unknown ITT");

    // A known ITT with a TTT the target never sent, a BufferOffset past the R2T, more data than
    // the R2T asked for, and data past the Expected Data Transfer Length: at ERL 0 the task ends
    // with CHECK CONDITION (ABORTED COMMAND, DATA PHASE / DATA OFFSET ERROR), nothing is written,
    // and the session goes on.
    let cases: [(&str, u32, u32, usize); 4] = [
        ("an unknown TTT", 1000, 0, 4096),
        ("an offset past the R2T", 0, 4096, 512),
        ("more than the R2T asked for", 0, 0, 4608),
        ("data past the transfer length", 0, 3584, 1024),
    ];
    for (i, (what, ttt_delta, offset, len)) in cases.into_iter().enumerate() {
        let itt = 200 + i as u32;
        let lba = 800 + i as u32 * 8;
        let r2t = write_awaiting_r2t(&mut conn, itt, lba, 8);
        let (r2t_offset, r2t_len) = (r2t.u32_at(40), r2t.u32_at(44));
        assert_eq!((r2t_offset, r2t_len), (0, 4096), "the R2T asks for the whole 4 KiB");
        let dout = data_out(&conn, itt, r2t.u32_at(20).wrapping_add(ttt_delta), 0, offset, true);
        conn.send(&dout, &pattern(len, 9)).unwrap();
        let (asc, ascq) = expect_aborted_command(&mut conn, itt, what);
        assert_eq!(asc, 0x4b, "{what}: ASC 4Bh (data phase)");
        assert!(matches!(ascq, 0x00 | 0x05), "{what}: ASCQ {ascq:#x}");
        window(&mut conn);
        arena.assert_unwritten(lba, 8, what);
        arena.check(what);
    }
    drop(conn);
    arena.finish("Data-Out for unknown tags");
}

#[test]
fn unsolicited_data_past_first_burst_length() {
    let mut arena = Arena::start();
    // InitialR2T=No (the result is Yes if either side says Yes, so the target must offer No): up
    // to FirstBurstLength (16 KiB here) may come unsolicited.
    arena.tgtd.tgtadm_ok(&[
        "--mode",
        "target",
        "--op",
        "update",
        "--tid",
        "1",
        "--name",
        "InitialR2T",
        "--value",
        "No",
    ]);
    let keys = [("InitialR2T", "No"), ("ImmediateData", "Yes"), ("FirstBurstLength", "16384")];
    let mut conn = arena.login(&keys);
    assert_eq!(conn.first_burst, 16384);
    assert!(!conn.initial_r2t);
    // W without F: unsolicited Data-Out follows the immediate data.
    let bhs = command(&mut conn, 1, 0x20, 65536, &write10(900, 128));
    conn.send(&bhs, &pattern(8192, 10)).unwrap();
    conn.send(&data_out(&conn, 1, 0xffff_ffff, 0, 8192, false), &pattern(8192, 11)).unwrap();
    // 16 KiB sent: FirstBurstLength is reached, yet 8 KiB more come unsolicited.
    conn.send(&data_out(&conn, 1, 0xffff_ffff, 1, 16384, true), &pattern(8192, 12)).unwrap();
    // RFC 7143 11.4.7.2: ABORTED COMMAND, "unexpected unsolicited data" (0Ch/0Ch).
    assert_eq!(expect_aborted_command(&mut conn, 1, "unsolicited data past FirstBurstLength"), (0x0c, 0x0c));
    window(&mut conn);
    arena.assert_unwritten(900, 128, "unsolicited data past FirstBurstLength");
    arena.check("unsolicited data past FirstBurstLength");

    drop(conn);
    // Immediate data alone past FirstBurstLength (4 KiB on this session): the same condition.
    let mut conn = arena.login(&[("ImmediateData", "Yes"), ("FirstBurstLength", "4096")]);
    assert_eq!(conn.first_burst, 4096);
    let bhs = command(&mut conn, 2, 0xa0, 8192, &write10(1100, 16));
    conn.send(&bhs, &pattern(8192, 13)).unwrap();
    assert_eq!(expect_aborted_command(&mut conn, 2, "immediate data past FirstBurstLength"), (0x0c, 0x0c));
    window(&mut conn);
    arena.assert_unwritten(1100, 16, "immediate data past FirstBurstLength");
    drop(conn);
    arena.finish("unsolicited data past FirstBurstLength");
}

#[test]
fn duplicate_itt_while_the_first_task_runs() {
    let mut arena = Arena::start();
    let mut conn = arena.login(&[("ImmediateData", "Yes")]);
    // A WRITE waits for its data under ITT 7; a READ and a WRITE with immediate data reuse it.
    let r2t = {
        let bhs = command(&mut conn, 7, 0xa0, 16384, &write10(1200, 32));
        conn.send(&bhs, &pattern(8192, 14)).unwrap();
        let r2t = conn.recv().expect("an R2T");
        assert_eq!((r2t.opcode(), r2t.itt()), (OP_R2T, 7));
        r2t
    };
    let read = command(&mut conn, 7, 0xc0, 4096, &read10(0, 8));
    conn.send(&read, &[]).unwrap();
    // 11.2.1.8: an ITT is unique among the session's tasks; the second one is rejected (0x07).
    expect_reject(&conn.recv().expect("a Reject"), 0x07, &read);
    let write = command(&mut conn, 7, 0xa0, 4096, &write10(1300, 8));
    conn.send(&write, &pattern(4096, 15)).unwrap();
    let mut sent = write;
    sent[5..8].copy_from_slice(&4096u32.to_be_bytes()[1..]);
    expect_reject(&conn.recv().expect("a Reject"), 0x07, &sent);
    arena.assert_unwritten(1300, 8, "a WRITE under a duplicate ITT");
    // The first task is untouched: its data completes it.
    assert_eq!((r2t.u32_at(40), r2t.u32_at(44)), (8192, 8192));
    conn.send(&data_out(&conn, 7, r2t.u32_at(20), 0, 8192, true), &pattern(8192, 16)).unwrap();
    let (response, status, ..) = scsi_response(&conn.recv().expect("the first WRITE's response"));
    assert_eq!((response, status), (0, 0));
    let mut expected = pattern(8192, 14);
    expected.extend(pattern(8192, 16));
    assert!(arena.read(1200, 32) == expected, "the first WRITE's data");
    drop(conn);
    arena.finish("duplicate ITT");
}
