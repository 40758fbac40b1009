//! libiscsi's whole conformance matrix (family ALL, 230 tests) against the real daemon on file
//! LUNs of 128 MiB each, as `../shared/conformance/run-matrix.sh` runs it (see `cu::matrix`: what
//! may skip or fail and why, mirrored in README.md "Conformance skips").

mod common;
mod cu;

use common::{require, sparse_image, Tgtd};
use cu::matrix::{self, DISK, PARAMS, READONLY, REMOVABLE};
use cu::Verdict;
use std::process::Command;

fn add_target(tgtd: &Tgtd, tid: u32, iqn: &str, params: &str) {
    let dir = tgtd.dir.path();
    let image = sparse_image(dir, &format!("{tid}.img"), 128 << 20);
    let tid = tid.to_string();
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "new", "--tid", &tid, "--targetname", iqn]);
    let image = image.to_str().unwrap();
    let lun = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "new", "--tid", &tid, "--lun", "1"];
    tgtd.tgtadm_ok(&[&lun[..], &["--backing-store", image, "--params", params]].concat());
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
    for (i, iqn) in [DISK, REMOVABLE, READONLY].into_iter().enumerate() {
        add_target(&tgtd, i as u32 + 1, iqn, PARAMS[i]);
    }
    let (disk, removable, readonly) = (tgtd.url(DISK, 1), tgtd.url(REMOVABLE, 1), tgtd.url(READONLY, 1));
    matrix::run_and_check("file", &disk, &removable, &readonly, || tgtd.log());
}

/// Sanitize.Reset, the one test of the matrix CUnit fails on the 128 MiB disk, checks that a
/// sanitize goes on through ABORT TASK, ABORT TASK SET, LUN reset, target warm and cold reset and
/// a new login; it assumes the operation still runs 4-5 s after it was sent. On a medium that slow
/// (each 1 MiB write of the overwrite delayed 250 ms by an injected fault: about 16 s for 64 MiB)
/// it passes, with no "[FAILED]" line at all. It takes a minute: the test polls once a minute.
#[test]
fn sanitize_reset_passes_when_the_medium_is_slow() {
    require("iscsi-test-cu");
    let tgtd = Tgtd::start();
    let iqn = "iqn.2026-12.org.rtgt.cu:slow";
    let image = sparse_image(tgtd.dir.path(), "slow.img", 64 << 20);
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "new", "--tid", "1", "--targetname", iqn]);
    let lun = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "1"];
    let image = image.to_str().unwrap();
    let bs = ["--backing-store", image, "--bsopts", "fault=write:delay=250ms"];
    tgtd.tgtadm_ok(&[&lun[..], &bs, &["--params", "thin_provisioning=1"]].concat());
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "bind", "--tid", "1", "--initiator-address", "ALL"]);
    let url = tgtd.url(iqn, 1);
    let out = Command::new("timeout")
        .args(["300", "iscsi-test-cu", "-d", "-S", "-v", "-t", "ALL.Sanitize.Reset", &url])
        .output()
        .expect("run iscsi-test-cu");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let verdicts = cu::score(&log);
    assert_eq!(verdicts.get("Sanitize.Reset"), Some(&Verdict::Pass), "{log}\n{}", tgtd.log());
    assert!(!log.contains("[FAILED]"), "{log}");
}
