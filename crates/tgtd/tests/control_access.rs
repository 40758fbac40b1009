//! Who may manage tgtd, against the real daemon: the control socket's mode (0600, or 0660 with
//! `--control-group`), and the peer-credential check behind it, tried by running the real tgtadm as
//! `nobody` (these tests drop privileges, so they need root, as CI has).

mod common;

use common::{tgtadm_path, Tgtd};
use nix::unistd::{Group, User};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "control_access tests run tgtadm as another user and need root (CI runs as root)"
    );
}

fn gid_of(name: &str) -> u32 {
    Group::from_name(name).unwrap().unwrap_or_else(|| panic!("group {name} is missing")).gid.as_raw()
}

/// A copy of tgtadm another user may run, beside a control socket they may reach.
fn open_up(tgtd: &Tgtd) -> PathBuf {
    std::fs::set_permissions(tgtd.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = tgtd.dir.path().join("tgtadm");
    // Copied by another process: a write descriptor open in this one could leak into a child
    // another test forks meanwhile, and exec would then fail with "text file busy".
    let out = Command::new("install").args(["-m", "0755"]).arg(tgtadm_path()).arg(&bin).output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    bin
}

/// `tgtadm --mode system --op show` as uid `nobody` with primary group `gid` (no other groups).
fn show_as_nobody(tgtd: &Tgtd, tgtadm: &PathBuf, gid: u32) -> Output {
    let nobody = User::from_name("nobody").unwrap().expect("user nobody");
    Command::new(tgtadm)
        .args(["--control-socket", tgtd.socket.to_str().unwrap(), "--mode", "system", "--op", "show"])
        .uid(nobody.uid.as_raw())
        .gid(gid)
        .output()
        .expect("run tgtadm as nobody")
}

fn socket_mode(tgtd: &Tgtd) -> (u32, u32) {
    let meta = std::fs::metadata(&tgtd.socket).unwrap();
    (meta.mode() & 0o777, meta.gid())
}

#[test]
fn a_user_who_is_not_allowed_is_refused_and_the_refusal_logged() {
    require_root();
    let tgtd = Tgtd::start();
    assert_eq!(socket_mode(&tgtd).0, 0o600);
    let tgtadm = open_up(&tgtd);
    let nogroup = gid_of("nogroup");
    // The file mode is the first gate: nobody cannot even connect.
    let out = show_as_nobody(&tgtd, &tgtadm, nogroup);
    assert!(!out.status.success(), "{}", common::text(&out));

    // With the mode loosened by hand, the peer credential check still refuses, with a reason.
    std::fs::set_permissions(&tgtd.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = show_as_nobody(&tgtd, &tgtadm, nogroup);
    let nobody_uid = User::from_name("nobody").unwrap().unwrap().uid.as_raw();
    let expected = format!("tgtadm: permission denied: uid {nobody_uid} is not allowed to manage this tgtd");
    assert!(!out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), expected);
    assert!(out.stdout.is_empty(), "nothing of the daemon is shown: {}", common::text(&out));
    let log = tgtd.log();
    assert!(log.contains("management connection refused") && log.contains(&nobody_uid.to_string()), "{log}");
    // Root still manages it.
    assert!(tgtd.tgtadm_ok(&["--mode", "system", "--op", "show"]).contains("System:"));
}

#[test]
fn members_of_the_control_group_may_manage_tgtd() {
    require_root();
    let users = gid_of("users");
    let tgtd = Tgtd::start_with(&["--control-group", "users"]);
    assert_eq!(socket_mode(&tgtd), (0o660, users), "the socket is the group's, mode 0660");
    let tgtadm = open_up(&tgtd);
    let out = show_as_nobody(&tgtd, &tgtadm, users);
    assert!(out.status.success(), "a member of the group is allowed: {}", common::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("System:"));
    // Another group, even past a loosened mode, is not.
    std::fs::set_permissions(&tgtd.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = show_as_nobody(&tgtd, &tgtadm, gid_of("nogroup"));
    assert!(!out.status.success() && common::text(&out).contains("permission denied: uid"), "{}", common::text(&out));
}

#[test]
fn an_unknown_control_group_stops_the_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_tgtd"))
        .args(["-f", "--control-group", "no-such-group-rtgt", "--control-socket", "/nonexistent/x.sock"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(common::text(&out).contains("no group named 'no-such-group-rtgt'"), "{}", common::text(&out));
}

/// tgtd marks itself non-dumpable (its memory holds CHAP secrets): even a process of the same user
/// may not read its /proc files then, and the kernel writes no core dump. `--allow-core-dumps`
/// turns that off. tgtd runs as `nobody` here, so that "the same user" is not root.
#[test]
fn tgtd_memory_is_private_unless_core_dumps_are_allowed() {
    require_root();
    let nobody = User::from_name("nobody").unwrap().expect("user nobody");
    let nogroup = gid_of("nogroup");
    for allow in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let bin = dir.path().join("tgtd");
        let out = Command::new("install").args(["-m", "0755", env!("CARGO_BIN_EXE_tgtd")]).arg(&bin).output().unwrap();
        assert!(out.status.success(), "{}", common::text(&out));
        let socket = dir.path().join("control.sock");
        let portal = format!("portal=127.0.0.1:{}", common::free_port());
        let mut cmd = Command::new(&bin);
        cmd.args(["-f", "--iscsi", &portal, "--control-socket"]).arg(&socket).arg("--state-dir");
        cmd.arg(dir.path().join("state")).uid(nobody.uid.as_raw()).gid(nogroup);
        if allow {
            cmd.arg("--allow-core-dumps");
        }
        let mut child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() {
            assert!(child.try_wait().unwrap().is_none(), "tgtd as nobody exited");
            assert!(std::time::Instant::now() < deadline, "tgtd as nobody did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let environ = format!("/proc/{}/environ", child.id());
        let read = Command::new("cat").arg(&environ).uid(nobody.uid.as_raw()).gid(nogroup).output().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(read.status.success(), allow, "reading {environ} as tgtd's own user (allow-core-dumps {allow})");
    }
}
