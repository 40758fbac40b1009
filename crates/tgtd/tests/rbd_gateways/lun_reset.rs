//! LOGICAL UNIT RESET of a logical unit served by two gateways, through the owner (SAM-5 7.7): the
//! owner resets its own share of the unit first, a WRITE the standby forwarded and the owner holds
//! (a slow store) among it, and only then tells the standby. The standby, which resets its own
//! share when told, answers the WRITE nothing (an aborted task has no status), not NOT READY as a
//! failed forward; its initiator learns of the reset at its next command.
//! Through the standby, with the owner slow to act on it: a command the standby forwards once it
//! has reset its own share, which the owner then aborts with the rest of its share, is failed at
//! once as in a transition (the standby's abort came before it, none is coming), not after the
//! standby's wait for an abort of its own.

use super::{in_flight, read, send_write, session, tmf, TwoGateways, FUNCTION_COMPLETE, LOGICAL_UNIT_RESET};
use std::time::{Duration, Instant};

const I1: &str = "iqn.2026-11.org.rtgt.test:lur-one";
const I2: &str = "iqn.2026-11.org.rtgt.test:lur-two";
const HELD_LBA: u32 = 300;
const HOLD: Duration = Duration::from_secs(4);

#[test]
fn lun_reset_through_the_owner_ends_unanswered_a_write_the_standby_forwarded() {
    // a owns the unit and holds every write to 8 blocks at HELD_LBA for HOLD before it lands.
    let fault = format!(";fault=write:delay={}s:lba={HELD_LBA}-{}", HOLD.as_secs(), HELD_LBA + 7);
    let gw = TwoGateways::on_image_with_owner_opts(16, &fault);
    let mut one = session(gw.a.portal(), I1);
    let mut two = session(gw.b.portal(), I2);
    super::wait_for(5, "b forwards to a", || two.scsi(1, &[0; 6], &[], 0).unwrap().status == 0);
    let itt = send_write(&mut two, HELD_LBA, &crate::pattern(45, 4096));
    super::wait_for(5, "the forwarded WRITE held at the owner", || in_flight(&gw.a) == 1);
    assert_eq!(tmf(&mut one, LOGICAL_UNIT_RESET), FUNCTION_COMPLETE);
    two.stream.set_read_timeout(Some(super::PAST_ABORTED_GRACE)).unwrap();
    if let Ok(pdu) = two.recv() {
        panic!("ITT {itt:#x}: an answer for the reset WRITE: {pdu:?} {:x?}\n{}", pdu.data, gw.b.log());
    }
    two.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Both initiators are told BUS DEVICE RESET FUNCTION OCCURRED at their next command.
    for c in [&mut two, &mut one] {
        let told = c.scsi(1, &[0; 6], &[], 0).unwrap();
        assert_eq!((told.status, told.sense_code()), (0x02, (0x06, 0x29, 0x03)), "{}", gw.b.log());
        assert_eq!(c.scsi(1, &[0; 6], &[], 0).unwrap().status, 0);
    }
    // Past its hold, the WRITE has still not landed: a dropped it with its task.
    assert!(read(&mut one, HELD_LBA, 8) == vec![0; 4096], "the reset WRITE landed");
}

/// How late the owner acts on the standby's reset in the test below (a testing aid).
const OWNER_LATE: Duration = Duration::from_secs(2);

#[test]
fn lun_reset_through_the_standby_fails_at_once_a_command_the_owner_aborts_after_it() {
    // a owns the unit, holds every write to 8 blocks at HELD_LBA for twice HOLD, and acts on the
    // other gateway's resets OWNER_LATE late.
    let fault = format!(";fault=write:delay={}s:lba={HELD_LBA}-{}", 2 * HOLD.as_secs(), HELD_LBA + 7);
    let late = OWNER_LATE.as_millis().to_string();
    let gw = TwoGateways::with_owner(16, &fault, &[("RTGT_PEER_EVENT_DELAY_MS", &late)]);
    let mut one = session(gw.b.portal(), I1);
    let mut two = session(gw.b.portal(), I2);
    super::wait_for(5, "b forwards to a", || {
        one.scsi(1, &[0; 6], &[], 0).unwrap().status == 0 && two.scsi(1, &[0; 6], &[], 0).unwrap().status == 0
    });
    // Initiator 1 resets the unit through b: b resets its own share, then tells a, which acts late.
    let resetting = std::thread::spawn(move || tmf(&mut one, LOGICAL_UNIT_RESET));
    // A command of initiator 2 that b holds when it resets its share is aborted with no answer
    // (TAS 0), which would leave the probe below waiting: let b's own reset, at once on the TMF's
    // arrival, come first (a acts only OWNER_LATE after b's announcement).
    std::thread::sleep(OWNER_LATE / 4);
    // Initiator 2 is told of the reset by b, then writes: b forwards the WRITE to a, which holds it
    // until it acts on the reset and aborts it.
    super::wait_for(5, "the reset's unit attention through b", || {
        two.scsi(1, &[0; 6], &[], 0).unwrap().sense_code() == (0x06, 0x29, 0x03)
    });
    let sent = Instant::now();
    let out = two.write10(1, HELD_LBA, &crate::pattern(46, 4096), 512).unwrap();
    let took = sent.elapsed();
    assert_eq!((out.status, out.sense_code()), (0x02, (0x02, 0x04, 0x0a)), "{}", gw.b.log());
    assert!(took < OWNER_LATE + Duration::from_secs(3), "answered after {took:?}\n{}", gw.b.log());
    assert_eq!(resetting.join().unwrap(), FUNCTION_COMPLETE);
    // The initiator retries and goes on.
    assert_eq!(two.scsi(1, &[0; 6], &[], 0).unwrap().status, 0, "{}", gw.b.log());
}
