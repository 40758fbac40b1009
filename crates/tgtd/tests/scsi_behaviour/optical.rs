//! A CD/DVD LUN (`--device-type cd`) on the real daemon, driven through iSCSI: an ISO image made by
//! xorriso reads back byte for byte in 2048-byte blocks, writes are refused, and the operator's
//! disc changes (`--params media=`) reach the initiator as unit attentions and NOT READY, are
//! refused while the initiator prevents removal unless forced (`force=1`), and survive a restart on
//! the same state directory. QEMU's own iSCSI block driver copies the disc byte for byte.

use crate::common;

use common::initiator::{Connection, ScsiOutcome};
use common::Tgtd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const IQN: &str = "iqn.2026-11.org.rtgt.test:optical";
const BLOCK: usize = 2048;

/// Bytes that do not compress or repeat (xorshift), so a misplaced block cannot read as right.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An ISO 9660 image made by xorriso from a folder holding 3 MiB of noise and a small text file.
fn make_iso(dir: &Path) -> PathBuf {
    assert!(common::have("xorriso"), "xorriso is not installed: apt-get install -y xorriso (scripts/install-deps)");
    let content = dir.join("disc");
    std::fs::create_dir_all(&content).unwrap();
    std::fs::write(content.join("noise.bin"), noise(3 << 20, 0x5eed)).unwrap();
    std::fs::write(content.join("README.TXT"), "an rtgt test disc\n").unwrap();
    let iso = dir.join("disc.iso");
    let out =
        common::run("xorriso", &["-as", "mkisofs", "-quiet", "-o", iso.to_str().unwrap(), content.to_str().unwrap()]);
    assert!(out.status.success(), "xorriso: {}", common::text(&out));
    iso
}

fn read_capacity(conn: &mut Connection) -> ScsiOutcome {
    conn.scsi(1, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8).unwrap()
}

fn tur(conn: &mut Connection) -> ScsiOutcome {
    conn.scsi(1, &[0; 6], &[], 0).unwrap()
}

fn prevent(conn: &mut Connection, on: bool) -> ScsiOutcome {
    conn.scsi(1, &[0x1e, 0, 0, 0, on as u8, 0], &[], 0).unwrap()
}

/// Every block of the LUN, read with READ(10) 32 blocks at a time, equals `image` padded with
/// zeros to a whole block; READ CAPACITY says exactly that many blocks.
fn assert_serves(conn: &mut Connection, image: &[u8]) {
    let blocks = image.len().div_ceil(BLOCK);
    let cap = read_capacity(conn);
    assert_eq!(cap.status, 0, "READ CAPACITY: {:02x?}", cap.sense);
    let last = u32::from_be_bytes(cap.data_in[0..4].try_into().unwrap());
    let size = u32::from_be_bytes(cap.data_in[4..8].try_into().unwrap());
    assert_eq!((last as usize, size as usize), (blocks - 1, BLOCK));
    let mut expected = image.to_vec();
    expected.resize(blocks * BLOCK, 0);
    for first in (0..blocks).step_by(32) {
        let count = (blocks - first).min(32);
        let out = conn.read10(1, first as u32, count as u16, BLOCK as u32).unwrap();
        assert_eq!(out.status, 0, "READ(10) at {first}: {:02x?}", out.sense);
        assert!(out.data_in == expected[first * BLOCK..(first + count) * BLOCK], "blocks {first}+{count} differ");
    }
    let past = conn.read10(1, blocks as u32, 1, BLOCK as u32).unwrap();
    assert_eq!((past.status, past.sense_code()), (0x02, (0x05, 0x21, 0x00)), "a read past the last block");
}

/// `tgtadm --op update --params media=VALUE` on LUN 1 of target 1.
fn media(tgtd: &Tgtd, value: &str) -> std::process::Output {
    tgtd.update_lun(1, 1, &format!("media={value}"))
}

/// The show text of LUN 1 (up to the next LUN or the account list).
fn lun1_show(tgtd: &Tgtd) -> String {
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    let from = show.find("LUN: 1\n").unwrap_or_else(|| panic!("no LUN 1 in\n{show}"));
    let rest = &show[from..];
    let end = rest.find("Account information").unwrap_or(rest.len());
    rest[..end].to_string()
}

fn new_cd(tgtd: &Tgtd, iso: &Path) {
    tgtd.new_target(1, IQN);
    tgtd.add_lun_ok(1, 1, &["--device-type", "cd", "--backing-store", iso.to_str().unwrap()]);
    tgtd.bind(1, "--initiator-address", "ALL");
}

#[test]
fn an_iso_image_is_served_as_a_read_only_disc() {
    let tgtd = Tgtd::start();
    let iso = make_iso(tgtd.dir.path());
    let image = std::fs::read(&iso).unwrap();
    new_cd(&tgtd, &iso);
    // A drive has no sanitize journal: nothing is looked for, nothing is warned of.
    assert!(!tgtd.log().contains("sanitize"), "{}", tgtd.log());
    let mut conn = tgtd.session(IQN, 1, &[1]);

    let inq = conn.scsi(1, &[0x12, 0, 0, 0, 96, 0], &[], 96).unwrap();
    assert_eq!(inq.status, 0);
    assert_eq!(inq.data_in[0] & 0x1f, 0x05, "peripheral device type: CD/DVD");
    assert_ne!(inq.data_in[1] & 0x80, 0, "RMB: removable medium");
    assert_serves(&mut conn, &image);

    // GET CONFIGURATION: a 3 MiB image is a CD-ROM (profile 0008h).
    let config = conn.scsi(1, &[0x46, 0, 0, 0, 0, 0, 0, 0x10, 0, 0], &[], 4096).unwrap();
    assert_eq!(config.status, 0, "GET CONFIGURATION: {:02x?}", config.sense);
    assert_eq!(u16::from_be_bytes([config.data_in[6], config.data_in[7]]), 0x0008);

    let write = conn.write10(1, 0, &[0xaa; BLOCK], BLOCK as u32).unwrap();
    assert_eq!((write.status, write.sense_code()), (0x02, (0x07, 0x27, 0x00)), "WRITE(10) on a disc");
    assert_eq!(std::fs::read(&iso).unwrap(), image, "the image is untouched");

    let show = lun1_show(&tgtd);
    assert!(show.contains("Type: cd/dvd"), "{show}");
    assert!(show.contains(&format!("Backing store path: {}", iso.display())), "{show}");
    assert!(show.contains("Removable media: Yes") && show.contains("Readonly: Yes"), "{show}");

    // libiscsi's view (libiscsi-bin, scripts/install-deps): an MMC device.
    assert!(common::have("iscsi-inq"), "iscsi-inq is not installed: scripts/install-deps installs libiscsi-bin");
    let out = common::run("iscsi-inq", &[&tgtd.url(IQN, 1)]);
    assert!(out.status.success(), "iscsi-inq: {}", common::text(&out));
    let text = common::text(&out);
    assert!(text.to_lowercase().contains("mmc"), "iscsi-inq does not see an MMC device:\n{text}");
}

#[test]
fn disc_changes_reach_the_initiator_and_respect_prevention() {
    let tgtd = Tgtd::start();
    let iso = make_iso(tgtd.dir.path());
    // A second disc whose size is not a whole number of blocks: its last block ends in zeros.
    let other = noise(5 * BLOCK + 100, 0xd15c);
    let other_path = tgtd.dir.path().join("other.iso");
    std::fs::write(&other_path, &other).unwrap();
    new_cd(&tgtd, &iso);
    let mut conn = tgtd.session(IQN, 1, &[1]);
    assert_eq!(tur(&mut conn).status, 0);

    // Tray emptied: NOT READY, MEDIUM NOT PRESENT (after any unit attention).
    assert!(media(&tgtd, "none").status.success());
    let mut out = tur(&mut conn);
    if out.sense_code().0 == 0x06 {
        out = tur(&mut conn);
    }
    assert_eq!((out.status, out.sense_code().0, out.sense_code().1), (0x02, 0x02, 0x3a), "{:02x?}", out.sense);
    let read = conn.read10(1, 0, 1, BLOCK as u32).unwrap();
    assert_eq!((read.status, read.sense_code().1), (0x02, 0x3a), "a read from an empty tray");
    assert!(lun1_show(&tgtd).contains("Backing store path: None"));

    // Another disc: UNIT ATTENTION, NOT READY TO READY CHANGE, then the new disc's blocks.
    assert!(media(&tgtd, other_path.to_str().unwrap()).status.success());
    let out = tur(&mut conn);
    assert_eq!((out.status, out.sense_code()), (0x02, (0x06, 0x28, 0x00)));
    assert_eq!(tur(&mut conn).status, 0);
    assert_serves(&mut conn, &other);
    // A disc that does not exist is refused and the loaded one stays.
    assert!(!media(&tgtd, "/nonexistent/disc.iso").status.success());
    assert_eq!(tur(&mut conn).status, 0);

    // The initiator prevents removal: the operator cannot take the disc out.
    assert_eq!(prevent(&mut conn, true).status, 0);
    assert!(lun1_show(&tgtd).contains("Prevent removal: Yes"));
    let refused = media(&tgtd, "none");
    assert!(!refused.status.success(), "media=none while removal is prevented");
    let text = common::text(&refused);
    assert!(text.contains("prevent") && text.contains("force=1"), "{text}");
    assert_eq!(tur(&mut conn).status, 0, "the disc is still in");
    // Refused with another change in the same request: that one is not made either.
    assert!(!media(&tgtd, "none,online=0").status.success());
    assert!(lun1_show(&tgtd).contains("Online: Yes"), "a refused update took the LUN offline");
    // force=1 needs a disc change to force.
    let alone = tgtd.update_lun(1, 1, "force=1");
    assert!(!alone.status.success() && common::text(&alone).contains("media="), "{}", common::text(&alone));
    // Forced: the disc changes under the lock, the initiator is told, and its prevention stays.
    assert!(media(&tgtd, &format!("{},force=1", iso.display())).status.success(), "a forced change");
    let out = tur(&mut conn);
    assert_eq!((out.status, out.sense_code()), (0x02, (0x06, 0x28, 0x00)), "forced change: unit attention");
    assert_serves(&mut conn, &std::fs::read(&iso).unwrap());
    assert!(lun1_show(&tgtd).contains(&format!("Backing store path: {}", iso.display())));
    assert!(lun1_show(&tgtd).contains("Prevent removal: Yes"), "the initiator's lock outlives the forced change");
    assert_eq!(prevent(&mut conn, false).status, 0);
    assert!(media(&tgtd, "none").status.success(), "media=none once removal is allowed");
    let mut out = tur(&mut conn);
    if out.sense_code().0 == 0x06 {
        out = tur(&mut conn);
    }
    assert_eq!((out.status, out.sense_code().1), (0x02, 0x3a));
}

/// Kill tgtd and start another on the same state directory, once it has restored the saved
/// configuration ("tgtd ready" logged a second time).
fn restart(tgtd: Tgtd) -> Tgtd {
    let tgtd = tgtd.crash_and_restart(&[]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while tgtd.log().matches("tgtd ready").count() < 2 {
        assert!(Instant::now() < deadline, "tgtd did not get ready: {}", tgtd.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    tgtd
}

#[test]
fn the_loaded_disc_survives_a_restart() {
    let tgtd = Tgtd::start();
    let iso = make_iso(tgtd.dir.path());
    let image = std::fs::read(&iso).unwrap();
    let other = noise(7 * BLOCK, 0x0ddc);
    let other_path = tgtd.dir.path().join("other.iso");
    std::fs::write(&other_path, &other).unwrap();
    new_cd(&tgtd, &iso);

    // Restarted as created: a cd/dvd LUN with the first disc.
    let tgtd = restart(tgtd);
    let show = lun1_show(&tgtd);
    assert!(show.contains("Type: cd/dvd") && show.contains(&format!("path: {}", iso.display())), "{show}");
    let mut conn = tgtd.session(IQN, 1, &[1]);
    let inq = conn.scsi(1, &[0x12, 0, 0, 0, 36, 0], &[], 36).unwrap();
    assert_eq!(inq.data_in[0] & 0x1f, 0x05);
    assert_serves(&mut conn, &image);
    drop(conn);

    // Restarted after a disc change: the disc in the tray, not the one the LUN was created with.
    assert!(media(&tgtd, other_path.to_str().unwrap()).status.success());
    let tgtd = restart(tgtd);
    let show = lun1_show(&tgtd);
    assert!(show.contains("Type: cd/dvd") && show.contains(&format!("path: {}", other_path.display())), "{show}");
    let mut conn = tgtd.session(IQN, 1, &[1]);
    assert_serves(&mut conn, &other);
    drop(conn);

    // Restarted with an empty tray: still a cd/dvd LUN, still empty.
    assert!(media(&tgtd, "none").status.success());
    let tgtd = restart(tgtd);
    let show = lun1_show(&tgtd);
    assert!(show.contains("Type: cd/dvd") && show.contains("Backing store path: None"), "{show}\n{}", tgtd.log());
    let mut conn = tgtd.session(IQN, 1, &[]);
    let mut out = tur(&mut conn);
    if out.sense_code().0 == 0x06 {
        out = tur(&mut conn);
    }
    assert_eq!((out.status, out.sense_code().1), (0x02, 0x3a));
}

/// QEMU's own iSCSI block driver (libiscsi inside qemu-img) reads the drive as a CD-ROM: READ
/// CAPACITY(10) and 2048-byte READs, and `qemu-img convert` copies the disc byte for byte.
#[test]
fn qemu_img_copies_the_disc_over_iscsi() {
    let tgtd = Tgtd::start();
    let iso = make_iso(tgtd.dir.path());
    new_cd(&tgtd, &iso);
    let copy = tgtd.dir.path().join("copy.iso");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/qemu-img-iscsi");
    let out = std::process::Command::new(script)
        .args(["convert", "-O", "raw", &tgtd.url(IQN, 1)])
        .arg(&copy)
        .output()
        .expect("scripts/qemu-img-iscsi runs");
    assert!(out.status.success(), "qemu-img convert: {}", common::text(&out));
    let (image, copied) = (std::fs::read(&iso).unwrap(), std::fs::read(&copy).unwrap());
    assert_eq!(copied.len(), image.len(), "the copy's size");
    assert!(copied == image, "the copy differs from the disc");
}

/// `--op new --device-type cd` whose disc image is missing or empty: refused with a message that
/// names the file and says what is wrong, a nonzero exit, and no LUN left behind; a disc change to
/// such a file is refused the same way.
#[test]
fn a_missing_or_empty_disc_image_is_refused_at_creation() {
    let tgtd = Tgtd::start();
    tgtd.new_target(1, IQN);
    let missing = tgtd.dir.path().join("no-such.iso");
    let empty = tgtd.dir.path().join("empty.iso");
    std::fs::write(&empty, b"").unwrap();
    for (path, why) in [(&missing, "No such file"), (&empty, "empty")] {
        let out = tgtd.add_lun(1, 1, &["--device-type", "cd", "--backing-store", path.to_str().unwrap()]);
        let text = common::text(&out);
        assert!(!out.status.success(), "a cd on {} was accepted: {text}", path.display());
        assert!(text.contains(path.to_str().unwrap()) && text.contains(why), "unclear refusal: {text}");
        let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
        assert!(!show.contains("LUN: 1\n"), "a refused cd left a LUN:\n{show}");
    }
    // With a disc in the tray, neither replaces it.
    let iso = tgtd.dir.path().join("small.iso");
    std::fs::write(&iso, noise(4 * BLOCK, 0x150)).unwrap();
    tgtd.add_lun_ok(1, 1, &["--device-type", "cd", "--backing-store", iso.to_str().unwrap()]);
    for path in [&missing, &empty] {
        let out = media(&tgtd, path.to_str().unwrap());
        assert!(!out.status.success(), "media={} accepted: {}", path.display(), common::text(&out));
    }
    assert!(lun1_show(&tgtd).contains(&format!("Backing store path: {}", iso.display())));
}
