//! Starting and stopping: readiness before the parent returns, clean stop on SIGTERM and through
//! tgtadm, and a second daemon on the same control socket refused.

mod common;

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
