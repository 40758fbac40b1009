//! libiscsi's whole conformance matrix (family ALL, 230 tests) against the real daemon, run by
//! the shared runner `../shared/conformance/run-matrix.sh` on file LUNs: a thin disk, a removable
//! disk and a read-only thin disk of 128 MiB, and for Sanitize.Reset a thin 64 MiB disk whose
//! writes are delayed (see `cu::matrix`: what may skip and why, mirrored in README.md
//! "Conformance skips"). Fails on any CUnit failure or unfinished test, and when ../shared is
//! missing.

use crate::common;
use crate::cu;

use common::{require, sparse_image, Tgtd};
use cu::matrix::{self, DISK, PARAMS, READONLY, REMOVABLE, SLOW, SLOW_BSOPTS, SLOW_SIZE};

fn add_target(tgtd: &Tgtd, tid: u32, iqn: &str, size: u64, store: &[&str], params: &str) {
    let dir = tgtd.dir.path();
    let image = sparse_image(dir, &format!("{tid}.img"), size);
    tgtd.new_target(tid, iqn);
    let image = image.to_str().unwrap();
    tgtd.add_lun_ok(tid, 1, &[&["--backing-store", image], store, &["--params", params]].concat());
    tgtd.bind(tid, "--initiator-address", "ALL");
}

#[test]
fn full_matrix_passes() {
    let _alone = common::heavy();
    require("iscsi-test-cu");
    let tgtd = Tgtd::start();
    for (i, iqn) in [DISK, REMOVABLE, READONLY].into_iter().enumerate() {
        add_target(&tgtd, i as u32 + 1, iqn, 128 << 20, &[], PARAMS[i]);
    }
    add_target(&tgtd, 4, SLOW, SLOW_SIZE, &["--bsopts", SLOW_BSOPTS], PARAMS[0]);
    matrix::run_and_check("file", tgtd.portal(), || tgtd.log());
}
