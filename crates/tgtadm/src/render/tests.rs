//! The golden layouts of `target show`, `logicalunit show` and `system show`, byte for byte as
//! Debian's tgtadm 1.0.85 prints them.

use super::render;
use rtgt_mgmt::*;

fn controller(tid: u32) -> LunView {
    LunView {
        lun: 0,
        device_type: DeviceType::Controller,
        scsi_id: format!("IET     {tid:04x}0000"),
        scsi_sn: format!("beaf{tid}0"),
        vendor_id: "IET".into(),
        product_id: "Controller".into(),
        product_rev: "0001".into(),
        size: 0,
        block_size: 1,
        online: true,
        removable: false,
        prevent_removal: false,
        readonly: false,
        swp: false,
        thin_provisioning: false,
        backing_store_type: "null".into(),
        backing_store_path: None,
        backing_store_flags: String::new(),
        mode_pages: Vec::new(),
        descriptor_sense: false,
        missing: None,
        faults: Vec::new(),
        changer: Vec::new(),
    }
}

fn disk(tid: u32, lun: u64) -> LunView {
    LunView {
        lun,
        device_type: DeviceType::Disk,
        scsi_id: format!("IET     {tid:04x}{lun:04x}"),
        scsi_sn: format!("beaf{tid}{lun}"),
        product_id: "VIRTUAL-DISK".into(),
        size: 64 << 20,
        block_size: 512,
        backing_store_type: "rdwr".into(),
        backing_store_path: Some("/tmp/tgtprobe/disk1.img".into()),
        ..controller(tid)
    }
}

/// Debian's tgtadm 1.0.85 output with one session, file LUNs (one opened sync:direct, one with a
/// hex LUN number in its SCSI ID) and an ALL binding.
#[test]
fn target_show_matches_tgt() {
    let mut lun11 = disk(1, 11);
    lun11.backing_store_flags = "sync:direct".into();
    let t = TargetView {
        tid: 1,
        name: "iqn.2001-04.com.example:t1".into(),
        driver: Lld::Iscsi,
        state: TargetState::Ready,
        nop_interval: None,
        nop_count: None,
        nexuses: vec![NexusView {
            id: 1,
            initiator: "iqn.1994-05.org.test:init1".into(),
            alias: None,
            isid: "800000123400".into(),
            connections: vec![ConnectionView {
                cid: 0,
                initiator_address: "127.0.0.1:40000".parse().unwrap(),
                target_address: "127.0.0.1:3297".parse().unwrap(),
            }],
            params: Vec::new(),
        }],
        luns: vec![controller(1), disk(1, 1), disk(1, 10), lun11],
        accounts: vec![],
        acl: vec![AclEntry::All],
        params: vec![],
    };
    let expected = "\
Target 1: iqn.2001-04.com.example:t1
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
        I_T nexus: 1
            Initiator: iqn.1994-05.org.test:init1 alias: none
            Connection: 0
                IP Address: 127.0.0.1
    LUN information:
        LUN: 0
            Type: controller
            SCSI ID: IET     00010000
            SCSI SN: beaf10
            Size: 0 MB, Block size: 1
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: None
            Backing store flags: 
        LUN: 1
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
            Backing store path: /tmp/tgtprobe/disk1.img
            Backing store flags: 
        LUN: 10
            Type: disk
            SCSI ID: IET     0001000a
            SCSI SN: beaf110
            Size: 67 MB, Block size: 512
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: rdwr
            Backing store path: /tmp/tgtprobe/disk1.img
            Backing store flags: 
        LUN: 11
            Type: disk
            SCSI ID: IET     0001000b
            SCSI SN: beaf111
            Size: 67 MB, Block size: 512
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: rdwr
            Backing store path: /tmp/tgtprobe/disk1.img
            Backing store flags: sync:direct
    Account information:
    ACL information:
        ALL
";
    assert_eq!(render(&Reply::TargetList(vec![t])), expected);
}

/// Two targets, NOP settings, flags set by an update, ACL rules in tgt's order (addresses, then
/// names), accounts, and a 1 TiB null store ("1099512 MB").
#[test]
fn second_target_layout() {
    let mut lun1 = disk(2, 1);
    lun1.online = false;
    lun1.removable = true;
    lun1.readonly = true;
    lun1.thin_provisioning = true;
    lun1.scsi_id = "ID1".into();
    lun1.scsi_sn = "SN1".into();
    let mut lun3 = disk(2, 3);
    lun3.size = 1 << 40;
    lun3.backing_store_type = "null".into();
    lun3.backing_store_path = Some("/dev/null".into());
    let empty = TargetView {
        tid: 1,
        name: "iqn.a".into(),
        driver: Lld::Iscsi,
        state: TargetState::Offline,
        nop_interval: None,
        nop_count: None,
        nexuses: vec![],
        luns: vec![],
        accounts: vec![],
        acl: vec![],
        params: vec![],
    };
    let t = TargetView {
        tid: 2,
        name: "iqn.b".into(),
        state: TargetState::Ready,
        nop_interval: Some(5),
        nop_count: Some(3),
        luns: vec![lun1, lun3],
        accounts: vec![
            AccountView { user: "alice".into(), outgoing: false },
            AccountView { user: "bob".into(), outgoing: true },
        ],
        acl: vec![
            AclEntry::All,
            AclEntry::InitiatorName("iqn.1994-05.com.redhat:abc".into()),
            AclEntry::parse_address("192.168.1.0/24").unwrap(),
            AclEntry::parse_address("fe80::1").unwrap(),
        ],
        ..empty.clone()
    };
    let expected = "\
Target 1: iqn.a
    System information:
        Driver: iscsi
        State: offline
    I_T nexus information:
    LUN information:
    Account information:
    ACL information:
Target 2: iqn.b
    System information:
        Driver: iscsi
        State: ready
        Nop interval: 5
        Nop count: 3
    I_T nexus information:
    LUN information:
        LUN: 1
            Type: disk
            SCSI ID: ID1
            SCSI SN: SN1
            Size: 67 MB, Block size: 512
            Online: No
            Removable media: Yes
            Prevent removal: No
            Readonly: Yes
            SWP: No
            Thin-provisioning: Yes
            Backing store type: rdwr
            Backing store path: /tmp/tgtprobe/disk1.img
            Backing store flags: 
        LUN: 3
            Type: disk
            SCSI ID: IET     00020003
            SCSI SN: beaf23
            Size: 1099512 MB, Block size: 512
            Online: Yes
            Removable media: No
            Prevent removal: No
            Readonly: No
            SWP: No
            Thin-provisioning: No
            Backing store type: null
            Backing store path: /dev/null
            Backing store flags: 
    Account information:
        alice
        bob (outgoing)
    ACL information:
        ALL
        192.168.1.0/24
        fe80::1
        iqn.1994-05.com.redhat:abc
";
    assert_eq!(render(&Reply::TargetList(vec![empty, t])), expected);
    assert_eq!(render(&Reply::TargetList(vec![])), "");
    assert_eq!(render(&Reply::Done), "");
}

#[test]
fn several_connections_and_an_alias() {
    let conn = |cid, ip: &str| ConnectionView {
        cid,
        initiator_address: format!("{ip}:1000").parse().unwrap(),
        target_address: "[::1]:3260".parse().unwrap(),
    };
    let t = TargetView {
        tid: 3,
        name: "iqn.c".into(),
        driver: Lld::Iscsi,
        state: TargetState::Ready,
        nop_interval: None,
        nop_count: None,
        nexuses: vec![NexusView {
            id: 7,
            initiator: "iqn.i".into(),
            alias: Some("host1".into()),
            isid: String::new(),
            connections: vec![conn(0, "[::1]"), conn(1, "10.1.2.3")],
            params: Vec::new(),
        }],
        luns: vec![],
        accounts: vec![],
        acl: vec![],
        params: vec![],
    };
    let text = render(&Reply::TargetList(vec![t]));
    assert!(text.contains(
        "        I_T nexus: 7\n            Initiator: iqn.i alias: host1\n            Connection: 0\n                IP Address: ::1\n            Connection: 1\n                IP Address: 10.1.2.3\n"
    ));
}

#[test]
fn system_show_layout() {
    let view = SystemView {
        state: SystemState::Ready,
        debug: false,
        llds: vec![LldView { name: "iscsi".into(), state: "ready".into(), targets: Vec::new() }],
        backing_stores: vec![
            BackingStoreView { name: "rdwr".into(), oflags: Some("sync:direct".into()) },
            BackingStoreView { name: "memory".into(), oflags: None },
            BackingStoreView { name: "null".into(), oflags: None },
        ],
        device_types: vec![DeviceType::Disk, DeviceType::Controller],
        limits: Some(Limits {
            max_sessions: 4096,
            sessions: 2,
            write_budget: 1 << 30,
            write_data_held: 3 << 20,
            read_budget: 512 << 20,
            read_data_held: 64 << 20,
            login_timeout_secs: 30,
            data_out_timeout_secs: 15,
            send_timeout_secs: 45,
        }),
        isns: None,
    };
    let expected = "\
System:
    State: ready
    debug: off
LLDs:
    iscsi: ready
Backing stores:
    rdwr (bsoflags sync:direct)
    memory
    null
Device types:
    disk
    controller
iSNS:
    iSNS=Off
    iSNSServerIP=
    iSNSServerPort=3205
    iSNSAccessControl=Off
Limits:
    max_sessions: 4096
    sessions: 2
    write_budget: 1G
    write_data_held: 3M
    read_budget: 512M
    read_data_held: 64M
    login_timeout: 30s
    data_out_timeout: 15s
    send_timeout: 45s
";
    assert_eq!(render(&Reply::System(view)), expected);
}

/// Fault rules come last in the LUN block, one line each, so tgt's fields keep their places.
#[test]
fn fault_rules_are_shown_after_tgt_fields() {
    let mut l = disk(1, 2);
    l.faults = vec!["read:eio:lba=100-199".into(), "write:delay=2s".into()];
    let text = render(&Reply::Lun(l));
    assert!(
        text.ends_with(
            "    Backing store flags: \n    Fault injection: read:eio:lba=100-199\n    Fault injection: write:delay=2s\n"
        ),
        "{text}"
    );
}

#[test]
fn single_lun_is_unindented() {
    let text = render(&Reply::Lun(disk(1, 2)));
    assert!(text.starts_with("LUN: 2\n    Type: disk\n    SCSI ID: IET     00010002\n"));
    assert!(text.ends_with("    Backing store flags: \n"));
}
