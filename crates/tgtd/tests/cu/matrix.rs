//! libiscsi's whole conformance matrix (family ALL, 230 tests) as `../shared/conformance/run-matrix.sh`
//! runs it: a thin-provisioned disk for the whole suite (with a second session for the multipath
//! tests), a removable disk for PreventAllow and StartStopUnit, a read-only disk for ReadOnly.
//! Scored from CUnit's own verdicts (`super::score`); what may skip or fail, and why, is listed here
//! and mirrored in README.md "Conformance skips". The callers make the three LUNs (file or RBD).

use super::{score, Verdict};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

pub const DISK: &str = "iqn.2026-11.org.rtgt.cu:disk";
pub const REMOVABLE: &str = "iqn.2026-11.org.rtgt.cu:removable";
pub const READONLY: &str = "iqn.2026-11.org.rtgt.cu:readonly";
/// The LUN parameters of each of the three targets, in the order above.
pub const PARAMS: [&str; 3] = ["thin_provisioning=1", "removable=1", "readonly=1,thin_provisioning=1"];

/// Tests allowed to skip a part, with the reason.
pub const ALLOWED_SKIPS: &[(&str, &str)] = &[
    ("CompareAndWrite.InvalidDataOutSize", LBPPB),
    ("WriteSame10.UnmapUnaligned", LBPPB),
    ("WriteSame10.InvalidDataOutSize", LBPPB),
    ("WriteSame16.UnmapUnaligned", LBPPB),
    ("WriteSame16.InvalidDataOutSize", LBPPB),
];

const LBPPB: &str = "runs only when a physical block holds several logical blocks; rtgt reports LBPPBE 0 \
                     (GetLBAStatus.UnmapSingle assumes one logical block per physical block)";

/// Tests CUnit fails that rtgt does not pass, with the reason. Anything else failing is a problem.
pub const KNOWN_FAILURES: &[(&str, &str)] = &[(
    "Sanitize.Reset",
    "expects a SANITIZE still running 4-5 s after it was sent; rtgt's goes on through the test's \
     resets and reconnect (see sanitize_reset_passes_when_the_medium_is_slow), but overwriting the 128 MiB \
     test disk takes well under a second",
)];

/// Seconds one iscsi-test-cu run may take; a hung target shows as unfinished tests.
const RUN_LIMIT: &str = "900";

fn cu(args: &[&str]) -> String {
    let out =
        Command::new("timeout").arg(RUN_LIMIT).arg("iscsi-test-cu").args(args).output().expect("run iscsi-test-cu");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Run the matrix against the three LUN URLs and panic on any failure, unfinished test or skip
/// not listed above, keeping the logs (and `tgtd_log`) in a directory named in the message.
/// Returns the summary line it also prints.
pub fn run_and_check(
    label: &str,
    disk: &str,
    removable: &str,
    readonly: &str,
    tgtd_log: impl Fn() -> String,
) -> String {
    // The same runs as run-matrix.sh: -d allows data loss, -S the sanitize tests; the second URL
    // is the multipath partner.
    let disk_log = cu(&["-d", "-S", "-v", "-t", "ALL", disk, disk]);
    let removable_log = format!(
        "{}{}",
        cu(&["-d", "-v", "-t", "ALL.PreventAllow", removable, removable]),
        cu(&["-d", "-v", "-t", "ALL.StartStopUnit", removable])
    );
    let readonly_log = cu(&["-d", "-v", "-t", "ALL.ReadOnly", readonly]);

    let mut verdicts = score(&disk_log);
    for (log, suites) in [(&removable_log, &["PreventAllow", "StartStopUnit"][..]), (&readonly_log, &["ReadOnly"][..])]
    {
        for (test, verdict) in score(log) {
            if suites.iter().any(|s| test.starts_with(&format!("{s}."))) {
                verdicts.insert(test, verdict);
            }
        }
    }

    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for (test, verdict) in &verdicts {
        let name = match verdict {
            Verdict::Pass => "pass",
            Verdict::Skip => "skip",
            Verdict::Fail => "fail",
            Verdict::Incomplete => "incomplete",
        };
        *counts.entry(name).or_default() += 1;
        match verdict {
            Verdict::Pass => {}
            Verdict::Skip if ALLOWED_SKIPS.iter().any(|(t, _)| t == test) => eprintln!("skip {test} (allowed)"),
            Verdict::Fail if KNOWN_FAILURES.iter().any(|(t, _)| t == test) => eprintln!("fail {test} (known)"),
            _ => problems.push(format!("{name} {test}")),
        }
    }
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    let summary = format!(
        "conformance matrix ({label}): tests={} pass={} skip={} fail={} incomplete={}",
        verdicts.len(),
        n("pass"),
        n("skip"),
        n("fail"),
        n("incomplete")
    );
    eprintln!("{summary}");
    if !problems.is_empty() || verdicts.len() < 230 {
        // Keep the logs for inspection: the daemon's temporary directory goes with it.
        let keep = std::env::temp_dir().join(format!("rtgt-conformance-{label}-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&keep);
        let tgtd_log = tgtd_log();
        for (name, log) in
            [("disk", &disk_log), ("removable", &removable_log), ("readonly", &readonly_log), ("tgtd", &tgtd_log)]
        {
            let _ = std::fs::write(keep.join(format!("{name}.log")), log);
        }
        panic!(
            "conformance problems, {} tests ran (logs in {}):\n{}",
            verdicts.len(),
            display(&keep),
            problems.join("\n")
        );
    }
    summary
}

fn display(p: &Path) -> String {
    p.display().to_string()
}
