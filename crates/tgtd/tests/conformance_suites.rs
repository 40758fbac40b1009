//! libiscsi's iscsi-test-cu against the real daemon: every suite the foundation needs, each test
//! scored from the verbose log. A failed or unfinished test fails here; a skipped part must be one
//! of the documented skips (README.md, "Conformance skips").

mod common;

use common::{require, sparse_image, Tgtd};
use std::collections::BTreeMap;
use std::process::Command;

const IQN: &str = "iqn.2026-11.org.rtgt.test:conformance";

/// Suites the foundation issue requires, run one iscsi-test-cu process each.
const SUITES: &[&str] = &[
    "Inquiry",
    "Mandatory",
    "TestUnitReady",
    "ReadCapacity10",
    "ReadCapacity16",
    "Read6",
    "Read10",
    "Read12",
    "Read16",
    "Write10",
    "Write12",
    "Write16",
    "Verify10",
    "Verify12",
    "Verify16",
    "WriteVerify10",
    "WriteVerify12",
    "WriteVerify16",
    "ModeSense6",
    "iSCSIcmdsn",
    "iSCSIdatasn",
    "iSCSIResiduals",
    "iSCSITMF",
];

/// Tests allowed to skip a part, with the reason (mirrored in README.md).
const ALLOWED_SKIPS: &[(&str, &str)] = &[];

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Skip,
    Fail,
    Incomplete,
}

/// One verdict per test from a verbose (-v) iscsi-test-cu log.
fn score(log: &str) -> BTreeMap<String, Verdict> {
    #[derive(Default)]
    struct State {
        skipped: bool,
        failed: bool,
        finished: bool,
    }
    let mut states: BTreeMap<String, State> = BTreeMap::new();
    let mut suite = String::new();
    let mut current: Option<String> = None;
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("Suite: ") {
            suite = rest.split_whitespace().next().unwrap_or("").to_string();
            current = None;
            continue;
        }
        let mut tail = line;
        if let Some(rest) = line.strip_prefix("  Test: ") {
            if let Some((name, after)) = rest.split_once(" ...") {
                let id = format!("{suite}.{name}");
                states.insert(id.clone(), State::default());
                current = Some(id);
                tail = after;
            }
        }
        let Some(id) = &current else { continue };
        let state = states.get_mut(id).expect("current test is recorded");
        if state.finished {
            // Lines after CUnit's verdict belong to the suite's clean-up, not to this test.
            continue;
        }
        // CUnit's own verdict is authoritative: some tests log "[FAILED]" for a step that is meant
        // to fail (iSCSIDataSnInvalid expects the WRITE to be refused) and still pass.
        let (before_verdict, verdict) = match (tail.find("passed"), tail.trim_end().ends_with("FAILED")) {
            (_, true) if !tail.contains("[FAILED]") || tail.trim() == "FAILED" => (tail, Some(false)),
            (Some(at), _) => (&tail[..at], Some(true)),
            _ => (tail, None),
        };
        if before_verdict.contains("[SKIPPED]") {
            state.skipped = true;
        }
        if let Some(passed) = verdict {
            state.failed = !passed;
            state.finished = true;
        }
    }
    states
        .into_iter()
        .map(|(id, s)| {
            let verdict = if s.failed {
                Verdict::Fail
            } else if !s.finished {
                Verdict::Incomplete
            } else if s.skipped {
                Verdict::Skip
            } else {
                Verdict::Pass
            };
            (id, verdict)
        })
        .collect()
}

#[test]
fn scorer_reads_cunit_verbose_logs() {
    let log = "Suite: Read10\n  Test: Simple ...passed\n  Test: Beyond ...\n    [FAILED] oops\nFAILED\n  Test: Skipper ...\n    [SKIPPED] not here\npassed\n  Test: Expected ...\n    [FAILED] WRITE10 refused, as the test wants\npassed    [SKIPPED] clean-up probe\n  Test: Hung ...\n";
    let v = score(log);
    assert_eq!(v["Read10.Simple"], Verdict::Pass);
    assert_eq!(v["Read10.Beyond"], Verdict::Fail);
    assert_eq!(v["Read10.Skipper"], Verdict::Skip);
    assert_eq!(v["Read10.Expected"], Verdict::Pass);
    assert_eq!(v["Read10.Hung"], Verdict::Incomplete);
}

#[test]
fn foundation_suites_pass() {
    require("iscsi-test-cu");
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "conformance.img", 128 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let url = tgtd.url(IQN, 1);

    let mut problems = Vec::new();
    let mut totals = BTreeMap::new();
    for suite in SUITES {
        let out = Command::new("timeout")
            .args(["300", "iscsi-test-cu", "-d", "-v", "-t", &format!("ALL.{suite}"), &url])
            .output()
            .expect("run iscsi-test-cu");
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let verdicts = score(&log);
        if verdicts.is_empty() {
            problems.push(format!("{suite}: no test ran:\n{log}"));
        }
        for (test, verdict) in &verdicts {
            *totals.entry(format!("{verdict:?}")).or_insert(0) += 1;
            let allowed = ALLOWED_SKIPS.iter().any(|(t, _)| t == test);
            match verdict {
                Verdict::Pass => {}
                Verdict::Skip if allowed => {}
                _ => problems.push(format!("{test}: {verdict:?}")),
            }
        }
        if verdicts.values().any(|v| *v != Verdict::Pass) {
            eprintln!("--- {suite} log ---\n{log}");
        }
    }
    eprintln!("conformance (foundation suites): {totals:?}");
    assert!(problems.is_empty(), "conformance problems:\n{}\n--- tgtd log ---\n{}", problems.join("\n"), tgtd.log());
}
