//! CLEAR TASK SET of a logical unit served by two gateways (SAM-5 7.4, TST 000b: one task set for
//! the unit, whichever gateway a task came through): initiator 1's CLEAR TASK SET through one
//! gateway ends the WRITE initiator 2 has waiting for its data on the other before the function
//! completes; the WRITE is never answered and its data never lands, and initiator 2 is told
//! COMMANDS CLEARED BY ANOTHER INITIATOR (the unit's TAS is 0). Both ways: through the standby
//! (the owner's task ends) and through the owner (the standby's task ends).

use super::{read, session, session_without_immediate_data, write_waiting_for_data, TwoGateways};
use crate::common::initiator::{lun_field, write_u32, Connection};
use std::time::Duration;

const I1: &str = "iqn.2026-11.org.rtgt.test:cts-one";
const I2: &str = "iqn.2026-11.org.rtgt.test:cts-two";
const CLEAR_TASK_SET: u8 = 4;
const FUNCTION_COMPLETE: u8 = 0;
const OP_TMF: u8 = 0x02;
const OP_TMF_RSP: u8 = 0x22;

/// An immediate Task Management Function Request on LUN 1; its response code (RFC 7143 11.6.1).
fn tmf(c: &mut Connection, function: u8) -> u8 {
    let itt = c.itt();
    let mut bhs = [0u8; 48];
    bhs[0] = 0x40 | OP_TMF;
    bhs[1] = 0x80 | function;
    bhs[8..16].copy_from_slice(&lun_field(1));
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, 0xffff_ffff);
    write_u32(&mut bhs, 24, c.cmd_sn);
    write_u32(&mut bhs, 28, c.exp_stat_sn);
    c.send(&bhs, &[]).unwrap();
    let rsp = c.recv().expect("a Task Management Function Response");
    assert_eq!((rsp.opcode(), rsp.itt()), (OP_TMF_RSP, itt), "{rsp:?}");
    rsp.bhs[2]
}

/// Initiator 2 has a WRITE waiting for its data through gateway `waiting` ("a", the owner, or
/// "b"); initiator 1 clears the task set through the other gateway.
fn clear_through_the_other_gateway_ends_a_write_waiting_on(waiting: &str) {
    let gw = TwoGateways::start();
    let (held, asking) = if waiting == "a" { (&gw.a, &gw.b) } else { (&gw.b, &gw.a) };
    let mut one = session(asking.portal(), I1);
    let mut two = session_without_immediate_data(held.portal(), I2);
    // b forwards to a once it knows a owns the unit; make sure it does before the race below.
    super::wait_for(5, "I/O through both gateways", || {
        one.scsi(1, &[0; 6], &[], 0).unwrap().status == 0 && two.scsi(1, &[0; 6], &[], 0).unwrap().status == 0
    });
    let lba = 48;
    let (itt, ttt) = write_waiting_for_data(&mut two, lba, 4096);
    assert_eq!(tmf(&mut one, CLEAR_TASK_SET), FUNCTION_COMPLETE);
    // The function is complete on both gateways: initiator 1's write after it is the last one.
    let mine = crate::pattern(41, 4096);
    assert_eq!(one.write10(1, lba, &mine, 512).unwrap().status, 0);
    // Initiator 2's data comes late: the cleared task takes none of it and answers nothing.
    two.send_data_out(1, itt, ttt, &crate::pattern(42, 4096), 0).unwrap();
    two.stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    if let Ok(pdu) = two.recv() {
        panic!("an answer for the cleared WRITE: {pdu:?}\n{}", held.log());
    }
    two.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert!(read(&mut one, lba, 8) == mine, "initiator 2's cleared WRITE landed");
    // Initiator 2 learns why at its next command; initiator 1, who asked, is told nothing.
    let told = two.scsi(1, &[0; 6], &[], 0).unwrap();
    assert_eq!((told.status, told.sense_code()), (0x02, (0x06, 0x2f, 0x00)), "{}", held.log());
    assert_eq!(two.scsi(1, &[0; 6], &[], 0).unwrap().status, 0);
    assert_eq!(one.scsi(1, &[0; 6], &[], 0).unwrap().status, 0);
}

#[test]
fn clear_task_set_through_the_standby_ends_a_write_waiting_on_the_owner() {
    clear_through_the_other_gateway_ends_a_write_waiting_on("a");
}

#[test]
fn clear_task_set_through_the_owner_ends_a_write_waiting_on_the_standby() {
    clear_through_the_other_gateway_ends_a_write_waiting_on("b");
}
