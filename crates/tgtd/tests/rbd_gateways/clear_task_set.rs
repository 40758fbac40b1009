//! CLEAR TASK SET of a logical unit served by two gateways (SAM-5 7.4, TST 000b: one task set for
//! the unit, whichever gateway a task came through): initiator 1's CLEAR TASK SET through one
//! gateway ends the WRITE initiator 2 has waiting for its data on the other before the function
//! completes; the WRITE is never answered and its data never lands, and initiator 2 is told
//! COMMANDS CLEARED BY ANOTHER INITIATOR (the unit's TAS is 0). Both ways: through the standby
//! (the owner's task ends) and through the owner (the standby's task ends).
//! With three gateways, a WRITE a standby forwarded and the owner holds (a slow store) ends
//! unanswered when the set is cleared through the other standby, even when the owner hears of the
//! clear before the forwarding standby does.

use super::{in_flight, read, send_write, session, session_without_immediate_data, tmf, write_waiting_for_data};
use super::{ThreeGateways, TwoGateways, CLEAR_TASK_SET, FUNCTION_COMPLETE};
use std::time::Duration;

const I1: &str = "iqn.2026-11.org.rtgt.test:cts-one";
const I2: &str = "iqn.2026-11.org.rtgt.test:cts-two";
const I3: &str = "iqn.2026-11.org.rtgt.test:cts-three";

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

/// Where the owner's store holds writes (`HOLD` each) and the WRITE through c goes.
const HELD_LBA: u32 = 200;
const HOLD: Duration = Duration::from_secs(4);

#[test]
fn clear_task_set_through_a_standby_ends_unanswered_a_write_a_third_gateway_forwarded() {
    // a owns the unit and holds every write to 8 blocks at HELD_LBA for HOLD before it lands.
    let fault = format!(";fault=write:delay={}s:lba={HELD_LBA}-{}", HOLD.as_secs(), HELD_LBA + 7);
    // c acts on the other gateways' resets and clears 1.5 s late (a busy gateway, made so by a
    // testing aid): a hears of the clear first and ends the WRITE there while c still runs it.
    let gw = ThreeGateways::start(&fault, &[("RTGT_PEER_EVENT_DELAY_MS", "1500")]);
    let mut one = session(gw.b.portal(), I1);
    let mut three = session(gw.c.portal(), I3);
    super::wait_for(5, "b and c forward to a", || {
        one.scsi(1, &[0; 6], &[], 0).unwrap().status == 0 && three.scsi(1, &[0; 6], &[], 0).unwrap().status == 0
    });
    // Initiator 3's WRITE through c, forwarded to a, held there by the store.
    let itt = send_write(&mut three, HELD_LBA, &crate::pattern(43, 4096));
    super::wait_for(5, "the forwarded WRITE held at the owner", || in_flight(&gw.a) == 1);
    // Initiator 1 clears the task set through b: b, a and c all end their tasks on the unit, c last.
    assert_eq!(tmf(&mut one, CLEAR_TASK_SET), FUNCTION_COMPLETE);
    // c answers nothing for the WRITE: not GOOD, and not NOT READY (a failed forward) either.
    three.stream.set_read_timeout(Some(super::PAST_ABORTED_GRACE)).unwrap();
    if let Ok(pdu) = three.recv() {
        panic!("ITT {itt:#x}: an answer for the cleared WRITE: {pdu:?} {:x?}\n{}", pdu.data, gw.c.log());
    }
    three.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Past its hold, the WRITE has still not landed: a dropped it with its task.
    assert!(read(&mut one, HELD_LBA, 8) == vec![0; 4096], "the cleared WRITE landed");
    assert_eq!(in_flight(&gw.a), 0);
    // Initiator 3 learns why at its next command through c, then goes on; initiator 1 is told nothing.
    let told = three.scsi(1, &[0; 6], &[], 0).unwrap();
    assert_eq!((told.status, told.sense_code()), (0x02, (0x06, 0x2f, 0x00)), "{}", gw.c.log());
    assert_eq!(three.scsi(1, &[0; 6], &[], 0).unwrap().status, 0);
    assert_eq!(one.scsi(1, &[0; 6], &[], 0).unwrap().status, 0);
    let mine = crate::pattern(44, 4096);
    assert_eq!(three.write10(1, HELD_LBA, &mine, 512).unwrap().status, 0);
    assert!(read(&mut one, HELD_LBA, 8) == mine);
}
