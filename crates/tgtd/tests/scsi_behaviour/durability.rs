//! Acknowledged writes survive a crash, and the caching mode page tells the truth: a FUA write and a
//! write followed by SYNCHRONIZE CACHE read back after `kill -9` and a restart on the saved state;
//! WCE is 1 for a plain file or O_DIRECT and 0 for O_SYNC, and the daemon really opens the file with
//! the flags asked for (checked in /proc/PID/fdinfo). A sanitize cut short by a crash is finished
//! after the restart.

use crate::common;

use common::{sparse_image, Tgtd};
use std::path::Path;

const IQN: &str = "iqn.2026-11.org.rtgt.test:durable";
const O_DIRECT: u32 = 0o40000;
const O_SYNC: u32 = 0o4010000;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

fn write10(fua: bool, lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let b = blocks.to_be_bytes();
    [0x2a, if fua { 0x08 } else { 0 }, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0]
}

#[test]
fn fua_and_synchronized_writes_survive_kill_9_and_restart() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "durable.img", 8 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let mut conn = tgtd.session(IQN, 1, &[1]);
    let fua_data = pattern(64 << 10, 1);
    let out = conn.scsi(1, &write10(true, 100, 128), &fua_data, 0).unwrap();
    assert_eq!(out.status, 0, "{:02x?}", out.sense);
    let cached = pattern(32 << 10, 2);
    assert_eq!(conn.scsi(1, &write10(false, 5000, 64), &cached, 0).unwrap().status, 0);
    let out = conn.scsi(1, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).unwrap();
    assert_eq!(out.status, 0, "SYNCHRONIZE CACHE: {:02x?}", out.sense);
    drop(conn);

    // The LUN comes back from the saved state, on the same file.
    let tgtd = tgtd.crash_and_restart(&[]);
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains(image.to_str().unwrap()), "LUN not restored: {show}");
    let mut conn = tgtd.session(IQN, 2, &[1]);
    let back = conn.read10(1, 100, 128, 512).unwrap();
    assert_eq!(back.status, 0);
    assert!(back.data_in == fua_data, "the FUA write was lost");
    let back = conn.read10(1, 5000, 64, 512).unwrap();
    assert!(back.data_in == cached, "the synchronized write was lost");
    let file = std::fs::read(&image).unwrap();
    assert!(file[100 * 512..100 * 512 + fua_data.len()] == fua_data[..]);
    assert!(file[5000 * 512..5000 * 512 + cached.len()] == cached[..]);
}

/// WCE from MODE SENSE(6) of the caching page (DBD set: the page follows the 4-byte header).
fn wce(conn: &mut common::initiator::Connection, lun: u64) -> bool {
    let out = conn.scsi(lun, &[0x1a, 0x08, 0x08, 0, 255, 0], &[], 255).unwrap();
    assert_eq!(out.status, 0, "MODE SENSE: {:02x?}", out.sense);
    assert_eq!(&out.data_in[4..6], [0x08, 0x12], "caching page");
    out.data_in[6] & 0x04 != 0
}

/// The open flags of tgtd's descriptors on `path` (from /proc/PID/fdinfo).
fn open_flags(pid: i32, path: &Path) -> Vec<u32> {
    let mut flags = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().flatten() {
        if std::fs::read_link(fd.path()).ok().as_deref() != Some(path) {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_str().unwrap()));
        let Ok(info) = info else { continue };
        let line = info.lines().find_map(|l| l.strip_prefix("flags:")).expect("flags line");
        flags.push(u32::from_str_radix(line.trim(), 8).unwrap());
    }
    flags
}

#[test]
fn wce_tells_the_truth_and_bsoflags_reach_the_open_file() {
    // tmpfs may refuse O_DIRECT; /var/tmp is normally on disk.
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let tgtd = Tgtd::start();
    let plain = sparse_image(dir.path(), "plain.img", 4 << 20);
    let sync = sparse_image(dir.path(), "sync.img", 4 << 20);
    let direct = sparse_image(dir.path(), "direct.img", 4 << 20);
    tgtd.add_disk_target(1, IQN, &plain);
    let out = tgtd.add_lun(1, 2, &["--backing-store", sync.to_str().unwrap(), "--bsoflags", "sync"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let out = tgtd.add_lun(1, 3, &["--backing-store", direct.to_str().unwrap(), "--bsoflags", "direct"]);
    let have_direct = out.status.success();
    if !have_direct {
        let text = common::text(&out);
        assert!(text.contains("O_DIRECT"), "direct refused without saying why: {text}");
        eprintln!("SKIPPED the O_DIRECT LUN: {text}");
    }
    let luns: &[u64] = if have_direct { &[1, 2, 3] } else { &[1, 2] };
    let mut conn = tgtd.session(IQN, 1, luns);

    assert!(wce(&mut conn, 1), "a plain file has a volatile cache");
    assert!(!wce(&mut conn, 2), "O_SYNC is write-through");
    let pid = tgtd.pid();
    let flags = open_flags(pid, &plain);
    assert!(!flags.is_empty() && flags.iter().all(|f| f & (O_SYNC | O_DIRECT) == 0), "{flags:?}");
    let flags = open_flags(pid, &sync);
    assert!(!flags.is_empty() && flags.iter().all(|f| f & O_SYNC == O_SYNC), "{flags:?}");
    if have_direct {
        assert!(wce(&mut conn, 3), "O_DIRECT alone leaves the device's cache volatile");
        let flags = open_flags(pid, &direct);
        assert!(!flags.is_empty() && flags.iter().all(|f| f & O_DIRECT != 0), "{flags:?}");
    }
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains("Backing store flags: sync"), "{show}");

    // Data goes through every LUN, odd sizes and FUA included, and lands in the files.
    for (lun, path) in [(1u64, &plain), (2, &sync), (3, &direct)] {
        if lun == 3 && !have_direct {
            continue;
        }
        let data = pattern(3 * 512, lun as u8);
        for (fua, lba) in [(false, 7u32), (true, 801)] {
            let out = conn.scsi(lun, &write10(fua, lba, 3), &data, 0).unwrap();
            assert_eq!(out.status, 0, "LUN {lun}: {:02x?}", out.sense);
            assert_eq!(conn.read10(lun, lba, 3, 512).unwrap().data_in, data);
        }
        let file = std::fs::read(path).unwrap();
        assert_eq!(&file[801 * 512..804 * 512], &data[..], "LUN {lun}");
    }

    // MODE SELECT turning WCE off on the plain LUN is reported back.
    let mut page = vec![0u8, 0, 0, 0];
    let mut caching = conn.scsi(1, &[0x1a, 0x08, 0x08, 0, 255, 0], &[], 255).unwrap().data_in[4..24].to_vec();
    caching[2] &= !0x04;
    caching[0] &= 0x7f; // PS is reserved in MODE SELECT
    page.extend_from_slice(&caching);
    let out = conn.scsi(1, &[0x15, 0x10, 0, 0, page.len() as u8, 0], &page, 0).unwrap();
    assert_eq!(out.status, 0, "MODE SELECT: {:02x?}", out.sense);
    assert!(!wce(&mut conn, 1));
}

/// (sense key, ASC, ASCQ) of TEST UNIT READY on `lun`, or None when it is GOOD.
fn tur(conn: &mut common::initiator::Connection, lun: u64) -> Option<(u8, u8, u8)> {
    let out = conn.scsi(lun, &[0; 6], &[], 0).unwrap();
    (out.status != 0).then(|| out.sense_code())
}

/// The `next_lba` of the sanitize journal at `path` (0 while it has none or no file).
fn saved_progress(path: &Path) -> u64 {
    let Ok(text) = std::fs::read(path) else { return 0 };
    let entry: serde_json::Value = serde_json::from_slice(&text).unwrap();
    entry["next_lba"].as_u64().unwrap_or(0)
}

/// A sanitize cut short by `kill -9` starts again when the LUN comes back (its journal under the
/// state directory says it had not finished), so the medium is never left half-sanitized and
/// readable; it resumes from the progress the journal had saved rather than from the beginning;
/// once it completes the journal is gone and the next restart finds a plain disk.
#[test]
fn a_sanitize_cut_short_by_kill_9_is_finished_after_the_restart() {
    let tgtd = Tgtd::start();
    let plain = sparse_image(tgtd.dir.path(), "plain.img", 1 << 20);
    let image = sparse_image(tgtd.dir.path(), "sanitized.img", 16 << 20);
    tgtd.add_disk_target(1, IQN, &plain);
    // Every write waits 300 ms: the overwrite's sixteen 1 MiB writes take about 5 s.
    let bs = ["--backing-store", image.to_str().unwrap(), "--bsopts", "fault=write:delay=300ms"];
    let out = tgtd.add_lun(1, 2, &bs);
    assert!(out.status.success(), "{}", common::text(&out));
    let mut conn = tgtd.session(IQN, 1, &[2]);
    let old = pattern(4096, 9);
    assert_eq!(conn.scsi(2, &write10(true, 32000, 8), &old, 0).unwrap().status, 0);
    // SANITIZE OVERWRITE with IMMED, one pass of 0x5a.
    let out = conn.scsi(2, &[0x48, 0x81, 0, 0, 0, 0, 0, 0, 5, 0], &[0x01, 0, 0, 1, 0x5a], 0).unwrap();
    assert_eq!(out.status, 0, "{:02x?}", out.sense);
    // The journal saves the progress every 1% of the disk (here after each 1 MiB write, flushed).
    let journal = tgtd.dir.path().join("state/sanitize").join(IQN).join("lun-2.json");
    let begun = std::time::Instant::now();
    let saved = loop {
        let next_lba = saved_progress(&journal);
        if next_lba > 0 {
            break next_lba;
        }
        assert!(begun.elapsed() < std::time::Duration::from_secs(3), "no progress saved in the journal");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(saved % 2048 == 0 && saved < 32768, "saved progress {saved}");
    assert_eq!(tur(&mut conn, 2), Some((0x02, 0x04, 0x1b)));
    drop(conn);

    // The journal says a sanitize is unfinished; the LUN comes back (without the injected delay,
    // which is not saved) and the sanitize resumes where the journal says, so it ends quickly now.
    let tgtd = tgtd.crash_and_restart(&[]);
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains(image.to_str().unwrap()), "LUN not restored: {show}");
    let mut conn = tgtd.session(IQN, 2, &[]);
    let begun = std::time::Instant::now();
    while tur(&mut conn, 2).is_some_and(|s| s == (0x02, 0x04, 0x1b) || s.0 == 0x06) {
        assert!(begun.elapsed() < std::time::Duration::from_secs(60), "the sanitize never ended");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(tur(&mut conn, 2), None);
    let back = conn.read10(2, 32000, 8, 512).unwrap();
    assert!(back.data_in == vec![0x5a; 4096], "old data left after the sanitize");
    assert!(std::fs::read(&image).unwrap().iter().all(|&b| b == 0x5a), "the file is not all pattern");
    assert!(!journal.exists(), "the journal outlived the sanitize");
    let log = tgtd.log();
    assert!(log.contains("a sanitize interrupted by the last stop starts again"));
    let resumed_at: u64 = log
        .split("resuming sanitize at LBA ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no \"resuming sanitize at LBA\" in the log:\n{log}"));
    // The sanitize kept going between the journal read above and the kill.
    assert!(resumed_at >= saved && resumed_at < 32768, "resumed at {resumed_at}, {saved} was saved");
    drop(conn);

    let tgtd = tgtd.crash_and_restart(&[]);
    let mut conn = tgtd.session(IQN, 3, &[2]);
    assert_eq!(tur(&mut conn, 2), None);
}
