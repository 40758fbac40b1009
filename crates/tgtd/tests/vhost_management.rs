//! `--vhost-user-scsi` and `tgtadm --lld vhost` against the real daemon: targets from the command
//! line and at run time, LUNs on the usual backing stores, show with the socket and the guest's
//! state, the vhost driver in `lld show` and `system show`, delete removing the socket.

mod common;

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
fn attach_vmm(socket: &std::path::Path) -> (vhost::vhost_user::Frontend, vm_memory::GuestMemoryMmap) {
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
    let failed = SanitizeRecord { state: RecordState::Failed, service_action: 2, ause: true, pattern: Vec::new() };
    journal.save(&failed).unwrap();
    vhost_lun(&tgtd, "new", "9", "1", &["--backing-store", &disk]);
    let log = tgtd.log();
    assert!(log.contains("the last sanitize failed: the unit stays in the sanitize failure mode"), "{log}");
}
