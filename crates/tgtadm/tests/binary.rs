//! The tgtadm binary end to end against a stand-in daemon on a temporary socket: what reaches the
//! socket, what is printed, and the exit statuses tgt's tgtadm gives.

use rtgt_mgmt::{
    read_message, write_message, AclEntry, ErrorCode, Lld, MgmtError, Op, Reply, Request, Response, TargetOp,
    TargetState, TargetView,
};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Output};
use std::thread::JoinHandle;

fn tgtadm(socket: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tgtadm"))
        .arg("--control-socket")
        .arg(socket)
        .args(args)
        .env_remove("RTGT_CONTROL_SOCKET")
        .output()
        .unwrap()
}

/// Answer one connection with `response` and hand back the request it carried.
fn daemon(socket: &Path, response: Response) -> JoinHandle<Request> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let request: Request = read_message(&mut conn).unwrap();
        write_message(&mut conn, &response).unwrap();
        request
    })
}

fn target() -> TargetView {
    TargetView {
        tid: 1,
        name: "iqn.2026-11.t:one".into(),
        driver: Lld::Iscsi,
        state: TargetState::Ready,
        nop_interval: None,
        nop_count: None,
        nexuses: vec![],
        luns: vec![],
        accounts: vec![],
        acl: vec![AclEntry::All],
        params: vec![],
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn show_is_rendered_in_tgt_layout() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let server = daemon(&socket, Response::Ok(Reply::TargetList(vec![target()])));
    let out = tgtadm(&socket, &["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert_eq!(server.join().unwrap().op, Op::Target(TargetOp::Show { tid: None }));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "Target 1: iqn.2026-11.t:one\n    System information:\n        Driver: iscsi\n        State: ready\n    \
         I_T nexus information:\n    LUN information:\n    Account information:\n    ACL information:\n        ALL\n"
    );
}

#[test]
fn json_prints_the_typed_reply() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let server = daemon(&socket, Response::Ok(Reply::TargetList(vec![target()])));
    let out = tgtadm(&socket, &["--mode", "target", "--op", "show", "--json"]);
    server.join().unwrap();
    assert!(out.status.success());
    let back: Reply = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(back, Reply::TargetList(vec![target()]));
}

#[test]
fn daemon_errors_are_tgt_messages_with_status_22() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let server = daemon(&socket, Response::Error(MgmtError::new(ErrorCode::NoTarget)));
    let out = tgtadm(&socket, &["--mode", "target", "--op", "delete", "--tid", "9"]);
    assert_eq!(server.join().unwrap().op, Op::Target(TargetOp::Delete { tid: 9, force: false }));
    assert_eq!(out.status.code(), Some(22));
    assert_eq!(text(&out.stderr), "tgtadm: can't find the target\n");
    assert!(out.stdout.is_empty());

    std::fs::remove_file(&socket).unwrap();
    let detail = MgmtError::with_message(ErrorCode::InvalidRequest, "the memory store needs size=");
    let server = daemon(&socket, Response::Error(detail));
    let out = tgtadm(&socket, &["-m", "lu", "-o", "new", "-t", "1", "-l", "1", "-E", "memory"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(22));
    // tgt's line exactly as tgt prints it, rtgt's detail on its own line after it.
    assert_eq!(text(&out.stderr), "tgtadm: invalid request\ntgtadm: the memory store needs size=\n");
}

/// Under --json a failure is a JSON object on stdout (with the same exit status), whether the
/// daemon refused, the command line was wrong or no daemon answered.
#[test]
fn errors_under_json_are_json_objects() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let detail = MgmtError::with_message(ErrorCode::InvalidRequest, "the memory store needs size=");
    let server = daemon(&socket, Response::Error(detail));
    let out = tgtadm(&socket, &["-m", "lu", "-o", "new", "-t", "1", "-l", "1", "-E", "memory", "--json"]);
    server.join().unwrap();
    assert_eq!(out.status.code(), Some(22));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON error object");
    assert_eq!(
        value,
        serde_json::json!({"error": {"code": "invalid_request", "message": "invalid request",
            "detail": "the memory store needs size="}})
    );

    let out = tgtadm(&socket, &["--mode", "target", "--op", "new", "--tid", "1", "--json"]);
    assert_eq!(out.status.code(), Some(22));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON error object");
    assert_eq!(value["error"]["code"], "usage");
    assert_eq!(value["error"]["message"], "creating new target requires a name, use --targetname");

    std::fs::remove_file(&socket).unwrap();
    let out = tgtadm(&socket, &["--mode", "system", "--op", "show", "--json"]);
    assert_eq!(out.status.code(), Some(107));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON error object");
    assert_eq!(value["error"]["code"], "not_connected");
}

/// A bad `--bsopts`, `--bsoflags`, `--bstype` or LUN parameter is refused by tgtadm itself, before
/// any daemon is asked (none runs here), and printed as the daemon's refusal would be: tgt's line,
/// then rtgt's naming the option; exit 22 (EINVAL).
#[test]
fn bad_store_options_are_refused_before_the_daemon_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let lun = ["-m", "lu", "-o", "new", "-t", "1", "-l", "1"];
    for (extra, detail) in [
        (&["-E", "memory", "--bsopts", "size=1G;colour=blue"][..], "--bsopts: unknown option 'colour'"),
        (
            &["-E", "null", "--bsopts", "size=12Q"][..],
            "--bsopts: size must be a number of bytes with an optional k, M, G or T suffix, not '12Q'",
        ),
        (&["-b", "/d.img", "--bsoflags", "dsync"][..], "--bsoflags: unknown flag 'dsync' (sync, direct)"),
        (&["-b", "/d.img", "--bstype", "frob"][..], "--bstype: unknown backing store type 'frob'"),
        (&["-b", "/d.img", "--params", "readonly=yes"][..], "readonly must be 0 or 1, not 'yes'"),
    ] {
        let out = tgtadm(&socket, &[&lun[..], extra].concat());
        assert_eq!(out.status.code(), Some(22), "{extra:?}");
        assert_eq!(text(&out.stderr), format!("tgtadm: invalid request\ntgtadm: {detail}\n"));
        assert!(out.stdout.is_empty());
    }
    // An update's changes too; a capacity other than a reload is refused as unsupported.
    let update = ["-m", "lu", "-o", "update", "-t", "1", "-l", "1", "--params"];
    let out = tgtadm(&socket, &[&update[..], &["readonly=1,capacity=2G"]].concat());
    assert_eq!(out.status.code(), Some(22));
    assert_eq!(
        text(&out.stderr),
        "tgtadm: this operation isn't supported\ntgtadm: only capacity=reload (re-read the backing store's size) is \
         supported\n"
    );
    let out = tgtadm(&socket, &[&lun[..], &["-E", "memory", "-S", "size=1G,colour=blue", "--json"]].concat());
    assert_eq!(out.status.code(), Some(22));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON error object");
    assert_eq!(
        value,
        serde_json::json!({"error": {"code": "invalid_request", "message": "invalid request",
            "detail": "--bsopts: unknown option 'colour'"}})
    );
}

#[test]
fn no_daemon_is_status_107() {
    let dir = tempfile::tempdir().unwrap();
    let out = tgtadm(&dir.path().join("none.sock"), &["--mode", "system", "--op", "show"]);
    assert_eq!(out.status.code(), Some(107));
    assert_eq!(
        text(&out.stderr),
        "tgtadm: failed to send request hdr to tgt daemon, Transport endpoint is not connected\n"
    );
}

#[test]
fn command_line_mistakes_never_reach_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--frob"], 22, "tgtadm: unrecognized option '--frob'\nTry `tgtadm --help' for more information.\n"),
        (
            &["--mode", "target", "--op", "new", "--tid", "1"],
            22,
            "tgtadm: creating new target requires a name, use --targetname\n",
        ),
        (&["--mode", "frob", "--op", "show"], 1, "tgtadm: unknown mode: frob\n"),
        (
            &["--mode", "target", "--op", "show", "--tid", "x"],
            22,
            "-t argument value 'x' invalid\nTry `tgtadm --help' for more information.\n",
        ),
    ];
    for (args, code, stderr) in cases {
        let out = tgtadm(&socket, args);
        assert_eq!(out.status.code(), Some(*code), "{args:?}");
        assert_eq!(text(&out.stderr), *stderr, "{args:?}");
    }
}

#[test]
fn help_and_version_need_no_daemon() {
    let out = Command::new(env!("CARGO_BIN_EXE_tgtadm")).args(["--driver", "istgt", "--help"]).output().unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("--driver istgt --op new --tid ID --params Name=NAME"));
    let out = Command::new(env!("CARGO_BIN_EXE_tgtadm")).arg("-V").output().unwrap();
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("1.0.85"));
}

#[test]
fn the_environment_names_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("env.sock");
    let server = daemon(&socket, Response::Ok(Reply::Done));
    let out = Command::new(env!("CARGO_BIN_EXE_tgtadm"))
        .args(["--mode", "target", "--op", "new", "--tid", "5", "--targetname", "iqn.2026-11.t:zero"])
        .env("RTGT_CONTROL_SOCKET", &socket)
        .output()
        .unwrap();
    assert_eq!(server.join().unwrap().op, Op::Target(TargetOp::New { tid: 5, name: "iqn.2026-11.t:zero".into() }));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}
