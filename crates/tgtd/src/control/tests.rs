//! Management requests applied to a real `Daemon` (registry, SCSI targets, backing stores), and the
//! socket server driven over a Unix socket with the blocking client tgtadm uses.

use super::{dispatch, serve, Outcome};
use crate::Daemon;
use rtgt_mgmt::{
    read_message, write_message, AclEntry, DeviceType, ErrorCode, LunChange, LunOp, LunParam, LunSpec, Op, Param,
    Reply, Request, Response, StoreKind, StoreSpec, SystemOp, TargetOp, TargetView,
};
use std::sync::Arc;

fn run(daemon: &Daemon, op: Op) -> Outcome {
    dispatch(daemon, Request::iscsi(op))
}

fn ok(daemon: &Daemon, op: Op) -> Reply {
    let outcome = run(daemon, op.clone());
    outcome.result.unwrap_or_else(|e| panic!("{op:?}: {e}"))
}

fn err(daemon: &Daemon, op: Op) -> ErrorCode {
    match run(daemon, op.clone()).result {
        Ok(reply) => panic!("{op:?} succeeded: {reply:?}"),
        Err(e) => e.code,
    }
}

fn new_target(tid: u32, name: &str) -> Op {
    Op::Target(TargetOp::New { tid, name: name.to_string() })
}

fn new_lun(tid: u32, lun: u64, spec: LunSpec) -> Op {
    Op::LogicalUnit(LunOp::New { tid, lun, spec })
}

fn memory(size: &str) -> LunSpec {
    let store = StoreSpec::parse(Some("memory"), &format!("size={size}"), "").unwrap();
    LunSpec { store, ..LunSpec::disk(None) }
}

fn with_store(spec: LunSpec, change: impl FnOnce(&mut StoreSpec)) -> LunSpec {
    let mut spec = spec;
    change(&mut spec.store);
    spec
}

fn show(daemon: &Daemon) -> Vec<TargetView> {
    match ok(daemon, Op::Target(TargetOp::Show { tid: None })) {
        Reply::TargetList(list) => list,
        other => panic!("{other:?}"),
    }
}

#[test]
fn targets_are_created_listed_and_deleted() {
    let d = Daemon::new();
    ok(&d, new_target(1, "iqn.2026-11.org.example:one"));
    ok(&d, new_target(2, "iqn.2026-11.org.example:two"));
    // tid 0 is where discovery's accounts are bound: a target there could never require CHAP.
    let zero = run(&d, new_target(0, "iqn.2026-11.org.example:zero")).result.unwrap_err();
    assert_eq!(zero.code, ErrorCode::InvalidRequest);
    assert!(zero.message.as_deref().unwrap_or_default().contains("discovery"), "{zero:?}");
    assert_eq!(err(&d, new_target(1, "iqn.2026-11.org.example:other")), ErrorCode::TargetExists);
    assert_eq!(err(&d, new_target(2, "iqn.2026-11.org.example:one")), ErrorCode::TargetExists);
    assert_eq!(err(&d, new_target(3, "")), ErrorCode::InvalidRequest);
    assert_eq!(err(&d, new_target(3, "iqn.with space")), ErrorCode::InvalidRequest);

    let list = show(&d);
    assert_eq!(list.iter().map(|t| t.tid).collect::<Vec<_>>(), [1, 2]);
    let one = &list[0];
    assert_eq!(one.name, "iqn.2026-11.org.example:one");
    assert!(one.nexuses.is_empty() && one.acl.is_empty());
    assert!(one.params.iter().any(|p| p.name == "MaxRecvDataSegmentLength"));
    // The automatic LUN 0.
    assert_eq!(one.luns.len(), 1);
    assert_eq!(one.luns[0].lun, 0);
    assert_eq!(one.luns[0].device_type, DeviceType::Controller);

    match ok(&d, Op::Target(TargetOp::Show { tid: Some(1) })) {
        Reply::TargetList(list) => assert_eq!(list.iter().map(|t| t.tid).collect::<Vec<_>>(), [1]),
        other => panic!("{other:?}"),
    }
    assert_eq!(err(&d, Op::Target(TargetOp::Show { tid: Some(9) })), ErrorCode::NoTarget);

    ok(&d, Op::Target(TargetOp::Delete { tid: 1, force: false }));
    assert_eq!(err(&d, Op::Target(TargetOp::Delete { tid: 1, force: false })), ErrorCode::NoTarget);
    assert_eq!(show(&d).len(), 1);
}

#[test]
fn luns_on_memory_null_and_file_stores() {
    let d = Daemon::new();
    ok(&d, new_target(1, "iqn.2026-11.t:luns"));
    ok(&d, new_lun(1, 1, LunSpec { block_size: Some(4096), ..memory("1M") }));
    ok(&d, new_lun(1, 2, LunSpec { store: StoreSpec::of(StoreKind::Null), ..LunSpec::disk(None) }));
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    std::fs::File::create(&image).unwrap().set_len(64 << 20).unwrap();
    let path = image.to_str().unwrap().to_string();
    let sync = with_store(LunSpec::disk(Some(path.clone())), |s| s.flags.sync = true);
    ok(&d, new_lun(1, 10, sync));

    let t = &show(&d)[0];
    assert_eq!(t.luns.iter().map(|l| l.lun).collect::<Vec<_>>(), [0, 1, 2, 10]);
    let mem = &t.luns[1];
    assert_eq!(mem.device_type, DeviceType::Disk);
    assert_eq!((mem.size, mem.block_size), (1 << 20, 4096));
    assert_eq!(mem.backing_store_type, "memory");
    assert_eq!(mem.scsi_id, "IET     00010001");
    assert_eq!(mem.scsi_sn, "beaf11");
    assert_eq!((mem.vendor_id.as_str(), mem.product_id.as_str()), ("IET", "VIRTUAL-DISK"));
    assert!(mem.online && !mem.readonly && !mem.removable);
    assert_eq!(t.luns[2].backing_store_type, "null");
    let file = &t.luns[3];
    assert_eq!(file.scsi_id, "IET     0001000a");
    assert_eq!(file.scsi_sn, "beaf110");
    assert_eq!((file.size, file.block_size), (64 << 20, 512));
    assert_eq!(file.backing_store_type, "rdwr");
    assert_eq!(file.backing_store_path.as_deref(), Some(path.as_str()));

    match ok(&d, Op::LogicalUnit(LunOp::Show { tid: 1, lun: 10 })) {
        Reply::Lun(view) => assert_eq!(&view, file),
        other => panic!("{other:?}"),
    }
}

#[test]
fn lun_mistakes_are_refused_with_tgt_codes() {
    let d = Daemon::new();
    ok(&d, new_target(1, "iqn.2026-11.t:bad"));
    ok(&d, new_lun(1, 1, memory("1M")));
    assert_eq!(err(&d, new_lun(1, 1, memory("1M"))), ErrorCode::LunExists);
    assert_eq!(err(&d, new_lun(9, 1, memory("1M"))), ErrorCode::NoTarget);
    let cases = [
        with_store(memory("1M"), |s| s.faults = vec!["read:eoi".into()]),
        with_store(memory("1M"), |s| s.size = None),
        LunSpec { block_size: Some(1000), ..memory("1M") },
        LunSpec { params: vec![LunParam::ModePage("8:0:3:1".into())], ..LunSpec::disk(Some("/dev/null".into())) },
        LunSpec::disk(None),
        LunSpec::disk(Some("/nonexistent/disk.img".into())),
    ];
    for spec in cases {
        assert_eq!(err(&d, new_lun(1, 2, spec.clone())), ErrorCode::InvalidRequest, "{spec:?}");
    }
    // What only the daemon can judge (the fault rules' grammar) is refused naming the option.
    let faulty = with_store(memory("1M"), |s| s.faults = vec!["read:eoi".into()]);
    let refusal = run(&d, new_lun(1, 2, faulty)).result.unwrap_err().to_string();
    assert!(refusal.contains("--bsopts: fault 'read:eoi': unknown effect 'eoi'"), "{refusal}");
    // A tape drive's store is a tape image (or none), never a memory store.
    assert_eq!(
        err(&d, new_lun(1, 2, LunSpec { device_type: DeviceType::Tape, ..memory("1M") })),
        ErrorCode::InvalidRequest
    );
    assert_eq!(err(&d, new_lun(1, 16384, memory("1M"))), ErrorCode::InvalidRequest);
    assert_eq!(show(&d)[0].luns.len(), 2, "no failed attempt may leave a LUN behind");

    assert_eq!(err(&d, Op::LogicalUnit(LunOp::Delete { tid: 1, lun: 7 })), ErrorCode::NoLun);
    assert_eq!(err(&d, Op::LogicalUnit(LunOp::Delete { tid: 9, lun: 1 })), ErrorCode::NoLun);
    assert_eq!(err(&d, Op::LogicalUnit(LunOp::Delete { tid: 1, lun: 0 })), ErrorCode::InvalidRequest);
    assert_eq!(err(&d, Op::LogicalUnit(LunOp::Show { tid: 1, lun: 7 })), ErrorCode::NoLun);
    let update =
        |lun| Op::LogicalUnit(LunOp::Update { tid: 1, lun, changes: vec![LunChange::Set(LunParam::Readonly(true))] });
    assert_eq!(err(&d, update(7)), ErrorCode::NoLun);
    ok(&d, Op::LogicalUnit(LunOp::Delete { tid: 1, lun: 1 }));
    assert_eq!(show(&d)[0].luns.len(), 1);
}

#[test]
fn lun_zero_replaces_the_controller_and_comes_back() {
    let d = Daemon::new();
    ok(&d, new_target(2, "iqn.2026-11.t:zero"));
    ok(&d, new_lun(2, 0, memory("1M")));
    assert_eq!(show(&d)[0].luns[0].device_type, DeviceType::Disk);
    assert_eq!(err(&d, new_lun(2, 0, memory("1M"))), ErrorCode::LunExists);
    ok(&d, Op::LogicalUnit(LunOp::Delete { tid: 2, lun: 0 }));
    let luns = &show(&d)[0].luns;
    assert_eq!(luns.len(), 1);
    assert_eq!(luns[0].device_type, DeviceType::Controller);
}

#[test]
fn acl_bind_and_unbind() {
    let d = Daemon::new();
    ok(&d, new_target(1, "iqn.2026-11.t:acl"));
    let net = AclEntry::parse_address("10.0.0.0/8").unwrap();
    let name = AclEntry::InitiatorName("iqn.1994-05.com.redhat:abc".into());
    let bind = |rules: Vec<AclEntry>| Op::Target(TargetOp::Bind { tid: 1, rules });
    let unbind = |rules: Vec<AclEntry>| Op::Target(TargetOp::Unbind { tid: 1, rules });
    ok(&d, bind(vec![AclEntry::All]));
    assert_eq!(err(&d, bind(vec![AclEntry::All])), ErrorCode::AclExists);
    // All or nothing: the network must not stay bound when ALL fails.
    assert_eq!(err(&d, bind(vec![net.clone(), AclEntry::All])), ErrorCode::AclExists);
    assert_eq!(show(&d)[0].acl, [AclEntry::All]);
    ok(&d, bind(vec![net.clone(), name.clone()]));
    assert_eq!(show(&d)[0].acl, [AclEntry::All, net.clone(), name.clone()]);
    assert_eq!(err(&d, unbind(vec![AclEntry::parse_address("172.16.0.1").unwrap()])), ErrorCode::AclNotFound);
    ok(&d, unbind(vec![net, AclEntry::All]));
    assert_eq!(show(&d)[0].acl, [name]);
    assert_eq!(err(&d, Op::Target(TargetOp::Bind { tid: 9, rules: vec![AclEntry::All] })), ErrorCode::NoTarget);
    assert_eq!(err(&d, bind(vec![])), ErrorCode::InvalidRequest);
}

#[test]
fn target_parameters_change_all_or_nothing() {
    let d = Daemon::new();
    ok(&d, new_target(1, "iqn.2026-11.t:upd"));
    let update = |tid, params: &[(&str, &str)]| {
        Op::Target(TargetOp::Update { tid, params: params.iter().map(|(n, v)| Param::new(*n, *v)).collect() })
    };
    let value = |d: &Daemon, name: &str| {
        show(d)[0].params.iter().find(|p| p.name == name).map(|p| p.value.clone()).unwrap_or_default()
    };
    assert_eq!(err(&d, update(9, &[("HeaderDigest", "CRC32C")])), ErrorCode::NoTarget);
    ok(&d, update(1, &[("HeaderDigest", "CRC32C")]));
    assert!(value(&d, "HeaderDigest").contains("CRC32C"), "{}", value(&d, "HeaderDigest"));
    ok(&d, update(1, &[("MaxRecvDataSegmentLength", "65536")]));
    assert_eq!(value(&d, "MaxRecvDataSegmentLength"), "65536");
    // The second pair is bad: the first must not be applied either.
    assert_eq!(err(&d, update(1, &[("MaxBurstLength", "1048576"), ("Frob", "1")])), ErrorCode::InvalidRequest);
    assert_ne!(value(&d, "MaxBurstLength"), "1048576");
    assert_eq!(err(&d, update(1, &[("HeaderDigest", "Frob")])), ErrorCode::InvalidRequest);
    // As tgt 1.0.85: offline|ready, anything else is refused and changes nothing.
    assert_eq!(err(&d, update(1, &[("state", "gone")])), ErrorCode::InvalidRequest);
    ok(&d, update(1, &[("state", "offline")]));
    assert_eq!(show(&d)[0].state, rtgt_mgmt::TargetState::Offline);
    assert!(d.registry.target(1).unwrap().is_offline() && !d.registry.is_offline());
    ok(&d, update(1, &[("state", "ready")]));
    assert_eq!(show(&d)[0].state, rtgt_mgmt::TargetState::Ready);
    // NOP-Out settings are kept and shown; a non-number changes nothing.
    ok(&d, update(1, &[("nop_interval", "5"), ("nop_count", "3")]));
    assert_eq!((show(&d)[0].nop_interval, show(&d)[0].nop_count), (Some(5), Some(3)));
    assert_eq!(err(&d, update(1, &[("nop_interval", "7"), ("nop_count", "x")])), ErrorCode::InvalidRequest);
    assert_eq!(show(&d)[0].nop_interval, Some(5));
}

#[test]
fn lun_flags_change_on_a_live_unit() {
    let d = Daemon::new();
    ok(&d, new_target(1, "iqn.2026-11.t:flags"));
    ok(&d, new_lun(1, 1, memory("1M")));
    // Pairs are checked where they are read (tgtadm); the daemon gets typed changes.
    let pairs = |params: &[(&str, &str)]| {
        let pairs: Vec<Param> = params.iter().map(|(n, v)| Param::new(*n, *v)).collect();
        LunChange::parse_all(&pairs)
    };
    let update =
        |params: &[(&str, &str)]| Op::LogicalUnit(LunOp::Update { tid: 1, lun: 1, changes: pairs(params).unwrap() });
    ok(&d, update(&[("readonly", "1"), ("online", "0")]));
    let lun = show(&d)[0].luns[1].clone();
    assert!(lun.readonly && !lun.online);
    // A bad pair anywhere refuses them all.
    assert!(pairs(&[("readonly", "0"), ("online", "2")]).is_err());
    assert!(pairs(&[("readonly", "0"), ("frob", "1")]).is_err());
    assert!(pairs(&[("readonly", "0"), ("vendor_id", "NINE CHARS")]).is_err());
    // What only the daemon can judge (a mode page's bytes) refused anywhere changes nothing.
    let bad_page =
        vec![LunChange::Set(LunParam::Readonly(false)), LunChange::Set(LunParam::ModePage("8:0:3:1".into()))];
    assert_eq!(
        err(&d, Op::LogicalUnit(LunOp::Update { tid: 1, lun: 1, changes: bad_page })),
        ErrorCode::InvalidRequest
    );
    assert!(show(&d)[0].luns[1].readonly);
    ok(&d, update(&[("readonly", "0"), ("online", "1")]));
    let lun = show(&d)[0].luns[1].clone();
    assert!(!lun.readonly && lun.online);
    // The sense format of a LUN this daemon alone serves is its own: taken at once, as tgt does.
    let unit = || d.targets.iscsi(1).unwrap().scsi.lun(1).unwrap();
    ok(&d, update(&[("sense_format", "1")]));
    assert!(unit().mode_params().d_sense && unit().info().config.descriptor_sense);
    ok(&d, update(&[("sense_format", "0")]));
    assert!(!unit().mode_params().d_sense);
}

#[test]
fn system_show_update_and_delete() {
    let d = Daemon::new();
    match ok(&d, Op::System(SystemOp::Show)) {
        Reply::System(view) => {
            assert_eq!(view.llds[0].name, "iscsi");
            let names: Vec<&str> = view.backing_stores.iter().map(|b| b.name.as_str()).collect();
            // rbd is listed only by a daemon built with Ceph support.
            let mut expected = vec!["rdwr", "aio", "memory", "null"];
            if cfg!(feature = "rbd") {
                expected.push("rbd");
            }
            assert_eq!(names, expected);
            assert_eq!(view.backing_stores[0].oflags.as_deref(), Some("sync:direct"));
            assert_eq!(
                view.device_types,
                [DeviceType::Disk, DeviceType::Cd, DeviceType::Controller, DeviceType::Changer, DeviceType::Tape],
                "every type a LUN can be"
            );
            assert_eq!(
                view.limits,
                Some(rtgt_mgmt::Limits {
                    max_sessions: 4096,
                    sessions: 0,
                    write_budget: 1 << 30,
                    write_data_held: 0,
                    read_budget: 1 << 30,
                    read_data_held: 0,
                    login_timeout_secs: 30,
                    data_out_timeout_secs: 30,
                    send_timeout_secs: 30,
                })
            );
        }
        other => panic!("{other:?}"),
    }
    let update = |name: &str, value: &str| Op::System(SystemOp::Update { params: vec![Param::new(name, value)] });
    assert_eq!(err(&d, update("State", "frob")), ErrorCode::InvalidRequest);
    assert_eq!(err(&d, update("frob", "on")), ErrorCode::InvalidRequest);
    assert_eq!(err(&d, update("debug", "on")), ErrorCode::Unsupported);
    let state = |d: &Daemon| match ok(d, Op::System(SystemOp::Show)) {
        Reply::System(view) => view.state,
        other => panic!("{other:?}"),
    };
    ok(&d, update("State", "offline"));
    assert_eq!(state(&d), rtgt_mgmt::SystemState::Offline);
    assert!(d.registry.is_offline());
    ok(&d, update("State", "ready"));
    assert_eq!(state(&d), rtgt_mgmt::SystemState::Ready);
    ok(&d, update("debug", "off"));
    ok(&d, update("write_budget", "256M"));
    assert_eq!(d.registry.write_budget(), 256 << 20);
    assert_eq!(err(&d, update("write_budget", "4k")), ErrorCode::InvalidRequest);
    assert_eq!(err(&d, update("write_budget", "much")), ErrorCode::InvalidRequest);
    assert_eq!(d.registry.write_budget(), 256 << 20);
    ok(&d, update("data_out_timeout", "5"));
    assert_eq!(d.registry.data_out_timeout(), std::time::Duration::from_secs(5));
    assert_eq!(err(&d, update("data_out_timeout", "0")), ErrorCode::InvalidRequest);
    assert_eq!(d.registry.data_out_timeout(), std::time::Duration::from_secs(5));
    ok(&d, update("read_budget", "512M"));
    assert_eq!(d.registry.read_budget(), 512 << 20);
    assert_eq!(err(&d, update("read_budget", "100k")), ErrorCode::InvalidRequest);
    assert_eq!(err(&d, update("read_budget", "plenty")), ErrorCode::InvalidRequest);
    assert_eq!(d.registry.read_budget(), 512 << 20);
    ok(&d, update("send_timeout", "7s"));
    assert_eq!(d.registry.send_timeout(), std::time::Duration::from_secs(7));
    assert_eq!(err(&d, update("send_timeout", "3601")), ErrorCode::InvalidRequest);
    assert_eq!(d.registry.send_timeout(), std::time::Duration::from_secs(7));
    match ok(&d, Op::System(SystemOp::Show)) {
        Reply::System(view) => {
            let limits = view.limits.unwrap();
            assert_eq!((limits.read_budget, limits.send_timeout_secs), (512 << 20, 7));
        }
        other => panic!("{other:?}"),
    }

    ok(&d, new_target(1, "iqn.2026-11.t:sys"));
    // As tgt: no stop while a target exists, unless forced.
    let outcome = run(&d, Op::System(SystemOp::Delete { force: false }));
    assert!(outcome.result.is_err() && !outcome.stop);
    let outcome = run(&d, Op::System(SystemOp::Delete { force: true }));
    assert!(outcome.result.is_ok() && outcome.stop);
    let outcome = run(&d, Op::System(SystemOp::Show));
    assert!(!outcome.stop);
}

/// Log in (leading-only, security negotiation skipped) so that the target has a session.
fn login(portal: std::net::SocketAddr, target: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(portal).unwrap();
    let keys = format!(
        "InitiatorName=iqn.1994-05.org.test:ctl\0SessionType=Normal\0TargetName={target}\0\
         HeaderDigest=None\0DataDigest=None\0"
    );
    let mut pdu = vec![0u8; 48];
    pdu[0] = 0x43; // Login Request, immediate
    pdu[1] = 0x80 | (1 << 2) | 3; // Transit, CSG operational, NSG full feature
    let len = keys.len() as u32;
    pdu[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
    pdu[8..14].copy_from_slice(&[0x80, 0, 0, 0x12, 0x34, 0]);
    pdu[16..20].copy_from_slice(&1u32.to_be_bytes());
    pdu.extend_from_slice(keys.as_bytes());
    pdu.resize(pdu.len().div_ceil(4) * 4, 0);
    stream.write_all(&pdu).unwrap();
    let mut header = [0u8; 48];
    stream.read_exact(&mut header).unwrap();
    assert_eq!(header[0] & 0x3f, 0x23, "login response");
    assert_eq!((header[36], header[37]), (0, 0), "login status");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_with_a_session_is_deleted_only_with_force() {
    let d = Daemon::new();
    let portal = d.iscsi.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let name = "iqn.2026-11.t:busy";
    ok(&d, new_target(1, name));
    ok(&d, new_lun(1, 1, memory("1M")));
    ok(&d, Op::Target(TargetOp::Bind { tid: 1, rules: vec![AclEntry::All] }));
    let _session = tokio::task::spawn_blocking(move || login(portal, name)).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while show(&d)[0].nexuses.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the session never showed up");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let nexus = &show(&d)[0].nexuses[0];
    assert_eq!(nexus.initiator, "iqn.1994-05.org.test:ctl");
    assert_eq!(nexus.connections.len(), 1);
    assert_eq!(nexus.connections[0].initiator_address.ip().to_string(), "127.0.0.1");

    assert_eq!(err(&d, Op::Target(TargetOp::Delete { tid: 1, force: false })), ErrorCode::TargetActive);
    ok(&d, Op::Target(TargetOp::Delete { tid: 1, force: true }));
    assert!(show(&d).is_empty());
    d.iscsi.shutdown().await;
}

/// The blocking client tgtadm uses, run off the async workers.
async fn call(socket: std::path::PathBuf, request: Request) -> Response {
    tokio::task::spawn_blocking(move || {
        let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        write_message(&mut stream, &request).unwrap();
        read_message(&mut stream).unwrap()
    })
    .await
    .unwrap()
}

/// Send raw bytes, then read whatever single response comes back and whether the server closed.
async fn raw(socket: std::path::PathBuf, bytes: Vec<u8>) -> (Response, bool) {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
        stream.write_all(&bytes).unwrap();
        let response: Response = read_message(&mut stream).unwrap();
        stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        let closed = matches!(stream.read(&mut [0u8; 1]), Ok(0));
        (response, closed)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_server_answers_refuses_garbage_and_stops_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("ctl.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let daemon: Arc<Daemon> = Daemon::new();
    let access = super::access::ControlAccess::for_this_process(None);
    let server = tokio::spawn(serve(listener, daemon.clone(), access));

    let created = call(socket.clone(), Request::iscsi(new_target(1, "iqn.2026-11.t:sock"))).await;
    assert_eq!(created, Response::Ok(Reply::Done));
    let dup = call(socket.clone(), Request::iscsi(new_target(1, "iqn.2026-11.t:sock"))).await;
    assert!(matches!(dup, Response::Error(ref e) if e.code == ErrorCode::TargetExists), "{dup:?}");

    // Garbage JSON: an error answer.
    let mut frame = 7u32.to_be_bytes().to_vec();
    frame.extend_from_slice(b"garbage");
    let (response, _) = raw(socket.clone(), frame).await;
    assert!(matches!(response, Response::Error(ref e) if e.code == ErrorCode::InvalidRequest), "{response:?}");
    // A length beyond the limit: an error answer, and the connection is closed.
    let (response, closed) = raw(socket.clone(), u32::MAX.to_be_bytes().to_vec()).await;
    assert!(matches!(response, Response::Error(ref e) if e.code == ErrorCode::InvalidRequest), "{response:?}");
    assert!(closed);
    // A client that connects and goes away mid-frame does not disturb anyone.
    tokio::task::spawn_blocking({
        let socket = socket.clone();
        move || {
            use std::io::Write;
            let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
            s.write_all(&[0, 0]).unwrap();
        }
    })
    .await
    .unwrap();

    // Two requests on one connection.
    let socket2 = socket.clone();
    let (first, second): (Response, Response) = tokio::task::spawn_blocking(move || {
        let mut stream = std::os::unix::net::UnixStream::connect(socket2).unwrap();
        write_message(&mut stream, &Request::iscsi(Op::System(SystemOp::Show))).unwrap();
        let first = read_message(&mut stream).unwrap();
        write_message(&mut stream, &Request::iscsi(Op::Target(TargetOp::Show { tid: None }))).unwrap();
        (first, read_message(&mut stream).unwrap())
    })
    .await
    .unwrap();
    assert!(matches!(first, Response::Ok(Reply::System(_))));
    assert!(matches!(second, Response::Ok(Reply::TargetList(ref l)) if l.len() == 1));

    // system delete answers, then asks the daemon to stop.
    let stopped = daemon.stop.notified();
    let answer = call(socket.clone(), Request::iscsi(Op::System(SystemOp::Delete { force: true }))).await;
    assert_eq!(answer, Response::Ok(Reply::Done));
    tokio::time::timeout(std::time::Duration::from_secs(5), stopped).await.expect("stop requested");
    server.abort();
}
