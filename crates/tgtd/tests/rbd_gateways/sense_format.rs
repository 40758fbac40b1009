//! `tgtadm --op update --params sense_format=` on a unit served by two gateways changes the unit's
//! D_SENSE for both, as a MODE SELECT of the control page would: made through the non-owner (b,
//! which has the owner make it) or through the owner (a), every nexus on either gateway is told
//! (MODE PARAMETERS CHANGED: no nexus made the change), and a CHECK CONDITION through either
//! gateway comes in the format set. Both gateways save it (`--state-dir`), the one not asked as
//! well. The value follows the unit across a clean handoff and a failover after kill -9 of the
//! owner, and once both gateways stopped, the one started first powers the unit on with the
//! administrator's last value, even if it was stopped when that was set (and an initiator's MODE
//! SELECT changed the current value since).

use super::{
    groups, registry_keys, session, wait_for, wait_for_forwarding, ThreeGateways, TwoGateways, ACTIVE, NON_OPTIMIZED,
    OFFLINE,
};
use crate::common::initiator::Connection;
use crate::common::Tgtd;

const I1: &str = "iqn.2026-11.org.rtgt.test:dsense-one";
const I2: &str = "iqn.2026-11.org.rtgt.test:dsense-two";
const I3: &str = "iqn.2026-11.org.rtgt.test:dsense-three";
/// MODE PARAMETERS CHANGED.
const MODE_CHANGED: (u8, u8, u8) = (0x06, 0x2a, 0x01);
/// ILLEGAL REQUEST, LOGICAL BLOCK ADDRESS OUT OF RANGE.
const OUT_OF_RANGE: (u8, u8, u8) = (0x05, 0x21, 0x00);
/// Response codes (SPC-4 4.5.1): current error, fixed and descriptor format.
const FIXED: u8 = 0x70;
const DESCRIPTOR: u8 = 0x72;
/// 16 MiB of 512-byte blocks: the first LBA past the end.
const PAST_THE_END: u32 = 16 << 11;

/// (sense key, ASC, ASCQ) of fixed or descriptor sense.
fn code(sense: &[u8]) -> (u8, u8, u8) {
    match sense {
        [b0, key, asc, ascq, ..] if b0 & 0x7f == DESCRIPTOR => (key & 0x0f, *asc, *ascq),
        [_, _, key, _, _, _, _, _, _, _, _, _, asc, ascq, ..] => (key & 0x0f, *asc, *ascq),
        _ => (0, 0, 0),
    }
}

/// The unit attentions `c` has pending, taken with TEST UNIT READY (past the transitions a
/// failover answers while it lasts).
fn attentions(c: &mut Connection) -> Vec<(u8, u8, u8)> {
    let mut seen = Vec::new();
    for _ in 0..120 {
        let out = c.scsi(1, &[0; 6], &[], 0).unwrap();
        match code(&out.sense) {
            _ if out.status == 0 => return seen,
            ua @ (0x06, _, _) => seen.push(ua),
            (0x02, 0x04, 0x0a) => std::thread::sleep(std::time::Duration::from_millis(250)),
            other => panic!("TEST UNIT READY: {other:x?}"),
        }
    }
    panic!("still unit attentions or transitions after 30 s: {seen:x?}");
}

/// The response code of the sense a READ past the end gets through `c` (the unit attentions
/// before it taken; they come first).
fn read_past_the_end(c: &mut Connection) -> u8 {
    let _ = attentions(c);
    let out = c.read10(1, PAST_THE_END, 1, 512).unwrap();
    assert_eq!((out.status, code(&out.sense)), (2, OUT_OF_RANGE), "{:x?}", out.sense);
    out.sense[0] & 0x7f
}

/// The control mode page's D_SENSE as MODE SENSE(6) through `c` reports it.
fn d_sense(c: &mut Connection) -> bool {
    let _ = attentions(c);
    let out = c.scsi(1, &[0x1a, 0x08, 0x0a, 0, 0xff, 0], &[], 255).unwrap();
    assert_eq!(out.status, 0, "MODE SENSE: {:x?}", out.sense);
    assert_eq!(&out.data_in[4..6], [0x0a, 0x0a]);
    out.data_in[6] & 0x04 != 0
}

fn set_sense_format(gw: &Tgtd, on: bool) {
    let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", "1", "--lun", "1"];
    let value = if on { "sense_format=1" } else { "sense_format=0" };
    gw.tgtadm_ok(&[&update[..], &["--params", value]].concat());
}

/// Both sessions are told of the change (once), and both see `format` and D_SENSE as set.
fn both_see(one: &mut Connection, two: &mut Connection, format: u8, what: &str) {
    for (c, gateway) in [(&mut *one, "a"), (&mut *two, "b")] {
        assert_eq!(attentions(c), [MODE_CHANGED], "{what}: the session through {gateway} is told");
        assert_eq!(read_past_the_end(c), format, "{what}: the sense through {gateway}");
        assert_eq!(d_sense(c), format == DESCRIPTOR, "{what}: D_SENSE through {gateway}");
    }
}

#[test]
fn sense_format_set_through_either_gateway_holds_for_both_and_follows_the_unit() {
    let gw = TwoGateways::start();
    let (mut one, mut two) = gw.sessions(I1, I2);
    wait_for_forwarding(&mut one, &mut two);
    for c in [&mut one, &mut two] {
        assert_eq!(read_past_the_end(c), FIXED);
    }

    // Through b, which does not own the unit.
    set_sense_format(&gw.b, true);
    both_see(&mut one, &mut two, DESCRIPTOR, "set through the non-owner");
    // Through a, the owner: back to fixed, then descriptor again.
    set_sense_format(&gw.a, false);
    both_see(&mut one, &mut two, FIXED, "cleared through the owner");
    set_sense_format(&gw.a, true);
    both_see(&mut one, &mut two, DESCRIPTOR, "set through the owner");
    // The same value again changes nothing: nobody is told.
    set_sense_format(&gw.b, true);
    assert_eq!((attentions(&mut one), attentions(&mut two)), (vec![], vec![]));

    // A clean handoff to b: b serves the unit's value, not the one it was created with.
    let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", "1", "--lun", "1"];
    gw.a.tgtadm_ok(&[&update[..], &["--params", "alua_owner=2"]].concat());
    // `groups` reads fixed sense only: the access state change's unit attention is taken first.
    wait_for(10, "b owns the unit", || {
        let _ = attentions(&mut one);
        groups(&mut one) == [(1, NON_OPTIMIZED), (2, ACTIVE)]
    });
    for c in [&mut one, &mut two] {
        assert_eq!(read_past_the_end(c), DESCRIPTOR, "after the handoff");
    }
    // Cleared through a, now the non-owner; set again through b, the owner, so that a learns of
    // it only from the cluster.
    set_sense_format(&gw.a, false);
    both_see(&mut one, &mut two, FIXED, "cleared through the non-owner after the handoff");
    assert_eq!((saved_d_sense(&gw.a), saved_d_sense(&gw.b)), (false, false));
    set_sense_format(&gw.b, true);
    both_see(&mut one, &mut two, DESCRIPTOR, "set through the owner after the handoff");
    // Both saved configurations say so, that of the gateway not asked as well.
    assert_eq!((saved_d_sense(&gw.a), saved_d_sense(&gw.b)), (true, true));

    // kill -9 of b: a takes over with it set.
    let TwoGateways { conf, name, a, b } = gw;
    drop(two);
    let dir_b = b.crash();
    wait_for(15, "a owns the unit", || {
        let _ = attentions(&mut one);
        groups(&mut one) == [(1, ACTIVE), (2, OFFLINE)]
    });
    assert_eq!(read_past_the_end(&mut one), DESCRIPTOR, "after the failover\n{}", a.log());
    assert!(d_sense(&mut one));

    // b back as standby. Then a stops (its saved value: descriptor), b takes the unit over and
    // the administrator clears the sense format through it; an initiator then sets D_SENSE
    // again with MODE SELECT through b, and b stops too: the unit is off. The cluster's current
    // value is the initiator's (descriptor), a's saved one the old (descriptor); a started
    // again powers the unit on with the administrator's last value (fixed), as b would.
    let b = Tgtd::start_in(dir_b, &[]);
    wait_for(15, "b back as standby", || {
        let _ = attentions(&mut one);
        groups(&mut one) == [(1, ACTIVE), (2, NON_OPTIMIZED)]
    });
    drop(one);
    let mut two = session(b.portal(), I2);
    let dir_a = a.stop_keeping_dir();
    wait_for(15, "b owns the unit", || {
        let _ = attentions(&mut two);
        groups(&mut two) == [(2, ACTIVE)]
    });
    set_sense_format(&b, false);
    assert_eq!(read_past_the_end(&mut two), FIXED, "cleared through b alone\n{}", b.log());
    assert!(!saved_d_sense(&b));
    assert_eq!(select_d_sense(&mut two, true), 0, "MODE SELECT through b");
    assert!(d_sense(&mut two));
    drop(two);
    drop(b.stop_keeping_dir());
    assert_eq!(registry_keys(&conf, &name), Vec::<String>::new());
    let a = Tgtd::start_in(dir_a, &[]);
    let mut one = session(a.portal(), I1);
    wait_for(15, "a owns the unit again", || {
        let _ = attentions(&mut one);
        groups(&mut one) == [(1, ACTIVE)]
    });
    assert_eq!(read_past_the_end(&mut one), FIXED, "after a power on\n{}", a.log());
    assert!(!d_sense(&mut one));
}

#[test]
fn a_gateway_whose_notification_comes_late_saves_and_serves_the_change_it_asked_for() {
    // c acts on the other gateways' changes 7 s late, past the 5 s the owner's write waits for
    // its acknowledgement (a busy gateway, made so by a testing aid): the owner answers c before
    // c has the notification.
    let gw = ThreeGateways::start("", &[("RTGT_PEER_EVENT_DELAY_MS", "7000")]);
    let (mut one, mut two) = gw.sessions(I1, I2);
    let mut three = session(gw.c.portal(), I3);
    wait_for(5, "b and c forward TEST UNIT READY", || {
        two.scsi(1, &[0; 6], &[], 0).unwrap().status == 0 && three.scsi(1, &[0; 6], &[], 0).unwrap().status == 0
    });
    assert_eq!(read_past_the_end(&mut three), FIXED);
    set_sense_format(&gw.c, true);
    // Answered: c's saved configuration and what c serves have the change already.
    assert!(saved_d_sense(&gw.c), "c saved the value from before\n{}", gw.c.log());
    assert_eq!(attentions(&mut three), [MODE_CHANGED], "the session through c is told");
    assert_eq!(read_past_the_end(&mut three), DESCRIPTOR);
    both_see(&mut one, &mut two, DESCRIPTOR, "set through a late gateway");
    // The notification, when it comes, changes nothing more: nobody is told twice.
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(attentions(&mut three), []);
    assert!(saved_d_sense(&gw.c));
}

/// MODE SELECT(6) of the control mode page as read through `c`, D_SENSE as given; the status.
fn select_d_sense(c: &mut Connection, on: bool) -> u8 {
    let _ = attentions(c);
    let out = c.scsi(1, &[0x1a, 0x08, 0x0a, 0, 0xff, 0], &[], 255).unwrap();
    assert_eq!(out.status, 0, "MODE SENSE: {:x?}", out.sense);
    let mut p = out.data_in;
    // MODE DATA LENGTH is reserved in MODE SELECT; WP and DPOFUA are the device's to report.
    p[0] = 0;
    p[2] = 0;
    p[6] = (p[6] & !0x04) | if on { 0x04 } else { 0 };
    c.scsi(1, &[0x15, 0x10, 0, 0, p.len() as u8, 0], &p, 0).unwrap().status
}

/// Whether `gw`'s saved configuration (`--state-dir`) gives the LUN descriptor sense.
fn saved_d_sense(gw: &Tgtd) -> bool {
    let saved = std::fs::read_to_string(gw.dir.path().join("state/running-config.json")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&saved).unwrap();
    let mut found = Vec::new();
    find_key(&config, "descriptor_sense", &mut found);
    assert!(found.len() <= 1, "one LUN, one value: {found:?}");
    found.first().and_then(|v| v.as_bool()).unwrap_or(false)
}

fn find_key(v: &serde_json::Value, key: &str, found: &mut Vec<serde_json::Value>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == key {
                    found.push(v.clone());
                }
                find_key(v, key, found);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| find_key(v, key, found)),
        _ => {}
    }
}
