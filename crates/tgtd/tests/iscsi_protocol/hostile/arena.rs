//! Where each hostile case runs: the real tgtd with one disk, a well-behaved bystander session
//! that writes, reads back and compares after every attack, and the daemon's own figures
//! (VmRSS and open descriptors from /proc) taken before and after.

use crate::common::initiator::Connection;
use crate::common::{sparse_image, Tgtd};
use crate::hostile::wire::{pattern, BLOCK, LUN};
use std::time::{Duration, Instant};

pub const IQN: &str = "iqn.2026-11.org.rtgt.test:hostile";
pub const HOSTILE: &str = "iqn.2026-11.org.rtgt.test:hostile-client";
const BYSTANDER: &str = "iqn.2026-11.org.rtgt.test:bystander";
/// The login timeout the daemon runs with here, in seconds (`--iscsi login_timeout=`).
pub const LOGIN_TIMEOUT_SECS: u64 = 2;
/// How much the daemon's resident memory may grow over one test's attacks.
pub const RSS_GROWTH_LIMIT_KIB: u64 = 32 * 1024;
/// The bystander's blocks; the hostile clients write elsewhere.
const BYSTANDER_LBA: u32 = 16 * 1024;

pub struct Arena {
    pub tgtd: Tgtd,
    bystander: Connection,
    round: u8,
    next_isid: u8,
    rss_start_kib: u64,
    fds_start: usize,
}

/// A /proc/PID/status field in kB.
pub fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the daemon is gone");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB")
}

/// The first commands of a new nexus report unit attentions (power on, LUNs added): take them
/// with TEST UNIT READY so that the cases see only their own answers.
fn clear_unit_attentions(conn: &mut Connection) {
    let ready = (0..5).any(|_| conn.scsi(LUN, &[0u8; 6], &[], 0).expect("TEST UNIT READY").status == 0);
    assert!(ready, "the disk never became ready");
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

impl Arena {
    pub fn start() -> Arena {
        Arena::start_with(&[])
    }

    /// `start`, with more `--iscsi` options for the daemon (e.g. a small `read_budget=`).
    pub fn start_with(iscsi: &[&str]) -> Arena {
        let mut options = vec![format!("login_timeout={LOGIN_TIMEOUT_SECS}")];
        options.extend(iscsi.iter().map(|o| o.to_string()));
        let options = options.join(",");
        // Spliced READs on (`RTGT_SPLICE_READS=on`): the attacks meet that path too.
        let tgtd =
            Tgtd::start_in_env(tempfile::tempdir().unwrap(), &["--iscsi", &options], &[("RTGT_SPLICE_READS", "on")]);
        let image = sparse_image(tgtd.dir.path(), "hostile.img", 128 << 20);
        tgtd.add_disk_target(1, IQN, &image);
        let mut bystander = Connection::connect(tgtd.portal()).unwrap();
        bystander.isid = [0x80, 0, 0, 0x0b, 0x0b, 0x0b];
        bystander.login(BYSTANDER, Some(IQN), &[]).expect("the bystander logs in");
        clear_unit_attentions(&mut bystander);
        let mut arena = Arena { tgtd, bystander, round: 0, next_isid: 0, rss_start_kib: 0, fds_start: 0 };
        // One round first, so buffers every session needs anyway are in the baseline.
        arena.check("start");
        // And a READ large enough to be spliced (64 KiB): the pipe the bystander's connection then
        // keeps for its next reads is in the baseline too.
        arena.read(BYSTANDER_LBA, 128);
        arena.rss_start_kib = status_kib(arena.pid(), "VmRSS:");
        arena.fds_start = open_fds(arena.pid());
        arena
    }

    pub fn pid(&self) -> i32 {
        self.tgtd.pid()
    }

    /// A raw connection of the hostile client (not logged in), with an ISID of its own so that
    /// its sessions never reinstate each other.
    pub fn connect(&mut self) -> Connection {
        let mut conn = Connection::connect(self.tgtd.portal()).unwrap();
        self.next_isid = self.next_isid.wrapping_add(1);
        conn.isid = [0x80, 0, 0, 0x66, 0x66, self.next_isid];
        conn
    }

    /// A logged-in hostile session with these operational keys besides the defaults.
    pub fn login(&mut self, extra: &[(&str, &str)]) -> Connection {
        let mut conn = self.connect();
        conn.login(HOSTILE, Some(IQN), extra).expect("the hostile client logs in");
        clear_unit_attentions(&mut conn);
        conn
    }

    /// The daemon still runs and the bystander's WRITE, READ and compare succeed.
    pub fn check(&mut self, after: &str) {
        if let Some(status) = self.tgtd.child.try_wait().unwrap() {
            panic!("tgtd died after {after} ({status}): {}", self.tgtd.log());
        }
        self.round = self.round.wrapping_add(1);
        let lba = BYSTANDER_LBA + (self.round as u32 % 16) * 16;
        let data = pattern(16 * BLOCK, self.round);
        let w = self.bystander.write10(LUN, lba, &data, BLOCK as u32).unwrap_or_else(|e| {
            panic!("the bystander's WRITE after {after}: {e}\n{}", self.tgtd.log());
        });
        assert_eq!(w.status, 0, "the bystander's WRITE after {after}");
        let r = self.bystander.read10(LUN, lba, 16, BLOCK as u32).unwrap_or_else(|e| {
            panic!("the bystander's READ after {after}: {e}\n{}", self.tgtd.log());
        });
        assert_eq!(r.status, 0, "the bystander's READ after {after}");
        assert!(r.data_in == data, "the bystander read back other data after {after}");
    }

    /// Consume the bystander's pending unit attentions (after a task management function of
    /// another session told every nexus something).
    pub fn clear_bystander_unit_attentions(&mut self) {
        clear_unit_attentions(&mut self.bystander);
    }

    /// Blocks as they are on the disk now, read by the bystander.
    pub fn read(&mut self, lba: u32, blocks: u16) -> Vec<u8> {
        let r = self.bystander.read10(LUN, lba, blocks, BLOCK as u32).expect("the bystander's READ");
        assert_eq!(r.status, 0);
        r.data_in
    }

    /// The blocks were never written (a refused or discarded command left them alone).
    pub fn assert_unwritten(&mut self, lba: u32, blocks: u16, what: &str) {
        let data = self.read(lba, blocks);
        assert!(data.iter().all(|&b| b == 0), "{what}: the refused data reached the disk");
    }

    /// Resident memory now, minus at the start, in KiB (negative growth counts as none).
    pub fn rss_growth_kib(&self) -> u64 {
        status_kib(self.pid(), "VmRSS:").saturating_sub(self.rss_start_kib)
    }

    pub fn assert_memory_bounded(&self, after: &str) {
        let growth = self.rss_growth_kib();
        eprintln!("tgtd VmRSS grew by {growth} KiB after {after}");
        assert!(
            growth < RSS_GROWTH_LIMIT_KIB,
            "tgtd's resident memory grew by {growth} KiB after {after} (limit {RSS_GROWTH_LIMIT_KIB} KiB)"
        );
    }

    /// The end of a test: every hostile connection the test dropped is gone from the daemon too
    /// (no descriptor left behind), memory stayed bounded, and the bystander still works.
    pub fn finish(mut self, test: &str) {
        self.check(test);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let fds = open_fds(self.pid());
            if fds <= self.fds_start {
                break;
            }
            assert!(Instant::now() < deadline, "{test}: tgtd holds {fds} descriptors, {} before", self.fds_start);
            std::thread::sleep(Duration::from_millis(50));
        }
        self.assert_memory_bounded(test);
    }
}
