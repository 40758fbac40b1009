//! libiscsi's iscsi-test-cu against the real daemon: every suite the foundation needs, each test
//! scored from the verbose log. A failed or unfinished test fails here; a skipped part must be one
//! of the documented skips (README.md, "Conformance skips").

use crate::common;
use crate::cu;

use common::{require, sparse_image, Tgtd};
use cu::{score, Verdict, FOUNDATION_SUITES};
use std::collections::BTreeMap;
use std::process::Command;

const IQN: &str = "iqn.2026-11.org.rtgt.test:conformance";

/// Tests allowed to skip a part, with the reason (mirrored in README.md).
const ALLOWED_SKIPS: &[(&str, &str)] = &[];

#[test]
fn foundation_suites_pass() {
    let _alone = common::heavy();
    require("iscsi-test-cu");
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "conformance.img", 128 << 20);
    // Thin provisioned: libiscsi 1.19's Inquiry.BlockLimits checks the provisioning limits only on
    // a thin unit and skips on a fully provisioned one.
    tgtd.new_target(1, IQN);
    tgtd.add_lun_ok(1, 1, &["-b", image.to_str().unwrap(), "--params", "thin_provisioning=1"]);
    tgtd.bind(1, "--initiator-address", "ALL");
    let url = tgtd.url(IQN, 1);

    let mut problems = Vec::new();
    let mut totals = BTreeMap::new();
    for suite in FOUNDATION_SUITES {
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
