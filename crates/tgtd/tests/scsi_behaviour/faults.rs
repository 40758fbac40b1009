//! Injected backing-store faults (`--bsopts fault=...`) through the real daemon over iSCSI: each
//! becomes the sense SBC-3 calls for, a failure flood is logged once, short transfers are completed
//! or reported, a latency spike on one LUN leaves another served, and a bad rule is refused clearly.

use crate::common;

use common::{sparse_image, Tgtd};
use std::time::{Duration, Instant};

const IQN: &str = "iqn.2026-11.org.rtgt.test:faults";
const LOG_LINE: &str = "backing store I/O failed";

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect()
}

/// A daemon with target 1: LUN 1 on `faulty.img` behind `bsopts` (plus `params`), LUN 2 on a plain
/// file.
fn daemon(bsopts: &str, params: Option<&str>) -> Tgtd {
    let tgtd = Tgtd::start();
    let plain = sparse_image(tgtd.dir.path(), "plain.img", 4 << 20);
    let faulty = sparse_image(tgtd.dir.path(), "faulty.img", 4 << 20);
    tgtd.add_disk_target(1, IQN, &plain);
    tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "1"]);
    let mut args = vec!["--backing-store", faulty.to_str().unwrap(), "--bsopts", bsopts];
    if let Some(p) = params {
        args.extend_from_slice(&["--params", p]);
    }
    let out = tgtd.add_lun(1, 1, &args);
    assert!(out.status.success(), "{}", common::text(&out));
    let out = tgtd.add_lun(1, 2, &["--backing-store", plain.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out));
    tgtd
}

#[test]
fn injected_errors_become_sbc_sense_and_a_flood_is_logged_once() {
    let tgtd = daemon(
        "fault=read:eio:lba=100-199;fault=write:eio:lba=300-309;fault=write:enospc:lba=400-499",
        Some("thin_provisioning=1"),
    );
    let mut conn = tgtd.session(IQN, 1, &[1, 2]);

    // EIO on read: MEDIUM ERROR, UNRECOVERED READ ERROR at the first bad block (SBC-3 4.15).
    let out = conn.read10(1, 96, 8, 512).unwrap();
    assert_eq!(out.status, 0x02);
    assert_eq!(out.sense_code(), (0x03, 0x11, 0x00));
    assert_eq!(out.information(), Some(100));
    // EIO on write: MEDIUM ERROR, WRITE ERROR.
    let out = conn.write10(1, 305, &pattern(1024, 1), 512).unwrap();
    assert_eq!((out.status, out.sense_code(), out.information()), (0x02, (0x03, 0x0c, 0x00), Some(305)));
    // ENOSPC on a thin LUN: DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT (SBC-3 4.7.3.6).
    let out = conn.write10(1, 400, &pattern(512, 2), 512).unwrap();
    assert_eq!((out.status, out.sense_code()), (0x02, (0x07, 0x27, 0x07)));
    // Outside the ranges the same LUN works.
    let data = pattern(4096, 3);
    assert_eq!(conn.write10(1, 0, &data, 512).unwrap().status, 0);
    assert_eq!(conn.read10(1, 0, 8, 512).unwrap().data_in, data);

    // A flood of failing commands: every one fails, the log has one line for them all.
    for _ in 0..100 {
        let out = conn.read10(1, 150, 1, 512).unwrap();
        assert_eq!(out.sense_code(), (0x03, 0x11, 0x00));
    }
    // The other LUN is served meanwhile, on the same session.
    let other = pattern(8192, 4);
    assert_eq!(conn.write10(2, 64, &other, 512).unwrap().status, 0);
    assert_eq!(conn.read10(2, 64, 16, 512).unwrap().data_in, other);
    let log = tgtd.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(LOG_LINE)).collect();
    assert_eq!(lines.len(), 1, "one log line for 103 failures: {lines:#?}");
    assert!(lines[0].contains("faulty.img") && lines[0].contains("Input/output error"), "{}", lines[0]);
    assert!(log.contains("fault injection is on"), "{log}");
    // The daemon still answers its administrator.
    assert!(tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]).contains(IQN));
}

#[test]
fn short_transfers_are_completed_or_reported_never_half_acknowledged() {
    // Every other transfer stops half-way: the target asks again for the rest.
    let tgtd = daemon("fault=read:short:every=2,fault=write:short:every=2", None);
    let mut conn = tgtd.session(IQN, 1, &[1]);
    let data = pattern(64 << 10, 5);
    for round in 0..3u32 {
        let out = conn.write10(1, 1000 + round * 128, &data, 512).unwrap();
        assert_eq!(out.status, 0, "round {round}: {:02x?}", out.sense);
        let back = conn.read10(1, 1000 + round * 128, 128, 512).unwrap();
        assert_eq!(back.status, 0);
        assert!(back.data_in == data, "round {round}: data read back differs");
    }
    let file = std::fs::read(tgtd.dir.path().join("faulty.img")).unwrap();
    assert!(file[1000 * 512..1000 * 512 + data.len()] == data[..], "the file holds every byte");

    // Transfers that never get past block 20: reported with its LBA, not acknowledged.
    let tgtd = daemon("fault=write:short:lba=20-21;fault=read:short:lba=20-21", None);
    let mut conn = tgtd.session(IQN, 1, &[1]);
    let out = conn.write10(1, 16, &pattern(4096, 6), 512).unwrap();
    assert_eq!((out.status, out.sense_code(), out.information()), (0x02, (0x03, 0x0c, 0x00), Some(20)));
    let out = conn.read10(1, 16, 8, 512).unwrap();
    assert_eq!((out.status, out.sense_code(), out.information()), (0x02, (0x03, 0x11, 0x00), Some(20)));
}

#[test]
fn a_latency_spike_on_one_lun_does_not_stall_another() {
    let tgtd = daemon("fault=read:delay=3s", None);
    let portal_tgtd = &tgtd;
    let mut slow = tgtd.session(IQN, 1, &[1]);
    let mut fast = tgtd.session(IQN, 2, &[2]);
    std::thread::scope(|s| {
        let started = Instant::now();
        let slow_read = s.spawn(move || {
            let out = slow.read10(1, 0, 8, 512).unwrap();
            (out.status, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        let data = pattern(4096, 7);
        for i in 0..50u32 {
            assert_eq!(fast.write10(2, i * 8, &data, 512).unwrap().status, 0);
            assert_eq!(fast.read10(2, i * 8, 8, 512).unwrap().data_in, data);
        }
        let fast_done = started.elapsed();
        assert!(!slow_read.is_finished(), "the delayed read should still be waiting");
        assert!(fast_done < Duration::from_millis(2500), "LUN 2 waited for LUN 1: {fast_done:?}");
        let (status, slow_done) = slow_read.join().unwrap();
        assert_eq!(status, 0, "a delayed read still succeeds");
        assert!(slow_done >= Duration::from_secs(3), "{slow_done:?}");
        // The management socket was not stalled either.
        assert!(portal_tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]).contains(IQN));
    });
}

#[test]
fn a_bad_fault_rule_is_refused_with_the_reason() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "x.img", 1 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    for (bsopts, reason) in [
        ("fault=read:eoi", "unknown effect 'eoi'"),
        ("fault=rread:eio", "unknown operation 'rread'"),
        ("fault=flush:short", "read and write only"),
        ("fault=read:eio:lba=9-3", "empty"),
    ] {
        let out = tgtd.add_lun(1, 2, &["--backing-store", image.to_str().unwrap(), "--bsopts", bsopts]);
        let text = common::text(&out);
        assert!(!out.status.success(), "{bsopts} was accepted");
        assert!(text.contains(reason) && text.contains("OPS:EFFECT"), "{bsopts}: {text}");
    }
    assert!(!tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]).contains("LUN: 2"));
}
