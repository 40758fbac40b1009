//! Asymmetric access on a unit with port groups: INQUIRY and VPD identify the port and its
//! group, REPORT TARGET PORT GROUPS lists the groups, each state admits what SPC-4 5.15.2.4 says.

use crate::alua::{AccessState, PortGroup, PortGroups};
use crate::test_util::*;
use parking_lot::Mutex;
use std::sync::Arc;

/// Two gateways: this one (port 2 in group 2, state settable) and another (port 1, group 1).
#[derive(Debug)]
struct TwoGateways {
    local: Mutex<AccessState>,
    other: AccessState,
}

impl PortGroups for TwoGateways {
    fn relative_port(&self) -> u16 {
        2
    }
    fn group(&self) -> u16 {
        2
    }
    fn local_state(&self) -> AccessState {
        *self.local.lock()
    }
    fn groups(&self) -> Vec<PortGroup> {
        vec![
            PortGroup { id: 1, state: self.other, relative_ports: vec![1] },
            PortGroup { id: 2, state: self.local_state(), relative_ports: vec![2] },
        ]
    }
}

/// Two gateways whose ownership SET TARGET PORT GROUPS moves (recording what was asked).
#[derive(Debug)]
struct Explicit {
    local: Mutex<AccessState>,
    asked: Mutex<Vec<u16>>,
}

impl PortGroups for Explicit {
    fn relative_port(&self) -> u16 {
        2
    }
    fn group(&self) -> u16 {
        2
    }
    fn local_state(&self) -> AccessState {
        *self.local.lock()
    }
    fn groups(&self) -> Vec<PortGroup> {
        let other = if self.local_state().is_active() { AccessState::Standby } else { AccessState::ActiveOptimized };
        vec![
            PortGroup { id: 1, state: other, relative_ports: vec![1] },
            PortGroup { id: 2, state: self.local_state(), relative_ports: vec![2] },
        ]
    }
    fn explicit(&self) -> bool {
        true
    }
    fn transfer(&self, group: u16) -> crate::alua::TransferFuture {
        self.asked.lock().push(group);
        *self.local.lock() = if group == 2 { AccessState::ActiveOptimized } else { AccessState::Standby };
        Box::pin(std::future::ready(Ok(())))
    }
}

#[test]
fn set_target_port_groups_moves_the_active_group_when_explicit() {
    let t = TestLun::disk(1 << 20);
    let groups = Arc::new(Explicit { local: Mutex::new(AccessState::Standby), asked: Mutex::new(Vec::new()) });
    t.lu.set_port_groups(groups.clone()).unwrap();
    assert_eq!(t.run(&[0x12, 0, 0, 0, 36, 0]).1[5] & 0x30, 0x30, "TPGS 11b");
    let stpg = |list: &[u8]| {
        let n = list.len() as u8;
        t.run_out(&[0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, n, 0, 0], list).0
    };
    // Standby processes it (SPC-4 5.15.2.4.4): group 2 (this one) active/optimized, 1 standby.
    assert_good(&stpg(&[0, 0, 0, 0, 0x00, 0, 0, 2, 0x02, 0, 0, 1]));
    assert_eq!(*groups.asked.lock(), [2]);
    assert_eq!(groups.local_state(), AccessState::ActiveOptimized);
    assert_good(&t.run(&READ10).0);
    // Refused: an unknown group, two active groups, an unavailable state; nothing asked.
    assert_sense(&stpg(&[0, 0, 0, 0, 0x00, 0, 0, 7]), 0x05, 0x26, 0x00);
    assert_sense(&stpg(&[0, 0, 0, 0, 0x00, 0, 0, 1, 0x00, 0, 0, 2]), 0x05, 0x26, 0x00);
    assert_sense(&stpg(&[0, 0, 0, 0, 0x03, 0, 0, 1]), 0x05, 0x26, 0x00);
    // The owner to standby with nobody named to take over: not a state the model can reach.
    assert_sense(&stpg(&[0, 0, 0, 0, 0x02, 0, 0, 2]), 0x05, 0x26, 0x00);
    assert_eq!(*groups.asked.lock(), [2]);
    // Without explicit support (TwoGateways), the command is refused as unsupported.
    let (t, _) = alua(AccessState::ActiveOptimized, AccessState::Standby);
    let r = t.run_out(&[0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], &[0, 0, 0, 0, 0, 0, 0, 1]).0;
    assert_sense(&r, 0x05, 0x20, 0x00);
}

fn alua(local: AccessState, other: AccessState) -> (TestLun, Arc<TwoGateways>) {
    let t = TestLun::disk(1 << 20);
    let groups = Arc::new(TwoGateways { local: Mutex::new(local), other });
    t.lu.set_port_groups(groups.clone()).unwrap();
    (t, groups)
}

const RTPG: [u8; 12] = [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0];
const TUR: [u8; 6] = [0; 6];
const READ10: [u8; 10] = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];

#[test]
fn inquiry_reports_implicit_alua_only_with_port_groups() {
    let plain = TestLun::disk(1 << 20);
    assert_eq!(plain.run(&[0x12, 0, 0, 0, 36, 0]).1[5], 0x00);
    let (t, _) = alua(AccessState::ActiveOptimized, AccessState::Standby);
    let (r, d) = t.run(&[0x12, 0, 0, 0, 36, 0]);
    assert_good(&r);
    assert_eq!(d[5] & 0x30, 0x10, "TPGS 01b");
}

#[test]
fn device_identification_names_the_port_and_its_group() {
    let (t, _) = alua(AccessState::Standby, AccessState::ActiveOptimized);
    let (r, d) = t.run(&[0x12, 0x01, 0x83, 0x01, 0x00, 0]);
    assert_good(&r);
    // After the T10 vendor ID (4 + 16) and NAA (4 + 8) designators.
    assert_eq!(&d[36..44], [0x01, 0x14, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02], "relative target port 2");
    assert_eq!(&d[44..52], [0x01, 0x15, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02], "target port group 2");
    assert_eq!(u16::from_be_bytes([d[2], d[3]]) as usize + 4, d.len());
}

#[test]
fn report_target_port_groups_lists_every_group() {
    let (t, _) = alua(AccessState::Standby, AccessState::ActiveOptimized);
    let (r, d) = t.run(&RTPG);
    assert_good(&r);
    assert_eq!(&d[..4], [0, 0, 0, 24]);
    // Group 1: active/optimized, one port (1); group 2: standby, one port (2).
    assert_eq!(&d[4..16], [0x00, 0xcf, 0x00, 0x01, 0, 0, 0, 1, 0, 0, 0x00, 0x01]);
    assert_eq!(&d[16..28], [0x02, 0xcf, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0x00, 0x02]);
    assert_eq!(d.len(), 28);
    // The extended header: FORMAT TYPE 1 and an implicit transition time; the same descriptors.
    let mut ext = RTPG;
    ext[1] |= 0x20;
    let (r, e) = t.run(&ext);
    assert_good(&r);
    assert_eq!(&e[..8], [0, 0, 0, 24, 0x10, 30, 0, 0]);
    assert_eq!(&e[8..], &d[4..]);
    // Allocation length cuts; a format other than 0 or 1 is refused.
    let mut short = RTPG;
    short[9] = 6;
    short[8] = 0;
    assert_eq!(t.run(&short).1, &d[..6]);
    let mut bad = RTPG;
    bad[1] |= 0x40;
    assert_sense(&t.run(&bad).0, 0x05, 0x24, 0x00);
}

#[test]
fn report_target_port_groups_is_not_offered_without_port_groups() {
    let plain = TestLun::disk(1 << 20);
    assert_sense(&plain.run(&RTPG).0, 0x05, 0x24, 0x00);
    // REPORT SUPPORTED OPERATION CODES, one command (option 2): not supported (SUPPORT 001b).
    let rsoc = [0xa3, 0x0c, 0x02, 0xa3, 0x00, 0x0a, 0, 0, 0x01, 0, 0, 0];
    assert_eq!(plain.run(&rsoc).1[1] & 0x07, 0x01);
    let (t, _) = alua(AccessState::ActiveOptimized, AccessState::Standby);
    assert_eq!(t.run(&rsoc).1[1] & 0x07, 0x03);
}

#[test]
fn standby_admits_only_what_spc4_lists() {
    let (t, groups) = alua(AccessState::Standby, AccessState::ActiveOptimized);
    // NOT READY, LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE.
    assert_sense(&t.run(&TUR).0, 0x02, 0x04, 0x0b);
    assert_sense(&t.run(&READ10).0, 0x02, 0x04, 0x0b);
    assert_sense(&t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0; 512]).0, 0x02, 0x04, 0x0b);
    assert_sense(&t.run(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]).0, 0x02, 0x04, 0x0b);
    for cdb in [
        &[0x12, 0, 0, 0, 36, 0][..],
        &RTPG,
        &[0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0],
        &[0x03, 0, 0, 0, 18, 0],
        &[0x1a, 0, 0x3f, 0, 0xff, 0],
        &[0x5e, 0x00, 0, 0, 0, 0, 0, 0, 0xff, 0],
        &[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0],
        &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        assert_good(&t.run(cdb).0);
    }
    // Once the group is active the same unit takes media access again.
    *groups.local.lock() = AccessState::ActiveOptimized;
    assert_good(&t.run(&TUR).0);
    assert_good(&t.run(&READ10).0);
}

#[test]
fn unavailable_and_transitioning_admit_less_than_standby() {
    let (t, groups) = alua(AccessState::Unavailable, AccessState::ActiveOptimized);
    assert_sense(&t.run(&READ10).0, 0x02, 0x04, 0x0c);
    assert_sense(&t.run(&[0x1a, 0, 0x3f, 0, 0xff, 0]).0, 0x02, 0x04, 0x0c);
    assert_sense(&t.run(&[0x5e, 0x00, 0, 0, 0, 0, 0, 0, 0xff, 0]).0, 0x02, 0x04, 0x0c);
    assert_good(&t.run(&[0x12, 0, 0, 0, 36, 0]).0);
    assert_good(&t.run(&RTPG).0);
    *groups.local.lock() = AccessState::Transitioning;
    assert_sense(&t.run(&TUR).0, 0x02, 0x04, 0x0a);
    assert_good(&t.run(&RTPG).0);
}

#[test]
fn a_unit_attention_is_reported_before_the_state() {
    let (t, _) = alua(AccessState::Standby, AccessState::ActiveOptimized);
    let fresh = t.target.add_nexus("iqn.2024-01.test:i2".into());
    assert_sense(&t.run_on(&fresh, &TUR, &[]).0, 0x06, 0x29, 0x00);
    assert_sense(&t.run_on(&fresh, &TUR, &[]).0, 0x02, 0x04, 0x0b);
}

#[test]
fn port_groups_are_set_once() {
    let (t, _) = alua(AccessState::Standby, AccessState::ActiveOptimized);
    let again = Arc::new(TwoGateways { local: Mutex::new(AccessState::Standby), other: AccessState::Standby });
    assert!(t.lu.set_port_groups(again).is_err());
}
