//! Task management across sessions: the SCSI core's task set holds every session's tasks, so a
//! function of one session ends another's task, and that session's window, data and answers follow.

use crate::common::initiator::{lun_field, write_u32, Connection, OP_NOP_IN, OP_R2T};
use crate::hostile::arena::Arena;
use crate::hostile::wire::*;

const ABORT_TASK: u8 = 1;
const CLEAR_TASK_SET: u8 = 4;
const OP_TMF_RSP: u8 = 0x22;

/// Send an immediate Task Management Function Request and return its response code (11.6.1).
fn tmf(conn: &mut Connection, function: u8, referenced: u32) -> u8 {
    let itt = 0x7000 + conn.itt();
    let mut bhs = [0u8; 48];
    bhs[0] = 0x42; // immediate
    bhs[1] = 0x80 | function;
    bhs[8..16].copy_from_slice(&lun_field(LUN));
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, referenced);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    conn.send(&bhs, &[]).unwrap();
    let rsp = conn.recv().expect("a Task Management Function Response");
    assert_eq!((rsp.opcode(), rsp.itt()), (OP_TMF_RSP, itt), "{rsp:?}");
    rsp.bhs[2]
}

/// ExpCmdSN and MaxCmdSN as the target states them now (from a NOP-In).
fn window(conn: &mut Connection) -> (u32, u32) {
    let nop = conn.ping(b"").expect("a NOP-In");
    assert_eq!(nop.opcode(), OP_NOP_IN);
    (nop.u32_at(28), nop.u32_at(32))
}

#[test]
fn clear_task_set_of_another_session_ends_a_write_waiting_for_its_data() {
    let mut arena = Arena::start();
    let mut victim = arena.login(&[]);
    let (exp, max) = window(&mut victim);
    // A WRITE waits for its Data-Out under ITT 9: it holds a place in the victim's window.
    let bhs = command(&mut victim, 9, 0xa0, 16 * BLOCK as u32, &write10(1500, 16));
    victim.send(&bhs, &[]).unwrap();
    let r2t = victim.recv().expect("an R2T");
    assert_eq!((r2t.opcode(), r2t.itt()), (OP_R2T, 9));
    // Another session clears the task set of LUN 1 (SAM-5 7.4: every initiator's tasks there).
    let mut other = arena.login(&[]);
    assert_eq!(tmf(&mut other, CLEAR_TASK_SET, 0), 0, "FUNCTION COMPLETE");
    // The bystander is another nexus too: it was told COMMANDS CLEARED BY ANOTHER INITIATOR.
    arena.clear_bystander_unit_attentions();
    // The victim's task is gone from the task set: ABORT TASK finds nothing.
    assert_eq!(tmf(&mut victim, ABORT_TASK, 9), 1, "TASK DOES NOT EXIST");
    // Its Data-Out is discarded unanswered and nothing is written.
    victim.send(&data_out(&victim, 9, r2t.u32_at(20), 0, 0, true), &pattern(16 * BLOCK, 21)).unwrap();
    expect_silence(&mut victim, 300, "Data-Out of a cleared task");
    arena.assert_unwritten(1500, 16, "a cleared WRITE");
    // SAM-5 7.4: the victim learns why its command went.
    let tur = victim.scsi(LUN, &[0; 6], &[], 0).unwrap();
    assert_eq!((tur.status, tur.sense_code()), (0x02, (0x06, 0x2f, 0x00)), "COMMANDS CLEARED BY ANOTHER INITIATOR");
    // The session goes on, and the cleared task's place in the command window came back: after
    // the commands that followed, MaxCmdSN is as far ahead of ExpCmdSN as before the WRITE.
    let w = victim.write10(LUN, 1600, &pattern(8 * BLOCK, 22), BLOCK as u32).unwrap();
    assert_eq!(w.status, 0);
    assert_eq!(arena.read(1600, 8), pattern(8 * BLOCK, 22));
    let (exp_now, max_now) = window(&mut victim);
    assert_eq!(exp_now, exp.wrapping_add(3), "the WRITE, the TEST UNIT READY and the last WRITE");
    assert_eq!(max_now.wrapping_sub(exp_now), max.wrapping_sub(exp), "the window is as wide as before");
    drop((victim, other));
    arena.finish("CLEAR TASK SET from another session");
}
