//! tgtadm against the real daemon, in tgt 1.0.x's syntax and in the original tgt design's
//! `--driver istgt` syntax, with `--op show` checked line by line.

use crate::common;

use common::{sparse_image, Tgtd};

const IQN: &str = "iqn.2026-11.org.example:disk1";

#[test]
fn tgt_syntax_creates_binds_and_shows_a_target() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "disk1.img", 64 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    let expected_lun1 = format!(
        "        LUN: 1
            Type: disk
            SCSI ID: IET     00010001
            SCSI SN: beaf11
            Size: 67 MB, Block size: 512
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: rdwr
            Backing store path: {}
            Backing store flags: 
",
        image.display()
    );
    assert!(
        show.starts_with(&format!(
            "Target 1: {IQN}\n    System information:\n        Driver: iscsi\n        State: ready\n"
        )),
        "{show}"
    );
    assert!(show.contains("        LUN: 0\n            Type: controller\n"), "{show}");
    assert!(show.contains(&expected_lun1), "show output:\n{show}");
    assert!(show.ends_with("    Account information:\n    ACL information:\n        ALL\n"), "{show}");

    // --json carries the same data for programs.
    let json = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).expect("--json prints JSON");
    let text = value.to_string();
    assert!(text.contains(IQN) && text.contains(image.to_str().unwrap()), "{text}");

    // Errors: one line, non-zero exit.
    let dup = tgtd.tgtadm(&["--lld", "iscsi", "--mode", "target", "--op", "new", "--tid", "1", "--targetname", IQN]);
    assert!(!dup.status.success());
    let err = String::from_utf8_lossy(&dup.stderr);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");

    let bad = tgtd.tgtadm(&["--lld", "iscsi", "--mode", "target", "--op", "new", "--frob", "1"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("frob"));

    // Delete the LUN and the target.
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "1"]);
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "delete", "--tid", "1"]);
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(!show.contains(IQN), "{show}");
}

#[test]
fn original_istgt_syntax_works() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "disk0.img", 32 << 20);
    let name = "iqn.2001-04.com.example:storage.disk1.sys1.xyz";
    tgtd.tgtadm_ok(&["--driver", "istgt", "--op", "new", "--tid", "1", "--params", &format!("Name={name}")]);
    tgtd.tgtadm_ok(&[
        "--driver",
        "istgt",
        "--op",
        "new",
        "--tid",
        "1",
        "--lun",
        "0",
        "--params",
        &format!("Path={},Type=tgt_vsd", image.display()),
    ]);
    // tid 0 is discovery's, in this syntax too (tgt's words).
    let zero = tgtd.tgtadm(&["--driver", "istgt", "--op", "new", "--tid", "0", "--params", "Name=iqn.x:zero"]);
    assert_eq!(zero.status.code(), Some(22));
    assert_eq!(String::from_utf8_lossy(&zero.stderr), "tgtadm: 'tid' cannot be 0\n");
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(show.starts_with(&format!("Target 1: {name}\n")), "{show}");
    // The disk replaced the automatic controller at LUN 0.
    assert!(show.contains("        LUN: 0\n            Type: disk\n"), "{show}");
    assert!(show.contains(&format!("Backing store path: {}\n", image.display())), "{show}");
    assert!(!show.contains("Type: controller"), "{show}");

    let help = tgtd.tgtadm(&["--driver", "istgt", "--help"]);
    assert!(help.status.success());
    assert!(!help.stdout.is_empty());
}

#[test]
fn memory_and_null_backing_stores_and_system_show() {
    let tgtd = Tgtd::start();
    tgtd.tgtadm_ok(&[
        "--lld",
        "iscsi",
        "--mode",
        "target",
        "--op",
        "new",
        "--tid",
        "3",
        "--targetname",
        "iqn.2026-11.t:mem",
    ]);
    tgtd.tgtadm_ok(&[
        "--lld",
        "iscsi",
        "--mode",
        "logicalunit",
        "--op",
        "new",
        "--tid",
        "3",
        "--lun",
        "1",
        "--bstype",
        "memory",
        "--bsopts",
        "size=64M",
    ]);
    tgtd.tgtadm_ok(&[
        "--lld",
        "iscsi",
        "--mode",
        "logicalunit",
        "--op",
        "new",
        "--tid",
        "3",
        "--lun",
        "2",
        "--bstype",
        "null",
        "--backing-store",
        "none",
        "--blocksize",
        "4096",
    ]);
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(show.contains("Backing store type: memory"), "{show}");
    // tgt prints a target's parameters for `show --tid N`.
    let params = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show", "--tid", "3"]);
    assert!(params.starts_with("nop_interval=0\nnop_count=0\nMaxRecvDataSegmentLength="), "{params}");
    assert!(params.contains("\nInitialR2T=Yes\n") && params.contains("\nMaxQueueCmd=128\n"), "{params}");
    assert!(show.contains("Block size: 4096"), "{show}");
    let system = tgtd.tgtadm_ok(&["--mode", "system", "--op", "show"]);
    assert!(system.contains("State: ready"), "{system}");
    assert!(system.contains("iscsi"), "{system}");
    assert!(system.contains("rdwr"), "{system}");

    let missing =
        tgtd.tgtadm(&["--lld", "iscsi", "--mode", "logicalunit", "--op", "delete", "--tid", "3", "--lun", "9"]);
    assert!(!missing.status.success());
    let bad_bs = tgtd.tgtadm(&[
        "--lld",
        "iscsi",
        "--mode",
        "logicalunit",
        "--op",
        "new",
        "--tid",
        "3",
        "--lun",
        "4",
        "--backing-store",
        "/nonexistent/file.img",
    ]);
    assert!(!bad_bs.status.success(), "a missing backing file must be refused");
}

#[test]
fn unreachable_daemon_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::tgtadm_path())
        .arg("--control-socket")
        .arg(dir.path().join("nobody.sock"))
        .args(["--lld", "iscsi", "--mode", "target", "--op", "show"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tgt daemon") || err.contains("connect"), "{err}");
}

/// A fault-injection rule is a testing aid that must never go unnoticed on a production LUN:
/// `target show` and `logicalunit show` list it after tgt's fields, `--json` as an array.
#[test]
fn fault_rules_are_shown() {
    let tgtd = Tgtd::start();
    tgtd.tgtadm_ok(&["--mode", "target", "--op", "new", "--tid", "1", "--targetname", IQN]);
    let lun = ["--mode", "logicalunit", "--op", "new", "--tid", "1", "--lun", "1", "--bstype", "memory"];
    tgtd.tgtadm_ok(&[&lun[..], &["--bsopts", "size=1M;fault=read:eio:lba=100-199;fault=write:delay=2s"]].concat());
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(
        show.contains(
            "            Backing store flags: \n            Fault injection: read:eio:lba=100-199\n            \
             Fault injection: write:delay=2s\n    Account information:\n"
        ),
        "{show}"
    );
    assert_eq!(show.matches("Fault injection").count(), 2, "LUN 0 has none: {show}");
    let json = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let luns = &value["target_list"][0]["luns"];
    assert_eq!(luns[1]["faults"], serde_json::json!(["read:eio:lba=100-199", "write:delay=2s"]), "{json}");
    assert!(luns[0].get("faults").is_none(), "{json}");
}

/// `system show --json`: the limits as an object of numbers (bytes, seconds).
#[test]
fn system_show_json_limits_are_numbers() {
    let tgtd = Tgtd::start();
    let json = tgtd.tgtadm_ok(&["--mode", "system", "--op", "show", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let limits = &value["system"]["limits"];
    assert_eq!(limits["max_sessions"], 4096, "{json}");
    assert_eq!(limits["sessions"], 0, "{json}");
    assert_eq!(limits["write_budget"], 1u64 << 30, "{json}");
    assert_eq!(limits["login_timeout_secs"], 30, "{json}");
    assert_eq!((&limits["read_budget"], &limits["read_data_held"]), (&(1u64 << 30).into(), &0.into()), "{json}");
    assert_eq!(limits["send_timeout_secs"], 30, "{json}");
    // The read budget and the send timeout change live, like the write budget.
    tgtd.tgtadm_ok(&["--mode", "system", "--op", "update", "--name", "read_budget", "--value", "256M"]);
    tgtd.tgtadm_ok(&["--mode", "system", "--op", "update", "--name", "send_timeout", "--value", "9"]);
    let show = tgtd.tgtadm_ok(&["--mode", "system", "--op", "show"]);
    assert!(show.contains("    read_budget: 256M\n    read_data_held: 0\n"), "{show}");
    assert!(show.contains("    send_timeout: 9s\n"), "{show}");
    let json = tgtd.tgtadm_ok(&["--mode", "system", "--op", "show", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["system"]["limits"]["read_budget"], 256u64 << 20, "{json}");
    assert_eq!(value["system"]["limits"]["send_timeout_secs"], 9, "{json}");
    let refused = tgtd.tgtadm(&["--mode", "system", "--op", "update", "--name", "read_budget", "--value", "10k"]);
    assert_eq!(refused.status.code(), Some(22), "a read budget below 1M is refused");
    // --secrets is refused where it would be ignored.
    let out = tgtd.tgtadm(&["--mode", "account", "--op", "show", "--secrets"]);
    assert_eq!(out.status.code(), Some(22));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tgtadm: --secrets works only with --mode account --op show --json\n"
    );
}
