//! Gateways of one image against the real cluster (`CEPH_CONF`, as `rbd::tests`): one owner,
//! the others standing by, a clean handover, a lost owner fenced before the next serves, and a
//! fenced gateway back on a new client.

use crate::rbd::tests::{block_on, image, open};
use crate::rbd::{LocalState, Member, MemberState, RbdStore};
use crate::BlockStore;
use std::time::{Duration, Instant};

fn local(s: &RbdStore) -> LocalState {
    s.gateway().expect("a gateway").local_state()
}

fn others(s: &RbdStore) -> Vec<Member> {
    s.gateway().expect("a gateway").others()
}

/// Wait up to `secs` for `what` to hold.
fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < end, "not within {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn member(name: &str, tpg: u16, state: MemberState) -> Member {
    Member { name: name.into(), tpg, state, forward: String::new() }
}

#[test]
fn one_owner_the_others_stand_by_and_a_clean_stop_hands_over() {
    let name = image(16);
    let a = open(&name, "gateway=a;tpg=1");
    assert_eq!(local(&a), LocalState::Active, "the first gateway owns the unit");
    assert!(!a.volatile_cache(), "no write cache on a gateway of several");
    let b = open(&name, "gateway=b;tpg=2");
    assert_eq!(local(&b), LocalState::Standby);
    assert_eq!(others(&b), [member("a", 1, MemberState::Owner)]);
    // a hears of b by notification, long before its next heartbeat would tell it.
    eventually(1, "a sees b", || others(&a) == [member("b", 2, MemberState::Standby)]);
    assert_eq!(a.unit_id(), b.unit_id(), "one logical unit");
    // A group already taken is refused.
    let err =
        RbdStore::open(&format!("rbd/{name}"), &format!("conf={};gateway=c;tpg=2", super::super::tests::conf()), false);
    assert!(err.is_err(), "a second gateway in group 2");
    let started = Instant::now();
    drop(a);
    eventually(2, "b takes over after a left", || local(&b) == LocalState::Active);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(others(&b).is_empty(), "a's entry is gone: {:?}", others(&b));
    block_on(b.write_at(0, &[7u8; 512], true)).unwrap();
}

#[test]
fn a_silent_owner_is_fenced_before_the_next_serves() {
    let name = image(16);
    let a = open(&name, "gateway=a;tpg=1");
    let b = open(&name, "gateway=b;tpg=2");
    block_on(a.write_at(0, &[1u8; 512], true)).unwrap();
    // a stops renewing (as if it hung), without leaving.
    let _ = a.gateway.lock().as_mut().unwrap().stop_thread();
    let started = Instant::now();
    eventually(15, "b owns the unit", || local(&b) == LocalState::Active);
    assert!(started.elapsed() >= Duration::from_secs(5), "taken over before a's lease ran out");
    assert_eq!(others(&b), [member("a", 1, MemberState::Lost)]);
    block_on(b.write_at(0, &[2u8; 512], true)).unwrap();
    // a's client is blocklisted: its writes fail and cannot overwrite b's.
    let late = block_on(a.write_at(0, &[1u8; 512], true));
    assert!(late.is_err(), "a fenced gateway's write succeeded");
    let mut back = [0u8; 512];
    block_on(b.read_at(0, &mut back)).unwrap();
    assert_eq!(back, [2u8; 512]);
}

/// `ceph osd blocklist ls`, one address per line (with its expiry).
fn blocklist() -> String {
    let out = std::process::Command::new("ceph")
        .args(["-c", &super::super::tests::conf(), "osd", "blocklist", "ls"])
        .output()
        .expect("run ceph");
    assert!(out.status.success(), "ceph osd blocklist ls: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_fenced_gateway_comes_back_on_a_new_client() {
    let name = image(16);
    let a = open(&name, "gateway=a;tpg=1");
    let b = open(&name, "gateway=b;tpg=2");
    block_on(a.write_at(0, &[1u8; 512], true)).unwrap();
    // a's client is blocklisted from outside (an operator, or another gateway's takeover).
    let old = a.image.get().cluster().address().unwrap();
    let out = std::process::Command::new("ceph")
        .args(["-c", &super::super::tests::conf(), "osd", "blocklist", "add", &old])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // a finds out at its next heartbeat and connects again with a new client: its old one is
    // dead, so it takes the unit back (fencing the old client, which it already is).
    eventually(15, "a back on a new client", || {
        a.image.get().cluster().address().unwrap() != old && local(&a) == LocalState::Active
    });
    assert_eq!(local(&b), LocalState::Standby);
    block_on(a.write_at(0, &[3u8; 512], true)).unwrap();
    let mut back = [0u8; 512];
    block_on(a.read_at(0, &mut back)).unwrap();
    assert_eq!(back, [3u8; 512]);
    // The old image closed (nothing held it), the old client's entry is lifted.
    eventually(15, "the old client's blocklist entry lifted", || !blocklist().contains(&old));
}
