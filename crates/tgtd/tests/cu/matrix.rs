//! libiscsi's whole conformance matrix (family ALL, 230 tests), run by the shared runner
//! `../shared/conformance/run-matrix.sh` itself so that `cargo test`, `scripts/conformance` and
//! anyone scoring rtgt by hand get one verdict: CUnit's own for each test (`cu-score.py`). The
//! runner uses a thin-provisioned disk for the whole suite (with a second session for the
//! multipath tests), a removable disk for PreventAllow and StartStopUnit, a read-only thin disk
//! for ReadOnly and, given `SLOW_IQN`, a disk whose writes are slow for Sanitize.Reset. The
//! callers make the LUNs (file or RBD). What may skip, and why, is listed here and mirrored in
//! README.md "Conformance skips"; no test may fail or be left unfinished.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const DISK: &str = "iqn.2026-11.org.rtgt.cu:disk";
pub const REMOVABLE: &str = "iqn.2026-11.org.rtgt.cu:removable";
pub const READONLY: &str = "iqn.2026-11.org.rtgt.cu:readonly";
/// Sanitize.Reset's disk (the runner's `SLOW_IQN`).
pub const SLOW: &str = "iqn.2026-11.org.rtgt.cu:slow";
/// The LUN parameters of each of the three targets, in the order above; the slow disk is thin.
pub const PARAMS: [&str; 3] = ["thin_provisioning=1", "removable=1", "readonly=1,thin_provisioning=1"];
/// The slow disk's store options: Sanitize.Reset expects a SANITIZE still running 4-5 s after it
/// was sent, across ABORT TASK, ABORT TASK SET, LUN reset, target warm and cold reset and a new
/// login. Overwriting a fast 64 MiB disk takes well under a second; with every 1 MiB write
/// delayed 250 ms it takes about 16 s.
pub const SLOW_BSOPTS: &str = "fault=write:delay=250ms";
/// The slow disk's size.
pub const SLOW_SIZE: u64 = 64 << 20;
/// The matrix's size: every test of family ALL.
const TESTS: usize = 230;

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

/// The shared runner beside the clone (`../shared`). Its absence fails the test: a CI machine
/// without it would otherwise report a conformance run that never happened.
fn runner(shared: &Path) -> PathBuf {
    let path = shared.join("conformance/run-matrix.sh");
    assert!(
        path.is_file(),
        "the shared conformance runner {} is missing: the matrix needs ../shared/conformance (run-matrix.sh and \
         cu-score.py) beside the rtgt clone",
        path.display()
    );
    path
}

/// The runner's summary line, `conformance: tests=N pass=N skip=N fail=N incomplete=N noted=N`,
/// as its counts.
fn counts(summary: &str) -> BTreeMap<&str, usize> {
    summary
        .trim_start_matches("conformance:")
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect()
}

/// Run the matrix against `DISK`, `REMOVABLE` and `READONLY` (LUN 1 each) at `portal`, with
/// Sanitize.Reset on `SLOW`, and panic unless the runner exits 0 with fail=0 incomplete=0, all
/// 230 tests scored and no skip outside `ALLOWED_SKIPS`. The runner's logs (and `tgtd_log`) are
/// kept in a directory the message names. Prints the summary line and the tests that did not
/// plainly pass; returns the summary line.
pub fn run_and_check(label: &str, portal: SocketAddr, tgtd_log: impl Fn() -> String) -> String {
    run_checked(label, portal, None, tgtd_log)
}

/// The same with the runs that take two URLs (the whole suite on `DISK`, PreventAllow) given
/// their second URL at `second` (another gateway of the same units): the multipath and
/// multi-initiator tests then cross gateways. The runner passes one URL twice; a wrapper of
/// iscsi-test-cu first on its PATH points the second one at `second`.
#[allow(dead_code)] // Only the rbd test binary has gateways.
pub fn run_and_check_across(
    label: &str,
    portal: SocketAddr,
    second: SocketAddr,
    tgtd_log: impl Fn() -> String,
) -> String {
    run_checked(label, portal, Some(second), tgtd_log)
}

/// A directory holding an `iscsi-test-cu` that runs the real one with the second `iscsi://portal/`
/// URL of its arguments moved to `second`.
fn second_url_wrapper(dir: &Path, portal: SocketAddr, second: SocketAddr) -> PathBuf {
    let real = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|d| d.join("iscsi-test-cu")).find(|p| p.is_file()))
        .expect("iscsi-test-cu on PATH");
    let shim = dir.join("shim");
    std::fs::create_dir_all(&shim).unwrap();
    let script = format!(
        "#!/usr/bin/env bash\nargs=(); n=0\nfor a in \"$@\"; do\n  case $a in iscsi://{portal}/*) n=$((n+1)); \
         [ $n -eq 2 ] && a=\"iscsi://{second}/${{a#iscsi://{portal}/}}\";; esac\n  args+=(\"$a\")\ndone\nexec {} \"${{args[@]}}\"\n",
        real.display()
    );
    let path = shim.join("iscsi-test-cu");
    std::fs::write(&path, script).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&path, perms).unwrap();
    shim
}

fn run_checked(label: &str, portal: SocketAddr, second: Option<SocketAddr>, tgtd_log: impl Fn() -> String) -> String {
    let runner = runner(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let logs = std::env::temp_dir().join(format!("rtgt-conformance-{label}-{}", std::process::id()));
    let mut command = Command::new("bash");
    command.arg(&runner).args([&portal.to_string(), DISK, REMOVABLE, READONLY, "1"]).arg(&logs).env("SLOW_IQN", SLOW);
    if let Some(second) = second {
        let shim = second_url_wrapper(
            &std::env::temp_dir().join(format!("rtgt-cu-shim-{}", std::process::id())),
            portal,
            second,
        );
        let path = std::env::var_os("PATH").unwrap_or_default();
        let paths = std::iter::once(shim).chain(std::env::split_paths(&path));
        command.env("PATH", std::env::join_paths(paths).unwrap());
    }
    let out = command.output().expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Straight to stderr, past the test harness's capture: CI shows the verdicts of a passing run.
    let report = format!("conformance matrix ({label}), {}:\n{stdout}{stderr}", runner.display());
    let _ = std::io::Write::write_all(&mut std::io::stderr(), report.as_bytes());
    let summary = stdout.lines().find(|l| l.starts_with("conformance: tests=")).unwrap_or("");
    let n = counts(summary);
    let get = |k: &str| n.get(k).copied();
    let mut problems = Vec::new();
    if summary.is_empty() {
        problems.push("the runner printed no summary line".to_string());
    }
    if !out.status.success() {
        problems.push(format!("the runner exited with {}", out.status));
    }
    if get("fail") != Some(0) || get("incomplete") != Some(0) {
        problems.push("tests failed or did not finish".to_string());
    }
    if get("tests").is_none_or(|t| t < TESTS) {
        problems.push(format!("fewer than {TESTS} tests were scored"));
    }
    for line in stdout.lines() {
        if let Some(test) = line.strip_prefix("skip ") {
            if !ALLOWED_SKIPS.iter().any(|(t, _)| *t == test) {
                problems.push(format!("{test} skipped a part and is not in ALLOWED_SKIPS"));
            }
        }
    }
    if !problems.is_empty() {
        let _ = std::fs::create_dir_all(&logs);
        let _ = std::fs::write(logs.join("tgtd.log"), tgtd_log());
        let not_passing: Vec<&str> =
            stdout.lines().filter(|l| ["fail ", "none ", "skip ", "noted "].iter().any(|p| l.starts_with(p))).collect();
        panic!(
            "conformance problems ({label}): {}\n{summary}\n{}\n(logs in {})",
            problems.join("; "),
            not_passing.join("\n"),
            logs.display()
        );
    }
    let _ = std::fs::remove_dir_all(&logs);
    summary.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts() {
        let n = counts("conformance: tests=230 pass=225 skip=5 fail=0 incomplete=0 noted=7");
        assert_eq!((n["tests"], n["skip"], n["fail"], n["incomplete"]), (230, 5, 0, 0));
    }

    #[test]
    #[should_panic(expected = "the shared conformance runner")]
    fn a_missing_shared_runner_fails() {
        runner(Path::new("/nonexistent/shared"));
    }
}
