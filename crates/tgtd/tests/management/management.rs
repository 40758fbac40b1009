//! The management modes beyond targets and LUNs, through the real tgtadm against the real daemon:
//! accounts, portals, the driver, sessions and connections, system state, target parameters; tgt's
//! messages and exit statuses; `--json` on every show; passwords never shown unless asked.

use crate::common;

use common::initiator::Connection;
use common::{free_port, Tgtd};
use std::net::TcpStream;
use std::process::Output;

const IQN: &str = "iqn.2001-04.com.example:mgmt";

fn fails(out: &Output, message: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(22), "stderr: {stderr}");
    assert!(stderr.starts_with(&format!("tgtadm: {message}")), "expected '{message}', got: {stderr}");
    // tgt's line, then at most one line of rtgt's detail.
    assert!(stderr.lines().count() <= 2, "tgt's line and a detail: {stderr}");
}

fn target(tgtd: &Tgtd) {
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "new", "--tid", "1", "-T", IQN]);
}

#[test]
fn accounts_are_created_bound_shown_and_deleted() {
    // Debug logging on: every request is logged, and still no password may appear.
    let tgtd = Tgtd::start_with(&["-d", "1"]);
    target(&tgtd);
    let account = |args: &[&str]| {
        let mut all = vec!["--lld", "iscsi", "--mode", "account"];
        all.extend_from_slice(args);
        tgtd.tgtadm(&all)
    };
    assert!(account(&["--op", "new", "--user", "alice", "--password", "alicesecret1"]).status.success());
    assert!(account(&["--op", "new", "--user", "bob", "--password", "bobsecret123"]).status.success());
    fails(&account(&["--op", "new", "--user", "alice", "--password", "x"]), "this account already exists");
    assert_eq!(String::from_utf8(account(&["--op", "show"]).stdout).unwrap(), "Account list:\n    bob\n    alice\n");
    assert!(account(&["--op", "bind", "--tid", "1", "--user", "alice"]).status.success());
    assert!(account(&["--op", "bind", "--tid", "1", "--user", "bob", "--outgoing"]).status.success());
    fails(&account(&["--op", "bind", "--tid", "1", "--user", "carl"]), "can't find the account");
    fails(&account(&["--op", "bind", "--tid", "9", "--user", "alice"]), "can't find the target");
    fails(
        &account(&["--op", "bind", "--tid", "1", "--user", "alice", "--outgoing"]),
        "this target already has an outgoing account",
    );
    // tid 0: the discovery session's accounts.
    assert!(account(&["--op", "bind", "--tid", "0", "--user", "alice"]).status.success());
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(
        show.contains("    Account information:\n        alice\n        bob (outgoing)\n    ACL information:\n"),
        "{show}"
    );

    // Passwords appear nowhere unless asked for.
    let json = String::from_utf8(account(&["--op", "show", "--json"]).stdout).unwrap();
    assert!(!json.contains("secret"), "{json}");
    let listed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(listed["account_list"][1]["user"], "alice");
    assert_eq!(listed["account_list"][1]["discovery"], true);
    let secrets = String::from_utf8(account(&["--op", "show", "--json", "--secrets"]).stdout).unwrap();
    assert!(secrets.contains("alicesecret1"), "{secrets}");
    assert!(tgtd.log().contains("management request"), "requests are not logged at debug level");
    assert!(!tgtd.log().contains("alicesecret1"), "a password reached the log");

    assert!(account(&["--op", "unbind", "--tid", "1", "--user", "alice"]).status.success());
    fails(&account(&["--op", "unbind", "--tid", "1", "--user", "alice"]), "can't find the account");
    assert!(account(&["--op", "delete", "--user", "bob"]).status.success());
    fails(&account(&["--op", "delete", "--user", "bob"]), "can't find the account");
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(show.contains("    Account information:\n    ACL information:\n"), "{show}");
}

#[test]
fn portals_open_and_close_at_run_time() {
    let tgtd = Tgtd::start();
    let boot = format!("Portal: 127.0.0.1:{},1\n", tgtd.port);
    assert_eq!(tgtd.tgtadm_ok(&["--mode", "portal", "--op", "show"]), boot);
    let port = free_port();
    let portal = format!("portal=127.0.0.1:{port}");
    tgtd.tgtadm_ok(&["--mode", "portal", "--op", "new", "--param", &portal]);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_ok(), "the new portal does not accept connections");
    assert_eq!(tgtd.tgtadm_ok(&["--mode", "portal", "--op", "show"]), format!("Portal: 127.0.0.1:{port},1\n{boot}"));
    fails(&tgtd.tgtadm(&["--mode", "portal", "--op", "new", "--param", &portal]), "invalid request");
    let json: serde_json::Value =
        serde_json::from_str(&tgtd.tgtadm_ok(&["--mode", "portal", "--op", "show", "--json"])).unwrap();
    assert_eq!(json["portal_list"].as_array().unwrap().len(), 2);
    tgtd.tgtadm_ok(&["--mode", "portal", "--op", "delete", "--param", &portal]);
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the deleted portal still accepts connections");
    fails(&tgtd.tgtadm(&["--mode", "portal", "--op", "delete", "--param", &portal]), "invalid request");
    assert_eq!(tgtd.tgtadm_ok(&["--mode", "portal", "--op", "show"]), boot);
}

#[test]
fn lld_mode_as_tgt() {
    let tgtd = Tgtd::start();
    target(&tgtd);
    assert_eq!(
        tgtd.tgtadm_ok(&["--mode", "lld", "--op", "show"]),
        format!("LLDs:\n    iscsi: ready\n        Target 1: {IQN}\n    vhost: ready\n")
    );
    tgtd.tgtadm_ok(&["--mode", "lld", "--op", "start", "--lld", "iscsi"]);
    fails(&tgtd.tgtadm(&["--mode", "lld", "--op", "stop", "--lld", "iscsi"]), "this driver is busy");
    let json: serde_json::Value =
        serde_json::from_str(&tgtd.tgtadm_ok(&["--mode", "lld", "--op", "show", "--json"])).unwrap();
    assert_eq!(json["lld_list"][0]["targets"][0]["tid"], 1);
}

#[test]
fn target_parameters_and_nop_settings() {
    let tgtd = Tgtd::start();
    target(&tgtd);
    let update = |name: &str, value: &str| {
        tgtd.tgtadm(&["--mode", "target", "--op", "update", "--tid", "1", "--name", name, "--value", value])
    };
    assert!(update("nop_interval", "5").status.success());
    assert!(update("nop_count", "3").status.success());
    assert!(update("MaxRecvDataSegmentLength", "65536").status.success());
    assert!(update("TargetAlias", "disk-one").status.success());
    fails(&update("Frob", "3"), "invalid request");
    fails(&update("MaxRecvDataSegmentLength", "abc"), "invalid request");
    fails(&update("nop_count", "many"), "invalid request");
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(
        show.starts_with(&format!(
            "Target 1: {IQN}\n    System information:\n        Driver: iscsi\n        State: ready\n        \
             Nop interval: 5\n        Nop count: 3\n    I_T nexus information:\n"
        )),
        "{show}"
    );
    let params = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show", "--tid", "1"]);
    assert!(params.starts_with("nop_interval=5\nnop_count=3\nMaxRecvDataSegmentLength=65536\n"), "{params}");
    assert!(params.contains("TargetAlias=disk-one\n"), "{params}");
}

#[test]
fn bind_by_address_network_and_name() {
    let tgtd = Tgtd::start();
    target(&tgtd);
    let acl =
        |op: &str, flag: &str, value: &str| tgtd.tgtadm(&["--mode", "target", "--op", op, "--tid", "1", flag, value]);
    for (flag, value) in
        [("-I", "ALL"), ("-I", "10.1.2.3"), ("-I", "192.168.0.0/16"), ("-I", "fd00::/8"), ("-Q", "iqn.x:a")]
    {
        assert!(acl("bind", flag, value).status.success(), "bind {value}");
    }
    fails(&acl("bind", "-I", "10.1.2.3"), "this access control rule already exists");
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(
        show.ends_with("    ACL information:\n        ALL\n        10.1.2.3\n        192.168.0.0/16\n        fd00::/8\n        iqn.x:a\n"),
        "{show}"
    );
    assert!(acl("unbind", "-I", "192.168.0.0/16").status.success());
    fails(&acl("unbind", "-I", "192.168.0.0/16"), "this access control rule does not exist");
    fails(&acl("bind", "-I", "10.0.0.0/33"), "'10.0.0.0/33' is not ALL");
}

#[test]
fn sessions_and_connections_are_listed_and_closed() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "d.img", 8 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let initiator = "iqn.2007-10.com.example:client";
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(initiator, Some(IQN), &[]).unwrap();
    let tsih = only_session(&tgtd);
    let sessions = tgtd.tgtadm_ok(&["--mode", "conn", "--op", "show", "--tid", "1"]);
    assert_eq!(
        sessions,
        format!("Session: {tsih}\n    Connection: 0\n        Initiator: {initiator}\n        IP Address: 127.0.0.1\n")
    );
    let sid = tsih.to_string();
    let session = tgtd.tgtadm_ok(&["--mode", "session", "--op", "show", "--tid", "1", "--sid", &sid]);
    assert!(session.starts_with(&sessions), "{session}");
    // What the session negotiated (the initiator offered MaxRecvDataSegmentLength 262144).
    assert!(session.contains("    MaxXmitDataSegmentLength=262144\n"), "{session}");
    assert!(session.contains("    HeaderDigest=None\n"), "{session}");
    let json: serde_json::Value =
        serde_json::from_str(&tgtd.tgtadm_ok(&["--mode", "session", "--op", "show", "--tid", "1", "--json"])).unwrap();
    assert_eq!(json["sessions"][0]["initiator"], initiator);
    fails(&tgtd.tgtadm(&["--mode", "session", "--op", "show", "--tid", "1", "--sid", "999"]), "can't find the session");
    fails(
        &tgtd.tgtadm(&["--mode", "conn", "--op", "delete", "--tid", "1", "--sid", &sid, "--cid", "7"]),
        "can't find the connection",
    );
    tgtd.tgtadm_ok(&["--mode", "conn", "--op", "delete", "--tid", "1", "--sid", &sid, "--cid", "0"]);
    assert!(conn.closed_by_target(), "the connection was not closed");
    wait_for_no_sessions(&tgtd);

    // session delete closes every connection of the session.
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(initiator, Some(IQN), &[]).unwrap();
    let tsih = only_session(&tgtd);
    tgtd.tgtadm_ok(&["--mode", "session", "--op", "delete", "--tid", "1", "--sid", &tsih.to_string()]);
    assert!(conn.closed_by_target(), "the session was not closed");
    wait_for_no_sessions(&tgtd);
}

/// The TSIH of target 1's only session, from `--json`.
fn only_session(tgtd: &Tgtd) -> u64 {
    let json: serde_json::Value =
        serde_json::from_str(&tgtd.tgtadm_ok(&["--mode", "session", "--op", "show", "--tid", "1", "--json"])).unwrap();
    let list = json["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{json}");
    list[0]["id"].as_u64().unwrap()
}

fn wait_for_no_sessions(tgtd: &Tgtd) {
    for _ in 0..250 {
        if tgtd.tgtadm_ok(&["--mode", "conn", "--op", "show", "--tid", "1"]).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the session is still listed");
}

#[test]
fn offline_refuses_new_logins_while_sessions_go_on() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "d.img", 8 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let mut before = Connection::connect(tgtd.portal()).unwrap();
    before.login("iqn.2007-10.com.example:before", Some(IQN), &[]).unwrap();
    tgtd.tgtadm_ok(&["--mode", "system", "--op", "update", "--name", "State", "--value", "offline"]);
    assert!(tgtd.tgtadm_ok(&["--mode", "system", "--op", "show"]).starts_with("System:\n    State: offline\n"));
    let mut after = Connection::connect(tgtd.portal()).unwrap();
    assert!(
        after.login("iqn.2007-10.com.example:after", Some(IQN), &[]).is_err(),
        "an offline daemon accepted a login"
    );
    // The session from before still works: TEST UNIT READY answers GOOD (after the unit attention
    // every new nexus gets first).
    let first = before.scsi(1, &[0u8; 6], &[], 0).expect("the existing session stopped working");
    assert!(first.status == 0 || first.status == 2, "{}", first.status);
    let tur = before.scsi(1, &[0u8; 6], &[], 0).expect("the existing session stopped working");
    assert_eq!(tur.status, 0);
    fails(
        &tgtd.tgtadm(&["--mode", "system", "--op", "update", "--name", "State", "--value", "sideways"]),
        "invalid request",
    );
    tgtd.tgtadm_ok(&["--mode", "system", "--op", "update", "--name", "State", "--value", "ready"]);
    let mut again = Connection::connect(tgtd.portal()).unwrap();
    assert!(again.login("iqn.2007-10.com.example:after", Some(IQN), &[]).is_ok());
}

/// tgt's per-target state: `target update --name state --value offline` refuses new logins to that
/// target alone (0x0301 here; tgt 1.0.85 answers 0x0300), its sessions go on, show prints it.
#[test]
fn an_offline_target_refuses_new_logins_while_its_sessions_go_on() {
    common::require("iscsi-inq");
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "d.img", 8 << 20);
    let other = common::sparse_image(dir.path(), "e.img", 8 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let other_iqn = "iqn.2001-04.com.example:other";
    tgtd.add_disk_target(2, other_iqn, &other);
    let state = |value: &str| {
        tgtd.tgtadm(&[
            "--lld", "iscsi", "--mode", "target", "--op", "update", "--tid", "1", "--name", "state", "--value", value,
        ])
    };
    let mut before = Connection::connect(tgtd.portal()).unwrap();
    before.login("iqn.2007-10.com.example:before", Some(IQN), &[]).unwrap();
    assert!(state("offline").status.success());
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(
        show.starts_with(&format!(
            "Target 1: {IQN}\n    System information:\n        Driver: iscsi\n        State: offline\n"
        )),
        "{show}"
    );
    assert!(show.contains("State: ready"), "target 2 stays ready: {show}");
    // The daemon stays ready; only this target refuses.
    assert!(tgtd.tgtadm_ok(&["--mode", "system", "--op", "show"]).starts_with("System:\n    State: ready\n"));
    let inq = common::run("iscsi-inq", &[&tgtd.url(IQN, 1)]);
    assert!(!inq.status.success(), "an offline target accepted iscsi-inq: {}", common::text(&inq));
    let mut raw = Connection::connect(tgtd.portal()).unwrap();
    assert_eq!(raw.login("iqn.2007-10.com.example:after", Some(IQN), &[]).unwrap_err(), "login status 0x0301");
    let inq = common::run("iscsi-inq", &[&tgtd.url(other_iqn, 1)]);
    assert!(inq.status.success(), "the other target must accept: {}", common::text(&inq));
    // As tgt: the existing session's commands go on (after the power-on unit attention).
    let first = before.scsi(1, &[0u8; 6], &[], 0).expect("the existing session stopped working");
    assert!(first.status == 0 || first.status == 2, "{}", first.status);
    assert_eq!(before.scsi(1, &[0u8; 6], &[], 0).expect("the existing session stopped working").status, 0);
    fails(&state("sideways"), "invalid request");
    assert!(tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]).contains("State: offline"));
    assert!(state("ready").status.success());
    let inq = common::run("iscsi-inq", &[&tgtd.url(IQN, 1)]);
    assert!(inq.status.success(), "a ready target refused: {}", common::text(&inq));
    assert!(!tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]).contains("State: offline"));
}

#[test]
fn online_resize_reaches_running_sessions() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "grow.img", 8 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login("iqn.2007-10.com.example:client", Some(IQN), &[]).unwrap();
    let read_capacity = |conn: &mut Connection| conn.scsi(1, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8).unwrap();
    // The first command after login reports the power-on unit attention.
    let _ = read_capacity(&mut conn);
    let before = read_capacity(&mut conn);
    assert_eq!(before.status, 0);
    assert_eq!(u32::from_be_bytes(before.data_in[0..4].try_into().unwrap()), (8 << 20) / 512 - 1);

    std::fs::OpenOptions::new().write(true).open(&image).unwrap().set_len(16 << 20).unwrap();
    tgtd.tgtadm_ok(&[
        "--mode",
        "logicalunit",
        "--op",
        "update",
        "--tid",
        "1",
        "--lun",
        "1",
        "--params",
        "capacity=reload",
    ]);
    let attention = read_capacity(&mut conn);
    assert_eq!(attention.status, 2, "no unit attention after the resize");
    // UNIT ATTENTION, CAPACITY DATA HAS CHANGED (2Ah/09h, SPC-4 annex D), fixed or descriptor sense.
    let sense = &attention.sense;
    let (key, asc, ascq) = if sense[0] & 0x7f >= 0x72 {
        (sense[1] & 0x0f, sense[2], sense[3])
    } else {
        (sense[2] & 0x0f, sense[12], sense[13])
    };
    assert_eq!((key, asc, ascq), (6, 0x2a, 0x09));
    let after = read_capacity(&mut conn);
    assert_eq!(u32::from_be_bytes(after.data_in[0..4].try_into().unwrap()), (16 << 20) / 512 - 1);
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains("Size: 17 MB, Block size: 512"), "{show}");
    fails(
        &tgtd.tgtadm(&[
            "--mode",
            "logicalunit",
            "--op",
            "update",
            "--tid",
            "1",
            "--lun",
            "1",
            "--params",
            "capacity=1G",
        ]),
        "this operation isn't supported",
    );
}

/// Debian's tgtd and tgtadm 1.0.85 (package tgt), the behavioural reference.
const DEBIAN_TGTD: &str = "/usr/sbin/tgtd";
const DEBIAN_TGTADM: &str = "/usr/sbin/tgtadm";

/// Debian's tgtd on its own control port and portal, killed (by PID) when dropped.
struct DebianTgtd {
    child: std::process::Child,
    control_port: u32,
    port: u16,
}

impl DebianTgtd {
    fn start() -> DebianTgtd {
        assert!(
            std::path::Path::new(DEBIAN_TGTD).exists(),
            "Debian's tgt is not installed (scripts/install-deps installs it): apt-get install -y tgt"
        );
        let port = free_port();
        // A control port nobody else uses: tgtd refuses to start on a socket in use, so skip the
        // numbers whose socket exists (a live daemon's or a stale one).
        // tgtd takes control ports up to 32767.
        let mut control_port = 20000 + std::process::id() % 12000;
        while std::path::Path::new(&format!("/var/run/tgtd/socket.{control_port}")).exists() {
            control_port = if control_port >= 32767 { 20000 } else { control_port + 1 };
        }
        let log_path = std::env::temp_dir().join(format!("debian-tgtd-{control_port}.log"));
        let log = std::fs::File::create(&log_path).expect("tgtd log file");
        let mut child = std::process::Command::new(DEBIAN_TGTD)
            .args(["-f", "-C", &control_port.to_string(), "--iscsi", &format!("portal=127.0.0.1:{port}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start Debian's tgtd");
        // On a loaded machine (CI builds, benchmarks) start-up can take a while: allow 30 s.
        for _ in 0..1500 {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("Debian's tgtd exited at start ({status}): {text}");
            }
            let probe = std::process::Command::new(DEBIAN_TGTADM)
                .args(["-C", &control_port.to_string(), "--mode", "system", "--op", "show"])
                .output()
                .unwrap();
            if probe.status.success() {
                return DebianTgtd { child, control_port, port };
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        panic!("Debian's tgtd did not start within 30 s: {text}");
    }

    fn tgtadm(&self, args: &[&str]) -> Output {
        std::process::Command::new(DEBIAN_TGTADM)
            .args(["-C", &self.control_port.to_string(), "--lld", "iscsi"])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for DebianTgtd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The same commands against Debian's tgt and rtgt: the same text, the same exit statuses, and
/// rtgt's error messages start with tgt's.
#[test]
fn same_text_and_statuses_as_debian_tgt() {
    let tgt = DebianTgtd::start();
    let rtgt = Tgtd::start();
    let steps: &[&[&str]] = &[
        &["--mode", "target", "--op", "new", "--tid", "1", "-T", IQN],
        &["--mode", "target", "--op", "new", "--tid", "1", "-T", IQN],
        &["--mode", "target", "--op", "new", "--tid", "2", "-T", "iqn.2001-04.com.example:other"],
        // tid 0 is discovery's, never a target's.
        &["--mode", "target", "--op", "new", "--tid", "0", "-T", "iqn.2001-04.com.example:zero"],
        &["--mode", "target", "--op", "delete", "--tid", "0"],
        &["--mode", "logicalunit", "--op", "new", "--tid", "0", "--lun", "1", "-b", "/nonexistent"],
        &["--mode", "target", "--op", "show", "--tid", "0"],
        &["--mode", "system", "--op", "update", "--name", "debug", "--value", "maybe"],
        &["--mode", "account", "--op", "new", "--user", "alice", "--password", "alicesecret1"],
        &["--mode", "account", "--op", "new", "--user", "bob", "--password", "bobsecret123"],
        &["--mode", "account", "--op", "new", "--user", "alice", "--password", "again"],
        &["--mode", "account", "--op", "show"],
        &["--mode", "account", "--op", "bind", "--tid", "1", "--user", "alice"],
        &["--mode", "account", "--op", "bind", "--tid", "1", "--user", "bob", "--outgoing"],
        &["--mode", "account", "--op", "bind", "--tid", "1", "--user", "alice"],
        &["--mode", "account", "--op", "bind", "--tid", "1", "--user", "alice", "--outgoing"],
        &["--mode", "account", "--op", "bind", "--tid", "2", "--user", "alice", "--outgoing"],
        &["--mode", "account", "--op", "unbind", "--tid", "2", "--user", "bob"],
        &["--mode", "account", "--op", "bind", "--tid", "1", "--user", "carl"],
        &["--mode", "account", "--op", "bind", "--tid", "9", "--user", "alice"],
        &["--mode", "account", "--op", "delete", "--user", "carl"],
        &["--mode", "account", "--op", "show", "--user", "alice"],
        &["--mode", "target", "--op", "bind", "--tid", "1", "-I", "ALL"],
        &["--mode", "target", "--op", "bind", "--tid", "1", "-I", "10.1.2.3"],
        &["--mode", "target", "--op", "bind", "--tid", "1", "-I", "10.1.2.3"],
        &["--mode", "target", "--op", "bind", "--tid", "1", "-Q", "iqn.1994-05.com.example:host"],
        &["--mode", "target", "--op", "unbind", "--tid", "1", "-I", "10.9.9.9"],
        &["--mode", "target", "--op", "update", "--tid", "1", "--name", "nop_interval", "--value", "5"],
        &["--mode", "target", "--op", "update", "--tid", "1", "--name", "nop_count", "--value", "3"],
        &["--mode", "target", "--op", "update", "--tid", "1", "--name", "Frob", "--value", "3"],
        &["--mode", "target", "--op", "update", "--tid", "1", "--name", "MaxRecvDataSegmentLength", "--value", "x"],
        &["--mode", "target", "--op", "show"],
        &["--mode", "target", "--op", "delete", "--tid", "7"],
        &["--mode", "conn", "--op", "show", "--tid", "1"],
        &["--mode", "conn", "--op", "delete", "--tid", "1", "--sid", "5", "--cid", "0"],
        // LUN 0 is the target's controller: not the administrator's to delete (it is there).
        &["--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "0"],
        &["--mode", "portal", "--op", "new"],
        &["--mode", "portal", "--op", "new", "--param", "portal=frob"],
        &["--mode", "account", "--op", "new", "--user", "carl"],
        &["--mode", "account", "--op", "new", "--password", "carlsecret12"],
        &["--mode", "lld", "--op", "start"],
        &["--mode", "lld", "--op", "stop"],
        &["--mode", "system", "--op", "update", "--name", "State", "--value", "offline"],
        &["--mode", "system", "--op", "update", "--name", "State", "--value", "ready"],
        &["--mode", "account", "--op", "unbind", "--tid", "1", "--user", "alice"],
        &["--mode", "account", "--op", "unbind", "--tid", "1", "--user", "alice"],
        &["--mode", "account", "--op", "delete", "--user", "bob"],
        &["--mode", "target", "--op", "show"],
        &["--mode", "account", "--op", "show"],
    ];
    for step in steps {
        let theirs = tgt.tgtadm(step);
        let mut args = vec!["--lld", "iscsi"];
        args.extend_from_slice(step);
        let ours = rtgt.tgtadm(&args);
        assert_eq!(ours.status.code(), theirs.status.code(), "{step:?}: {}", common::text(&ours));
        assert_eq!(String::from_utf8_lossy(&ours.stdout), String::from_utf8_lossy(&theirs.stdout), "{step:?}");
        // tgt's line exactly; rtgt may add its detail on the lines after it.
        let (ours_err, theirs_err) = (String::from_utf8_lossy(&ours.stderr), String::from_utf8_lossy(&theirs.stderr));
        assert_eq!(
            ours_err.lines().next(),
            theirs_err.lines().next(),
            "{step:?}: tgt {theirs_err:?}, rtgt {ours_err:?}"
        );
    }
    same_show_layouts(&tgt, &rtgt);
    // Portals: the same layout, each with its own port.
    assert_eq!(
        tgt.tgtadm(&["--mode", "portal", "--op", "show"]).stdout,
        format!("Portal: 127.0.0.1:{},1\n", tgt.port).into_bytes()
    );
    assert_eq!(
        rtgt.tgtadm_ok(&["--lld", "iscsi", "--mode", "portal", "--op", "show"]),
        format!("Portal: 127.0.0.1:{},1\n", rtgt.port)
    );
}

/// `system show` and `target show --tid N` against tgt's: every section and key tgt prints, in its
/// order and spelling (values may differ where rtgt's defaults do; rtgt's extras come last), and
/// `debug on` as tgt takes it.
fn same_show_layouts(tgt: &DebianTgtd, rtgt: &Tgtd) {
    let run_both = |args: &[&str]| {
        let theirs = tgt.tgtadm(args);
        let ours = rtgt.tgtadm(&[&["--lld", "iscsi"], args].concat());
        assert!(theirs.status.success() && ours.status.success(), "{args:?}: {}", common::text(&ours));
        (String::from_utf8_lossy(&theirs.stdout).into_owned(), String::from_utf8_lossy(&ours.stdout).into_owned())
    };
    let keys = |text: &str| text.lines().map(|l| l.split('=').next().unwrap_or(l).to_string()).collect::<Vec<_>>();
    let (theirs, ours) = run_both(&["--mode", "target", "--op", "show", "--tid", "2"]);
    let (theirs_keys, ours_keys) = (keys(&theirs), keys(&ours));
    assert_eq!(&ours_keys[..theirs_keys.len().min(ours_keys.len())], &theirs_keys[..], "tgt:\n{theirs}\nrtgt:\n{ours}");
    for same in ["HeaderDigest=", "DataDigest=", "OFMarkInt=", "IFMarkInt=", "MaxQueueCmd="] {
        let line = |text: &str| text.lines().find(|l| l.starts_with(same)).map(str::to_string);
        assert_eq!(line(&ours), line(&theirs), "{same}");
    }

    for value in ["on", "off"] {
        let update = ["--mode", "system", "--op", "update", "--name", "debug", "--value", value];
        assert_eq!(run_both(&update).1, "");
        let (theirs, ours) = run_both(&["--mode", "system", "--op", "show"]);
        let head = |text: &str| text.lines().take(3).collect::<Vec<_>>().join("\n");
        assert_eq!(head(&ours), head(&theirs), "debug {value}");
        // Sections: tgt's in tgt's order, rtgt's own (Limits) after them.
        let sections =
            |text: &str| text.lines().filter(|l| !l.starts_with(' ')).map(str::to_string).collect::<Vec<_>>();
        let theirs_sections = sections(&theirs);
        assert_eq!(&sections(&ours)[..theirs_sections.len()], &theirs_sections[..], "{ours}");
        let isns =
            |text: &str| text.split("iSNS:\n").nth(1).map(|rest| rest.lines().take(4).collect::<Vec<_>>().join("\n"));
        assert_eq!(isns(&ours), isns(&theirs));
    }
}

#[test]
fn nop_settings_reach_new_sessions() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "d.img", 8 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    for (name, value) in [("nop_interval", "1"), ("nop_count", "1")] {
        tgtd.tgtadm_ok(&["--mode", "target", "--op", "update", "--tid", "1", "--name", name, "--value", value]);
    }
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login("iqn.2007-10.com.example:quiet", Some(IQN), &[]).unwrap();
    // An idle connection is probed: a NOP-In asking for an answer (reserved ITT, a real TTT).
    let probe = conn.recv().unwrap();
    assert_eq!((probe.opcode(), probe.itt()), (common::initiator::OP_NOP_IN, 0xffff_ffff));
    assert_ne!(probe.u32_at(20), 0xffff_ffff);
    // Left unanswered, it is dropped after one more interval, and its session with it.
    let start = std::time::Instant::now();
    assert!(conn.closed_by_target());
    assert!(start.elapsed() < std::time::Duration::from_secs(5), "{:?}", start.elapsed());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while !tgtd.tgtadm_ok(&["--mode", "conn", "--op", "show", "--tid", "1"]).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the session outlived its connection");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn tgtd_nop_options_are_the_defaults_of_new_targets() {
    let tgtd = Tgtd::start_with(&["--iscsi", "nop_interval=7,nop_count=2"]);
    target(&tgtd);
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains("        Nop interval: 7\n        Nop count: 2\n"), "{show}");
    // A target's own setting still wins.
    tgtd.tgtadm_ok(&["--mode", "target", "--op", "update", "--tid", "1", "--name", "nop_count", "--value", "4"]);
    let params = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show", "--tid", "1"]);
    assert!(params.starts_with("nop_interval=7\nnop_count=4\n"), "{params}");
}
