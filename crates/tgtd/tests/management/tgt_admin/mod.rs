//! tgt-admin against the real daemon: targets.conf executed, dumped, deleted and executed again
//! (identical dumps), updates that change only what differs and spare targets with sessions,
//! mistakes reported with file and line and nothing half-applied, --pretend, --offline/--ready, and
//! --update bringing back a LUN whose file was missing when tgtd started. The dump of generated
//! configurations is a fixed point: `generated`; LUN parameters changed in place under a logged-in
//! session: `update_in_place`; cd/dvd, tape and changer LUNs found up to date: `device_types`.

use crate::common;

use common::initiator::Connection;
use common::{bin_dir, Tgtd};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod device_types;
mod generated;
mod update_in_place;

fn tgt_admin_path() -> PathBuf {
    let path = bin_dir().join("tgt-admin");
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` before the tests", path.display());
    path
}

fn tgt_admin(tgtd: &Tgtd, args: &[&str]) -> Output {
    Command::new(tgt_admin_path()).arg("--control-socket").arg(&tgtd.socket).args(args).output().unwrap()
}

fn ok(tgtd: &Tgtd, args: &[&str]) -> String {
    let out = tgt_admin(tgtd, args);
    assert!(
        out.status.success(),
        "tgt-admin {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn config(image: &Path) -> String {
    format!(
        "# two targets, as an administrator writes them\n\
         default-driver iscsi\n\
         incomingdiscoveryuser disco discosecret1\n\
         <target iqn.2001-04.com.example:alpha>\n\
         \tbacking-store {image}\n\
         \t<backing-store ->\n\
         \t\tbs-type memory\n\
         \t\tbsopts size=4194304\n\
         \t\tlun 5\n\
         \t\tvendor_id ACME\n\
         \t\tproduct_id FASTDISK\n\
         \t\tremovable 1\n\
         \t\twrite-cache off\n\
         \t</backing-store>\n\
         \tinitiator-address 192.168.0.0/16\n\
         \tinitiator-name iqn.1994-05.com.example:host\n\
         \tincominguser alice alicesecret1\n\
         \toutgoinguser tgtuser tgtsecret12\n\
         \tMaxRecvDataSegmentLength 65536\n\
         \tnop_interval 9\n\
         </target>\n\
         <target iqn.2001-04.com.example:beta>\n\
         \t<backing-store ->\n\
         \t\tbs-type null\n\
         \t\tbsopts size=1073741824\n\
         \t\tblock-size 4096\n\
         \t</backing-store>\n\
         \tinitiator-address ALL\n\
         </target>\n",
        image = image.display()
    )
}

#[test]
fn execute_dump_delete_execute_gives_the_same_dump() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "alpha.img", 16 << 20);
    let conf = write(dir.path(), "targets.conf", &config(&image));
    ok(&tgtd, &["--execute", "-c", &conf]);
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.starts_with("Target 1: iqn.2001-04.com.example:alpha\n"), "{show}");
    assert!(show.contains("Target 2: iqn.2001-04.com.example:beta\n"), "{show}");
    assert!(show.contains("        LUN: 5\n            Type: disk\n"), "{show}");
    assert!(show.contains("        alice\n        tgtuser (outgoing)\n"), "{show}");
    let first = ok(&tgtd, &["--dump"]);
    assert!(first.contains("\t\tvendor_id ACME\n") && first.contains("\tnop_interval 9\n"), "{first}");
    assert!(first.contains("incomingdiscoveryuser disco discosecret1\n"), "{first}");
    assert!(first.contains("\t\twrite-cache off\n"), "write-cache off was lost: {first}");

    ok(&tgtd, &["--delete", "ALL"]);
    assert_eq!(tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]), "");
    let dumped = write(dir.path(), "dumped.conf", &first);
    ok(&tgtd, &["--execute", "-c", &dumped]);
    let second = ok(&tgtd, &["--dump"]);
    assert_eq!(second, first);
    // Executing what is already running changes nothing.
    let again = ok(&tgtd, &["--execute", "-c", &dumped]);
    assert!(again.contains("already running"), "{again}");
    assert_eq!(ok(&tgtd, &["--dump"]), first);
}

#[test]
fn mistakes_name_file_and_line_and_nothing_is_half_applied() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "a.img", 8 << 20);
    let mut text = config(&image);
    text.push_str("<target iqn.2001-04.com.example:gamma>\n\tbacking-store /x\n\tfrobnicate yes\n</target>\n");
    let conf = write(dir.path(), "bad.conf", &text);
    let out = tgt_admin(&tgtd, &["--execute", "-c", &conf]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().count() - 1;
    assert_eq!(out.status.code(), Some(22));
    assert_eq!(
        stderr.trim(),
        format!("tgt-admin: {conf}:{line}: unknown directive 'frobnicate' in <target iqn.2001-04.com.example:gamma>")
    );
    assert_eq!(tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]), "");

    // The file is fine but the daemon refuses a request of the second target (its file does not
    // exist): that target is removed again, the first one comes up (as with tgt), and the run
    // fails naming the target it could not make.
    let text = config(&image)
        .replace("bs-type null\n\t\tbsopts size=1073741824", "path /nonexistent/disk.img")
        .replace("\tinitiator-address ALL\n", "\tinitiator-address ALL\n\tincominguser betauser betasecret12\n");
    let conf = write(dir.path(), "late.conf", &text);
    let out = tgt_admin(&tgtd, &["--execute", "-c", &conf]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(22), "{stderr}");
    assert!(stderr.contains("target iqn.2001-04.com.example:beta: logicalunit new"), "{stderr}");
    assert!(stderr.contains("(the target was removed again)"), "{stderr}");
    assert!(stderr.contains("not applied: target iqn.2001-04.com.example:beta; 1 other target(s) were"), "{stderr}");
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.starts_with("Target 1: iqn.2001-04.com.example:alpha\n") && !show.contains(":beta"), "{show}");
    // beta's new account went with it; alpha's stayed.
    let accounts = tgtd.tgtadm_ok(&["--mode", "account", "--op", "show"]);
    assert!(accounts.contains("alice") && !accounts.contains("betauser"), "{accounts}");

    // --ignore-errors, as tgt's: the failed request is reported and the run goes on, so beta
    // comes up without the LUN that could not be made, and the run succeeds.
    let out = tgt_admin(&tgtd, &["--execute", "--ignore-errors", "-c", &conf]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("logicalunit new tid 2 lun 1"), "{stderr}");
    assert!(stderr.contains("(ignored)"), "{stderr}");
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains("Target 2: iqn.2001-04.com.example:beta\n"), "{show}");
    assert!(show.contains("        betauser\n"), "{show}");
}

#[test]
fn update_applies_only_differences_and_spares_busy_targets() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "a.img", 8 << 20);
    let conf = write(dir.path(), "targets.conf", &config(&image));
    ok(&tgtd, &["--execute", "-c", &conf]);
    // A session on beta (open to ALL).
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login("iqn.2007-10.com.example:client", Some("iqn.2001-04.com.example:beta"), &[]).unwrap();

    // Change alpha's parameter and add a LUN; change beta; the file is otherwise the same.
    let changed = config(&image)
        .replace("MaxRecvDataSegmentLength 65536", "MaxRecvDataSegmentLength 131072")
        .replace("\tinitiator-address ALL\n", "\tinitiator-address 10.0.0.0/8\n")
        .replace(
            "\t<backing-store ->\n\t\tbs-type memory",
            "\t<backing-store ->\n\t\tbs-type memory\n\t\tbsopts size=1048576\n\t\tlun 7\n\t</backing-store>\n\t<backing-store ->\n\t\tbs-type memory",
        );
    let conf2 = write(dir.path(), "changed.conf", &changed);
    let pretend = ok(&tgtd, &["--update", "ALL", "--pretend", "-c", &conf2]);
    assert!(
        pretend.contains(
            " --lld iscsi --mode target --op update --tid 1 --name MaxRecvDataSegmentLength --value 131072\n"
        ),
        "{pretend}"
    );
    assert!(pretend.contains(" --lld iscsi --mode logicalunit --op new --tid 1 --lun 7 --bstype memory"), "{pretend}");
    assert!(pretend.contains("iqn.2001-04.com.example:beta has 1 active session(s)"), "{pretend}");
    let before = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show", "--tid", "1"]);
    assert!(before.contains("MaxRecvDataSegmentLength=65536"), "--pretend changed something: {before}");

    // What could be applied is; the busy target is named and the run fails (EBUSY).
    let out = tgt_admin(&tgtd, &["--update", "ALL", "-c", &conf2]);
    assert_eq!(out.status.code(), Some(16), "{}", common::text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("left unchanged, they have sessions (use --force): iqn.2001-04.com.example:beta"),
        "{}",
        common::text(&out)
    );
    let params = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show", "--tid", "1"]);
    assert!(params.contains("MaxRecvDataSegmentLength=131072"), "{params}");
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains("        LUN: 7\n"), "{show}");
    // beta still open to ALL, its session untouched.
    assert!(show.ends_with("    ACL information:\n        ALL\n"), "{show}");
    assert!(show.contains("Initiator: iqn.2007-10.com.example:client"), "{show}");

    // Up to date: a second run changes nothing on alpha.
    let out = ok(&tgtd, &["--update", "tid=1", "-c", &conf2]);
    assert!(out.contains("alpha is up to date"), "{out}");

    // --force changes the busy target too.
    ok(&tgtd, &["--update", "iqn.2001-04.com.example:beta", "--force", "-c", &conf2]);
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.ends_with("    ACL information:\n        10.0.0.0/8\n"), "{show}");

    // A target the file no longer has goes with ALL (forced: beta has a session).
    let only_alpha = changed.split("<target iqn.2001-04.com.example:beta>").next().unwrap().to_string();
    let conf3 = write(dir.path(), "alpha.conf", &only_alpha);
    ok(&tgtd, &["--update", "ALL", "--force", "-c", &conf3]);
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(!show.contains("beta"), "{show}");
}

/// Fault-injection rules on a running LUN show in `--dump` (they must never go unnoticed), and the
/// dump loads back into a LUN with the same rules.
#[test]
fn fault_rules_appear_in_the_dump_and_load_back() {
    let tgtd = Tgtd::start();
    tgtd.new_target(1, "iqn.2026-12.org.rtgt:faulty");
    let out = tgtd.add_lun(1, 1, &["--bstype", "memory", "--bsopts", "size=1M;fault=read:eio:lba=100-199"]);
    assert!(out.status.success(), "{out:?}");
    let dumped = ok(&tgtd, &["--dump"]);
    assert!(dumped.contains("fault=read:eio:lba=100-199"), "{dumped}");
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "dumped.conf", &dumped);
    let fresh = Tgtd::start();
    ok(&fresh, &["--execute", "-c", &conf]);
    let show = fresh.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains("Fault injection: read:eio:lba=100-199"), "{show}");
    assert_eq!(ok(&fresh, &["--dump"]), dumped);
}

#[test]
fn offline_ready_show_and_environment_socket() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "a.img", 8 << 20);
    let conf = write(dir.path(), "targets.conf", &config(&image));
    // RTGT_CONTROL_SOCKET reaches the daemon without --control-socket.
    let out = Command::new(tgt_admin_path())
        .args(["--execute", "-c", &conf])
        .env("RTGT_CONTROL_SOCKET", &tgtd.socket)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ok(&tgtd, &["--show"]), tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]));
    // ALL is every target's own state, as with tgt's tgt-admin: `target show` tells the truth
    // and the daemon's state is left alone.
    let target_show = || tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    let states = || {
        target_show().lines().filter(|l| l.trim_start().starts_with("State: ")).map(str::to_owned).collect::<Vec<_>>()
    };
    assert!(states().len() >= 2, "{}", target_show());
    ok(&tgtd, &["--offline", "ALL"]);
    assert!(states().iter().all(|l| l.ends_with("State: offline")), "{}", target_show());
    assert!(tgtd.tgtadm_ok(&["--mode", "system", "--op", "show"]).contains("State: ready"));
    ok(&tgtd, &["--ready", "ALL"]);
    assert!(states().iter().all(|l| l.ends_with("State: ready")), "{}", target_show());
    // A target taken offline alone is readied by ALL too.
    ok(&tgtd, &["--offline", "tid=2"]);
    assert!(target_show().contains("State: offline"));
    ok(&tgtd, &["--ready", "ALL"]);
    assert!(states().iter().all(|l| l.ends_with("State: ready")), "{}", target_show());
    // One target, by tid or by name: that target's own state, the daemon stays ready.
    assert!(!target_show().contains("State: offline"));
    ok(&tgtd, &["--offline", "tid=1"]);
    assert!(target_show().contains("State: offline"), "{}", target_show());
    assert!(tgtd.tgtadm_ok(&["--mode", "system", "--op", "show"]).contains("State: ready"));
    ok(&tgtd, &["--ready", "tid=1"]);
    assert!(!target_show().contains("State: offline"));
    let name = target_show().lines().next().unwrap().split_once(": ").unwrap().1.to_string();
    ok(&tgtd, &["--offline", &name]);
    assert!(target_show().contains("State: offline"));
    ok(&tgtd, &["--ready", &name]);
    assert!(!target_show().contains("State: offline"));
    assert_eq!(tgt_admin(&tgtd, &["--offline", "tid=9"]).status.code(), Some(22));
    // No daemon: tgtadm's status.
    let out = Command::new(tgt_admin_path())
        .args(["--show", "--control-socket"])
        .arg(dir.path().join("none.sock"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(107));
}

/// dist/rtgt.init drives the real binaries: start (with the file applied), status, reload, stop.
#[test]
fn init_script_starts_reports_reloads_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "a.img", 8 << 20);
    let conf = write(dir.path(), "targets.conf", &config(&image));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../dist/rtgt.init");
    let socket = dir.path().join("control.sock");
    let port = common::free_port();
    let run = |action: &str| {
        Command::new("sh")
            .arg(&script)
            .arg(action)
            .env("TGTD", env!("CARGO_BIN_EXE_tgtd"))
            .env("TGTADM", common::tgtadm_path())
            .env("TGT_ADMIN", tgt_admin_path())
            .env("STATE_DIR", dir.path().join("state"))
            .env("CONF", &conf)
            .env("CONTROL_SOCKET", &socket)
            .env("TGTD_OPTS", format!("--iscsi portal=127.0.0.1:{port}"))
            .env("PIDFILE", dir.path().join("tgtd.pid"))
            .env("LOG", dir.path().join("tgtd.log"))
            .output()
            .unwrap()
    };
    let out = run("start");
    assert!(out.status.success(), "{}", common::text(&out));
    let pid: i32 = std::fs::read_to_string(dir.path().join("tgtd.pid")).unwrap().trim().parse().unwrap();
    let _guard = KillOnDrop(pid);
    let status = run("status");
    assert!(status.status.success(), "{}", common::text(&status));
    assert!(common::text(&status).contains("State: ready"), "{}", common::text(&status));
    let show = Command::new(common::tgtadm_path())
        .arg("--control-socket")
        .arg(&socket)
        .args(["--mode", "target", "--op", "show"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&show.stdout).contains("iqn.2001-04.com.example:beta"), "the file was not applied");
    // A target made with tgtadm survives a restart (the state file), beside the file's targets.
    let tgtadm = |args: &[&str]| {
        Command::new(common::tgtadm_path()).arg("--control-socket").arg(&socket).args(args).output().unwrap()
    };
    assert!(tgtadm(&["--mode", "target", "--op", "new", "--tid", "9", "-T", "iqn.2001-04.com.example:adhoc"])
        .status
        .success());
    let out = run("restart");
    assert!(out.status.success(), "{}", common::text(&out));
    let pid: i32 = std::fs::read_to_string(dir.path().join("tgtd.pid")).unwrap().trim().parse().unwrap();
    let _guard = KillOnDrop(pid);
    let show = String::from_utf8_lossy(&tgtadm(&["--mode", "target", "--op", "show"]).stdout).into_owned();
    assert!(show.contains("Target 9: iqn.2001-04.com.example:adhoc") && show.contains(":beta"), "{show}");
    // Reload makes the running set match the file, as tgt's tgt-admin --update ALL does.
    assert!(run("reload").status.success());
    let show = String::from_utf8_lossy(&tgtadm(&["--mode", "target", "--op", "show"]).stdout).into_owned();
    assert!(!show.contains("adhoc") && show.contains(":beta"), "{show}");
    let out = run("stop");
    assert!(out.status.success(), "{}", common::text(&out));
    // SAFETY: kill(2) with signal 0 only checks whether the process still exists.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "tgtd is still running after stop");
    assert_eq!(run("status").status.code(), Some(3));
}

/// Kills the script's daemon if the test fails before `stop`.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid the init script recorded for the daemon it started; after a
        // successful stop the signal finds no process and is ignored.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

/// A PATH whose `tgtadm` is rtgt's, talking to `tgtd`: how Debian's tgt-admin (which runs
/// `tgtadm` by name) is pointed at a test's daemon.
fn tgtadm_shim(tgtd: &Tgtd, dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    // tgt-admin always passes `-C 0`; rtgt's --control-socket wins over it, and points at this
    // test's private daemon.
    let shim = format!(
        "#!/bin/sh\nexec '{}' --control-socket '{}' \"$@\"\n",
        common::tgtadm_path().display(),
        tgtd.socket.display()
    );
    std::fs::write(bin.join("tgtadm"), shim).unwrap();
    std::fs::set_permissions(bin.join("tgtadm"), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

/// Debian's own tgt-admin (a Perl script that runs `tgtadm` and parses its text) manages rtgt
/// unchanged when rtgt's tgtadm comes first in PATH: the drop-in promise for existing tooling.
#[test]
fn debian_tgt_admin_drives_rtgt_through_its_tgtadm() {
    let debian = Path::new("/usr/sbin/tgt-admin");
    assert!(debian.exists(), "Debian's tgt is not installed (scripts/install-deps installs it)");
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "perl.img", 8 << 20);
    let path = tgtadm_shim(&tgtd, dir.path());
    let conf = write(
        dir.path(),
        "perl.conf",
        &format!(
            "<target iqn.2001-04.com.example:perl>\n\tbacking-store {}\n\tincominguser alice alicesecret1\n\t\
             initiator-address 127.0.0.1\n\tvendor_id ACME\n</target>\n",
            image.display()
        ),
    );
    let tgt_admin = |args: &[&str]| Command::new(debian).args(args).env("PATH", &path).output().unwrap();
    let out = tgt_admin(&["-c", &conf, "-e"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.starts_with("Target 1: iqn.2001-04.com.example:perl\n"), "{show}");
    assert!(show.contains("        alice\n    ACL information:\n        127.0.0.1\n"), "{show}");
    let lun = tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "show", "--tid", "1", "--lun", "1", "--json"]);
    assert!(lun.contains("\"vendor_id\": \"ACME\""), "{lun}");
    // Its dump parses our show text.
    let dump = tgt_admin(&["--dump"]);
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(text.contains("<target iqn.2001-04.com.example:perl>"), "{}", common::text(&dump));
    assert!(text.contains(&format!("backing-store {}", image.display())), "{text}");
    assert!(text.contains("initiator-address 127.0.0.1"), "{text}");
    // Its --update re-reads the file and reconfigures the (idle) target.
    let changed = std::fs::read_to_string(&conf).unwrap().replace("127.0.0.1", "10.0.0.0/8");
    std::fs::write(&conf, changed).unwrap();
    let out = tgt_admin(&["-c", &conf, "--update", "ALL"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.ends_with("    ACL information:\n        10.0.0.0/8\n"), "{show}");
    let out = tgt_admin(&["--delete", "ALL"]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]), "");
}

/// Issue 22 item 1 with targets.conf: a LUN's file is away when tgtd starts (a late mount), so the
/// restore keeps the LUN as missing. `tgt-admin --update` while the file is still away leaves it so
/// (the target and the saved LUN stay); once the file exists, `tgt-admin --update` (what `systemctl
/// reload rtgt` runs) creates the LUN again on it, online and serving the file's blocks.
#[test]
fn update_brings_back_a_lun_whose_file_was_missing_at_start() {
    const IQN: &str = "iqn.2001-04.com.example:late";
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("late.img");
    let text = format!(
        "<target {IQN}>\n\tbacking-store {}\n\t<backing-store ->\n\t\tbs-type memory\n\t\tbsopts size=1048576\n\t\tlun 2\n\t</backing-store>\n\tinitiator-address ALL\n</target>\n",
        image.display()
    );
    let conf = write(dir.path(), "targets.conf", &text);
    std::fs::write(&image, vec![0u8; 1 << 20]).unwrap();
    ok(&tgtd, &["--execute", "-c", &conf]);
    std::fs::remove_file(&image).unwrap();
    let tgtd = tgtd.crash_and_restart(&[]);
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains("Online: No (backing store missing:"), "not restored as missing:\n{show}");

    // Still away: the run fails on that LUN, and the target and the missing LUN stay as they were.
    let out = tgt_admin(&tgtd, &["--update", "ALL", "-c", &conf]);
    let said = common::text(&out);
    assert_eq!(out.status.code(), Some(22), "--update without the file: {said}");
    assert!(said.contains("cannot open") && said.contains("late.img"), "{said}");
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains(&format!("Target 1: {IQN}\n")), "the target went:\n{show}");
    assert!(show.contains("        LUN: 1\n") && show.contains("Online: No (backing store missing:"), "{show}");
    assert!(show.contains("        LUN: 2\n"), "the memory LUN went:\n{show}");

    // The file is made (with other contents than before): --update creates the LUN on it.
    let contents: Vec<u8> = (0..2u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&image, &contents).unwrap();
    let out = ok(&tgtd, &["--update", "ALL", "-c", &conf]);
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(!show.contains("missing") && show.contains("Size: 2 MB"), "{out}\n{show}");
    assert!(show.contains(&format!("Backing store path: {}", image.display())), "{show}");
    let mut conn = tgtd.session(IQN, 1, &[1, 2]);
    let read = conn.read10(1, 8, 8, 512).unwrap();
    assert_eq!(read.status, 0, "READ(10): {:02x?}", read.sense);
    assert!(read.data_in == contents[8 * 512..16 * 512], "the LUN does not serve the new file");
    let write = conn.write10(1, 0, &[0xa5; 512], 512).unwrap();
    assert_eq!(write.status, 0, "WRITE(10): {:02x?}", write.sense);
    drop(conn);
    assert_eq!(std::fs::read(&image).unwrap()[..512], [0xa5; 512]);
    // Up to date now: a second run has nothing to do.
    let again = ok(&tgtd, &["--update", "ALL", "-c", &conf]);
    assert!(again.contains("is up to date"), "{again}");
}

/// A targets.conf moved from tgt keeps its target and LUN numbers: rtgt's tgt-admin numbers them as
/// Debian's does. Targets are made in name order (not file order), `controller_tid` gives a target
/// its tid (the ones after it continue from there), and LUNs without `lun` are numbered
/// backing-stores first, then direct-stores, each kind in path order, skipping the numbers other
/// stores name. Initiators find their disks by these numbers, so a different numbering would swap
/// disks under them.
#[test]
fn target_and_lun_numbers_are_debian_tgt_admins() {
    let debian = Path::new("/usr/sbin/tgt-admin");
    assert!(debian.exists(), "Debian's tgt is not installed (scripts/install-deps installs it)");
    let dir = tempfile::tempdir().unwrap();
    for name in ["a.img", "b.img", "c.img", "d.img", "e.img"] {
        common::sparse_image(dir.path(), name, 4 << 20);
    }
    let img = |name: &str| dir.path().join(name).display().to_string();
    let text = format!(
        "<target iqn.2001-04.com.example:zulu>\n\tbacking-store {e}\n\tbacking-store {b}\n</target>\n\
         <target iqn.2001-04.com.example:mike>\n\tcontroller_tid 7\n\tdirect-store {a}\n\t\
         <backing-store {d}>\n\t</backing-store>\n\t<backing-store {c}>\n\t\tlun 1\n\t</backing-store>\n\
         \tallow-in-use yes\n</target>\n\
         <target iqn.2001-04.com.example:alpha>\n\tbacking-store {a}\n\tallow-in-use yes\n</target>\n",
        a = img("a.img"),
        b = img("b.img"),
        c = img("c.img"),
        d = img("d.img"),
        e = img("e.img"),
    );
    let conf = write(dir.path(), "numbers.conf", &text);
    // The numbers as Debian's tgt-admin gives them, through rtgt's tgtadm.
    let theirs = Tgtd::start();
    let path = tgtadm_shim(&theirs, dir.path());
    let out = Command::new(debian).args(["-c", &conf, "-e"]).env("PATH", &path).output().unwrap();
    assert!(out.status.success(), "{}", common::text(&out));
    let ours = Tgtd::start();
    ok(&ours, &["-c", &conf, "-e"]);
    // Each target's number and name, each LUN's number and file.
    let numbers = |tgtd: &Tgtd| {
        let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
        show.lines()
            .filter(|l| l.starts_with("Target ") || l.starts_with("        LUN: ") || l.contains("Backing store path:"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let expected = numbers(&theirs);
    assert!(expected.starts_with("Target 1: iqn.2001-04.com.example:alpha\n"), "{expected}");
    assert!(expected.contains("Target 7: iqn.2001-04.com.example:mike\n"), "{expected}");
    assert_eq!(numbers(&ours), expected);
}

/// `--update ALL` (what `systemctl reload rtgt` runs) on the file a target was made from finds it
/// up to date: an aio store (its size is its file's) and `sense_format` (which `show` does not
/// print) must not look like changes, or every reload deletes and re-creates those LUNs (under
/// the initiators' feet with --force, refused as busy without it).
#[test]
fn update_finds_aio_stores_and_sense_format_up_to_date() {
    const IQN: &str = "iqn.2001-04.com.example:steady";
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "aio.img", 4 << 20);
    let other = common::sparse_image(dir.path(), "sense.img", 4 << 20);
    let text = format!(
        "<target {IQN}>\n\t<backing-store {}>\n\t\tbs-type aio\n\t</backing-store>\n\t<backing-store {}>\n\t\t\
         params sense_format=1\n\t</backing-store>\n</target>\n",
        image.display(),
        other.display()
    );
    let conf = write(dir.path(), "steady.conf", &text);
    ok(&tgtd, &["--execute", "-c", &conf]);
    let again = ok(&tgtd, &["--update", "ALL", "-c", &conf, "--pretend"]);
    assert_eq!(again, format!("target {IQN} is up to date\n"));
    // The dump carries the sense format, and loads back to the same configuration.
    let dump = ok(&tgtd, &["--dump"]);
    assert!(dump.contains("\t\tsense_format 1\n"), "{dump}");
    let dumped = write(dir.path(), "dump.conf", &dump);
    assert_eq!(ok(&tgtd, &["--update", "ALL", "-c", &dumped, "--pretend"]), format!("target {IQN} is up to date\n"));
}
