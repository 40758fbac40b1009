//! A busy tape drive keeps only its own commands waiting: while one command moves over a long
//! tape, the commands queued behind it wait without holding any of the daemon's runtime workers,
//! so other targets' sessions and the management socket answer as usual.

use crate::common;
use crate::tape::{new_tape, rtgt_tgtimg};

use common::initiator::ScsiOutcome;
use common::Tgtd;
use std::sync::mpsc;
use std::time::Duration;

const TAPE_IQN: &str = "iqn.2026-11.org.rtgt.test:busy-tape";
const DISK_IQN: &str = "iqn.2026-11.org.rtgt.test:busy-disk";
/// As many runtime workers as the daemon gets here; more commands than that wait on the drive.
const WORKERS: usize = 2;
/// How long another target's READ and a management request may take while the drive is busy:
/// generous for a loaded machine, far below the seconds the drive stays busy.
const BOUND: Duration = Duration::from_secs(3);

/// Run `f` on its own thread; its result, or None when it takes longer than `bound`.
fn within<T: Send + 'static>(bound: Duration, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    result.recv_timeout(bound).ok()
}

#[test]
fn a_tape_drive_busy_for_long_leaves_other_targets_and_management_answering() {
    let _heavy = common::heavy();
    let tgtd = Tgtd::start_in_env(tempfile::tempdir().unwrap(), &[], &[("TOKIO_WORKER_THREADS", &WORKERS.to_string())]);
    // A tape of 1 GiB: writing WRITE FILEMARKS' largest count (16M marks, 48 bytes each) takes
    // many seconds, however fast the machine.
    let tape = new_tape(&rtgt_tgtimg(), tgtd.dir.path(), "B00000001", 1024, "data");
    tgtd.new_target(1, TAPE_IQN);
    tgtd.add_lun_ok(1, 1, &["--device-type", "tape", "--backing-store", tape.to_str().unwrap()]);
    tgtd.bind(1, "--initiator-address", "ALL");
    let disk = common::sparse_image(tgtd.dir.path(), "disk.img", 1 << 20);
    tgtd.add_disk_target(2, DISK_IQN, &disk);

    // Every session logs in before the drive gets busy.
    let mut disk_conn = tgtd.session(DISK_IQN, 1, &[1]);
    assert_eq!(disk_conn.read10(1, 0, 1, 512).unwrap().status, 0);
    let mut writer = tgtd.session(TAPE_IQN, 2, &[1]);
    let waiters: Vec<_> = (0..2 * WORKERS as u8).map(|i| tgtd.session(TAPE_IQN, 3 + i, &[1])).collect();

    // The drive busy for long: WRITE FILEMARKS with the largest count.
    let (written, writer_done) = mpsc::channel::<ScsiOutcome>();
    std::thread::spawn(move || {
        if let Ok(r) = writer.scsi(1, &[0x10, 0, 0xff, 0xff, 0xff, 0], &[], 0) {
            let _ = written.send(r);
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    // More commands queued on the drive than the daemon has workers.
    for mut conn in waiters {
        std::thread::spawn(move || conn.scsi(1, &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 20));
    }
    std::thread::sleep(Duration::from_millis(500));

    // Another target's disk answers a READ, and the management socket a `show`, meanwhile.
    let read = within(BOUND, move || disk_conn.read10(1, 0, 1, 512).map(|r| r.status).ok());
    assert_eq!(read, Some(Some(0)), "the disk's READ was not answered within {BOUND:?} while the tape drive was busy");
    let socket = tgtd.socket.clone();
    let show = within(BOUND, move || {
        std::process::Command::new(common::tgtadm_path())
            .arg("--control-socket")
            .arg(&socket)
            .args(["--lld", "iscsi", "--mode", "target", "--op", "show"])
            .output()
            .map(|o| o.status.success())
            .ok()
    });
    assert_eq!(show, Some(Some(true)), "tgtadm show was not answered within {BOUND:?} while the tape drive was busy");
    // The drive was busy all along (else this test proved nothing).
    assert!(
        writer_done.try_recv().is_err(),
        "the WRITE FILEMARKS ended before the checks: the tape is too short to keep the drive busy"
    );
    // The daemon is killed with the marks still being written.
}
