//! The user's first steps from the README, with libiscsi's own clients: discovery with iscsi-ls,
//! INQUIRY with iscsi-inq, capacity with iscsi-readcapacity16.

use crate::common;

use common::{require, run, sparse_image, text, Tgtd};

const IQN: &str = "iqn.2026-11.org.example:disk1";

#[test]
fn discovery_inquiry_and_capacity_through_libiscsi() {
    require("iscsi-ls");
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "disk1.img", 64 << 20);
    tgtd.add_disk_target(1, IQN, &image);

    let out = run("iscsi-ls", &[&format!("iscsi://127.0.0.1:{}", tgtd.port)]);
    let listing = text(&out);
    assert!(out.status.success(), "iscsi-ls failed: {listing}");
    assert!(listing.contains(&format!("Target:{IQN} Portal:127.0.0.1:{},1", tgtd.port)), "iscsi-ls printed: {listing}");

    let out = run("iscsi-inq", &[&tgtd.url(IQN, 1)]);
    let inq = text(&out);
    assert!(out.status.success(), "iscsi-inq failed: {inq}");
    assert!(inq.contains("Peripheral Device Type:DIRECT_ACCESS"), "{inq}");
    assert!(inq.contains("Vendor:IET"), "{inq}");
    assert!(inq.contains("Product:VIRTUAL-DISK"), "{inq}");

    let out = run("iscsi-inq", &[&tgtd.url(IQN, 0)]);
    let inq0 = text(&out);
    assert!(out.status.success(), "iscsi-inq on LUN 0 failed: {inq0}");
    assert!(inq0.contains("Peripheral Device Type:STORAGE_ARRAY_CONTROLLER"), "LUN 0 must be the controller: {inq0}");

    let out = run("iscsi-readcapacity16", &[&tgtd.url(IQN, 1)]);
    let cap = text(&out);
    assert!(out.status.success(), "iscsi-readcapacity16 failed: {cap}");
    assert!(cap.contains("LOGICAL BLOCK LENGTH IN BYTES:512"), "{cap}");
    assert!(cap.contains(&format!("RETURNED LOGICAL BLOCK ADDRESS:{}", (64u64 << 20) / 512 - 1)), "{cap}");
}

#[test]
fn a_target_not_bound_to_the_initiator_is_refused() {
    require("iscsi-inq");
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "closed.img", 8 << 20);
    let iqn = "iqn.2026-11.org.example:closed";
    tgtd.new_target(2, iqn);
    tgtd.add_lun_ok(2, 1, &["--backing-store", image.to_str().unwrap()]);
    let out = run("iscsi-inq", &[&tgtd.url(iqn, 1)]);
    assert!(!out.status.success(), "login to an unbound target must fail: {}", text(&out));
}
