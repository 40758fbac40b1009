//! iSNS access control (`iSNSAccessControl=On`) against the real server: open-isns's isnsd with no
//! default discovery domain, its discovery domains made with `isnsadm --local --dd-register`, an
//! initiator registered with `isnsadm --register initiator=`. SendTargets lists, and login admits,
//! only the targets that share a discovery domain with the initiator; changes arrive by SCN; a
//! server that is gone closes every target (fail closed) without slowing logins or tgtadm.

use crate::common::{free_port, initiator::Connection, Tgtd};
use crate::isns::{node, point_at, Isnsd};
use std::time::{Duration, Instant};

const INITIATOR: &str = "iqn.2026-11.org.rtgt.test:initiator";
const T1: &str = "iqn.2026-12.org.rtgt.test:dd1";
const T2: &str = "iqn.2026-12.org.rtgt.test:dd2";

/// No default discovery domain: a node in none sees nothing (isnsd.conf(5)).
fn isnsd(port: u16) -> Isnsd {
    Isnsd::start_with(port, "DefaultDiscoveryDomain = 0\nRegistrationPeriod = 10m\n")
}

/// The target names a discovery session's SendTargets=All lists to the test's initiator.
fn discovered(tgtd: &Tgtd) -> Vec<String> {
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(INITIATOR, None, &[]).expect("discovery login");
    let keys = conn.send_targets("All").unwrap();
    let _ = conn.logout();
    keys.into_iter().filter(|(k, _)| k == "TargetName").map(|(_, v)| v).collect()
}

/// A normal login to `target`: Ok, or the login status (`login status 0x0202` for refused).
fn login(tgtd: &Tgtd, target: &str) -> Result<(), String> {
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(INITIATOR, Some(target), &[])?;
    let _ = conn.logout();
    Ok(())
}

/// Waits (bounded) until SendTargets lists exactly `expected`.
fn wait_discovered(tgtd: &Tgtd, expected: &[&str], within: Duration, why: &str) {
    let deadline = Instant::now() + within;
    loop {
        let mut seen = discovered(tgtd);
        seen.sort();
        if seen == expected {
            return;
        }
        assert!(Instant::now() < deadline, "{why}: SendTargets lists {seen:?}, not {expected:?}\n{}", tgtd.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The DD ID in isnsadm's answer to a `--dd-register` (a query through the control socket is
/// scoped by discovery domains too, and the administrator is in none).
fn dd_id(registered: &str) -> String {
    let line =
        registered.lines().find(|l| l.contains("DD ID = ")).unwrap_or_else(|| panic!("no DD ID in:\n{registered}"));
    line.rsplit("= ").next().unwrap().trim().to_string()
}

/// Waits (bounded: the daemon's back-off reaches 8 s) until `target` is registered, as the
/// server shows it to the target itself.
fn wait_registered(isnsd: &Isnsd, target: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = crate::common::text(&isnsd.isnsadm_as(target, &["--query", "iscsi-name"]));
        if seen.contains(&node(target)) {
            return;
        }
        assert!(Instant::now() < deadline, "{target} not registered:\n{seen}\n{}", isnsd.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn isnsadm_ok(isnsd: &Isnsd, args: &[&str]) -> String {
    let out = isnsd.isnsadm(args);
    assert!(out.status.success(), "isnsadm {args:?}: {}", crate::common::text(&out));
    crate::common::text(&out)
}

#[test]
fn discovery_domains_decide_what_an_initiator_sees_and_logs_in_to() {
    let isnsd = isnsd(free_port());
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = crate::common::sparse_image(dir.path(), "d.img", 1 << 20);
    tgtd.add_disk_target(1, T1, &image);
    tgtd.add_disk_target(2, T2, &image);
    // Before access control: the ACLs (ALL) alone decide.
    wait_discovered(&tgtd, &[T1, T2], Duration::ZERO, "access control off");
    point_at(&tgtd, isnsd.port);
    tgtd.tgtadm_ok(&["--mode", "sys", "--op", "update", "--name", "iSNSAccessControl", "--value", "On"]);
    let show = tgtd.tgtadm_ok(&["--mode", "sys", "--op", "show"]);
    assert!(show.contains("    iSNSAccessControl=On\n"), "{show}");
    wait_registered(&isnsd, T1);
    wait_registered(&isnsd, T2);
    // The initiator is in no discovery domain yet: it sees nothing, and may log in nowhere.
    isnsd.register_initiator(INITIATOR);
    wait_discovered(&tgtd, &[], Duration::from_secs(5), "no discovery domain");
    assert_eq!(login(&tgtd, T1), Err("login status 0x0202".to_string()));

    // The portals carry the SCN port and each target is registered for SCNs.
    let portals = crate::common::text(&isnsd.isnsadm_as(T1, &["--query", "portal"]));
    assert!(portals.contains("SCN port"), "no SCN port registered:\n{portals}");

    // One domain holds T1 and the initiator: T1 appears (by SCN), and only T1.
    let registered = isnsadm_ok(
        &isnsd,
        &["--local", "--dd-register", "dd-name=d1", &format!("member-name={T1}"), &format!("member-name={INITIATOR}")],
    );
    wait_discovered(&tgtd, &[T1], Duration::from_secs(5), "T1 added to the initiator's domain");
    login(&tgtd, T1).expect("T1 shares a domain with the initiator");
    assert_eq!(login(&tgtd, T2), Err("login status 0x0202".to_string()), "T2 shares none");
    assert!(tgtd.log().contains("iSNS: state change notification"), "no SCN came:\n{}", tgtd.log());

    // T2 joins the domain; T1 leaves it.
    let id = dd_id(&registered);
    isnsadm_ok(&isnsd, &["--local", "--dd-register", &format!("dd-id={id}"), &format!("member-name={T2}")]);
    wait_discovered(&tgtd, &[T1, T2], Duration::from_secs(5), "T2 added");
    isnsadm_ok(&isnsd, &["--local", "--dd-deregister", &id, &format!("member-name={T1}")]);
    // open-isns sends no SCN when a member leaves a domain: the daemon's periodic query (every
    // 5 s) catches it.
    wait_discovered(&tgtd, &[T2], Duration::from_secs(10), "T1 removed");
    assert_eq!(login(&tgtd, T1), Err("login status 0x0202".to_string()));
    login(&tgtd, T2).expect("T2 is in the domain");

    // Access control off: the ACLs alone decide again, at once.
    tgtd.tgtadm_ok(&["--mode", "sys", "--op", "update", "--name", "iSNSAccessControl", "--value", "Off"]);
    wait_discovered(&tgtd, &[T1, T2], Duration::ZERO, "access control turned off");
}

#[test]
fn a_lost_server_closes_every_target_without_slowing_logins_and_they_reopen_when_it_is_back() {
    let port = free_port();
    let isnsd = isnsd(port);
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = crate::common::sparse_image(dir.path(), "d.img", 1 << 20);
    tgtd.add_disk_target(1, T1, &image);
    point_at(&tgtd, port);
    tgtd.tgtadm_ok(&["--mode", "sys", "--op", "update", "--name", "iSNSAccessControl", "--value", "On"]);
    wait_registered(&isnsd, T1);
    isnsd.register_initiator(INITIATOR);
    isnsadm_ok(
        &isnsd,
        &["--local", "--dd-register", "dd-name=d1", &format!("member-name={T1}"), &format!("member-name={INITIATOR}")],
    );
    wait_discovered(&tgtd, &[T1], Duration::from_secs(5), "in the domain");
    let mut session = tgtd.session(T1, 1, &[1]);

    // The server stops: its answers are no longer trusted. Logins are refused, promptly; the
    // session already in place goes on; tgtadm answers at once.
    isnsd.stop();
    let deadline = Instant::now() + Duration::from_secs(10);
    while login(&tgtd, T1).is_ok() {
        assert!(Instant::now() < deadline, "still admitted with the server gone:\n{}", tgtd.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let start = Instant::now();
    assert_eq!(login(&tgtd, T1), Err("login status 0x0202".to_string()));
    assert!(discovered(&tgtd).is_empty());
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(start.elapsed() < Duration::from_secs(2), "a login or tgtadm waited on iSNS: {:?}", start.elapsed());
    assert_eq!(session.scsi(1, &[0; 6], &[], 0).unwrap().status, 0, "the existing session goes on");

    // The server comes back (empty: its database was in memory). The daemon registers again
    // (back-off), and once the domain is made again the target reopens.
    let isnsd = crate::isns::Isnsd::start_with(port, "DefaultDiscoveryDomain = 0\nRegistrationPeriod = 10m\n");
    wait_registered(&isnsd, T1);
    isnsd.register_initiator(INITIATOR);
    isnsadm_ok(
        &isnsd,
        &["--local", "--dd-register", "dd-name=d1", &format!("member-name={T1}"), &format!("member-name={INITIATOR}")],
    );
    wait_discovered(&tgtd, &[T1], Duration::from_secs(10), "the server is back");
    login(&tgtd, T1).expect("admitted again");
    session.logout().unwrap();
}
