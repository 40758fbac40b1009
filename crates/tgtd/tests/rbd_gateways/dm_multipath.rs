//! Linux dm-multipath over both gateways, with the initiator stack issue 18 names: a Debian kernel
//! under QEMU (scripts/multipath-guest-test) logs in with open-iscsi to both, multipathd builds one
//! map with the ALUA hardware handler and prio alua, two path groups (the owner's preferred), and the
//! guest writes and verifies data through the map and through the non-owner's path. Then gateway a,
//! the owner, is killed with kill -9 while the guest writes: dm-multipath fails its path, the writes
//! resume through b once b took over, and everything written reads back.

use super::{groups, registry_keys, session, wait_for, TwoGateways, ACTIVE, IQN, NON_OPTIMIZED, OFFLINE};
use crate::INITIATOR;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn linux_dm_multipath_uses_both_gateways_and_fails_over_after_kill_9_of_the_owner() {
    // The guest's disk is larger than the other tests' images: 64 MiB.
    let gw = TwoGateways::on_image_of(64);
    // Both agree that a owns the unit, and b forwards to it, before the guest comes.
    let mut cb = session(gw.b.portal(), INITIATOR);
    assert_eq!(groups(&mut cb), [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    wait_for(15, "b forwards to a", || cb.scsi(1, &[0; 6], &[], 0).unwrap().status == 0);
    let mut ca = session(gw.a.portal(), INITIATOR);
    wait_for(5, "a sees b", || groups(&mut ca) == [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    drop(ca);

    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(repo.join("scripts/multipath-guest-test"))
        .args(["--iqn", IQN])
        .args(["--portal-a", &gw.a.portal().to_string(), "--portal-b", &gw.b.portal().to_string()])
        .args(["--kill", &gw.a.pid().to_string()])
        .output()
        .expect("scripts/multipath-guest-test runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    let logs = || format!("--- a ---\n{}\n--- b ---\n{}", gw.a.log(), gw.b.log());
    assert!(output.status.success(), "the guest test failed:\n{stderr}\n{}", logs());
    assert!(stderr.contains("RTGT-VERDICT: PASS"), "no verdict from the guest:\n{stderr}");
    // The disks of gateway a's and gateway b's sessions.
    let paths =
        stderr.lines().find_map(|l| l.strip_prefix("RTGT-MPATH-PATHS: a=")).unwrap_or_else(|| panic!("{stderr}"));
    let (dev_a, dev_b) = paths.split_once(" b=").unwrap_or_else(|| panic!("{paths}"));
    // Each line is printed only once the guest checked what it says.
    for line in [
        "RTGT-MPATH-LOGIN: 2 sessions",
        "RTGT-MPATH-LL: mpatha (",
        "hwhandler='1 alua'",
        &format!("RTGT-MPATH-GROUPS: {dev_a} prio 50 active, {dev_b} prio 10 enabled"),
        &format!("RTGT-MPATH-PRIO: alua on {dev_a} and {dev_b}"),
        "RTGT-MPATH-IO: 8 MiB through the map",
        &format!("RTGT-MPATH-PATH-FAILED: {dev_a} after "),
        "RTGT-MPATH-FAILOVER: ",
        &format!("RTGT-MPATH-AFTER: {dev_b} prio 50 active, {dev_a} failed"),
    ] {
        assert!(stderr.contains(line), "no '{line}' from the guest:\n{stderr}");
    }
    // The kill the guest asked for happened, and b took over by fencing a.
    drop(gw.a.crash());
    let keys = registry_keys(&gw.conf, &gw.name);
    assert!(keys.iter().any(|k| k.starts_with("fenced.")), "a's client fenced: {keys:?}");
    assert_eq!(groups(&mut cb), [(1, OFFLINE), (2, ACTIVE)], "b owns the unit");
}
