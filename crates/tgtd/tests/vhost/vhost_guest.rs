//! A real Linux guest on a vhost-user-scsi LUN: scripts/vhost-guest-test fetches Debian's QEMU 7.2
//! and kernel with apt (unpacked privately), builds an initramfs with busybox, sg3-utils and
//! e2fsprogs, and boots it under TCG against this build's tgtd. The guest checks INQUIRY and READ
//! CAPACITY, makes ext4, writes and verifies files, and prints its verdict on the serial console.

use crate::common;

use std::path::PathBuf;
use std::process::Command;

#[test]
fn linux_guest_uses_a_vhost_lun() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(repo.join("scripts/vhost-guest-test"))
        .arg("--tgtd")
        .arg(env!("CARGO_BIN_EXE_tgtd"))
        .arg("--tgtadm")
        .arg(common::tgtadm_path())
        .output()
        .expect("scripts/vhost-guest-test runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(output.status.success(), "the guest test failed:\n{stderr}");
    assert!(stderr.contains("RTGT-VERDICT: PASS"), "no verdict from the guest:\n{stderr}");
    // The guest measured its raw-LUN throughput before making the filesystem.
    assert!(stderr.contains("RTGT-DD-WRITE: ") && stderr.contains(" MB/s"), "{stderr}");
}
