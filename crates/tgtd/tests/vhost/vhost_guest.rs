//! A real Linux guest on a vhost-user-scsi LUN: scripts/vhost-guest-test fetches Debian's QEMU 7.2
//! and kernel with apt (unpacked privately), builds an initramfs with busybox, sg3-utils and
//! e2fsprogs, and boots it under TCG against this build's tgtd. The guest checks INQUIRY and READ
//! CAPACITY, makes ext4, writes and verifies files; on the CD/DVD LUN beside the disk it finds
//! /dev/sr0, mounts the xorriso-made ISO as iso9660, checks a file's checksum, ejects the disc and
//! loads it again; then it drives a tape library (a changer LUN whose slots hold tapes made with
//! tgtimg, and a tape drive LUN) with the kernel's st, ch and sg drivers and Debian's mtx and mt-st:
//! mtx status lists the slots and barcodes, mtx load, GNU tar to /dev/nst0, mt weof, rewind,
//! fsf 1 and tell (positions checked), tar back and compare, mtx unload. It prints its verdict on
//! the serial console.

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
        .arg("--tgtimg")
        .arg(common::bin_dir().join("tgtimg"))
        .output()
        .expect("scripts/vhost-guest-test runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(output.status.success(), "the guest test failed:\n{stderr}");
    assert!(stderr.contains("RTGT-VERDICT: PASS"), "no verdict from the guest:\n{stderr}");
    // The guest measured its raw-LUN throughput before making the filesystem.
    assert!(stderr.contains("RTGT-DD-WRITE: ") && stderr.contains(" MB/s"), "{stderr}");
    // The CD/DVD LUN, step by step (each line is printed only once its check passed).
    for line in [
        "RTGT-CD-DEVICE: /dev/sr0 type 5 removable",
        "RTGT-CD-MOUNT: iso9660",
        "RTGT-CD-EJECT: tray open",
        "RTGT-CD-LOAD: readable again",
    ] {
        assert!(stderr.contains(line), "no '{line}' from the guest:\n{stderr}");
    }
    // The tape library, step by step.
    for line in [
        "RTGT-VTL-STATUS: 4 slots, VolumeTag=A0000001 VolumeTag=A0000002",
        "RTGT-VTL-LOAD: A0000001 in drive 0",
        "RTGT-VTL-POSITION: file 1 block 0, At block ",
        "RTGT-VTL-TAR: 3 files written and read back equal",
        "RTGT-VTL-UNLOAD: A0000001 back in slot 1",
    ] {
        assert!(stderr.contains(line), "no '{line}' from the guest:\n{stderr}");
    }
    let md5 = stderr.lines().find_map(|l| l.split("RTGT-CD-MD5: ").nth(1)).unwrap_or_else(|| panic!("{stderr}"));
    assert!(md5.len() == 32 + 3 && md5.ends_with(" ok"), "the guest's checksum line: {md5}");
}
