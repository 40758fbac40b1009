//! Tests of the command-line rules, with the texts Debian's tgtadm 1.0.85 prints.

use super::*;
use rtgt_mgmt::{
    AccountOp, AclEntry, ConnectionOp, DeviceType, LldOp, LunChange, LunOp, LunParam, LunSpec, Op, Param, PortalOp,
    SessionOp, StoreFlags, StoreKind, StoreSpec, SystemOp, TargetOp,
};

fn parse_line(line: &str) -> Result<Command, CliError> {
    let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
    parse(&argv, None)
}

fn request(line: &str) -> Op {
    match parse_line(line) {
        Ok(Command::Send { request, .. }) => request.op,
        other => panic!("{line}: {other:?}"),
    }
}

fn error(line: &str) -> (String, i32) {
    let e = parse_line(line).unwrap_err();
    (e.message, e.exit_code)
}

fn socket(line: &str, env: Option<&str>) -> PathBuf {
    let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
    match parse(&argv, env.map(String::from)).unwrap() {
        Command::Send { socket, .. } => socket,
        other => panic!("{other:?}"),
    }
}

#[test]
fn target_commands() {
    assert_eq!(
        request("--lld iscsi --mode target --op new --tid 1 --targetname iqn.2001-04.com.example:t1"),
        Op::Target(TargetOp::New { tid: 1, name: "iqn.2001-04.com.example:t1".into() })
    );
    assert_eq!(
        request("-L iscsi -m target -o new -t 3 -T iqn.x"),
        Op::Target(TargetOp::New { tid: 3, name: "iqn.x".into() })
    );
    assert_eq!(request("--op show --mode target"), Op::Target(TargetOp::Show { tid: None }));
    assert_eq!(request("--mode tgt --op show --tid=0x10"), Op::Target(TargetOp::Show { tid: Some(16) }));
    assert_eq!(
        request("--op delete --force --mode target --tid 2"),
        Op::Target(TargetOp::Delete { tid: 2, force: true })
    );
    assert_eq!(
        request("--mode target --op bind --tid 1 -I 10.0.0.0/8 -Q iqn.a"),
        Op::Target(TargetOp::Bind {
            tid: 1,
            rules: vec![AclEntry::parse_address("10.0.0.0/8").unwrap(), AclEntry::InitiatorName("iqn.a".into())]
        })
    );
    assert_eq!(
        request("--mode target --op unbind --tid 1 --initiator-address ALL"),
        Op::Target(TargetOp::Unbind { tid: 1, rules: vec![AclEntry::All] })
    );
    assert_eq!(
        request("--mode target --op update --tid 1 -n HeaderDigest -v CRC32C"),
        Op::Target(TargetOp::Update { tid: 1, params: vec![Param::new("HeaderDigest", "CRC32C")] })
    );
}

#[test]
fn logical_unit_commands() {
    assert_eq!(
        request("--mode logicalunit --op new --tid 1 --lun 2 -E memory -S size=1G -y 4096 -f sync"),
        Op::LogicalUnit(LunOp::New {
            tid: 1,
            lun: 2,
            spec: LunSpec {
                device_type: DeviceType::Disk,
                backing_store: None,
                store: StoreSpec {
                    size: Some(1 << 30),
                    flags: StoreFlags { sync: true, direct: false },
                    ..StoreSpec::of(StoreKind::Memory)
                },
                block_size: Some(4096),
                params: Vec::new(),
            }
        })
    );
    assert_eq!(
        request("--mode logicalunit --op new --tid 1 --lun 2 -b /d.img --params thin_provisioning=1,removable=1"),
        Op::LogicalUnit(LunOp::New {
            tid: 1,
            lun: 2,
            spec: LunSpec {
                params: vec![LunParam::ThinProvisioning(true), LunParam::Removable(true)],
                ..LunSpec::disk(Some("/d.img".into()))
            }
        })
    );
    assert_eq!(
        request("-m lu -o new -t 1 -l 1 -b /srv/a.img --device-type disk"),
        Op::LogicalUnit(LunOp::New { tid: 1, lun: 1, spec: LunSpec::disk(Some("/srv/a.img".into())) })
    );
    assert_eq!(request("-m lu -o delete -t 1 -l 1"), Op::LogicalUnit(LunOp::Delete { tid: 1, lun: 1 }));
    assert_eq!(
        request("-m logicalunit -o update -t 1 -l 1 --params vendor_id=ACME,readonly=1"),
        Op::LogicalUnit(LunOp::Update {
            tid: 1,
            lun: 1,
            changes: vec![LunChange::Set(LunParam::VendorId("ACME".into())), LunChange::Set(LunParam::Readonly(true))]
        })
    );
}

#[test]
fn system_commands() {
    assert_eq!(request("--mode system --op show"), Op::System(SystemOp::Show));
    // tgt lets anything ride along with system show.
    assert_eq!(request("--mode sys --op show --tid 1 -T x"), Op::System(SystemOp::Show));
    assert_eq!(request("--mode system --op delete"), Op::System(SystemOp::Delete { force: false }));
    assert_eq!(
        request("--mode system --op update --name State --value offline"),
        Op::System(SystemOp::Update { params: vec![Param::new("State", "offline")] })
    );
}

#[test]
fn original_design_syntax() {
    assert_eq!(
        request("--driver istgt --op new --tid 1 --params Name=iqn.2001-04.com.example:t1"),
        Op::Target(TargetOp::New { tid: 1, name: "iqn.2001-04.com.example:t1".into() })
    );
    assert_eq!(
        request("--driver istgt --op new --tid 1 --lun 0 --params Path=/srv/disk0.img,Type=tgt_vsd"),
        Op::LogicalUnit(LunOp::New { tid: 1, lun: 0, spec: LunSpec::disk(Some("/srv/disk0.img".into())) })
    );
    assert_eq!(request("--driver istgt --op delete --tid 1"), Op::Target(TargetOp::Delete { tid: 1, force: false }));
    assert_eq!(
        request("--driver istgt --op delete --tid 1 --lun 0"),
        Op::LogicalUnit(LunOp::Delete { tid: 1, lun: 0 })
    );
    assert_eq!(parse_line("--driver istgt --help").unwrap(), Command::Help);
    assert_eq!(error("--driver frob --op show").0, "tgtadm: can't find the driver");
    assert_eq!(
        error("--driver istgt --op new --tid 1 --params Colour=blue").0,
        "tgtadm: unknown target parameter 'Colour'"
    );
}

#[test]
fn help_and_version() {
    assert_eq!(parse_line("-h").unwrap(), Command::Help);
    assert_eq!(parse_line("-C 7 --mode target --help").unwrap(), Command::Help);
    assert_eq!(parse_line("--version").unwrap(), Command::Version);
    assert_eq!(parse_line("-V").unwrap(), Command::Version);
}

/// The texts and statuses Debian's tgtadm 1.0.85 gives for the same mistakes.
#[test]
fn tgt_diagnostics() {
    let cases: &[(&str, &str, i32)] = &[
        ("", "tgtadm: specify the operation type", 22),
        ("--lld iscsi --mode target", "tgtadm: specify the operation type", 22),
        ("--lld iscsi --op show", "tgtadm: specify the mode", 22),
        ("--mode frob --op show", "tgtadm: unknown mode: frob", 1),
        ("--mode target --op frob", "tgtadm: unknown operation: frob", 1),
        ("--lld frob --mode target --op show", "tgtadm: can't find the driver", 22),
        ("--mode target --op new -T iqn.y", "tgtadm: 'tid' option is necessary", 22),
        ("--mode target --op new --tid 3", "tgtadm: creating new target requires a name, use --targetname", 22),
        ("--mode target --op delete", "tgtadm: 'tid' option is necessary", 22),
        ("--mode target --op show --tid abc", "-t argument value 'abc' invalid", 22),
        ("--mode target --op show -t -5", "-t argument value '-5' out of range", 22),
        ("--mode target --op show -t 99999999999", "-t argument value '99999999999' out of range", 22),
        ("-C abc --mode target --op show", "-C argument value 'abc' invalid", 22),
        ("--mode target --op show -l 1", "tgtadm: target mode: option '-l' is not allowed/supported", 22),
        (
            "--mode target --op new --tid 5 -T iqn.z -b /x",
            "tgtadm: target mode: option '-b' is not allowed/supported",
            22,
        ),
        ("--mode target --op bind --tid 1", "tgtadm: bind operation requires initiator-address or initiator-name", 22),
        (
            "--mode target --op update --tid 1 --name HeaderDigest",
            "tgtadm: update operation requires 'name' and 'value' options",
            22,
        ),
        ("--mode logicalunit --op new --tid 1 -b /x", "tgtadm: 'lun' option is necessary", 22),
        ("--mode logicalunit --op show", "tgtadm: 'tid' option is necessary", 22),
        (
            "--mode logicalunit --op delete --tid 1 --lun 1 -P x=1",
            "tgtadm: logicalunit mode: option '-P' is not allowed/supported",
            22,
        ),
        (
            "--mode logicalunit --op update --tid 1 --lun 1 -T x",
            "tgtadm: option '-T' not supported in logicalunit mode",
            22,
        ),
        ("--mode logicalunit --op new --tid 1 --lun 6 -Y frob", "tgtadm: unknown target type: frob", 22),
        (
            "--mode logicalunit --op new --tid 1 --lun 99999999999999999999",
            "-l argument value '99999999999999999999' invalid",
            22,
        ),
        ("--mode system --op update -n a -v b -t 1", "tgtadm: system mode: option '-t' is not allowed/supported", 22),
        ("--mode system --op new", "tgtadm: operation new not supported in system mode", 22),
        ("--mode system --op update --name State", "tgtadm: update operation requires 'name' and 'value' options", 22),
        ("--frob", "tgtadm: unrecognized option '--frob'", 22),
        ("-Z", "tgtadm: invalid option -- 'Z'", 22),
        // tid 0 is discovery's (account bind), never a target's.
        ("--mode target --op new --tid 0 -T iqn.x", "tgtadm: 'tid' cannot be 0", 22),
        ("--mode target --op new --tid 0", "tgtadm: 'tid' cannot be 0", 22),
        ("--mode target --op update --tid 0", "tgtadm: 'tid' cannot be 0", 22),
        ("--mode target --op delete --tid 0", "tgtadm: 'tid' cannot be 0", 22),
        ("--mode target --op bind --tid 0 -I ALL", "tgtadm: 'tid' cannot be 0", 22),
        ("--driver istgt --op new --tid 0 --params Name=iqn.x", "tgtadm: 'tid' cannot be 0", 22),
        ("--mode logicalunit --op new --tid 0", "tgtadm: 'tid' must not be 0", 22),
        ("--mode logicalunit --op show --tid 0 --lun 1", "tgtadm: 'tid' must not be 0", 22),
        // --secrets is never silently ignored.
        ("--mode account --op show --secrets", "tgtadm: --secrets works only with --mode account --op show --json", 22),
        (
            "--mode target --op show --json --secrets",
            "tgtadm: --secrets works only with --mode account --op show --json",
            22,
        ),
    ];
    for (line, message, code) in cases {
        assert_eq!(error(line), (message.to_string(), *code), "{line}");
    }
    assert!(parse_line("--frob").unwrap_err().hint);
    assert!(!parse_line("--mode target --op delete").unwrap_err().hint);
}

#[test]
fn rtgt_refuses_what_tgt_would_store_blindly() {
    assert!(error("--mode target --op bind --tid 1 -I frob").0.contains("'frob'"));
    assert!(error("--mode target --op bind --tid 1 -I 10.0.0.0/40").0.contains("10.0.0.0/40"));
    assert!(error("-m lu -o update -t 1 -l 1 --params oops").0.contains("'oops'"));
    // A new LUN's store and parameters are typed here: a bad value never reaches the daemon.
    let refused = |line: &str| {
        let e = parse_line(line).unwrap_err();
        (e.message, e.refusal.and_then(|r| r.message).unwrap_or_default(), e.exit_code)
    };
    let invalid = |detail: &str| ("tgtadm: invalid request".to_string(), detail.to_string(), 22);
    assert_eq!(
        refused("-m lu -o new -t 1 -l 1 -E memory -S size=1G,colour=blue"),
        invalid("--bsopts: unknown option 'colour'")
    );
    assert_eq!(
        refused("-m lu -o new -t 1 -l 1 -b /d -f sync:dsync"),
        invalid("--bsoflags: unknown flag 'dsync' (sync, direct)")
    );
    assert_eq!(refused("-m lu -o new -t 1 -l 1 -b /d -E frob"), invalid("--bstype: unknown backing store type 'frob'"));
    assert!(refused("-m lu -o new -t 1 -l 1 -E null -S size=lots").1.starts_with("--bsopts: size must be"));
    assert_eq!(
        refused("-m lu -o new -t 1 -l 1 -b /d --params vendor_id=NINE_CHARS"),
        invalid("vendor_id must be at most 8 printable ASCII characters")
    );
    // So are an update's changes; a capacity other than a reload is an operation rtgt does not do.
    assert_eq!(
        refused("-m lu -o update -t 1 -l 1 --params readonly=1,online=2"),
        invalid("online must be 0 or 1, not '2'")
    );
    let unsupported = refused("-m lu -o update -t 1 -l 1 --params capacity=2G");
    assert_eq!(unsupported.0, "tgtadm: this operation isn't supported");
    assert_eq!(unsupported.1, "only capacity=reload (re-read the backing store's size) is supported");
    assert_eq!(
        request("-m lu -o update -t 1 -l 1 --params capacity=reload"),
        Op::LogicalUnit(LunOp::Update { tid: 1, lun: 1, changes: vec![LunChange::ReloadCapacity] })
    );
}

#[test]
fn socket_precedence() {
    let show = "--mode target --op show";
    assert_eq!(socket(show, None), PathBuf::from("/var/run/tgtd/socket.0"));
    assert_eq!(socket(show, Some("/run/env.sock")), PathBuf::from("/run/env.sock"));
    assert_eq!(socket(&format!("{show} -C 7"), Some("/run/env.sock")), PathBuf::from("/var/run/tgtd/socket.7"));
    assert_eq!(
        socket(&format!("{show} -C 7 --control-socket /tmp/x.sock"), Some("/run/env.sock")),
        PathBuf::from("/tmp/x.sock")
    );
    assert_eq!(socket(&format!("{show} --control-port=9"), None), PathBuf::from("/var/run/tgtd/socket.9"));
    match parse_line("--mode system --op show --json").unwrap() {
        Command::Send { json, .. } => assert!(json),
        other => panic!("{other:?}"),
    }
}

/// `--wait SECS` on any request; a number of seconds or nothing.
#[test]
fn wait_option() {
    let parse_line = |line: &str| parse(&line.split_whitespace().map(String::from).collect::<Vec<_>>(), None);
    match parse_line("--wait 5 --mode target --op show").unwrap() {
        Command::Send { wait, .. } => assert_eq!(wait, std::time::Duration::from_secs(5)),
        other => panic!("{other:?}"),
    }
    match parse_line("--mode target --op show").unwrap() {
        Command::Send { wait, .. } => assert!(wait.is_zero()),
        other => panic!("{other:?}"),
    }
    for bad in ["soon", "-1", "3601"] {
        let err = parse_line(&format!("--wait {bad} --mode target --op show")).unwrap_err();
        assert!(err.message.contains("--wait takes a number of seconds"), "{}", err.message);
    }
}

#[test]
fn accounts() {
    assert_eq!(
        request("--mode account --op new --user alice --password s3cret"),
        Op::Account(AccountOp::New { user: "alice".into(), password: "s3cret".into() })
    );
    assert_eq!(
        request("-m account -o bind -t 0 -u bob -O"),
        Op::Account(AccountOp::Bind { tid: 0, user: "bob".into(), outgoing: true })
    );
    assert_eq!(
        request("-m account -o unbind -t 3 -u bob"),
        Op::Account(AccountOp::Unbind { tid: 3, user: "bob".into(), outgoing: false })
    );
    assert_eq!(request("-m account -o show"), Op::Account(AccountOp::Show { secrets: false }));
    assert_eq!(request("-m account -o show --json --secrets"), Op::Account(AccountOp::Show { secrets: true }));
    assert_eq!(request("-m account -o delete -u bob"), Op::Account(AccountOp::Delete { user: "bob".into() }));
    // As measured with tgt 1.0.85.
    assert_eq!(
        error("-m account -o show --user alice"),
        ("tgtadm: account mode: option '-u' is not allowed/supported".into(), 22)
    );
    assert_eq!(error("-m account -o new -u alice").0, "tgtadm: 'user' and 'password' options are required");
    assert_eq!(error("-m account -o new -p secret").0, "tgtadm: 'user' and 'password' options are required");
    assert_eq!(error("-m account -o bind -u alice").0, "tgtadm: 'tid' option is necessary");
    assert_eq!(error("-m account -o update -u a").0, "tgtadm: operation update not supported in account mode");
}

#[test]
fn portals() {
    assert_eq!(
        request("--mode portal --op new --param portal=127.0.0.1:3261"),
        Op::Portal(PortalOp::New { address: "127.0.0.1:3261".parse().unwrap() })
    );
    assert_eq!(
        request("--mode portal --op delete --params portal=[::1]:3262"),
        Op::Portal(PortalOp::Delete { address: "[::1]:3262".parse().unwrap() })
    );
    assert_eq!(
        request("--mode portal --op new -P portal=10.0.0.1"),
        Op::Portal(PortalOp::New { address: "10.0.0.1:3260".parse().unwrap() })
    );
    assert_eq!(request("--mode portal --op show"), Op::Portal(PortalOp::Show));
    assert_eq!(error("--mode portal --op new"), ("tgtadm: you must specify --param portal=<portal>".into(), 22));
    // tgt's daemon refuses a parameter list it cannot use: "invalid request", rtgt's detail after.
    let refusal = |line: &str| {
        let e = parse_line(line).unwrap_err();
        assert_eq!((e.message.as_str(), e.exit_code), ("tgtadm: invalid request", 22), "{line}");
        format!("{:?}", e.refusal.unwrap())
    };
    assert!(refusal("--mode portal --op new -P portal=nowhere:1").contains("not an address"));
    assert!(refusal("--mode portal --op new -P portal=1.2.3.4:1,colour=red").contains("colour"));
    assert!(refusal("--mode portal --op new -P colour=red").contains("'portal' parameter is necessary"));
}

#[test]
fn drivers_sessions_connections() {
    assert_eq!(request("--mode lld --op show"), Op::Lld(LldOp::Show));
    assert_eq!(request("--mode lld --op start --lld iscsi"), Op::Lld(LldOp::Start));
    assert_eq!(request("--mode lld --op stop"), Op::Lld(LldOp::Stop));
    assert_eq!(request("--mode session --op show --tid 1"), Op::Session(SessionOp::Show { tid: 1, sid: None }));
    assert_eq!(
        request("--mode session --op delete --tid 1 --sid 4"),
        Op::Session(SessionOp::Delete { tid: 1, sid: 4 })
    );
    assert_eq!(
        request("--mode conn --op show --tid 1 --sid 2 --cid 0"),
        Op::Connection(ConnectionOp::Show { tid: 1, sid: Some(2), cid: Some(0) })
    );
    assert_eq!(
        request("--mode conn --op delete --tid 1 --sid 2 --cid 0"),
        Op::Connection(ConnectionOp::Delete { tid: 1, sid: 2, cid: 0 })
    );
    assert_eq!(error("--mode conn --op delete --tid 1 --sid 2").0, "tgtadm: 'cid' option is necessary");
    assert_eq!(error("--mode session --op delete --tid 1").0, "tgtadm: 'sid' option is necessary");
    assert_eq!(error("--mode conn --op show").0, "tgtadm: 'tid' option is necessary");
    assert_eq!(error("--mode lld --op show --tid 1").0, "tgtadm: lld mode: option '-t' is not allowed/supported");
}
