//! Access control and CHAP end to end: the real tgtd configured with the real tgtadm, and
//! libiscsi's clients (iscsi-inq, iscsi-ls) logging in from loopback. ACLs by address, network and
//! initiator name, allowed and refused, and discovery that lists only what the initiator may reach.

use crate::common;

use common::initiator::{Connection, OP_LOGIN_RSP};
use common::{require, run, sparse_image, text, Tgtd};

const ALLOWED_NAME: &str = "iqn.2024-01.test:allowed-initiator";
const OTHER_NAME: &str = "iqn.2024-01.test:someone-else";

/// A target with one LUN and exactly the given ACL rules (`--initiator-address` or
/// `--initiator-name` followed by the value).
fn target_with_rules(tgtd: &Tgtd, tid: u32, iqn: &str, rules: &[(&str, &str)]) {
    let backing = sparse_image(tgtd.dir.path(), &format!("disk{tid}.img"), 8 << 20);
    tgtd.new_target(tid, iqn);
    tgtd.add_lun_ok(tid, 1, &["--backing-store", backing.to_str().unwrap()]);
    for (option, value) in rules {
        tgtd.bind(tid, option, value);
    }
}

/// iscsi-inq against LUN 1, optionally as a named initiator; returns (success, output).
fn inquiry(url: &str, initiator: Option<&str>) -> (bool, String) {
    let mut args = Vec::new();
    if let Some(name) = initiator {
        args.extend(["-i", name]);
    }
    args.push(url);
    let out = run("iscsi-inq", &args);
    (out.status.success(), text(&out))
}

/// The target names iscsi-ls lists, optionally as a named initiator.
fn discovered(portal_url: &str, initiator: Option<&str>) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(name) = initiator {
        args.extend(["-i", name]);
    }
    args.push(portal_url);
    let out = run("iscsi-ls", &args);
    let listing = text(&out);
    assert!(out.status.success(), "iscsi-ls failed: {listing}");
    let mut names: Vec<String> = listing
        .lines()
        .filter_map(|l| l.strip_prefix("Target:"))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn acl_by_address_network_and_initiator_name() {
    require("iscsi-inq");
    require("iscsi-ls");
    let tgtd = Tgtd::start();
    let targets = [
        (1, "iqn.2024-01.test:by-address", ("--initiator-address", "127.0.0.1")),
        (2, "iqn.2024-01.test:other-address", ("--initiator-address", "127.0.0.2")),
        (3, "iqn.2024-01.test:by-network", ("--initiator-address", "127.0.0.0/8")),
        (4, "iqn.2024-01.test:other-network", ("--initiator-address", "10.0.0.0/8")),
        (5, "iqn.2024-01.test:by-name", ("--initiator-name", ALLOWED_NAME)),
    ];
    for (tid, iqn, rule) in &targets {
        target_with_rules(&tgtd, *tid, iqn, &[*rule]);
    }

    for (iqn, allowed) in [
        ("iqn.2024-01.test:by-address", true),
        ("iqn.2024-01.test:other-address", false),
        ("iqn.2024-01.test:by-network", true),
        ("iqn.2024-01.test:other-network", false),
        ("iqn.2024-01.test:by-name", false),
    ] {
        let (ok, out) = inquiry(&tgtd.url(iqn, 1), None);
        assert_eq!(ok, allowed, "{iqn}: {out}");
        if allowed {
            assert!(out.contains("Peripheral Device Type:DIRECT_ACCESS"), "{iqn}: {out}");
        } else {
            assert!(out.contains("Authorization failure"), "{iqn}: {out}");
        }
    }
    // By name: the named initiator gets in, another name does not.
    let by_name = tgtd.url("iqn.2024-01.test:by-name", 1);
    let (ok, out) = inquiry(&by_name, Some(ALLOWED_NAME));
    assert!(ok, "{out}");
    let (ok, out) = inquiry(&by_name, Some(OTHER_NAME));
    assert!(!ok && out.contains("Authorization failure"), "{out}");

    // Discovery lists exactly the targets each initiator may log in to.
    let portal = format!("iscsi://127.0.0.1:{}", tgtd.port);
    assert_eq!(discovered(&portal, Some(OTHER_NAME)), ["iqn.2024-01.test:by-address", "iqn.2024-01.test:by-network"]);
    assert_eq!(
        discovered(&portal, Some(ALLOWED_NAME)),
        ["iqn.2024-01.test:by-address", "iqn.2024-01.test:by-name", "iqn.2024-01.test:by-network"]
    );

    // Unbinding the address rule closes the target to everyone.
    tgtd.tgtadm_ok(&[
        "--lld",
        "iscsi",
        "--mode",
        "target",
        "--op",
        "unbind",
        "--tid",
        "1",
        "--initiator-address",
        "127.0.0.1",
    ]);
    let (ok, out) = inquiry(&tgtd.url("iqn.2024-01.test:by-address", 1), None);
    assert!(!ok && out.contains("Authorization failure"), "{out}");
    assert_eq!(discovered(&portal, None), ["iqn.2024-01.test:by-network"]);
}

fn account(tgtd: &Tgtd, args: &[&str]) {
    let mut full = vec!["--lld", "iscsi", "--mode", "account"];
    full.extend_from_slice(args);
    tgtd.tgtadm_ok(&full);
}

#[test]
fn chap_one_way_mutual_and_discovery() {
    require("iscsi-inq");
    require("iscsi-ls");
    // Trace logging: whatever the daemon logs about logins and requests, no secret may be in it.
    let tgtd = Tgtd::start_with(&["-d", "2"]);
    let iqn = "iqn.2024-01.test:chap";
    let open = "iqn.2024-01.test:open";
    target_with_rules(&tgtd, 1, iqn, &[("--initiator-address", "ALL")]);
    target_with_rules(&tgtd, 2, open, &[("--initiator-address", "ALL")]);
    account(&tgtd, &["--op", "new", "--user", "alice", "--password", "alicesecret12"]);
    account(&tgtd, &["--op", "new", "--user", "tgtuser", "--password", "tgtsecret5678"]);
    account(&tgtd, &["--op", "bind", "--tid", "1", "--user", "alice"]);
    account(&tgtd, &["--op", "bind", "--tid", "1", "--user", "tgtuser", "--outgoing"]);
    let base = format!("127.0.0.1:{}/{iqn}/1", tgtd.port);

    // One-way CHAP.
    let (ok, out) = inquiry(&format!("iscsi://alice%alicesecret12@{base}"), None);
    assert!(ok && out.contains("DIRECT_ACCESS"), "{out}");
    // No credentials, or a wrong password: authentication failure.
    let (ok, out) = inquiry(&format!("iscsi://{base}"), None);
    assert!(!ok && out.contains("Authentication failure"), "{out}");
    let (ok, out) = inquiry(&format!("iscsi://alice%wrong-password@{base}"), None);
    assert!(!ok && out.contains("Authentication failure"), "{out}");
    // A target without accounts still takes logins without CHAP.
    let (ok, out) = inquiry(&tgtd.url(open, 1), None);
    assert!(ok, "{out}");

    // Mutual CHAP: libiscsi checks the target's answer against the secret it was given.
    let mutual =
        |secret: &str| format!("iscsi://alice%alicesecret12@{base}?target_user=tgtuser&target_password={secret}");
    let (ok, out) = inquiry(&mutual("tgtsecret5678"), None);
    assert!(ok && out.contains("DIRECT_ACCESS"), "{out}");
    let (ok, out) = inquiry(&mutual("not-the-target-secret"), None);
    assert!(!ok && out.contains("CHAP_R"), "the initiator must refuse the target's proof: {out}");

    // Discovery CHAP (tgt's tid 0): without credentials discovery is refused, with them it lists.
    account(&tgtd, &["--op", "bind", "--tid", "0", "--user", "alice"]);
    let portal = format!("iscsi://127.0.0.1:{}", tgtd.port);
    let out = run("iscsi-ls", &[&portal]);
    assert!(!out.status.success() && text(&out).contains("Authentication failure"), "{}", text(&out));
    let listed = discovered(&format!("iscsi://alice%alicesecret12@127.0.0.1:{}", tgtd.port), None);
    assert_eq!(listed, [iqn, open]);

    // show masks secrets unless they are asked for.
    let mut shown = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    shown += &tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show", "--json"]);
    shown += &tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "account", "--op", "show"]);
    shown += &tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "account", "--op", "show", "--json"]);
    assert!(shown.contains("alice") && shown.contains("tgtuser"), "{shown}");
    for secret in ["alicesecret12", "tgtsecret5678"] {
        assert!(!shown.contains(secret), "show printed a secret: {shown}");
    }

    // Failures are logged with the initiator's name and address, never with a secret.
    let log = tgtd.log();
    assert!(log.contains("DEBUG") || log.contains("TRACE"), "debug logging was on: {log}");
    assert!(log.contains("wrong CHAP response for user \"alice\""), "{log}");
    assert!(log.contains("iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-inq") && log.contains("127.0.0.1"), "{log}");
    for secret in ["alicesecret12", "tgtsecret5678", "wrong-password"] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}

/// The targets a SendTargets request names in its answer.
fn names(answer: &[(String, String)]) -> Vec<&str> {
    answer.iter().filter(|(k, _)| k == "TargetName").map(|(_, v)| v.as_str()).collect()
}

#[test]
fn send_targets_by_name_and_in_normal_sessions_honours_the_acl() {
    let tgtd = Tgtd::start();
    let (open, closed, by_name) = ("iqn.2024-01.test:open", "iqn.2024-01.test:closed", "iqn.2024-01.test:named");
    target_with_rules(&tgtd, 1, open, &[("--initiator-address", "ALL")]);
    target_with_rules(&tgtd, 2, closed, &[("--initiator-address", "10.0.0.0/8")]);
    target_with_rules(&tgtd, 3, by_name, &[("--initiator-name", ALLOWED_NAME)]);

    // Asking for a target by name does not reveal it to an initiator the ACL keeps out.
    let mut discovery = Connection::connect(tgtd.portal()).unwrap();
    discovery.login(OTHER_NAME, None, &[]).unwrap();
    assert!(names(&discovery.send_targets(closed).unwrap()).is_empty());
    assert!(names(&discovery.send_targets(by_name).unwrap()).is_empty());
    assert_eq!(names(&discovery.send_targets(open).unwrap()), [open]);
    assert_eq!(names(&discovery.send_targets("All").unwrap()), [open]);
    let mut allowed = Connection::connect(tgtd.portal()).unwrap();
    allowed.login(ALLOWED_NAME, None, &[]).unwrap();
    assert_eq!(names(&allowed.send_targets(by_name).unwrap()), [by_name]);

    // Nor does a normal session on a target it may use.
    let mut normal = Connection::connect(tgtd.portal()).unwrap();
    normal.login(OTHER_NAME, Some(open), &[]).unwrap();
    assert!(names(&normal.send_targets(closed).unwrap()).is_empty());
    assert!(names(&normal.send_targets(by_name).unwrap()).is_empty());
}

#[test]
fn discovery_with_chap_required_answers_nothing_before_authentication() {
    let tgtd = Tgtd::start();
    target_with_rules(&tgtd, 1, "iqn.2024-01.test:secret-list", &[("--initiator-address", "ALL")]);
    account(&tgtd, &["--op", "new", "--user", "disco", "--password", "discosecret99"]);
    account(&tgtd, &["--op", "bind", "--tid", "0", "--user", "disco"]);
    // AuthMethod=None to a discovery session that needs CHAP: refused with 0x0201, no full
    // feature phase, so no SendTargets can be sent at all.
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    let err = conn.login(OTHER_NAME, None, &[]).unwrap_err();
    assert_eq!(err, "login status 0x0201");
    // Skipping the security stage (straight to the operational stage) is refused too.
    let mut skip = Connection::connect(tgtd.portal()).unwrap();
    let keys = common::initiator::text_keys(&[("InitiatorName", OTHER_NAME), ("SessionType", "Discovery")]);
    let rsp = skip.login_step(true, 1, 3, &keys).unwrap();
    assert_eq!(rsp.opcode(), OP_LOGIN_RSP);
    assert_eq!((rsp.bhs[36], rsp.bhs[37]), (0x02, 0x01), "{rsp:?}");
    assert!(skip.closed_by_target());
}

/// tgt deletes a bound account with its bindings, and a target whose only incoming account goes
/// that way silently stops asking for CHAP. rtgt refuses the delete, names where the account is
/// bound, and the target keeps refusing logins without CHAP; once unbound, the delete goes through.
#[test]
fn deleting_an_account_bound_as_incoming_is_refused() {
    let tgtd = Tgtd::start();
    let iqn = "iqn.2024-01.test:kept-closed";
    target_with_rules(&tgtd, 1, iqn, &[("--initiator-address", "ALL")]);
    account(&tgtd, &["--op", "new", "--user", "alice", "--password", "alicesecret12"]);
    account(&tgtd, &["--op", "bind", "--tid", "1", "--user", "alice"]);
    account(&tgtd, &["--op", "bind", "--tid", "0", "--user", "alice"]);
    let delete = ["--lld", "iscsi", "--mode", "account", "--op", "delete", "--user", "alice"];

    let out = tgtd.tgtadm(&delete);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(22), "{said}");
    assert!(said.contains("target 1 (iqn.2024-01.test:kept-closed)") && said.contains("discovery"), "{said}");
    assert!(said.contains("unbind it first"), "{said}");
    for target in [Some(iqn), None] {
        let mut conn = Connection::connect(tgtd.portal()).unwrap();
        assert_eq!(conn.login(OTHER_NAME, target, &[]).unwrap_err(), "login status 0x0201", "{target:?}");
    }

    // Still bound to discovery: still refused, naming only what is left.
    account(&tgtd, &["--op", "unbind", "--tid", "1", "--user", "alice"]);
    let out = tgtd.tgtadm(&delete);
    assert_eq!(out.status.code(), Some(22), "{}", text(&out));
    assert!(!text(&out).contains("target 1") && text(&out).contains("discovery"), "{}", text(&out));
    account(&tgtd, &["--op", "unbind", "--tid", "0", "--user", "alice"]);
    tgtd.tgtadm_ok(&delete);
}
