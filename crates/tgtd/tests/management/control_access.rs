//! Who may manage tgtd, against the real daemon: the control socket's mode (0600, or 0660 with
//! `--control-group`), and the peer-credential check behind it, tried by running the real tgtadm as
//! `nobody` (these tests drop privileges, so they need root, as CI has).

use crate::common;

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
    let expected = format!("tgtadm: permission denied\ntgtadm: uid {nobody_uid} is not allowed to manage this tgtd");
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
    assert!(
        !out.status.success() && common::text(&out).contains("permission denied\ntgtadm: uid"),
        "{}",
        common::text(&out)
    );
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

// --- Hardening (security item 8): how the socket appears, refused peers, supplementary groups ---

/// A tgtd in `dir` (socket `dir/control.sock`), started through `wrapper` (e.g. `unshare ...`),
/// stopped with its wrapper when dropped.
struct Wrapped {
    child: std::process::Child,
    socket: PathBuf,
}

impl Wrapped {
    fn start(dir: &std::path::Path, wrapper: &[&str], extra: &[&str]) -> Wrapped {
        let socket = dir.join("control.sock");
        let portal = format!("portal=127.0.0.1:{}", common::free_port());
        let (program, wrapper_args) = match wrapper.split_first() {
            Some((program, args)) => (program.to_string(), args.to_vec()),
            None => (env!("CARGO_BIN_EXE_tgtd").to_string(), Vec::new()),
        };
        let mut cmd = Command::new(program);
        cmd.args(wrapper_args);
        if !wrapper.is_empty() {
            cmd.arg(env!("CARGO_BIN_EXE_tgtd"));
        }
        cmd.args(["-f", "--iscsi", &portal, "--control-socket"]).arg(&socket).arg("--state-dir");
        cmd.arg(dir.join("state")).args(extra);
        let log = std::fs::File::create(dir.join("tgtd.log")).unwrap();
        let child = cmd.stdout(std::process::Stdio::null()).stderr(log).spawn().unwrap();
        let mut tgtd = Wrapped { child, socket };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::os::unix::net::UnixStream::connect(&tgtd.socket).is_err() {
            let log = std::fs::read_to_string(dir.join("tgtd.log")).unwrap_or_default();
            assert!(tgtd.child.try_wait().unwrap().is_none(), "tgtd exited: {log}");
            assert!(std::time::Instant::now() < deadline, "tgtd did not start: {log}");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        tgtd
    }
}

impl Drop for Wrapped {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The events inotify reports for the entry `name` of a watched directory.
struct DirWatch {
    fd: std::os::fd::OwnedFd,
}

impl DirWatch {
    fn new(dir: &std::path::Path) -> DirWatch {
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        // SAFETY: plain syscall; the descriptor is owned at once.
        let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(raw >= 0, "inotify_init1: {}", std::io::Error::last_os_error());
        // SAFETY: `raw` was just returned by inotify_init1 and nothing else owns it.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
        let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).unwrap();
        let mask = libc::IN_CREATE | libc::IN_ATTRIB | libc::IN_MOVED_TO;
        // SAFETY: `raw` is open, `path` NUL-terminated.
        assert!(unsafe { libc::inotify_add_watch(raw, path.as_ptr(), mask) } >= 0);
        DirWatch { fd }
    }

    fn events_for(&self, name: &str) -> Vec<u32> {
        use std::os::fd::AsRawFd;
        let mut buf = vec![0u8; 64 << 10];
        let mut masks = Vec::new();
        loop {
            // SAFETY: `buf` has `buf.len()` writable bytes.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return masks;
            }
            let mut at = 0;
            while at + 16 <= n as usize {
                let word = |i: usize| u32::from_ne_bytes(buf[at + i..at + i + 4].try_into().unwrap());
                let (mask, len) = (word(4), word(12) as usize);
                let raw_name = &buf[at + 16..at + 16 + len];
                let entry = String::from_utf8_lossy(raw_name).trim_end_matches('\0').to_string();
                if entry == name {
                    masks.push(mask);
                }
                at += 16 + len;
            }
        }
    }
}

/// The socket is bound and given its mode and group in a private directory, then moved onto its
/// path: nothing changes the mode or owner of the entry at the final path, where whoever may write
/// the directory could have swapped in a symlink to another file after the bind (and the chmod or
/// chown would then land on that file).
#[test]
fn the_control_socket_arrives_with_its_mode_and_group_set() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let watch = DirWatch::new(dir.path());
    let tgtd = Wrapped::start(dir.path(), &[], &["--control-group", "users"]);
    let meta = std::fs::symlink_metadata(&tgtd.socket).unwrap();
    assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, gid_of("users")));
    let events = watch.events_for("control.sock");
    assert!(events.contains(&libc::IN_MOVED_TO), "the socket is moved into place: {events:x?}");
    assert!(
        !events.iter().any(|m| m & (libc::IN_ATTRIB | libc::IN_CREATE) != 0),
        "the socket was created or changed in place at its final path: {events:x?}"
    );
    // Only the socket (and what the test put there) is left: the private directory is gone.
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).collect();
    names.sort();
    assert_eq!(names, ["control.sock", "state", "tgtd.log"]);
}

/// A peer that may not manage tgtd is answered as soon as its length prefix arrives: nothing of
/// the announced 16 MiB is waited for or allocated. The peer is perl (always on Debian, as
/// perl-base) run as `nobody`, past a socket mode loosened by hand.
#[test]
fn a_refused_peer_is_answered_before_its_body_is_read() {
    require_root();
    let tgtd = common::Tgtd::start();
    std::fs::set_permissions(tgtd.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&tgtd.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    // Announce 16 MiB, send none of it, and wait (5 s at most) for the answer's frame.
    let script = r#"
        use IO::Socket::UNIX;
        my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!";
        $s->syswrite(pack("N", 16 << 20)) == 4 or die "write: $!";
        $SIG{ALRM} = sub { print STDERR "no answer within 5 s\n"; exit 3 };
        alarm 5;
        sub take { my $want = shift; my $got = '';
            while (length($got) < $want) { my $n = $s->sysread($got, $want - length($got), length($got));
                die "closed after " . length($got) . " bytes\n" unless $n; }
            return $got; }
        my $len = unpack("N", take(4));
        print take($len);
    "#;
    let nobody = User::from_name("nobody").unwrap().unwrap();
    let out = Command::new("perl")
        .args(["-e", script])
        .arg(&tgtd.socket)
        .uid(nobody.uid.as_raw())
        .gid(gid_of("nogroup"))
        .output()
        .unwrap();
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    let refusal = format!("uid {} is not allowed to manage this tgtd", nobody.uid);
    assert!(text.contains("permission_denied") && text.contains(&refusal), "{text}");
    // The daemon serves on.
    assert!(tgtd.tgtadm_ok(&["--mode", "system", "--op", "show"]).contains("System:"));
}

/// Membership of the control group through a supplementary group counts, as the kernel recorded
/// it at connect (SO_PEERGROUPS). tgtd runs in a PID namespace of its own here (as in a
/// container), where the peer's pid is not visible: reading the groups from /proc/PID could not
/// work there (nor for a peer that has exited, or whose pid was reused).
#[test]
fn a_supplementary_member_of_the_control_group_may_manage_tgtd() {
    require_root();
    assert!(common::have("setpriv") && common::have("unshare"), "setpriv and unshare (util-linux) are needed");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let users = gid_of("users");
    let wrapper = ["unshare", "--pid", "--fork", "--kill-child"];
    let tgtd = Wrapped::start(dir.path(), &wrapper, &["--control-group", "users"]);
    let bin = dir.path().join("tgtadm");
    let out = Command::new("install").args(["-m", "0755"]).arg(tgtadm_path()).arg(&bin).output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let as_nobody = |groups: &str| {
        Command::new("setpriv")
            .args(["--reuid", "nobody", "--regid", "nogroup", "--groups", groups])
            .arg(&bin)
            .args(["--control-socket", tgtd.socket.to_str().unwrap(), "--mode", "system", "--op", "show"])
            .output()
            .unwrap()
    };
    let out = as_nobody(&format!("{},{users}", gid_of("nogroup")));
    assert!(out.status.success(), "a supplementary member is allowed: {}", common::text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("System:"));
    // Without the group, past a loosened mode, still refused.
    std::fs::set_permissions(&tgtd.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&gid_of("nogroup").to_string());
    assert!(
        !out.status.success() && common::text(&out).contains("permission denied\ntgtadm: uid"),
        "{}",
        common::text(&out)
    );
}
