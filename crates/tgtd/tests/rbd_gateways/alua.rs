//! Explicit ALUA on gateways of one image: SET TARGET PORT GROUPS through either gateway moves
//! the ownership with a clean handoff (no fencing, every acknowledged write readable through the
//! new owner), every nexus is told ASYMMETRIC ACCESS STATE CHANGED, and tgtadm's `alua_owner=`
//! does the same from the command line.

use super::{groups, wait_for, TwoGateways, ACTIVE, NON_OPTIMIZED};
use crate::common::initiator::Connection;
use crate::{pattern, write_fua, INITIATOR};

/// SET TARGET PORT GROUPS: `group` active/optimized. (status, sense).
fn stpg(c: &mut Connection, group: u16) -> (u8, (u8, u8, u8)) {
    let [hi, lo] = group.to_be_bytes();
    let list = [0, 0, 0, 0, 0x00, 0, hi, lo];
    let out = c.scsi(1, &[0xa4, 0x0a, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0], &list, 0).unwrap();
    (out.status, out.sense_code())
}

const STATE_CHANGED: (u8, u8, u8) = (0x06, 0x2a, 0x06);

#[test]
fn set_target_port_groups_and_tgtadm_move_the_ownership_cleanly() {
    let gw = TwoGateways::start();
    let (mut ca, mut cb) = gw.sessions(INITIATOR, INITIATOR);
    wait_for(5, "a owns, b stands by", || groups(&mut ca) == [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    assert_eq!(groups(&mut cb), [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    let data = pattern(21, 8192);
    assert_eq!(write_fua(&mut ca, 32, &data).status, 0);
    // Through the standby path (SPC-4 5.15.2.4.4 admits it there): b, active/optimized.
    assert_eq!(stpg(&mut cb, 2), (0, (0, 0, 0)), "{}", gw.b.log());
    // GOOD means done: b serves at once, with what a acknowledged.
    let first = cb.read10(1, 32, 16, 512).unwrap();
    let first = if first.sense_code() == STATE_CHANGED { cb.read10(1, 32, 16, 512).unwrap() } else { first };
    assert_eq!(first.status, 0, "{:x?}", first.sense);
    assert_eq!(first.data_in, data);
    // a's nexus hears of the change before anything else; a now forwards to b.
    assert_eq!(ca.scsi(1, &[0; 6], &[], 0).unwrap().sense_code(), STATE_CHANGED);
    wait_for(5, "a forwards to b", || ca.scsi(1, &[0; 6], &[], 0).unwrap().status == 0);
    assert_eq!(ca.read10(1, 32, 16, 512).unwrap().data_in, data);
    wait_for(5, "a sees b own the unit", || groups(&mut ca) == [(1, NON_OPTIMIZED), (2, ACTIVE)]);
    // A clean handoff fences nobody.
    let keys = super::registry_keys(&gw.conf, &gw.name);
    assert!(!keys.iter().any(|k| k.starts_with("fenced.") || k == "handoff"), "{keys:?}");
    // Refused: a group no gateway has.
    assert_eq!(stpg(&mut ca, 7).1, (0x05, 0x26, 0x00));
    // tgtadm, on either gateway: back to a.
    let more = pattern(22, 4096);
    assert_eq!(cb.write10(1, 64, &more, 512).unwrap().status, 0);
    let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", "1", "--lun", "1"];
    gw.b.tgtadm_ok(&[&update[..], &["--params", "alua_owner=1"]].concat());
    wait_for(5, "a owns the unit again", || groups(&mut ca) == [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    assert_eq!(ca.read10(1, 64, 8, 512).unwrap().data_in, more);
    // A group no gateway has, or a LUN without gateways: refused with the reason.
    let out = gw.a.tgtadm(&[&update[..], &["--params", "alua_owner=9"]].concat());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("target port group 9"), "{out:?}");
}
