//! MODE SELECT on a unit served by two gateways follows the unit from owner to owner: SWP set
//! through the non-owner (forwarded to the owner) still write-protects the unit once the other
//! gateway owns it after kill -9 of the owner, and SWP and D_SENSE set through the owner hold
//! across a clean handoff. The other nexuses, on either gateway, get MODE PARAMETERS CHANGED for
//! the change, and none gets it for the move itself (nothing they can read changed). Once every
//! gateway stopped, the unit powered on again has the default values, whatever the cluster holds.

use super::{groups, session, start_gateway, wait_for, ACTIVE, NON_OPTIMIZED, OFFLINE};
use crate::common::initiator::{Connection, ScsiOutcome};
use crate::{conf, image};

const I1: &str = "iqn.2026-11.org.rtgt.test:mode-one";
const I2: &str = "iqn.2026-11.org.rtgt.test:mode-two";
const I3: &str = "iqn.2026-11.org.rtgt.test:mode-three";
const GOOD: u8 = 0;
const CHECK_CONDITION: u8 = 2;
/// MODE PARAMETERS CHANGED.
const MODE_CHANGED: (u8, u8, u8) = (0x06, 0x2a, 0x01);
/// DATA PROTECT, WRITE PROTECTED.
const WRITE_PROTECTED: (u8, u8, u8) = (0x07, 0x27, 0x00);

/// (sense key, ASC, ASCQ) of fixed or descriptor sense.
fn code(out: &ScsiOutcome) -> (u8, u8, u8) {
    match out.sense.first() {
        Some(b) if b & 0x7e == 0x72 && out.sense.len() >= 4 => (out.sense[1] & 0x0f, out.sense[2], out.sense[3]),
        _ => out.sense_code(),
    }
}

/// `cdb`'s outcome past the transitions a failover answers while it lasts; every unit attention
/// met on the way is pushed to `seen`.
fn run(c: &mut Connection, cdb: &[u8], data: &[u8], expected_in: u32, seen: &mut Vec<(u8, u8, u8)>) -> ScsiOutcome {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(30) {
        let out = c.scsi(1, cdb, data, expected_in).unwrap();
        match code(&out) {
            ua @ (0x06, _, _) => seen.push(ua),
            (0x02, 0x04, 0x0a) => std::thread::sleep(std::time::Duration::from_millis(250)),
            _ => return out,
        }
    }
    panic!("still unit attentions or transitions after 30 s");
}

/// The unit attentions `c` has pending (taken with TEST UNIT READY).
fn attentions(c: &mut Connection) -> Vec<(u8, u8, u8)> {
    let mut seen = Vec::new();
    let out = run(c, &[0; 6], &[], 0, &mut seen);
    assert_eq!(out.status, GOOD, "TEST UNIT READY: {:x?}", out.sense);
    seen
}

/// MODE SENSE(6) of the control mode page, no block descriptor: header (4) and page (12).
fn control_page(c: &mut Connection) -> Vec<u8> {
    let out = run(c, &[0x1a, 0x08, 0x0a, 0, 0xff, 0], &[], 255, &mut Vec::new());
    assert_eq!(out.status, GOOD, "MODE SENSE: {:x?}", out.sense);
    assert_eq!(out.data_in.len(), 16);
    assert_eq!(&out.data_in[4..6], [0x0a, 0x0a]);
    out.data_in
}

/// (WP in the header, D_SENSE, SWP) as MODE SENSE through `c` reports them.
fn protection(c: &mut Connection) -> (bool, bool, bool) {
    let d = control_page(c);
    (d[2] & 0x80 != 0, d[6] & 0x04 != 0, d[8] & 0x08 != 0)
}

/// MODE SELECT(6) of the control mode page as read through `c`, with D_SENSE and SWP as given.
fn select_control(c: &mut Connection, d_sense: bool, swp: bool) -> ScsiOutcome {
    let mut p = control_page(c);
    // MODE DATA LENGTH is reserved in MODE SELECT; WP and DPOFUA are the device's to report.
    p[0] = 0;
    p[2] = 0;
    p[6] = (p[6] & !0x04) | if d_sense { 0x04 } else { 0 };
    p[8] = (p[8] & !0x08) | if swp { 0x08 } else { 0 };
    c.scsi(1, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p, 0).unwrap()
}

fn write(c: &mut Connection, seen: &mut Vec<(u8, u8, u8)>) -> ScsiOutcome {
    run(c, &[0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0], &[6u8; 512], 0, seen)
}

#[test]
fn swp_set_through_the_non_owner_still_protects_after_kill_9_of_the_owner() {
    let conf = conf();
    let name = image(&conf, 16);
    let a = start_gateway(&conf, &name, "gw-a", 1);
    let b = start_gateway(&conf, &name, "gw-b", 2);
    let mut one = session(b.portal(), I1);
    let mut two = session(b.portal(), I2);
    let mut three = session(a.portal(), I3);
    wait_for(5, "b forwards to a", || one.scsi(1, &[0; 6], &[], 0).unwrap().status == GOOD);
    assert_eq!(protection(&mut one), (false, false, false));
    let _ = (attentions(&mut two), attentions(&mut three));
    // Through b, forwarded to a, the owner.
    let out = select_control(&mut one, false, true);
    assert_eq!(out.status, GOOD, "MODE SELECT: {:x?}\n{}", out.sense, a.log());
    // Every other nexus is told, on the owner and on the non-owner alike; the one that made it is not.
    assert_eq!(attentions(&mut one), []);
    assert_eq!(attentions(&mut two), [MODE_CHANGED], "{}", b.log());
    assert_eq!(attentions(&mut three), [MODE_CHANGED]);
    assert_eq!(protection(&mut two), (true, false, true));
    let out = write(&mut two, &mut Vec::new());
    assert_eq!((out.status, code(&out)), (CHECK_CONDITION, WRITE_PROTECTED));

    let _dir = a.crash();
    wait_for(15, "b owns the unit", || groups(&mut one) == [(1, OFFLINE), (2, ACTIVE)]);
    let mut seen = Vec::new();
    let out = write(&mut two, &mut seen);
    assert_eq!((out.status, code(&out)), (CHECK_CONDITION, WRITE_PROTECTED), "{}", b.log());
    assert_eq!(protection(&mut one), (true, false, true), "{}", b.log());
    seen.extend(attentions(&mut one));
    assert!(!seen.contains(&MODE_CHANGED), "the move changed nothing they can read: {seen:x?}");
    // b, the owner now, takes a change back.
    assert_eq!(select_control(&mut two, false, false).status, GOOD);
    assert_eq!(attentions(&mut one), [MODE_CHANGED]);
    assert_eq!(write(&mut one, &mut Vec::new()).status, GOOD);
}

#[test]
fn swp_and_d_sense_set_through_the_owner_hold_across_a_clean_handoff() {
    let conf = conf();
    let name = image(&conf, 16);
    let a = start_gateway(&conf, &name, "gw-a", 1);
    let b = start_gateway(&conf, &name, "gw-b", 2);
    let mut one = session(a.portal(), I1);
    let mut two = session(b.portal(), I2);
    wait_for(5, "b forwards to a", || two.scsi(1, &[0; 6], &[], 0).unwrap().status == GOOD);
    let out = select_control(&mut one, true, true);
    assert_eq!(out.status, GOOD, "MODE SELECT: {:x?}", out.sense);
    assert_eq!(attentions(&mut two), [MODE_CHANGED], "{}", b.log());
    let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", "1", "--lun", "1"];
    a.tgtadm_ok(&[&update[..], &["--params", "alua_owner=2"]].concat());
    // The access state change's unit attention comes in descriptor sense, which `groups` does
    // not read: taken first (and kept, to look for MODE PARAMETERS CHANGED).
    let mut seen = Vec::new();
    wait_for(5, "b owns the unit", || {
        seen.extend(attentions(&mut one));
        groups(&mut one) == [(1, NON_OPTIMIZED), (2, ACTIVE)]
    });
    assert!(!seen.contains(&MODE_CHANGED), "{seen:x?}");
    // b serves the values a had: a write through either gateway is refused, in descriptor sense.
    for c in [&mut two, &mut one] {
        let mut seen = Vec::new();
        let out = write(c, &mut seen);
        assert_eq!((out.status, code(&out)), (CHECK_CONDITION, WRITE_PROTECTED), "{}", b.log());
        assert_eq!(out.sense.first().map(|b| b & 0x7f), Some(0x72), "D_SENSE kept: {:x?}", out.sense);
        assert!(!seen.contains(&MODE_CHANGED), "{seen:x?}");
        assert_eq!(protection(c), (true, true, true));
    }
}

#[test]
fn a_power_on_after_every_gateway_stopped_brings_the_default_values_back() {
    let gw = super::TwoGateways::start();
    let (mut one, mut two) = gw.sessions(I1, I2);
    super::wait_for_forwarding(&mut one, &mut two);
    assert_eq!(select_control(&mut one, false, true).status, GOOD);
    assert_eq!(protection(&mut two), (true, false, true));
    drop((one, two));
    let super::TwoGateways { conf, name, a, b } = gw;
    drop(b.stop_keeping_dir());
    let dir = a.stop_keeping_dir();
    assert_eq!(super::registry_keys(&conf, &name), Vec::<String>::new(), "the unit is off");
    // The cluster still holds SWP set; the unit powered on again has none (no saved values).
    let a = crate::common::Tgtd::start_in(dir, &[]);
    let mut one = session(a.portal(), I1);
    wait_for(15, "a owns the unit", || groups(&mut one) == [(1, ACTIVE)]);
    assert_eq!(protection(&mut one), (false, false, false), "{}", a.log());
    assert_eq!(write(&mut one, &mut Vec::new()).status, GOOD);
}
