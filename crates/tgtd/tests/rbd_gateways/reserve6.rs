//! RESERVE(6) on a unit served by two gateways follows the unit from owner to owner: held
//! through the surviving gateway, it is enforced by it once it owns the unit after kill -9 of the
//! owner, and across a clean handoff; held through the gateway that died, it is gone with that
//! nexus. The non-owner's own answers (PERSISTENT RESERVE OUT) see it too, and the loss of the
//! holder's nexus on the non-owner releases it on the owner, also when that nexus goes while the
//! owner is still running the RESERVE it forwarded, and when it goes with a restart of the
//! non-owner, and when that non-owner dies while the owner stays (its lease lapsing).

use super::{groups, session, wait_for, TwoGateways, ACTIVE, CONFLICT, GOOD, NON_OPTIMIZED, OFFLINE};
use crate::common::initiator::{lun_field, write_u32, Connection};

const I1: &str = "iqn.2026-11.org.rtgt.test:reserve-one";
const I2: &str = "iqn.2026-11.org.rtgt.test:reserve-two";

/// The status of `cdb` (with `data` out), past the unit attentions an ownership change leaves
/// and the transitions a failover answers while it lasts.
fn status(c: &mut Connection, cdb: &[u8], data: &[u8]) -> u8 {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(30) {
        let out = c.scsi(1, cdb, data, 0).unwrap();
        match out.sense_code() {
            (0x06, _, _) => continue,
            (0x02, 0x04, 0x0a) => std::thread::sleep(std::time::Duration::from_millis(250)),
            _ => return out.status,
        }
    }
    panic!("still unit attentions or transitions after 30 s");
}

fn write(c: &mut Connection) -> u8 {
    status(c, &[0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0], &[5u8; 512])
}

fn reserve(c: &mut Connection) -> u8 {
    status(c, &[0x16, 0, 0, 0, 0, 0], &[])
}

fn release(c: &mut Connection) -> u8 {
    status(c, &[0x17, 0, 0, 0, 0, 0], &[])
}

/// PERSISTENT RESERVE OUT REGISTER with key `key`.
fn register(c: &mut Connection, key: u64) -> u8 {
    let mut p = [0u8; 24];
    p[8..16].copy_from_slice(&key.to_be_bytes());
    status(c, &[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], &p)
}

#[test]
fn a_reservation_through_the_survivor_is_enforced_by_it_after_kill_9_of_the_owner() {
    let gw = TwoGateways::start();
    // Both initiators through b, the standby.
    let mut one = session(gw.b.portal(), I1);
    let mut two = session(gw.b.portal(), I2);
    wait_for(5, "b forwards to a", || one.scsi(1, &[0; 6], &[], 0).unwrap().status == GOOD);
    // Reserved through b: forwarded to a, which holds the reservation.
    assert_eq!(reserve(&mut one), GOOD, "{}", gw.a.log());
    assert_eq!(write(&mut two), CONFLICT);
    // What b answers itself sees it too: a PERSISTENT RESERVE OUT from another nexus conflicts.
    assert_eq!(register(&mut two, 0xb2), CONFLICT, "{}", gw.b.log());
    let _dir = gw.a.crash();
    wait_for(15, "b owns the unit", || groups(&mut one) == [(1, OFFLINE), (2, ACTIVE)]);
    assert_eq!(write(&mut two), CONFLICT, "{}", gw.b.log());
    assert_eq!(write(&mut one), GOOD);
    assert_eq!(release(&mut one), GOOD);
    assert_eq!(write(&mut two), GOOD);
}

#[test]
fn a_reservation_follows_a_clean_handoff_and_goes_with_its_nexus() {
    let gw = TwoGateways::start();
    // Held through a, the owner, by its own nexus.
    let (mut one, mut two) = gw.sessions(I1, I2);
    assert_eq!(reserve(&mut one), GOOD);
    wait_for(5, "b forwards to a", || write(&mut two) == CONFLICT);
    let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", "1", "--lun", "1"];
    gw.a.tgtadm_ok(&[&update[..], &["--params", "alua_owner=2"]].concat());
    wait_for(5, "b owns the unit", || groups(&mut one) == [(1, NON_OPTIMIZED), (2, ACTIVE)]);
    // b enforces it; initiator 1's commands, forwarded by a, are the holder's.
    assert_eq!(write(&mut two), CONFLICT, "{}", gw.b.log());
    assert_eq!(write(&mut one), GOOD, "{}", gw.b.log());
    // The holder's nexus goes (logout through a, now the non-owner): so does the reservation.
    drop(one);
    wait_for(5, "the reservation released with its nexus", || write(&mut two) == GOOD);
}

#[test]
fn a_reservation_through_the_dead_owner_is_gone_after_failover() {
    let gw = TwoGateways::start();
    let (mut one, mut two) = gw.sessions(I1, I2);
    assert_eq!(reserve(&mut one), GOOD);
    wait_for(5, "b forwards to a", || write(&mut two) == CONFLICT);
    let _dir = gw.a.crash();
    drop(one);
    // Until b owns the unit its copy of the reservation conflicts even REPORT TARGET PORT GROUPS
    // (not allowed under a RESERVE reservation): the write is what to wait for.
    wait_for(20, "b owns the unit without the reservation", || write(&mut two) == GOOD);
    assert_eq!(groups(&mut two), [(1, OFFLINE), (2, ACTIVE)]);
    assert_eq!(reserve(&mut two), GOOD);
}

/// The RESERVE holder stored for the image (JSON, `null` for none), None if never written.
fn stored_holder(conf: &str, name: &str) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value");
    let oid = format!("rtgt.reserve.{}", super::image_id(conf, name));
    let out = std::process::Command::new("rados")
        .args(["-c", conf, "-p", "rbd", "getomapval", &oid, "value"])
        .arg(&file)
        .output()
        .unwrap();
    out.status.success().then(|| std::fs::read_to_string(&file).ok()).flatten()
}

/// Send RESERVE(6) to LUN 1 without waiting for its answer.
fn send_reserve(c: &mut Connection) {
    let mut bhs = [0u8; 48];
    bhs[0] = 0x01;
    bhs[1] = 0x80 | 0x01;
    bhs[8..16].copy_from_slice(&lun_field(1));
    let itt = c.itt();
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 24, c.cmd_sn);
    write_u32(&mut bhs, 28, c.exp_stat_sn);
    c.cmd_sn += 1;
    bhs[32] = 0x16;
    c.send(&bhs, &[]).unwrap();
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: a plain kill(2) of the test's own child process.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[test]
fn a_reserve_whose_nexus_is_lost_before_the_owner_stores_it_does_not_hold() {
    let gw = TwoGateways::start();
    let mut two = session(gw.a.portal(), I2);
    let mut one = session(gw.b.portal(), I1);
    wait_for(5, "b forwards to a", || one.scsi(1, &[0; 6], &[], 0).unwrap().status == GOOD);
    // The owner stopped, b forwards initiator 1's RESERVE (it waits in a's socket), then the
    // session ends at b: a runs the RESERVE only after b lost the nexus it came from.
    signal(gw.a.pid(), libc::SIGSTOP);
    send_reserve(&mut one);
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(one);
    std::thread::sleep(std::time::Duration::from_millis(500));
    signal(gw.a.pid(), libc::SIGCONT);
    // a stores the holder (the object's value, never written before, appears), but its nexus
    // is gone: the reservation must not hold, in the cluster, on a, and on b after a handoff.
    wait_for(10, "a ran the RESERVE", || stored_holder(&gw.conf, &gw.name).is_some());
    wait_for(10, "the holder cleared", || stored_holder(&gw.conf, &gw.name).as_deref() == Some("null"));
    assert_eq!(write(&mut two), GOOD, "{}", gw.a.log());
    let mut three = session(gw.b.portal(), I1);
    let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", "1", "--lun", "1"];
    gw.a.tgtadm_ok(&[&update[..], &["--params", "alua_owner=2"]].concat());
    wait_for(5, "b owns the unit", || groups(&mut two) == [(1, NON_OPTIMIZED), (2, ACTIVE)]);
    assert_eq!(write(&mut two), GOOD, "{}", gw.b.log());
    assert_eq!(write(&mut three), GOOD, "{}", gw.b.log());
}

#[test]
fn a_reservation_through_a_restarted_non_owner_is_released() {
    let gw = TwoGateways::start();
    let mut two = session(gw.a.portal(), I2);
    let mut one = session(gw.b.portal(), I1);
    wait_for(5, "b forwards to a", || one.scsi(1, &[0; 6], &[], 0).unwrap().status == GOOD);
    assert_eq!(reserve(&mut one), GOOD, "{}", gw.a.log());
    assert_eq!(write(&mut two), CONFLICT);
    // b dies (no logout: nothing is released then) and comes back: its nexuses, the holder's
    // among them, are gone.
    let TwoGateways { conf, name, b, a } = gw;
    drop(b.crash());
    drop(one);
    let _b = super::start_gateway(&conf, &name, "gw-b", 2);
    wait_for(20, "the reservation released with b's nexus", || write(&mut two) == GOOD);
    drop(a);
}

#[test]
fn a_reservation_through_a_dead_non_owner_ends_with_its_lease_while_the_owner_stays() {
    let gw = TwoGateways::start();
    let mut two = session(gw.a.portal(), I2);
    let mut one = session(gw.b.portal(), I1);
    wait_for(5, "b forwards to a", || one.scsi(1, &[0; 6], &[], 0).unwrap().status == GOOD);
    assert_eq!(reserve(&mut one), GOOD, "{}", gw.a.log());
    assert_eq!(write(&mut two), CONFLICT);
    // b dies and stays dead (no logout): initiator 1's nexus through it is gone. a stays the
    // owner; once b's lease lapsed it knows, and the reservation ends with that nexus.
    let TwoGateways { conf, name, b, a } = gw;
    let _b_dir = b.crash();
    drop(one);
    // Its lease (10 s) has not lapsed yet. (REPORT TARGET PORT GROUPS conflicts too while
    // reserved: the write is what to wait for.)
    assert_eq!(write(&mut two), CONFLICT);
    wait_for(25, "the reservation released with b's lease", || write(&mut two) == GOOD);
    assert_eq!(groups(&mut two), [(1, ACTIVE), (2, OFFLINE)], "a stayed the owner");
    wait_for(10, "the holder cleared", || stored_holder(&conf, &name).as_deref() == Some("null"));
    // Initiator 2 may now reserve, as on a unit whose holder's nexus is gone.
    assert_eq!(reserve(&mut two), GOOD, "{}", a.log());
    assert_eq!(release(&mut two), GOOD);
}
