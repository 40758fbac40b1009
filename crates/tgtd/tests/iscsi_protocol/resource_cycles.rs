//! Thousands of short sessions leave nothing behind: after 2,000 connect/login/command/logout cycles
//! against the real daemon (some ending abruptly, some discovery sessions), tgtd has exactly the
//! descriptors it had before and its resident memory is back near where it started.

use crate::common;

use common::initiator::Connection;
use common::{sparse_image, Tgtd};
use std::time::{Duration, Instant};

const CYCLES: usize = 2000;
const IQN: &str = "iqn.2024-01.test:cycles";
/// Allocator slack: freed memory is not always handed back to the kernel at once.
const RSS_SLACK_KIB: u64 = 4096;

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("read /proc/PID/fd").count()
}

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS value")
}

/// One short session: log in, run a command, then log out (or, every `abrupt`-th time, just hang
/// up); every tenth cycle is a discovery session instead.
fn cycle(tgtd: &Tgtd, i: usize) {
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.isid[4..6].copy_from_slice(&(i as u16).to_be_bytes());
    if i % 10 == 9 {
        conn.login("iqn.2024-01.test:cycler", None, &[]).unwrap();
        let listed = conn.send_targets("All").unwrap();
        assert!(listed.iter().any(|(k, v)| k == "TargetName" && v == IQN), "{listed:?}");
    } else {
        conn.login("iqn.2024-01.test:cycler", Some(IQN), &[]).unwrap();
        // The first command of each nexus reports its unit attention; the second reads.
        let _ = conn.scsi(1, &[0u8; 6], &[], 0).unwrap();
        assert_eq!(conn.read10(1, i as u32 % 64, 8, 512).unwrap().status, 0);
    }
    if i % 7 != 3 {
        conn.logout().unwrap();
    }
}

/// Wait until the daemon's descriptor count settles at `want` (sessions end a moment after their
/// connection closes); returns the last count seen.
fn settle_fds(pid: i32, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = open_fds(pid);
        if now == want || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn two_thousand_sessions_leave_no_descriptors_or_memory_behind() {
    let _alone = common::heavy();
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "disk.img", 8 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let pid = tgtd.pid();
    // Warm up first: thread pools, buffer pools and the allocator's arenas reach their working size.
    for i in 0..100 {
        cycle(&tgtd, i);
    }
    std::thread::sleep(Duration::from_millis(200));
    let fds_before = open_fds(pid);
    let rss_before = rss_kib(pid);

    let started = Instant::now();
    for i in 0..CYCLES {
        cycle(&tgtd, i);
    }
    let elapsed = started.elapsed();

    let fds_after = settle_fds(pid, fds_before);
    let shown = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "conn", "--op", "show", "--tid", "1"]);
    let rss_after = rss_kib(pid);
    eprintln!("{CYCLES} cycles in {elapsed:?}: fds {fds_before} -> {fds_after}, VmRSS {rss_before} -> {rss_after} KiB");
    assert_eq!(fds_after, fds_before, "descriptors leaked");
    assert!(shown.trim().is_empty(), "sessions are left: {shown}");
    assert!(
        rss_after <= rss_before + RSS_SLACK_KIB,
        "resident memory grew from {rss_before} KiB to {rss_after} KiB over {CYCLES} sessions"
    );
}
