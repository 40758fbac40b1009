//! Starting and stopping: readiness before the parent returns, clean stop on SIGTERM and through
//! tgtadm, and a second daemon on the same control socket refused.

use crate::common;

use common::{free_port, sparse_image, Tgtd};
use std::process::Command;

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let mut tgtd = Tgtd::start();
    let status = tgtd.terminate();
    assert!(status.success(), "exit status {status}: {}", tgtd.log());
    assert!(!tgtd.socket.exists(), "control socket left behind");
}

#[test]
fn system_delete_stops_the_daemon() {
    let mut tgtd = Tgtd::start();
    tgtd.tgtadm_ok(&["--mode", "system", "--op", "delete"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(status) = tgtd.child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(std::time::Instant::now() < deadline, "tgtd did not stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let tgtd = Tgtd::start();
    let out = Command::new(env!("CARGO_BIN_EXE_tgtd"))
        .args(["-f", "--iscsi", &format!("portal=127.0.0.1:{}", free_port()), "--control-socket"])
        .arg(&tgtd.socket)
        .arg("--state-dir")
        .arg(tgtd.dir.path().join("state2"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn daemonized_start_is_ready_when_the_command_returns() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bg.sock");
    let port = free_port();
    // Without -f the command returns only once the daemon serves: tgtadm must work at once.
    let status = Command::new(env!("CARGO_BIN_EXE_tgtd"))
        .args(["--iscsi", &format!("portal=127.0.0.1:{port}"), "--control-socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .status()
        .unwrap();
    assert!(status.success());
    let image = sparse_image(dir.path(), "bg.img", 1 << 20);
    let run = |args: &[&str]| {
        Command::new(common::tgtadm_path()).arg("--control-socket").arg(&socket).args(args).output().unwrap()
    };
    let out =
        run(&["--lld", "iscsi", "--mode", "target", "--op", "new", "--tid", "1", "--targetname", "iqn.2026-11.t:bg"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&[
        "--lld",
        "iscsi",
        "--mode",
        "logicalunit",
        "--op",
        "new",
        "--tid",
        "1",
        "--lun",
        "1",
        "--backing-store",
        image.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    // As tgt, no stop while targets exist; --force stops anyway (we have no child handle for a
    // daemonized process, so the control socket is the way).
    let out = run(&["--mode", "system", "--op", "delete"]);
    assert_eq!(out.status.code(), Some(22), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid request"));
    let out = run(&["--mode", "system", "--op", "delete", "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while socket.exists() {
        assert!(std::time::Instant::now() < deadline, "daemonized tgtd did not stop");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn bad_command_line_is_one_clear_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_tgtd")).args(["-f", "--iscsi", "portal=nowhere"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("portal"), "{err}");
    let _ = Tgtd::start; // keep the helper module's items referenced
}

// --- Day one for an administrator (issue 22 items 2, 3 and 10) ---

/// Run a daemonizing tgtd (no -f) to its end: the parent's status and stderr.
fn start_in_background(args: &[&str], socket: &std::path::Path, state: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tgtd"))
        .args(args)
        .arg("--control-socket")
        .arg(socket)
        .arg("--state-dir")
        .arg(state)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// Stop a daemonized tgtd that started when it should not have (the test fails anyway).
fn force_stop(socket: &std::path::Path) {
    let _ = Command::new(common::tgtadm_path())
        .arg("--control-socket")
        .arg(socket)
        .args(["--mode", "system", "--op", "delete", "--force"])
        .output();
}

/// Without -f, a start that fails (here a portal already taken) says why on stderr, where whoever
/// started it looks (syslog may not even exist), and exits non-zero.
#[test]
fn a_daemonizing_start_that_fails_says_why_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let socket = dir.path().join("bg.sock");
    let out = start_in_background(&["--iscsi", &format!("portal=127.0.0.1:{port}")], &socket, &dir.path().join("s"));
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        force_stop(&socket);
    }
    assert!(!out.status.success(), "started on a taken port");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "stderr does not name the port: {err:?}");
}

/// `--pid-file` (tgt's -p) holds the daemon's own pid once the start command returns; the daemon
/// stops on SIGTERM sent to that pid and removes the file.
#[test]
fn the_pid_file_names_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bg.sock");
    let pid_file = dir.path().join("tgtd.pid");
    let portal = format!("portal=127.0.0.1:{}", free_port());
    let pid_arg = pid_file.to_str().unwrap();
    let out = start_in_background(&["--iscsi", &portal, "--pid-file", pid_arg], &socket, &dir.path().join("s"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
    let Ok(pid) = text.trim().parse::<i32>() else {
        force_stop(&socket);
        panic!("pid file holds {text:?}");
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let tgtd = std::fs::canonicalize(env!("CARGO_BIN_EXE_tgtd")).unwrap();
    if exe != tgtd {
        force_stop(&socket);
        panic!("pid {pid} is {}, not tgtd", exe.display());
    }
    // SAFETY: a signal to the pid just checked to be our tgtd.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while socket.exists() || pid_file.exists() {
        assert!(std::time::Instant::now() < deadline, "tgtd did not stop on SIGTERM to its pid");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `tgtadm --wait 5` run before the daemon has made its socket (the README's `tgtd -f ... &`
/// followed at once by tgtadm) waits for it instead of failing with "not connected".
#[test]
fn tgtadm_waits_for_a_daemon_that_is_starting() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("late.sock");
    let tgtadm = Command::new(common::tgtadm_path())
        .arg("--control-socket")
        .arg(&socket)
        .args(["--wait", "5", "--lld", "iscsi", "--mode", "target", "--op", "new", "--tid", "1"])
        .args(["--targetname", "iqn.2026-12.t:late"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut tgtd = Command::new(env!("CARGO_BIN_EXE_tgtd"))
        .args(["-f", "--iscsi", &format!("portal=127.0.0.1:{}", free_port()), "--control-socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = tgtadm.wait_with_output().unwrap();
    let _ = tgtd.kill();
    let _ = tgtd.wait();
    assert!(out.status.success(), "{:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    // Without --wait, an absent daemon is still tgt's quick failure.
    let out = Command::new(common::tgtadm_path())
        .arg("--control-socket")
        .arg(dir.path().join("none.sock"))
        .args(["--mode", "target", "--op", "show"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(107));
}

/// Two daemons on one --state-dir would each overwrite the other's saved configuration: the second
/// (on its own socket and port) is refused, naming the directory.
#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused() {
    let tgtd = Tgtd::start();
    let state = tgtd.dir.path().join("state");
    let mut second = Command::new(env!("CARGO_BIN_EXE_tgtd"))
        .args(["-f", "--iscsi", &format!("portal=127.0.0.1:{}", free_port()), "--control-socket"])
        .arg(tgtd.dir.path().join("second.sock"))
        .arg("--state-dir")
        .arg(&state)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second tgtd runs on the same state directory");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(second.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("state directory") && err.contains(state.to_str().unwrap()), "{err}");
    // The first one is untouched.
    tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
}

/// A second LUN on a file another LUN already exports (here through a hard link: same device and
/// inode, another path) is created, and the log says the file is in use.
#[test]
fn a_backing_file_exported_twice_is_logged() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "shared.img", 1 << 20);
    let link = tgtd.dir.path().join("other-name.img");
    std::fs::hard_link(&image, &link).unwrap();
    tgtd.tgtadm_ok(&["--mode", "target", "--op", "new", "--tid", "1", "--targetname", "iqn.2026-12.t:a"]);
    tgtd.tgtadm_ok(&["--mode", "target", "--op", "new", "--tid", "2", "--targetname", "iqn.2026-12.t:b"]);
    tgtd.tgtadm_ok(&[
        "--mode",
        "logicalunit",
        "--op",
        "new",
        "--tid",
        "1",
        "--lun",
        "1",
        "-b",
        image.to_str().unwrap(),
    ]);
    assert!(!tgtd.log().contains("in use"), "{}", tgtd.log());
    tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "new", "--tid", "2", "--lun", "1", "-b", link.to_str().unwrap()]);
    let log = tgtd.log();
    assert!(log.contains("LUN 1 of target 2") && log.contains("already in use by LUN 1 of target 1"), "{log}");
}
