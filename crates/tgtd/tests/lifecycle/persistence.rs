//! The running configuration survives a crash: configure tgtd through tgtadm, kill it with SIGKILL,
//! start it again on the same --state-dir, and every show is as it was. --no-restore starts empty;
//! a LUN whose file is gone is skipped without losing the rest.

use crate::common;

use common::{free_port, tgtadm_path};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tgtd on a chosen port and state directory (the shared harness picks a fresh directory each
/// time; a restart needs the same one).
struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, port: u16, extra: &[&str]) -> Daemon {
        let socket = dir.join("control.sock");
        let log = dir.join(format!("tgtd-{}.log", Instant::now().elapsed().as_nanos()));
        let child = Command::new(env!("CARGO_BIN_EXE_tgtd"))
            .args(["-f", "--iscsi", &format!("portal=127.0.0.1:{port}"), "--control-socket"])
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start tgtd");
        let mut daemon = Daemon { child, socket, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::os::unix::net::UnixStream::connect(&daemon.socket).is_err()
            || TcpStream::connect(("127.0.0.1", port)).is_err()
        {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("tgtd exited with {status}: {}", daemon.log());
            }
            assert!(Instant::now() < deadline, "tgtd did not start: {}", daemon.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        // The kernel takes connections on the bound sockets while the saved configuration is
        // still being restored; tgtd says "tgtd ready" once it is back (and its log complete).
        while !daemon.log().contains("tgtd ready") {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("tgtd exited with {status}: {}", daemon.log());
            }
            assert!(Instant::now() < deadline, "tgtd did not get ready: {}", daemon.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn tgtadm(&self, args: &str) -> String {
        let out = Command::new(tgtadm_path())
            .arg("--control-socket")
            .arg(&self.socket)
            .args(args.split_whitespace())
            .output()
            .unwrap();
        assert!(out.status.success(), "tgtadm {args}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    fn crash(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Everything show prints, text and JSON (with secrets).
    fn everything(&self) -> String {
        let json = self.tgtadm("--mode target --op show --json");
        let targets: serde_json::Value = serde_json::from_str(&json).unwrap();
        let mut shows = vec![
            self.tgtadm("--mode target --op show"),
            json.clone(),
            self.tgtadm("--mode account --op show --json --secrets"),
            self.tgtadm("--mode portal --op show"),
        ];
        for t in targets["target_list"].as_array().unwrap() {
            shows.push(self.tgtadm(&format!("--mode target --op show --tid {}", t["tid"])));
        }
        shows.join("\n----\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn configure(d: &Daemon, image: &Path) {
    let image = image.to_str().unwrap();
    for line in [
        "--mode target --op new --tid 1 --targetname iqn.2001-04.com.example:one".to_string(),
        "--mode target --op new --tid 2 --targetname iqn.2001-04.com.example:two".to_string(),
        format!("--mode logicalunit --op new --tid 1 --lun 1 --backing-store {image} --bsoflags sync"),
        "--mode logicalunit --op new --tid 1 --lun 3 --bstype memory --bsopts size=4M --blocksize 4096".to_string(),
        "--mode logicalunit --op update --tid 1 --lun 1 --params readonly=1".to_string(),
        "--mode logicalunit --op new --tid 2 --lun 1 --bstype null --bsopts size=1G".to_string(),
        "--mode target --op bind --tid 1 --initiator-address 192.168.0.0/16".to_string(),
        "--mode target --op bind --tid 1 --initiator-address 10.1.2.3".to_string(),
        "--mode target --op bind --tid 1 --initiator-name iqn.1994-05.com.example:host".to_string(),
        "--mode target --op bind --tid 2 --initiator-address ALL".to_string(),
        "--mode target --op update --tid 1 --name MaxRecvDataSegmentLength --value 65536".to_string(),
        "--mode target --op update --tid 1 --name nop_interval --value 7".to_string(),
        "--mode account --op new --user alice --password alicesecret1".to_string(),
        "--mode account --op new --user target1 --password targetsecret2".to_string(),
        "--mode account --op new --user spare --password sparesecret3".to_string(),
        "--mode account --op bind --tid 1 --user alice".to_string(),
        "--mode account --op bind --tid 1 --user target1 --outgoing".to_string(),
        "--mode account --op bind --tid 0 --user alice".to_string(),
    ] {
        d.tgtadm(&line);
    }
}

#[test]
fn restart_after_a_crash_restores_everything() {
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "disk.img", 16 << 20);
    let port = free_port();
    let first = Daemon::start(dir.path(), port, &[]);
    configure(&first, &image);
    let extra_port = free_port();
    first.tgtadm(&format!("--mode portal --op new --param portal=127.0.0.1:{extra_port}"));
    let before = first.everything();
    assert!(before.contains("Nop interval: 7") && before.contains("alicesecret1"), "{before}");
    first.crash();

    let second = Daemon::start(dir.path(), port, &[]);
    let after = second.everything();
    assert_eq!(after, before, "log: {}", second.log());
    assert!(TcpStream::connect(("127.0.0.1", extra_port)).is_ok(), "the added portal was not restored");
    // The state file holds secrets: only its owner may read it.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("state/running-config.json")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o077, 0);

    // A later change is saved too; a delete is remembered as a delete.
    second.tgtadm("--mode target --op delete --tid 2");
    second.tgtadm("--mode account --op delete --user spare");
    let changed = second.everything();
    second.crash();
    let third = Daemon::start(dir.path(), port, &[]);
    assert_eq!(third.everything(), changed);
    third.crash();

    let empty = Daemon::start(dir.path(), port, &["--no-restore"]);
    assert_eq!(empty.tgtadm("--mode target --op show"), "");
}

#[test]
fn a_missing_backing_file_is_skipped_and_the_old_file_kept() {
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "gone.img", 8 << 20);
    let port = free_port();
    let first = Daemon::start(dir.path(), port, &[]);
    first.tgtadm("--mode target --op new --tid 1 --targetname iqn.2001-04.com.example:one");
    first.tgtadm(&format!("--mode logicalunit --op new --tid 1 --lun 1 --backing-store {}", image.display()));
    first.tgtadm("--mode logicalunit --op new --tid 1 --lun 2 --bstype memory --bsopts size=1M");
    first.crash();
    std::fs::remove_file(&image).unwrap();

    let second = Daemon::start(dir.path(), port, &[]);
    let show = second.tgtadm("--mode target --op show");
    // LUN 1 is kept, shown as missing (see a_lun_whose_file_is_missing_at_start_is_kept_and_retried).
    assert!(show.contains("        LUN: 2\n") && show.contains("backing store missing"), "{show}");
    assert!(second.log().contains("not restored"), "{}", second.log());
    let kept = std::fs::read_to_string(dir.path().join("state/running-config.json.restore-failed")).unwrap();
    assert!(kept.contains("gone.img"), "{kept}");
}

/// The restored accounts are the ones logins check: after a crash and restart, libiscsi logs in
/// with the right CHAP secret and is refused with a wrong one.
#[test]
fn chap_accounts_work_after_a_restart() {
    common::require("iscsi-inq");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let iqn = "iqn.2001-04.com.example:chap";
    let first = Daemon::start(dir.path(), port, &[]);
    for line in [
        format!("--mode target --op new --tid 1 --targetname {iqn}"),
        "--mode logicalunit --op new --tid 1 --lun 1 --bstype memory --bsopts size=1M".to_string(),
        "--mode target --op bind --tid 1 --initiator-address ALL".to_string(),
        "--mode account --op new --user alice --password alicesecret1".to_string(),
        "--mode account --op bind --tid 1 --user alice".to_string(),
    ] {
        first.tgtadm(&line);
    }
    first.crash();
    let second = Daemon::start(dir.path(), port, &[]);
    let inq = |user: &str| common::run("iscsi-inq", &[&format!("iscsi://{user}@127.0.0.1:{port}/{iqn}/1")]);
    let good = inq("alice%alicesecret1");
    assert!(good.status.success(), "CHAP login refused after restart: {} / {}", common::text(&good), second.log());
    assert!(String::from_utf8_lossy(&good.stdout).contains("VIRTUAL-DISK"), "{}", common::text(&good));
    let bad = inq("alice%wrongsecret99");
    assert!(!bad.status.success(), "a wrong secret logged in: {}", common::text(&bad));
}

/// From the moment its portal takes TCP connections, a restarting tgtd must refuse AuthMethod=None
/// to a CHAP target and to discovery with CHAP: the saved configuration is replayed before any
/// connection is served. Filler targets make the replay take long enough that a login in the
/// middle of it would be seen.
#[test]
fn no_login_without_chap_while_the_configuration_is_restored() {
    use common::initiator::Connection;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let iqn = "iqn.2001-04.com.example:chap-at-start";
    let first = Daemon::start(dir.path(), port, &[]);
    for line in [
        format!("--mode target --op new --tid 1 --targetname {iqn}"),
        "--mode logicalunit --op new --tid 1 --lun 1 --bstype null --bsopts size=1M".to_string(),
        "--mode target --op bind --tid 1 --initiator-address ALL".to_string(),
        "--mode account --op new --user alice --password alicesecret1".to_string(),
        "--mode account --op bind --tid 1 --user alice".to_string(),
        "--mode account --op bind --tid 0 --user alice".to_string(),
    ] {
        first.tgtadm(&line);
    }
    first.crash();
    // Filler targets open to all, each with LUNs, written straight into the saved configuration.
    let path = dir.path().join("state/running-config.json");
    let mut saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let lun = saved["targets"][0]["luns"][0].clone();
    let acl = saved["targets"][0]["acl"].clone();
    for tid in 2..400 {
        let luns: Vec<serde_json::Value> = (1..=8)
            .map(|n| {
                let mut l = lun.clone();
                l["lun"] = n.into();
                l
            })
            .collect();
        saved["targets"].as_array_mut().unwrap().push(serde_json::json!({
            "tid": tid, "name": format!("iqn.2001-04.com.example:filler-{tid}"), "acl": acl, "luns": luns,
        }));
    }
    std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();

    let socket = dir.path().join("control.sock");
    let log = dir.path().join("restart.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tgtd"))
        .args(["-f", "--iscsi", &format!("portal=127.0.0.1:{port}"), "--control-socket"])
        .arg(&socket)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start tgtd");
    // The control socket answers only once start-up is over: until then, keep trying to get in.
    let answered = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (answered, socket) = (answered.clone(), socket.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let out = Command::new(tgtadm_path())
                    .arg("--control-socket")
                    .arg(&socket)
                    .args(["--mode", "target", "--op", "show", "--tid", "1"])
                    .output()
                    .unwrap();
                if out.status.success() || Instant::now() > deadline {
                    answered.store(true, Ordering::Release);
                    return out.status.success();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let portal: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (mut refused, mut let_in) = (0, Vec::new());
    while !answered.load(Ordering::Acquire) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("tgtd exited with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        for target in [None, Some(iqn)] {
            let Ok(mut conn) = Connection::connect(portal) else { continue };
            match conn.login("iqn.2001-04.com.example:intruder", target, &[]) {
                Ok(_) => let_in.push(target.unwrap_or("discovery")),
                Err(_) => refused += 1,
            }
        }
    }
    assert!(waiter.join().unwrap(), "tgtd did not answer: {}", std::fs::read_to_string(&log).unwrap_or_default());
    let _ = child.kill();
    let _ = child.wait();
    assert!(let_in.is_empty(), "logged in without CHAP during start-up: {let_in:?} ({refused} refused)");
    assert!(refused > 0, "no login was tried while tgtd started");
}

// --- The state directory must be tgtd's own (security item 8) ---

/// Run tgtd on `dir` expecting it to refuse to start: its exit status and stderr. A tgtd that
/// starts instead is stopped, and the test fails.
fn refused_start(dir: &Path, port: u16) -> (std::process::ExitStatus, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tgtd"))
        .args(["-f", "--iscsi", &format!("portal=127.0.0.1:{port}"), "--control-socket"])
        .arg(dir.join("control.sock"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tgtd");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            return (status, err);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tgtd started on a state directory others may write");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whoever may write the state directory could plant a running-config.json that tgtd replays (a
/// backing store of their choosing, CHAP secrets they know): tgtd refuses to start on one that
/// group or others may write, and starts (restoring it) once it is private again.
#[test]
fn a_state_directory_others_may_write_is_not_replayed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let first = Daemon::start(dir.path(), port, &[]);
    first.tgtadm("--mode target --op new --tid 1 --targetname iqn.2001-04.com.example:one");
    first.crash();
    let state = dir.path().join("state");
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o077, 0, "tgtd creates its state directory private");

    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (status, err) = refused_start(dir.path(), port);
    assert!(!status.success());
    let expected = format!(
        "state directory {} is writable by group/others (mode 0777): refusing to replay it; chmod go-w {}",
        state.display(),
        state.display()
    );
    assert!(err.contains(&expected), "{err}");

    // The file itself, in a private directory, is checked too.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let file = state.join("running-config.json");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let (status, err) = refused_start(dir.path(), port);
    assert!(!status.success() && err.contains("running-config.json is writable by group/others"), "{err}");

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let again = Daemon::start(dir.path(), port, &[]);
    assert!(again.tgtadm("--mode target --op show").contains("iqn.2001-04.com.example:one"));
}

/// An APTPL file outlives its LUN on purpose, but it belongs to the disk it was written for: a LUN
/// created again under the same target and number on another backing store does not inherit its
/// registrations (the file is logged and removed); on the same store they come back.
#[test]
fn aptpl_registrations_do_not_pass_to_a_lun_on_another_backing_store() {
    use rtgt_scsi::{PrPersistence, PrRegistration, PrSnapshot};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let old = common::sparse_image(dir.path(), "old.img", 8 << 20);
    let new = common::sparse_image(dir.path(), "new.img", 8 << 20);
    let iqn = "iqn.2001-04.com.example:aptpl";
    let snapshot = PrSnapshot {
        generation: 3,
        aptpl: true,
        registrations: vec![PrRegistration {
            initiator_port: "iqn.1994-05.com.example:h,i,0x00023d000001".into(),
            key: 0x0123_4567_89ab_cdef,
            all_tg_pt: false,
        }],
        reservation: None,
    };
    let saved_for = |image: &Path| rtgt_tgtd::pr_state::PrStateFile::new(&state, iqn, 1, image.to_str().unwrap());
    let port = free_port();
    let d = Daemon::start(dir.path(), port, &[]);
    saved_for(&old).save(&snapshot).unwrap();
    d.tgtadm(&format!("--mode target --op new --tid 1 --targetname {iqn}"));
    d.tgtadm(&format!("--mode logicalunit --op new --tid 1 --lun 1 --backing-store {}", new.display()));
    let log = d.log();
    assert!(log.contains("persistent reservations not restored") && log.contains("old.img"), "{log}");
    assert!(!log.contains("persistent reservations restored"), "{log}");
    assert!(!saved_for(&old).path().exists(), "the other disk's APTPL file is removed");

    // The same store gets its registrations back.
    d.tgtadm("--mode logicalunit --op delete --tid 1 --lun 1");
    saved_for(&new).save(&snapshot).unwrap();
    d.tgtadm(&format!("--mode logicalunit --op new --tid 1 --lun 1 --backing-store {}", new.display()));
    assert!(d.log().contains("persistent reservations restored"), "{}", d.log());
}

// --- A LUN whose backing file is missing at one start is not lost (issue 22 item 1) ---

/// A late mount or a slow SAN at boot: the image is away while tgtd starts. The LUN stays in the
/// saved configuration, `show` says it is missing and why, the log says so in words, and it comes
/// back once the file does: on `--op update --params online=1`, or at the next start.
#[test]
fn a_lun_whose_file_is_missing_at_start_is_kept_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "disk1.img", 8 << 20);
    let away = dir.path().join("disk1.img.away");
    let saved = dir.path().join("state/running-config.json");
    let port = free_port();
    let first = Daemon::start(dir.path(), port, &[]);
    first.tgtadm("--mode target --op new --tid 1 --targetname iqn.2001-04.com.example:late");
    first.tgtadm(&format!("--mode logicalunit --op new --tid 1 --lun 1 --backing-store {}", image.display()));
    first.crash();

    std::fs::rename(&image, &away).unwrap();
    let second = Daemon::start(dir.path(), port, &[]);
    // The control socket is served once the restore is over: from then on the log holds its report.
    second.tgtadm("--mode system --op show");
    // Restarted without the file: the saved configuration still holds the LUN.
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.contains("disk1.img"), "the saved configuration lost the LUN: {text}");
    let log = second.log();
    assert!(
        log.contains("LUN 1 of target 1 (iqn.2001-04.com.example:late) not restored")
            && log.contains("No such file or directory")
            && log.contains("--params online=1")
            && !log.contains("LogicalUnit(New"),
        "{log}"
    );
    let show = second.tgtadm("--mode target --op show");
    assert!(show.contains("        LUN: 1\n"), "{show}");
    assert!(show.contains("Online: No (backing store missing:") && show.contains("disk1.img"), "{show}");
    // Still missing: a retry fails and says why.
    let out = Command::new(tgtadm_path())
        .arg("--control-socket")
        .arg(&second.socket)
        .args(["--mode", "logicalunit", "--op", "update", "--tid", "1", "--lun", "1", "--params", "online=1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("still cannot be opened") && err.contains("disk1.img"), "{err}");

    // The file is back: online=1 opens it, and it is a LUN like any other.
    std::fs::rename(&away, &image).unwrap();
    second.tgtadm("--mode logicalunit --op update --tid 1 --lun 1 --params online=1");
    let show = second.tgtadm("--mode target --op show");
    assert!(show.contains("Size: 8 MB") && !show.contains("missing"), "{show}");
    second.crash();

    // And at the next start, with the file away for one start and back for the next.
    std::fs::rename(&image, &away).unwrap();
    Daemon::start(dir.path(), port, &[]).crash();
    std::fs::rename(&away, &image).unwrap();
    let fourth = Daemon::start(dir.path(), port, &[]);
    let show = fourth.tgtadm("--mode target --op show");
    assert!(show.contains("Size: 8 MB") && show.contains("Online: Yes") && !show.contains("missing"), "{show}");
}

// --- Issue 15: vhost targets are saved; a tid names one target during a restore too ---

impl Daemon {
    /// SIGTERM and wait: the daemon's orderly stop.
    fn terminate(mut self) {
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) }, 0);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "tgtd stopped with {status}: {}", self.log());
    }
}

/// A vhost target and its LUNs come back after an orderly stop, on the same socket path, and the
/// guest's VMM can connect there again.
#[test]
fn vhost_targets_and_their_luns_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "vm.img", 8 << 20);
    let socket = dir.path().join("vm.sock");
    let port = free_port();
    let first = Daemon::start(dir.path(), port, &[]);
    first.tgtadm(&format!("--lld vhost --mode target --op new --tid 4 --targetname {}", socket.display()));
    first.tgtadm("--lld vhost --mode logicalunit --op new --tid 4 --lun 1 --bstype memory --bsopts size=4M");
    first.tgtadm(&format!(
        "--lld vhost --mode logicalunit --op new --tid 4 --lun 2 --backing-store {}",
        image.display()
    ));
    first.tgtadm("--lld vhost --mode logicalunit --op update --tid 4 --lun 2 --params readonly=1");
    let before = first.tgtadm("--lld vhost --mode target --op show");
    assert!(before.contains("LUN: 2"), "{before}");
    first.terminate();
    assert!(!socket.exists(), "the socket goes with the daemon");

    let second = Daemon::start(dir.path(), port, &[]);
    assert_eq!(second.tgtadm("--lld vhost --mode target --op show"), before, "{}", second.log());
    assert!(std::os::unix::net::UnixStream::connect(&socket).is_ok(), "the guest reconnects to the same path");
    // The iSCSI side did not get them.
    assert_eq!(second.tgtadm("--lld iscsi --mode target --op show"), "");
    // A deleted vhost target stays deleted.
    second.tgtadm("--lld vhost --mode target --op delete --force --tid 4");
    second.terminate();
    let third = Daemon::start(dir.path(), port, &[]);
    assert_eq!(third.tgtadm("--lld vhost --mode target --op show"), "");
}

/// A saved iSCSI target whose tid a vhost target from the command line took is not restored beside
/// it: the restore reports it, and tid 5 names one target.
#[test]
fn a_saved_target_whose_tid_is_taken_at_start_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let first = Daemon::start(dir.path(), port, &[]);
    first.tgtadm("--mode target --op new --tid 5 --targetname iqn.2001-04.com.example:five");
    first.crash();

    let socket = dir.path().join("vm5.sock");
    let second =
        Daemon::start(dir.path(), port, &["--vhost-user-scsi", &format!("controller={},tid=5", socket.display())]);
    // Answered once the restore is over (the control socket is served only then).
    assert_eq!(second.tgtadm("--lld iscsi --mode target --op show"), "");
    let log = second.log();
    assert!(log.contains("target 5 (iqn.2001-04.com.example:five) not restored: this target already exists"), "{log}");
    assert!(second.tgtadm("--lld vhost --mode target --op show").contains("Target 5:"));
    assert!(dir.path().join("state/running-config.json.restore-failed").exists());
}

/// A vhost target the command line starts is the saved one when tid and socket match: its LUNs
/// come back into it, and nothing is reported as not restored.
#[test]
fn a_command_line_vhost_target_gets_its_saved_luns_back() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("vm3.sock");
    let option = format!("controller={},tid=3", socket.display());
    let port = free_port();
    let first = Daemon::start(dir.path(), port, &["--vhost-user-scsi", &option]);
    first.tgtadm("--lld vhost --mode logicalunit --op new --tid 3 --lun 1 --bstype null --bsopts size=2M");
    let before = first.tgtadm("--lld vhost --mode target --op show");
    first.terminate();

    let second = Daemon::start(dir.path(), port, &["--vhost-user-scsi", &option]);
    assert_eq!(second.tgtadm("--lld vhost --mode target --op show"), before);
    assert!(!second.log().contains("not restored"), "{}", second.log());
}

/// As an iSCSI LUN: a vhost LUN whose file is away at start stays configured, shown as missing, and
/// comes back with `--params online=1` once the file does.
#[test]
fn a_vhost_lun_whose_file_is_missing_at_start_is_kept_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "vm-late.img", 8 << 20);
    let away = dir.path().join("vm-late.img.away");
    let socket = dir.path().join("vm-late.sock");
    let port = free_port();
    let first = Daemon::start(dir.path(), port, &[]);
    first.tgtadm(&format!("--lld vhost --mode target --op new --tid 2 --targetname {}", socket.display()));
    first.tgtadm(&format!(
        "--lld vhost --mode logicalunit --op new --tid 2 --lun 1 --backing-store {}",
        image.display()
    ));
    first.terminate();

    std::fs::rename(&image, &away).unwrap();
    let second = Daemon::start(dir.path(), port, &[]);
    let show = second.tgtadm("--lld vhost --mode target --op show");
    assert!(show.contains("        LUN: 1\n") && show.contains("Online: No (backing store missing:"), "{show}");
    let saved = std::fs::read_to_string(dir.path().join("state/running-config.json")).unwrap();
    assert!(saved.contains("vm-late.img"), "the saved configuration lost the LUN: {saved}");

    std::fs::rename(&away, &image).unwrap();
    second.tgtadm("--lld vhost --mode logicalunit --op update --tid 2 --lun 1 --params online=1");
    let show = second.tgtadm("--lld vhost --mode target --op show");
    assert!(show.contains("Size: 8 MB") && show.contains("Online: Yes") && !show.contains("missing"), "{show}");
    // A pending vhost LUN is deleted from the configuration like an open one.
    second.terminate();
    std::fs::rename(&image, &away).unwrap();
    let third = Daemon::start(dir.path(), port, &[]);
    third.tgtadm("--lld vhost --mode logicalunit --op delete --tid 2 --lun 1");
    assert!(!third.tgtadm("--lld vhost --mode target --op show").contains("LUN: 1"));
}
