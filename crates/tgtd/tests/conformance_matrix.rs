//! libiscsi's whole conformance matrix (family ALL, 230 tests) against the real daemon on file
//! LUNs of 128 MiB each, as `../shared/conformance/run-matrix.sh` runs it (see `cu::matrix`: what
//! may skip or fail and why, mirrored in README.md "Conformance skips").

mod common;
mod cu;

use common::{require, sparse_image, Tgtd};
use cu::matrix::{self, DISK, PARAMS, READONLY, REMOVABLE};

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
