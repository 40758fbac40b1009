//! The VMM side of a connection: reconnections leak nothing, and a front-end that changes the
//! CDB or sense size ends the connection.

use super::*;

/// A VMM that connects and goes away again and again (VM restarts over months of uptime) must not
/// cost the daemon a file descriptor or a thread each time. File descriptors are per process and the other
/// tests of this binary open and close theirs concurrently, so the count runs in a child process
/// that runs only this test.
#[test]
fn reconnections_leak_no_file_descriptors() {
    const CHILD: &str = "RTGT_VHOST_FD_COUNT_CHILD";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "reconnection::reconnections_leak_no_file_descriptors",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran the count: {text}");
        return;
    }
    let f = fixture();
    let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    // The library's epoll threads, by name: the next connection's daemon has started its own.
    let workers = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter(|t| {
                let comm = std::fs::read_to_string(t.as_ref().unwrap().path().join("comm")).unwrap_or_default();
                comm.trim() == "vring_worker"
            })
            .count()
    };
    let mut counts = Vec::new();
    for _ in 0..8 {
        {
            let mut vmm = Vmm::connect(&f.socket);
            let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
            assert_eq!(sense_triple(&r.sense), (0x06, 0x29, 0x00));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while f.device.connected() || !f.target.nexuses().is_empty() {
            assert!(Instant::now() < deadline, "the guest's nexus was not removed");
            std::thread::sleep(Duration::from_millis(5));
        }
        // The old daemon goes and the next one (its epoll thread started) waits in accept(2); what
        // is still being released only adds to the count, so the least of a few samples is kept.
        let deadline = Instant::now() + Duration::from_secs(10);
        while workers() != 1 {
            assert!(Instant::now() < deadline, "{} epoll threads after the connection ended", workers());
            std::thread::sleep(Duration::from_millis(5));
        }
        let least = (0..10)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(10));
                open_fds()
            })
            .min()
            .unwrap();
        counts.push(least);
        assert_eq!(workers(), 1, "the ended connection's epoll thread is gone");
    }
    // The first connection may open what later ones reuse (runtime, backing file).
    assert!(counts[7] <= counts[1], "file descriptors after each reconnection: {counts:?}");
    assert_eq!(f.device.connections(), 8);
}

/// virtio 1.2 5.6.4 lets the driver change sense_size and cdb_size. This device lays requests out
/// with the default 32-byte CDB and 96-byte sense field only; a guest that used a 16-byte CDB field
/// would have the first 16 bytes of every data-out read as the CDB's tail and its writes shifted.
/// The change is refused by ending the connection (QEMU itself stops such a VM); writing the
/// values in force changes nothing.
#[test]
fn a_changed_cdb_or_sense_size_ends_the_connection() {
    use vhost::vhost_user::message::VhostUserConfigFlags;
    let f = fixture();
    let mut vmm = Vmm::connect(&f.socket);
    vmm.frontend.set_config(20, VhostUserConfigFlags::WRITABLE, &[96, 0, 0, 0, 32, 0, 0, 0]).unwrap();
    let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(sense_triple(&r.sense), (0x06, 0x29, 0x00), "the same values keep the guest connected");
    let _ = vmm.frontend.set_config(24, VhostUserConfigFlags::WRITABLE, &16u32.to_le_bytes());
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.device.connected() || !f.target.nexuses().is_empty() {
        assert!(Instant::now() < deadline, "a cdb_size the device cannot honour was accepted");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The socket takes the next VMM.
    let mut vmm = Vmm::connect(&f.socket);
    let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(sense_triple(&r.sense), (0x06, 0x29, 0x00));
}
