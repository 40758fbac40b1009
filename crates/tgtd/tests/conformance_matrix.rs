//! libiscsi's whole conformance matrix (family ALL, 230 tests) against the real daemon, as
//! `../shared/conformance/run-matrix.sh` runs it: a thin-provisioned disk for the whole suite
//! (with a second session for the multipath tests), a removable disk for PreventAllow and
//! StartStopUnit, a read-only disk for ReadOnly; 128 MiB each. Scored here from CUnit's own
//! verdicts (`cu::score`). Fails on any failed or unfinished test and on any skip not in
//! `ALLOWED_SKIPS` (mirrored, with the reasons, in README.md "Conformance skips").

mod common;
mod cu;

use common::{require, sparse_image, Tgtd};
use cu::{score, Verdict};
use std::collections::BTreeMap;
use std::process::Command;

const DISK: &str = "iqn.2026-11.org.rtgt.cu:disk";
const REMOVABLE: &str = "iqn.2026-11.org.rtgt.cu:removable";
const READONLY: &str = "iqn.2026-11.org.rtgt.cu:readonly";

/// Tests allowed to skip a part, with the reason (mirrored in README.md "Conformance skips").
const ALLOWED_SKIPS: &[(&str, &str)] = &[
    ("CompareAndWrite.InvalidDataOutSize", LBPPB),
    ("WriteSame10.UnmapUnaligned", LBPPB),
    ("WriteSame10.InvalidDataOutSize", LBPPB),
    ("WriteSame16.UnmapUnaligned", LBPPB),
    ("WriteSame16.InvalidDataOutSize", LBPPB),
];

const LBPPB: &str = "runs only when a physical block holds several logical blocks; rtgt reports LBPPBE 0 \
                     (GetLBAStatus.UnmapSingle assumes one logical block per physical block)";

/// Tests CUnit fails that rtgt does not pass, with the reason (mirrored in README.md). Anything
/// else failing fails this test.
const KNOWN_FAILURES: &[(&str, &str)] = &[(
    "Sanitize.Reset",
    "expects a SANITIZE still running 3 s after it was sent; rtgt sanitizes a virtual disk before \
     answering (128 MiB takes well under a second), so no command ever sees SANITIZE IN PROGRESS",
)];

/// Seconds one iscsi-test-cu run may take; a hung target shows as unfinished tests.
const RUN_LIMIT: &str = "900";

fn cu(args: &[&str]) -> String {
    let out =
        Command::new("timeout").arg(RUN_LIMIT).arg("iscsi-test-cu").args(args).output().expect("run iscsi-test-cu");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn add_target(tgtd: &Tgtd, tid: u32, iqn: &str, params: &str) {
    let dir = tgtd.dir.path();
    let image = sparse_image(dir, &format!("{tid}.img"), 128 << 20);
    let tid = tid.to_string();
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "new", "--tid", &tid, "--targetname", iqn]);
    tgtd.tgtadm_ok(&[
        "--lld",
        "iscsi",
        "--mode",
        "logicalunit",
        "--op",
        "new",
        "--tid",
        &tid,
        "--lun",
        "1",
        "--backing-store",
        image.to_str().unwrap(),
        "--params",
        params,
    ]);
    tgtd.tgtadm_ok(&[
        "--lld",
        "iscsi",
        "--mode",
        "target",
        "--op",
        "bind",
        "--tid",
        &tid,
        "--initiator-address",
        "ALL",
    ]);
}

#[test]
fn full_matrix_passes() {
    require("iscsi-test-cu");
    let tgtd = Tgtd::start();
    add_target(&tgtd, 1, DISK, "thin_provisioning=1");
    add_target(&tgtd, 2, REMOVABLE, "removable=1");
    add_target(&tgtd, 3, READONLY, "readonly=1,thin_provisioning=1");
    let (disk, removable, readonly) = (tgtd.url(DISK, 1), tgtd.url(REMOVABLE, 1), tgtd.url(READONLY, 1));

    // The same runs as run-matrix.sh: -d allows data loss, -S the sanitize tests; the second URL
    // is the multipath partner.
    let disk_log = cu(&["-d", "-S", "-v", "-t", "ALL", &disk, &disk]);
    let removable_log = format!(
        "{}{}",
        cu(&["-d", "-v", "-t", "ALL.PreventAllow", &removable, &removable]),
        cu(&["-d", "-v", "-t", "ALL.StartStopUnit", &removable])
    );
    let readonly_log = cu(&["-d", "-v", "-t", "ALL.ReadOnly", &readonly]);

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
    eprintln!(
        "conformance matrix: tests={} pass={} skip={} fail={} incomplete={}",
        verdicts.len(),
        n("pass"),
        n("skip"),
        n("fail"),
        n("incomplete")
    );
    if !problems.is_empty() {
        for (name, log) in [("disk", &disk_log), ("removable", &removable_log), ("readonly", &readonly_log)] {
            let path = tgtd.dir.path().join(format!("{name}.log"));
            std::fs::write(&path, log).unwrap();
        }
        // Keep the logs for inspection: the temporary directory goes with the daemon.
        let keep = std::env::temp_dir().join(format!("rtgt-conformance-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&keep);
        for name in ["disk", "removable", "readonly", "tgtd"] {
            let _ = std::fs::copy(tgtd.dir.path().join(format!("{name}.log")), keep.join(format!("{name}.log")));
        }
        panic!("conformance problems (logs in {}):\n{}", keep.display(), problems.join("\n"));
    }
    assert!(verdicts.len() >= 230, "only {} tests ran", verdicts.len());
}
