//! Typed views of the daemon's state for `show`: targets with their sessions, LUNs and access rules.

use crate::Daemon;
use rtgt_iscsi::{AclRule, IscsiTarget, SessionInfo};
use rtgt_mgmt::{
    AccountView, AclEntry, ConnectionView, DeviceType, Lld, LunView, NexusView, TargetParam, TargetState, TargetView,
};
use rtgt_scsi::LunInfo;

pub(crate) fn target_view(daemon: &Daemon, target: &IscsiTarget) -> TargetView {
    let nop = target.nop();
    let bound = target.accounts();
    let accounts = bound
        .incoming
        .iter()
        .map(|user| AccountView { user: user.clone(), outgoing: false })
        .chain(bound.outgoing.iter().map(|user| AccountView { user: user.clone(), outgoing: true }))
        .collect();
    TargetView {
        tid: target.tid(),
        name: target.name().to_string(),
        driver: Lld::Iscsi,
        state: if target.is_offline() { TargetState::Offline } else { TargetState::Ready },
        // tgt shows the NOP lines only once they are set.
        nop_interval: (nop.interval != 0).then_some(nop.interval),
        nop_count: (nop.count != 0).then_some(nop.count),
        nexuses: target.sessions().iter().map(nexus_view).collect(),
        luns: luns(daemon, target),
        accounts,
        acl: target.acl().iter().map(acl_entry).collect(),
        params: target_params(target),
    }
}

pub(crate) fn nexus_view(session: &SessionInfo) -> NexusView {
    NexusView {
        id: u64::from(session.tsih),
        initiator: session.initiator_name.clone(),
        alias: None,
        isid: session.isid.iter().map(|b| format!("{b:02x}")).collect(),
        connections: session
            .connections
            .iter()
            .map(|c| ConnectionView {
                cid: c.cid,
                initiator_address: c.initiator_address,
                target_address: c.target_address,
            })
            .collect(),
        params: session_params(&session.params),
    }
}

/// What a session negotiated, under the keys' RFC 7143 names; the two data segment lengths are
/// each side's (MaxRecvDataSegmentLength is what this target receives).
fn session_params(p: &rtgt_iscsi::SessionParams) -> Vec<TargetParam> {
    let yes_no = |b: bool| if b { "Yes" } else { "No" }.to_string();
    [
        ("HeaderDigest", p.header_digest.name().to_string()),
        ("DataDigest", p.data_digest.name().to_string()),
        ("MaxRecvDataSegmentLength", p.our_max_recv_data_segment_length.to_string()),
        ("MaxXmitDataSegmentLength", p.initiator_max_recv_data_segment_length.to_string()),
        ("MaxBurstLength", p.max_burst_length.to_string()),
        ("FirstBurstLength", p.first_burst_length.to_string()),
        ("InitialR2T", yes_no(p.initial_r2t)),
        ("ImmediateData", yes_no(p.immediate_data)),
        ("MaxOutstandingR2T", p.max_outstanding_r2t.to_string()),
        ("DataPDUInOrder", yes_no(p.data_pdu_in_order)),
        ("DataSequenceInOrder", yes_no(p.data_sequence_in_order)),
        ("DefaultTime2Wait", p.default_time2wait.to_string()),
        ("DefaultTime2Retain", p.default_time2retain.to_string()),
        ("ErrorRecoveryLevel", p.error_recovery_level.to_string()),
        ("MaxConnections", p.max_connections.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| TargetParam { name: name.to_string(), value })
    .collect()
}

pub(crate) fn lun_view(lun: u64, info: &LunInfo) -> LunView {
    let config = &info.config;
    LunView {
        lun,
        device_type: device_type(config.device_type),
        scsi_id: config.scsi_id.clone(),
        scsi_sn: config.scsi_sn.clone(),
        vendor_id: config.vendor_id.clone(),
        product_id: config.product_id.clone(),
        product_rev: config.product_rev.clone(),
        size: info.size,
        block_size: config.block_size,
        online: config.online,
        removable: config.removable,
        prevent_removal: info.prevent_removal,
        swp: info.swp,
        readonly: config.readonly,
        thin_provisioning: config.thin_provisioning,
        backing_store_type: info.backing_store_type.clone(),
        backing_store_path: info.backing_store_path.clone(),
        backing_store_flags: info.bsoflags.clone(),
        mode_pages: config.mode_pages.iter().map(mode_page_text).collect(),
        descriptor_sense: config.descriptor_sense,
        missing: None,
        faults: info.faults.clone(),
        changer: info.library.iter().map(super::changer_ops::changer_param).collect(),
    }
}

/// A target's LUNs by number: the open ones, and the saved ones waiting for their backing store.
fn luns(daemon: &Daemon, target: &IscsiTarget) -> Vec<LunView> {
    let mut views: Vec<LunView> = target.scsi.luns().iter().map(|(lun, unit)| lun_view(*lun, &unit.info())).collect();
    for (lun, pending) in daemon.config.pending.of_target(target.tid()) {
        if views.iter().all(|v| v.lun != lun) {
            views.push(pending_lun_view(target.tid(), lun, &pending));
        }
    }
    views.sort_by_key(|v| v.lun);
    views
}

/// A LUN that could not be opened: what its saved spec says, offline, with why.
pub(crate) fn pending_lun_view(tid: u32, lun: u64, pending: &crate::state::pending::PendingLun) -> LunView {
    let spec = &pending.spec;
    let config = rtgt_scsi::LunConfig::disk(tid, lun);
    LunView {
        lun,
        device_type: spec.device_type,
        scsi_id: config.scsi_id,
        scsi_sn: config.scsi_sn,
        vendor_id: config.vendor_id,
        product_id: config.product_id,
        product_rev: config.product_rev,
        size: 0,
        block_size: spec.block_size.unwrap_or(config.block_size),
        online: false,
        removable: false,
        prevent_removal: false,
        swp: false,
        readonly: false,
        thin_provisioning: false,
        backing_store_type: spec.store.kind_or_default().name().into(),
        backing_store_path: spec.backing_store.clone(),
        backing_store_flags: spec.store.bsoflags(),
        mode_pages: Vec::new(),
        descriptor_sense: false,
        missing: Some(pending.reason.clone()),
        faults: Vec::new(),
        changer: Vec::new(),
    }
}

/// A mode page as `--params mode_page=` takes it: `PAGE:SUBPAGE:LENGTH:BYTE...`, decimal.
pub(crate) fn mode_page_text(page: &rtgt_scsi::ModePageSpec) -> String {
    let mut text = format!("{}:{}:{}", page.page, page.subpage, page.data.len());
    for byte in &page.data {
        text.push_str(&format!(":{byte}"));
    }
    text
}

pub(crate) fn device_type(t: rtgt_scsi::DeviceType) -> DeviceType {
    match t {
        rtgt_scsi::DeviceType::Disk => DeviceType::Disk,
        rtgt_scsi::DeviceType::Controller => DeviceType::Controller,
        rtgt_scsi::DeviceType::Cd => DeviceType::Cd,
        rtgt_scsi::DeviceType::Changer => DeviceType::Changer,
        rtgt_scsi::DeviceType::Tape => DeviceType::Tape,
    }
}

pub(crate) fn acl_entry(rule: &AclRule) -> AclEntry {
    match rule {
        AclRule::Any => AclEntry::All,
        AclRule::Address(a) => AclEntry::Address(*a),
        AclRule::Network(address, prefix) => AclEntry::Network { address: *address, prefix: *prefix },
        AclRule::InitiatorName(n) => AclEntry::InitiatorName(n.clone()),
    }
}

pub(crate) fn acl_rule(entry: &AclEntry) -> AclRule {
    match entry {
        AclEntry::All => AclRule::Any,
        AclEntry::Address(a) => AclRule::Address(*a),
        AclEntry::Network { address, prefix } => AclRule::Network(*address, *prefix),
        AclEntry::InitiatorName(n) => AclRule::InitiatorName(n.clone()),
    }
}

/// The target's iSCSI parameters: the values new sessions start negotiating from.
fn target_params(target: &IscsiTarget) -> Vec<TargetParam> {
    target.params().into_iter().map(|(name, value)| TargetParam { name, value }).collect()
}
