//! Persistent reservations against the real daemon: libiscsi's PERSISTENT RESERVE suites with two
//! sessions (two I_T nexuses), RESERVE(6) interplay, and APTPL surviving `kill -9` through
//! `--state-dir`.

use crate::common;

use common::initiator::{Connection, ScsiOutcome};
use common::{require, sparse_image, Tgtd};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

const IQN: &str = "iqn.2026-11.org.rtgt.test:pr";
const INITIATOR_A: &str = "iqn.2026-11.org.rtgt.test:host-a";
const INITIATOR_B: &str = "iqn.2026-11.org.rtgt.test:host-b";

/// Every test of libiscsi's persistent reservation and RESERVE(6) suites, by suite.
const EXPECTED: &[(&str, &[&str])] = &[
    ("PrinReadKeys", &["Simple", "Truncate"]),
    ("PrinServiceactionRange", &["Range"]),
    ("PrinReportCapabilities", &["Simple"]),
    ("ProutRegister", &["Simple"]),
    (
        "ProutReserve",
        &[
            "Simple",
            "AccessEA",
            "AccessWE",
            "AccessEARO",
            "AccessWERO",
            "AccessEAAR",
            "AccessWEAR",
            "OwnershipEA",
            "OwnershipWE",
            "OwnershipEARO",
            "OwnershipWERO",
            "OwnershipEAAR",
            "OwnershipWEAR",
        ],
    ),
    ("ProutClear", &["Simple"]),
    ("ProutPreempt", &["RemoveRegistration"]),
    ("Reserve6", &["Simple", "2Initiators", "Logout", "ITNexusLoss", "TargetColdReset", "TargetWarmReset", "LUNReset"]),
];

/// Test name -> (verdict line, whether a [SKIPPED] appeared before the verdict).
fn verdicts(log: &str) -> BTreeMap<String, (bool, bool)> {
    let mut out = BTreeMap::new();
    let mut suite = String::new();
    let mut current: Option<(String, bool)> = None;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("Suite: ") {
            suite = rest.trim().to_string();
            continue;
        }
        let mut tail = line;
        if let Some(rest) = line.strip_prefix("  Test: ") {
            if let Some((name, after)) = rest.split_once(" ...") {
                current = Some((format!("{suite}.{name}"), false));
                tail = after;
            }
        }
        let Some((name, skipped)) = &mut current else { continue };
        if tail.contains("[SKIPPED]") {
            *skipped = true;
        }
        let passed = tail.trim_start().starts_with("passed");
        if passed || tail.trim() == "FAILED" || tail.trim_end().ends_with("...FAILED") {
            out.insert(name.clone(), (passed, *skipped));
            current = None;
        }
    }
    out
}

fn run_suites(tgtd: &Tgtd, filter: &str) -> String {
    let url = tgtd.url(IQN, 1);
    let out = Command::new("iscsi-test-cu")
        .args(["-d", "-v", "-t", filter, &url, &url])
        .stdin(Stdio::null())
        .output()
        .expect("run iscsi-test-cu");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{log}");
    log
}

#[test]
fn libiscsi_persistent_reservation_suites_pass_with_two_nexuses() {
    let _alone = common::heavy();
    require("iscsi-test-cu");
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "pr.img", 64 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let mut log = String::new();
    for filter in ["ALL.Prin*", "ALL.Prout*", "ALL.Reserve6*"] {
        log.push_str(&run_suites(&tgtd, filter));
    }
    assert!(!log.contains("is not implemented"), "a PR command reported as missing:\n{log}");
    let found = verdicts(&log);
    let mut failures = Vec::new();
    let mut count = 0;
    for (suite, tests) in EXPECTED {
        for test in *tests {
            count += 1;
            let name = format!("{suite}.{test}");
            match found.get(&name) {
                Some((true, false)) => {}
                Some((true, true)) => failures.push(format!("{name}: skipped a part")),
                Some((false, _)) => failures.push(format!("{name}: FAILED")),
                None => failures.push(format!("{name}: did not run")),
            }
        }
    }
    println!("persistent reservation suites: {} of {count} passed", count - failures.len());
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(found.len(), count, "unexpected tests ran: {found:?}");
}

#[test]
fn suite_clean_up_no_longer_reports_persistent_reserve_in_missing() {
    require("iscsi-test-cu");
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "inq.img", 16 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let log = run_suites(&tgtd, "ALL.TestUnitReady*");
    assert!(log.contains("Test: Simple ...passed"), "{log}");
    assert!(!log.contains("not implemented"), "{log}");
}

/// The target and LUN, unless the daemon already restored them from its own saved configuration.
fn ensure_target(tgtd: &Tgtd, image: &Path) {
    let show = tgtd.tgtadm(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    if String::from_utf8_lossy(&show.stdout).contains(IQN) {
        return;
    }
    tgtd.add_disk_target(1, IQN, image);
}

fn login(tgtd: &Tgtd, initiator: &str, isid: [u8; 6]) -> Connection {
    let mut c = Connection::connect(tgtd.portal()).unwrap();
    c.isid = isid;
    c.login(initiator, Some(IQN), &[]).expect("login");
    // Consume the power-on unit attention.
    let _ = c.scsi(1, &[0; 6], &[], 0).unwrap();
    c
}

fn prout(c: &mut Connection, sa: u8, pr_type: u8, key: u64, sark: u64, flags: u8) -> ScsiOutcome {
    let mut p = Vec::new();
    p.extend_from_slice(&key.to_be_bytes());
    p.extend_from_slice(&sark.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, flags, 0, 0, 0]);
    c.scsi(1, &[0x5f, sa, pr_type, 0, 0, 0, 0, 0, 24, 0], &p, 0).unwrap()
}

fn prin(c: &mut Connection, sa: u8) -> ScsiOutcome {
    let out = c.scsi(1, &[0x5e, sa, 0, 0, 0, 0, 0, 0x10, 0, 0], &[], 4096).unwrap();
    assert_eq!(out.status, 0, "PERSISTENT RESERVE IN {sa}: sense {:02x?}", out.sense);
    out
}

#[test]
fn aptpl_reservation_survives_kill_9() {
    let first = Tgtd::start();
    let image = sparse_image(first.dir.path(), "aptpl.img", 8 << 20);
    let key = 0x0123_4567_89ab_cdef;
    let holder_isid = [0x40, 0, 0x01, 0x37, 0, 0x01];
    let dir = {
        ensure_target(&first, &image);
        let mut a = login(&first, INITIATOR_A, holder_isid);
        // APTPL=1 on REGISTER, then a WRITE EXCLUSIVE reservation.
        assert_eq!(prout(&mut a, 0x00, 0, 0, key, 0x01).status, 0);
        assert_eq!(prout(&mut a, 0x01, 0x01, key, 0, 0).status, 0);
        let caps = prin(&mut a, 0x02).data_in;
        assert_eq!((caps[2] & 0x01, caps[3] & 0x01), (1, 1), "PTPL_C and PTPL_A: {caps:02x?}");
        first.crash()
    };
    assert!(dir.path().join("state/persistent-reservations").is_dir(), "no saved reservation state");

    let d = Tgtd::start_in(dir, &[]);
    let state = d.dir.path();
    ensure_target(&d, &image);
    let mut b = login(&d, INITIATOR_B, [0x40, 0, 0x02, 0x37, 0, 0x02]);
    let res = prin(&mut b, 0x01).data_in;
    assert_eq!(&res[4..8], &[0, 0, 0, 16], "no reservation after restart: {res:02x?}");
    assert_eq!(&res[8..16], &key.to_be_bytes());
    assert_eq!(res[21] & 0x0f, 0x01, "type WRITE EXCLUSIVE");
    let keys = prin(&mut b, 0x00).data_in;
    assert_eq!(&keys[4..16], &[0, 0, 0, 8, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
    // Another initiator may read but not write; the holder, logging in again with the same
    // initiator port, may write.
    assert_eq!(b.read10(1, 0, 1, 512).unwrap().status, 0);
    assert_eq!(b.write10(1, 0, &[0; 512], 512).unwrap().status, 0x18);
    let mut a = login(&d, INITIATOR_A, holder_isid);
    assert_eq!(a.write10(1, 0, &[7; 512], 512).unwrap().status, 0);
    // Clearing APTPL (REGISTER with APTPL=0) removes the saved state.
    assert_eq!(prout(&mut a, 0x00, 0, key, key, 0).status, 0);
    let dir = state.join("state/persistent-reservations");
    let files: Vec<_> = walk(&dir);
    assert!(files.is_empty(), "saved state left after APTPL was cleared: {files:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
