//! Shared helpers for the end-to-end tests: start the real tgtd on a free loopback port with a
//! private control socket, drive it with the real tgtadm, and run libiscsi's clients against it.

#![allow(dead_code)]

pub mod initiator;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The directory that holds the workspace's built binaries (target/debug or target/release).
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tgtd")).parent().expect("binary directory").to_path_buf()
}

pub fn tgtadm_path() -> PathBuf {
    let path = bin_dir().join("tgtadm");
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` before the tests", path.display());
    path
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Tests that keep both cores busy for minutes (libiscsi's suites and matrix, thousands of
/// sessions) hold this while they run, so that they run one after another as they did when each
/// had its own test binary; the lighter tests of the same binary still run beside them.
pub fn heavy() -> MutexGuard<'static, ()> {
    static HEAVY: Mutex<()> = Mutex::new(());
    // A heavy test that failed must not fail the others: the lock guards no data.
    HEAVY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// True when the named program is installed (libiscsi-bin's clients).
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Panic with install advice when a required program is missing: a missing tool is a failed
/// test, never a silent pass.
pub fn require(program: &str) {
    assert!(have(program), "{program} is not installed: apt-get install -y libiscsi-bin");
}

/// One running tgtd, killed (by PID) when dropped.
pub struct Tgtd {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub socket: PathBuf,
}

impl Tgtd {
    pub fn start() -> Tgtd {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Tgtd {
        Self::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// A tgtd whose socket, state directory and log live in `dir` (the log is appended to).
    pub fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Tgtd {
        Self::start_in_env(dir, extra, &[])
    }

    /// `start_in` with extra environment variables for the daemon (TOKIO_WORKER_THREADS...).
    pub fn start_in_env(dir: tempfile::TempDir, extra: &[&str], env: &[(&str, &str)]) -> Tgtd {
        let socket = dir.path().join("control.sock");
        let port = free_port();
        let portal = format!("portal=127.0.0.1:{port}");
        let log = std::fs::File::options().create(true).append(true).open(dir.path().join("tgtd.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tgtd"))
            .args(["-f", "--iscsi", &portal, "--control-socket"])
            .arg(&socket)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tgtd");
        let mut tgtd = Tgtd { child, dir, port, socket };
        tgtd.wait_until_serving();
        tgtd
    }

    fn wait_until_serving(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("tgtd exited early with {status}: {}", self.log());
            }
            let control_ok = std::os::unix::net::UnixStream::connect(&self.socket).is_ok();
            let portal_ok = TcpStream::connect(self.portal()).is_ok();
            if control_ok && portal_ok {
                return;
            }
            assert!(Instant::now() < deadline, "tgtd did not start serving: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn portal(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tgtd.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Run tgtadm against this daemon.
    pub fn tgtadm(&self, args: &[&str]) -> Output {
        Command::new(tgtadm_path()).arg("--control-socket").arg(&self.socket).args(args).output().expect("run tgtadm")
    }

    /// Run tgtadm and insist that it succeeds; returns its stdout.
    pub fn tgtadm_ok(&self, args: &[&str]) -> String {
        let out = self.tgtadm(args);
        assert!(
            out.status.success(),
            "tgtadm {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A target with one disk LUN on `backing`, open to every initiator.
    pub fn add_disk_target(&self, tid: u32, iqn: &str, backing: &Path) {
        self.new_target(tid, iqn);
        self.add_lun_ok(tid, 1, &["--backing-store", backing.to_str().unwrap()]);
        self.bind(tid, "--initiator-address", "ALL");
    }

    /// `tgtadm --mode target --op new`: target `tid` named `iqn`, which must succeed.
    pub fn new_target(&self, tid: u32, iqn: &str) {
        let tid = tid.to_string();
        self.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "new", "--tid", &tid, "--targetname", iqn]);
    }

    /// `tgtadm --mode target --op bind` with one rule (`--initiator-address ALL`,
    /// `--initiator-name NAME`, ...), which must succeed.
    pub fn bind(&self, tid: u32, option: &str, value: &str) {
        let tid = tid.to_string();
        self.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "bind", "--tid", &tid, option, value]);
    }

    /// `add_lun`, which must succeed.
    pub fn add_lun_ok(&self, tid: u32, lun: u64, extra: &[&str]) {
        let out = self.add_lun(tid, lun, extra);
        assert!(out.status.success(), "add LUN {lun} to target {tid} with {extra:?}: {}", text(&out));
    }

    /// `tgtadm --mode logicalunit --op new` for LUN `lun` of target `tid` with `extra` arguments
    /// (`--backing-store`, `--bstype`, `--bsopts`, ...); the output, to check failures too.
    pub fn add_lun(&self, tid: u32, lun: u64, extra: &[&str]) -> Output {
        let (tid, lun) = (tid.to_string(), lun.to_string());
        let mut args = vec!["--lld", "iscsi", "--mode", "logicalunit", "--op", "new", "--tid", &tid, "--lun", &lun];
        args.extend_from_slice(extra);
        self.tgtadm(&args)
    }

    /// `tgtadm --mode logicalunit --op update --params PARAMS` on LUN `lun` of target `tid`; the
    /// output, to check refusals too.
    pub fn update_lun(&self, tid: u32, lun: u64, params: &str) -> Output {
        let (tid, lun) = (tid.to_string(), lun.to_string());
        let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", &tid, "--lun", &lun];
        self.tgtadm(&[&update[..], &["--params", params]].concat())
    }

    /// A logged-in session to `iqn` (`isid_tail` tells sessions apart) whose pending unit
    /// attentions on `luns` are consumed with TEST UNIT READY.
    pub fn session(&self, iqn: &str, isid_tail: u8, luns: &[u64]) -> initiator::Connection {
        let mut conn = initiator::Connection::connect(self.portal()).unwrap();
        conn.isid[5] = isid_tail;
        conn.login("iqn.2026-11.org.rtgt.test:initiator", Some(iqn), &[]).expect("login");
        for &lun in luns {
            for _ in 0..8 {
                if conn.scsi(lun, &[0; 6], &[], 0).unwrap().status == 0 {
                    break;
                }
            }
        }
        conn
    }

    pub fn url(&self, iqn: &str, lun: u32) -> String {
        format!("iscsi://127.0.0.1:{}/{iqn}/{lun}", self.port)
    }

    /// SIGKILL by PID (a crash: no shutdown code runs), then a new tgtd on the same directory
    /// (state, control socket, log) and a fresh port.
    pub fn crash_and_restart(self, extra: &[&str]) -> Tgtd {
        let dir = self.crash();
        Self::start_in(dir, extra)
    }

    /// SIGKILL by PID (a crash: no shutdown code runs); the daemon's directory, to look at what it
    /// left behind and to start the next one in (`start_in`).
    pub fn crash(mut self) -> tempfile::TempDir {
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        assert_eq!(unsafe { libc::kill(self.pid(), libc::SIGKILL) }, 0);
        let status = self.child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(libc::SIGKILL));
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// A clean stop (SIGTERM), keeping the daemon's directory to start the next one in.
    pub fn stop_keeping_dir(mut self) -> tempfile::TempDir {
        assert!(self.terminate().success(), "{}", self.log());
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "tgtd ignored SIGTERM: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tgtd {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A sparse image file of `size` bytes in `dir`.
pub fn sparse_image(dir: &Path, name: &str, size: u64) -> PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(size).unwrap();
    path
}

/// Run a program; returns its output (never panics on a non-zero exit).
pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
