//! `--vhost-user-scsi` and `tgtadm --lld vhost` against the real daemon: targets from the command
//! line and at run time, LUNs on the usual backing stores, show with the socket and the guest's
//! state, the vhost driver in `lld show` and `system show`, delete removing the socket.

use crate::common;

use common::Tgtd;
use rtgt_scsi::{RecordState, SanitizeJournal, SanitizeRecord};
use rtgt_tgtd::sanitize_journal::SanitizeJournalFile;

/// `tgtadm --lld vhost --mode logicalunit --op OP --tid TID --lun LUN` and `extra`; its output.
fn vhost_lun(tgtd: &Tgtd, op: &str, tid: &str, lun: &str, extra: &[&str]) -> String {
    let args = ["--lld", "vhost", "--mode", "logicalunit", "--op", op, "--tid", tid, "--lun", lun];
    tgtd.tgtadm_ok(&[&args[..], extra].concat())
}

#[test]
fn vhost_targets_are_managed_with_tgtadm() {
    let sockets = tempfile::tempdir().unwrap();
    let boot = sockets.path().join("vm1.sock");
    let tgtd = Tgtd::start_with(&["--vhost-user-scsi", &format!("controller={},tid=7", boot.display())]);
    assert!(boot.exists(), "the start-up target listens on its socket: {}", tgtd.log());

    let disk = tgtd.dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let disk = disk.display().to_string();
    vhost_lun(&tgtd, "new", "7", "1", &["--backing-store", &disk]);

    // A second target at run time: its name is its socket.
    let runtime = sockets.path().join("vm2.sock").display().to_string();
    tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "target", "--op", "new", "--tid", "8", "--targetname", &runtime]);
    assert!(std::path::Path::new(&runtime).exists());
    vhost_lun(&tgtd, "new", "8", "3", &["--bstype", "memory", "--bsopts", "size=4M"]);

    let json: serde_json::Value =
        serde_json::from_str(&tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "target", "--op", "show", "--json"]))
            .unwrap();
    let targets = json["target_list"].as_array().unwrap();
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0]["tid"], 7);
    assert_eq!(targets[0]["driver"], "vhost");
    assert_eq!(targets[0]["luns"].as_array().unwrap().len(), 2, "the controller at LUN 0 and the disk");
    let params = targets[0]["params"].as_array().unwrap();
    let param = |name: &str| params.iter().find(|p| p["name"] == name).map(|p| p["value"].clone());
    assert_eq!(param("socket"), Some(serde_json::Value::from(boot.display().to_string())));
    assert_eq!(param("guest_connected"), Some(serde_json::Value::from("no")));

    // tgt's text layout names the driver.
    let text = tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "target", "--op", "show"]);
    assert!(text.contains(&format!("Target 8: {runtime}")), "{text}");
    assert!(text.contains("Driver: vhost"), "{text}");
    // The iSCSI side does not list them.
    let iscsi = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(!iscsi.contains("vm1.sock"), "{iscsi}");
    assert!(tgtd.tgtadm_ok(&["--mode", "system", "--op", "show"]).contains("vhost: ready"));
    let llds = tgtd.tgtadm_ok(&["--mode", "lld", "--op", "show"]);
    assert!(llds.contains(&format!("vhost: ready\n        Target 7: {}", boot.display())), "{llds}");

    // An online resize is reloaded like an iSCSI LUN's (and reported to a guest as an event).
    std::fs::OpenOptions::new().write(true).open(&disk).unwrap().set_len(2 << 20).unwrap();
    vhost_lun(&tgtd, "update", "7", "1", &["--params", "capacity=reload"]);
    let lun: serde_json::Value = serde_json::from_str(&vhost_lun(&tgtd, "show", "7", "1", &["--json"])).unwrap();
    assert!(lun.to_string().contains("2097152"), "{lun}");

    // Mistakes are refused: a taken tid (iSCSI or vhost), a relative socket, a missing LUN.
    let taken = tgtd.tgtadm(&[
        "--lld",
        "vhost",
        "--mode",
        "target",
        "--op",
        "new",
        "--tid",
        "7",
        "--targetname",
        "/tmp/x.sock",
    ]);
    assert!(!taken.status.success());
    let relative =
        tgtd.tgtadm(&["--lld", "vhost", "--mode", "target", "--op", "new", "--tid", "9", "--targetname", "vm.sock"]);
    assert!(!relative.status.success());
    let missing =
        tgtd.tgtadm(&["--lld", "vhost", "--mode", "logicalunit", "--op", "delete", "--tid", "7", "--lun", "5"]);
    assert!(!missing.status.success());

    tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "logicalunit", "--op", "delete", "--tid", "7", "--lun", "1"]);
    tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "target", "--op", "delete", "--tid", "8"]);
    assert!(!std::path::Path::new(&runtime).exists(), "a deleted target's socket is removed");
    let json: serde_json::Value =
        serde_json::from_str(&tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "target", "--op", "show", "--json"]))
            .unwrap();
    assert_eq!(json["target_list"].as_array().unwrap().len(), 1);
}

/// A VMM that has sent its memory map: from then on the guest is the target's I_T nexus.
pub(crate) fn attach_vmm(socket: &std::path::Path) -> (vhost::vhost_user::Frontend, vm_memory::GuestMemoryMmap) {
    use vhost::VhostBackend;
    use vm_memory::{FileOffset, GuestAddress, GuestMemoryBackend};
    let file = tempfile::tempfile().unwrap();
    file.set_len(1 << 20).unwrap();
    let mem: vm_memory::GuestMemoryMmap = vm_memory::GuestMemoryMmap::from_ranges_with_files(&[(
        GuestAddress(0),
        1 << 20,
        Some(FileOffset::new(file, 0)),
    )])
    .unwrap();
    let frontend = vhost::vhost_user::Frontend::connect(socket, 3).unwrap();
    frontend.set_owner().unwrap();
    let features = frontend.get_features().unwrap();
    frontend.set_features(features).unwrap();
    let region =
        vhost::VhostUserMemoryRegionInfo::from_guest_region(mem.find_region(GuestAddress(0)).unwrap()).unwrap();
    frontend.set_mem_table(&[region]).unwrap();
    (frontend, mem)
}

#[test]
fn a_connected_guest_is_shown_and_protects_its_target() {
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("vm.sock");
    let tgtd = Tgtd::start_with(&["--vhost-user-scsi", &format!("controller={},tid=3", socket.display())]);
    let vmm = attach_vmm(&socket);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let show = loop {
        let show = tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "target", "--op", "show"]);
        if show.contains("I_T nexus") || std::time::Instant::now() > deadline {
            break show;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(show.contains("I_T nexus") && show.contains("vhost-user:"), "{show}");
    let json: serde_json::Value =
        serde_json::from_str(&tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "target", "--op", "show", "--json"]))
            .unwrap();
    let params = json["target_list"][0]["params"].as_array().unwrap();
    let connected = params.iter().find(|p| p["name"] == "guest_connected").unwrap();
    assert_eq!(connected["value"], "yes", "{json}");

    // As for an iSCSI target with sessions: delete is refused while a guest is attached, unless forced.
    let refused = tgtd.tgtadm(&["--lld", "vhost", "--mode", "target", "--op", "delete", "--tid", "3"]);
    assert!(!refused.status.success());
    tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "target", "--op", "delete", "--force", "--tid", "3"]);
    assert!(!socket.exists());
    drop(vmm);
}

/// vhost LUNs get their saved state as iSCSI LUNs do: a sanitize journal left by a failed sanitize
/// puts the new LUN back in the sanitize failure mode.
#[test]
fn vhost_luns_pick_up_their_saved_sanitize_state() {
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("vm3.sock");
    let tgtd = Tgtd::start_with(&["--vhost-user-scsi", &format!("controller={},tid=9", socket.display())]);
    let disk = tgtd.dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    let disk = disk.display().to_string();
    // The journal a failed block erase with AUSE leaves, written as the daemon writes it.
    let target_name = socket.display().to_string();
    let journal = SanitizeJournalFile::new(&tgtd.dir.path().join("state"), &target_name, 1, &disk);
    let failed =
        SanitizeRecord { state: RecordState::Failed, service_action: 2, ause: true, pattern: Vec::new(), next_lba: 0 };
    journal.save(&failed).unwrap();
    vhost_lun(&tgtd, "new", "9", "1", &["--backing-store", &disk]);
    let log = tgtd.log();
    assert!(log.contains("the last sanitize failed: the unit stays in the sanitize failure mode"), "{log}");
}

/// `tgtadm --lld vhost --op new --targetname PATH` for tid `tid`.
fn new_vhost_target(tgtd: &Tgtd, tid: &str, path: &std::path::Path) -> std::process::Output {
    let name = path.display().to_string();
    tgtd.tgtadm(&["--lld", "vhost", "--mode", "target", "--op", "new", "--tid", tid, "--targetname", &name])
}

/// A vhost target's name is a path: creating its socket never destroys what is there. A regular file,
/// a directory and a socket another process listens on are refused (naming the path); only a stale
/// socket, which nobody answers on, is replaced.
#[test]
fn a_vhost_target_name_never_replaces_a_file() {
    use std::os::unix::net::{UnixListener, UnixStream};
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();

    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, b"a guest's disk").unwrap();
    let refused = new_vhost_target(&tgtd, "1", &disk);
    let message = String::from_utf8_lossy(&refused.stderr).into_owned() + &String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "{message}");
    assert!(message.contains(&disk.display().to_string()) && message.contains("not a socket"), "{message}");
    assert_eq!(std::fs::read(&disk).unwrap(), b"a guest's disk", "the file is untouched");

    let subdir = dir.path().join("images");
    std::fs::create_dir(&subdir).unwrap();
    assert!(!new_vhost_target(&tgtd, "1", &subdir).status.success());
    assert!(subdir.is_dir());

    // Another process's live socket (a running tgtd's, a VMM's): left alone.
    let live = dir.path().join("live.sock");
    let listener = UnixListener::bind(&live).unwrap();
    let refused = new_vhost_target(&tgtd, "1", &live);
    let message = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success());
    assert!(message.contains("listening"), "{message}");
    listener.set_nonblocking(true).unwrap();
    let _client = UnixStream::connect(&live).unwrap();
    assert!(listener.accept().is_ok(), "the live socket still reaches its listener");

    // A stale socket left by a crash is replaced: the target's socket answers there.
    let stale = dir.path().join("stale.sock");
    // Bound by a process that then exits, never listened on: a listener of this process could
    // outlive its drop in a child that a parallel test forks before exec.
    let made = std::process::Command::new("python3")
        .args(["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])"])
        .arg(&stale)
        .status()
        .unwrap();
    assert!(made.success());
    assert!(UnixStream::connect(&stale).is_err());
    let made = new_vhost_target(&tgtd, "1", &stale);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    assert!(UnixStream::connect(&stale).is_ok());
    // No private staging directory is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
}

/// A tgtd started (through a shell) with umask 000 and `extra` options; its log is in its dir.
fn start_with_open_umask(extra: &[&str]) -> Tgtd {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let port = common::free_port();
    let log = std::fs::File::create(dir.path().join("tgtd.log")).unwrap();
    let child = std::process::Command::new("sh")
        .args(["-c", "umask 000 && exec \"$@\"", "sh", env!("CARGO_BIN_EXE_tgtd")])
        .args(["-f", "--iscsi", &format!("portal=127.0.0.1:{port}"), "--control-socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut tgtd = Tgtd { child, dir, port, socket };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while std::os::unix::net::UnixStream::connect(&tgtd.socket).is_err() {
        if let Some(status) = tgtd.child.try_wait().unwrap() {
            panic!("tgtd exited with {status}: {}", tgtd.log());
        }
        assert!(std::time::Instant::now() < deadline, "tgtd did not start: {}", tgtd.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    tgtd
}

/// The mode and group of the file at `path`.
fn mode_and_group(path: &std::path::Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).unwrap();
    (meta.mode() & 0o7777, meta.gid())
}

/// vhost sockets are 0600 whatever tgtd's umask (only root and tgtd's user can hand a VM the disk);
/// with `--vhost-group` they are 0660 and that group, for a QEMU running as another user.
#[test]
fn vhost_sockets_get_their_mode_whatever_the_umask() {
    use std::os::unix::fs::MetadataExt;
    let sockets = tempfile::tempdir().unwrap();
    let boot = sockets.path().join("boot.sock");
    let tgtd = start_with_open_umask(&["--vhost-user-scsi", &format!("controller={},tid=2", boot.display())]);
    let own_gid = std::fs::metadata(sockets.path()).unwrap().gid();
    assert_eq!(mode_and_group(&boot), (0o600, own_gid), "{}", tgtd.log());
    let runtime = sockets.path().join("runtime.sock");
    assert!(new_vhost_target(&tgtd, "3", &runtime).status.success());
    assert_eq!(mode_and_group(&runtime), (0o600, own_gid));
    drop(tgtd);

    // A group other than our own when we may give files away (root), else our own.
    let root = std::fs::metadata(sockets.path()).unwrap().uid() == 0;
    let gid = if root { 4242 } else { own_gid };
    let (boot, runtime) = (sockets.path().join("boot2.sock"), sockets.path().join("runtime2.sock"));
    let tgtd = start_with_open_umask(&[
        "--vhost-group",
        &gid.to_string(),
        "--vhost-user-scsi",
        &format!("controller={},tid=2", boot.display()),
    ]);
    assert_eq!(mode_and_group(&boot), (0o660, gid), "{}", tgtd.log());
    assert!(new_vhost_target(&tgtd, "3", &runtime).status.success());
    assert_eq!(mode_and_group(&runtime), (0o660, gid));
}

// --- Issue 15: a tid names one target, whatever its LLD ---

/// `tgtadm --lld LLD --mode target --op new --tid TID --targetname NAME`.
fn new_target(tgtd: &Tgtd, lld: &str, tid: &str, name: &str) -> std::process::Output {
    tgtd.tgtadm(&["--lld", lld, "--mode", "target", "--op", "new", "--tid", tid, "--targetname", name])
}

/// As in tgt, whose targets share one list: a tid taken by a target of either LLD is refused to the
/// other with tgt's message and exit status (22), and each tid is listed once.
#[test]
fn a_tid_taken_by_one_lld_is_refused_to_the_other() {
    let tgtd = Tgtd::start();
    let sockets = tempfile::tempdir().unwrap();
    let vm5 = sockets.path().join("vm5.sock");
    let vm6 = sockets.path().join("vm6.sock");
    assert!(new_vhost_target(&tgtd, "5", &vm5).status.success());
    let refused = new_target(&tgtd, "iscsi", "5", "iqn.2026-11.org.rtgt:five");
    assert_eq!(refused.status.code(), Some(22));
    assert_eq!(String::from_utf8_lossy(&refused.stderr), "tgtadm: this target already exists\n");

    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "new", "--tid", "6", "--targetname", "iqn.x:six"]);
    let refused = new_vhost_target(&tgtd, "6", &vm6);
    assert_eq!(refused.status.code(), Some(22));
    assert_eq!(String::from_utf8_lossy(&refused.stderr), "tgtadm: this target already exists\n");
    assert!(!vm6.exists(), "a refused vhost target leaves no socket");
    // A vhost tid taken twice gets the same plain message.
    let refused = new_vhost_target(&tgtd, "5", &vm6);
    assert_eq!(String::from_utf8_lossy(&refused.stderr), "tgtadm: this target already exists\n");

    // A name, too, is one target's (tgt refuses a second target of the same name).
    let refused = new_target(&tgtd, "iscsi", "9", &vm5.display().to_string());
    assert_eq!(String::from_utf8_lossy(&refused.stderr), "tgtadm: this target already exists\n");

    let iscsi = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    let vhost = tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "target", "--op", "show"]);
    assert!(!iscsi.contains("Target 5:") && iscsi.contains("Target 6: iqn.x:six"), "{iscsi}");
    assert!(vhost.contains("Target 5:") && !vhost.contains("Target 6:"), "{vhost}");
}
