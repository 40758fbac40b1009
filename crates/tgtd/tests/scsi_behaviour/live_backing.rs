//! The backing file changes under a live LUN, or the LUN goes while commands run on it: clean
//! errors, never a crash, and the other LUNs carry on.
//! - truncated file: reads past its new end get MEDIUM ERROR, the rest reads as before;
//! - removed file: the open file is still served until the LUN is deleted;
//! - LUN deleted (tgtadm) with commands in flight: those end with LOGICAL UNIT NOT SUPPORTED at
//!   once, later ones too, and the other LUN of the target is untouched.

use crate::common;

use common::{sparse_image, Tgtd};
use std::time::{Duration, Instant};

const IQN: &str = "iqn.2026-11.org.rtgt.test:live";

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(29) ^ seed).collect()
}

/// A command that either succeeds or fails only because the unit is gone (after, perhaps, the
/// unit attention announcing the inventory change).
fn good_or_gone(out: &common::initiator::ScsiOutcome) -> bool {
    out.status == 0 || matches!(out.sense_code(), (0x05, 0x25, 0x00) | (0x06, 0x3f, 0x0e))
}

#[test]
fn truncated_and_removed_files_give_clean_answers() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "shrinking.img", 4 << 20);
    let other = sparse_image(tgtd.dir.path(), "other.img", 1 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    assert!(tgtd.add_lun(1, 2, &["--backing-store", other.to_str().unwrap()]).status.success());
    let mut conn = tgtd.session(IQN, 1, &[1, 2]);
    let low = pattern(8192, 1);
    let high = pattern(8192, 2);
    assert_eq!(conn.write10(1, 0, &low, 512).unwrap().status, 0);
    assert_eq!(conn.write10(1, 6000, &high, 512).unwrap().status, 0);

    // Cut the file to 1 MiB + 256 bytes: block 2048 is half there, 6000 is gone.
    std::fs::OpenOptions::new().write(true).open(&image).unwrap().set_len((1 << 20) + 256).unwrap();
    let out = conn.read10(1, 6000, 16, 512).unwrap();
    assert_eq!((out.status, out.sense_code(), out.information()), (0x02, (0x03, 0x11, 0x00), Some(6000)));
    assert!(out.data_in.is_empty(), "no data with a failed read");
    let out = conn.read10(1, 2040, 16, 512).unwrap();
    assert_eq!((out.status, out.sense_code()), (0x02, (0x03, 0x11, 0x00)), "a read across the new end");
    assert_eq!(conn.read10(1, 0, 16, 512).unwrap().data_in, low);
    // A write past the end grows the file again, and reads back.
    assert_eq!(conn.write10(1, 6000, &high, 512).unwrap().status, 0);
    assert_eq!(conn.read10(1, 6000, 16, 512).unwrap().data_in, high);

    // Removed: the open file still holds the data and takes writes.
    std::fs::remove_file(&image).unwrap();
    assert_eq!(conn.read10(1, 0, 16, 512).unwrap().data_in, low);
    let fresh = pattern(4096, 3);
    assert_eq!(conn.write10(1, 100, &fresh, 512).unwrap().status, 0);
    assert_eq!(conn.read10(1, 100, 8, 512).unwrap().data_in, fresh);
    assert_eq!(conn.scsi(1, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).unwrap().status, 0);
    tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "1"]);

    // The other LUN never noticed; the daemon is alive.
    let data = pattern(2048, 4);
    let mut out = conn.write10(2, 10, &data, 512).unwrap();
    if out.sense_code() == (0x06, 0x3f, 0x0e) {
        out = conn.write10(2, 10, &data, 512).unwrap();
    }
    assert_eq!(out.status, 0);
    assert_eq!(conn.read10(2, 10, 4, 512).unwrap().data_in, data);
    assert!(tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]).contains("other.img"));
}

#[test]
fn deleting_a_lun_under_io_ends_its_commands_and_spares_the_other() {
    let tgtd = Tgtd::start();
    let kept = sparse_image(tgtd.dir.path(), "kept.img", 4 << 20);
    let doomed = sparse_image(tgtd.dir.path(), "doomed.img", 4 << 20);
    tgtd.add_disk_target(1, IQN, &kept);
    // Every 20th read of LUN 2 waits 5 s: some command is in the store when the LUN goes.
    let out =
        tgtd.add_lun(1, 2, &["--backing-store", doomed.to_str().unwrap(), "--bsopts", "fault=read:delay=5s:every=20"]);
    assert!(out.status.success(), "{}", common::text(&out));

    let mut busy = tgtd.session(IQN, 1, &[2]);
    let mut steady = tgtd.session(IQN, 2, &[1]);
    let rounds_done = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|s| {
        let rounds_done = &rounds_done;
        let worker = s.spawn(move || {
            // Write and read LUN 2 until it is gone; every answer is data or "gone".
            let data = pattern(4096, 5);
            let mut done = 0u32;
            loop {
                let w = busy.write10(2, done % 1000 * 8, &data, 512).unwrap();
                let started = Instant::now();
                let r = busy.read10(2, done % 1000 * 8, 8, 512).unwrap();
                for out in [&w, &r] {
                    assert!(good_or_gone(out), "after {done} rounds: {:02x?}", out.sense);
                }
                if r.status == 0 {
                    assert_eq!(r.data_in, data);
                }
                if r.sense_code() == (0x05, 0x25, 0x00) || w.sense_code() == (0x05, 0x25, 0x00) {
                    return (done, started.elapsed(), busy);
                }
                done += 1;
                rounds_done.store(done, std::sync::atomic::Ordering::Relaxed);
            }
        });
        // Let it run into the 20th read, a delayed one, then delete the LUN.
        let deadline = Instant::now() + Duration::from_secs(20);
        while rounds_done.load(std::sync::atomic::Ordering::Relaxed) < 19 {
            assert!(Instant::now() < deadline, "the worker is stuck");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(300));
        tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "2"]);
        let deleted = Instant::now();
        let data = pattern(8192, 6);
        for i in 0..20u32 {
            let mut out = steady.write10(1, i * 16, &data, 512).unwrap();
            if out.sense_code() == (0x06, 0x3f, 0x0e) {
                out = steady.write10(1, i * 16, &data, 512).unwrap();
            }
            assert_eq!(out.status, 0, "LUN 1: {:02x?}", out.sense);
            assert_eq!(steady.read10(1, i * 16, 16, 512).unwrap().data_in, data);
        }
        let (rounds, last_wait, mut busy) = worker.join().unwrap();
        assert_eq!(rounds, 19, "the delayed read was the one ended");
        assert!(last_wait < Duration::from_secs(3), "the delayed read was not ended: {last_wait:?}");
        assert!(deleted.elapsed() < Duration::from_secs(4));
        // Later commands to the deleted LUN: not supported; the session itself is fine.
        let out = busy.read10(2, 0, 1, 512).unwrap();
        assert_eq!((out.status, out.sense_code()), (0x02, (0x05, 0x25, 0x00)));
        let ready = (0..4).any(|_| busy.scsi(1, &[0; 6], &[], 0).unwrap().status == 0);
        assert!(ready, "the session still serves LUN 1");
    });
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains("kept.img") && !show.contains("doomed.img"), "{show}");
}
