//! The saved form of the running configuration: accounts, targets with their parameters, access
//! rules, account bindings and LUNs, discovery accounts, portals added at run time, and the vhost
//! targets with their LUNs, and the iSNS settings. Taken from the live daemon (never kept in parallel, so it cannot drift),
//! and turned back into the management requests that rebuild it. Only values that differ from the
//! defaults are kept; LUN parameters are built as typed `LunParam`s and written as tgt's pairs.

use crate::control::show::acl_entry;
use crate::Daemon;
use rtgt_iscsi::TargetParams;
use rtgt_mgmt::{
    AccountOp, AclEntry, DeviceType, Lld, LunOp, LunParam, LunSpec, Op, Param, PortalOp, Request, StoreFlags,
    StoreKind, StoreSpec, SystemOp, TargetOp,
};
use rtgt_scsi::{LunConfig, LunInfo};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// Bumped when the format changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunningConfig {
    pub version: u32,
    #[serde(default)]
    pub accounts: Vec<SavedAccount>,
    #[serde(default)]
    pub discovery: SavedBindings,
    #[serde(default)]
    pub targets: Vec<SavedTarget>,
    /// Portals added with `portal new` (those from the command line are not saved).
    #[serde(default)]
    pub portals: Vec<SocketAddr>,
    /// vhost-user-scsi targets (`--lld vhost`), those started by `--vhost-user-scsi` included: a
    /// saved one the command line starts again (same tid, same socket) gets its LUNs back.
    #[serde(default)]
    pub vhost: Vec<SavedVhostTarget>,
    /// tgt's iSNS settings as `--name`/`--value` pairs (iSNSServerIP, iSNSServerPort,
    /// iSNSAccessControl, iSNS); empty when they are the defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub isns: Vec<Param>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedVhostTarget {
    pub tid: u32,
    /// The target's name: the absolute path of its unix socket, created again at restore.
    pub socket: String,
    #[serde(default)]
    pub luns: Vec<SavedLun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedAccount {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedBindings {
    #[serde(default)]
    pub incoming: Vec<String>,
    #[serde(default)]
    pub outgoing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedTarget {
    pub tid: u32,
    pub name: String,
    /// iSCSI parameters that differ from the defaults, and nop_interval / nop_count when set.
    #[serde(default)]
    pub params: Vec<Param>,
    #[serde(default)]
    pub acl: Vec<AclEntry>,
    #[serde(default)]
    pub accounts: SavedBindings,
    #[serde(default)]
    pub luns: Vec<SavedLun>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLun {
    pub lun: u64,
    /// Typed; a file saved before LUN specs were typed is read through `legacy` (its strings are
    /// parsed once, at load).
    #[serde(deserialize_with = "super::legacy::lun_spec")]
    pub spec: LunSpec,
}

impl RunningConfig {
    pub fn snapshot(daemon: &Daemon) -> Self {
        let registry = &daemon.registry;
        let boot = daemon.config.boot_portals();
        let discovery = registry.discovery_accounts();
        RunningConfig {
            version: FORMAT_VERSION,
            accounts: registry
                .accounts()
                .into_iter()
                .map(|a| SavedAccount { user: a.user, password: a.password })
                .collect(),
            discovery: SavedBindings { incoming: discovery.incoming, outgoing: discovery.outgoing },
            targets: daemon
                .targets
                .iscsi_targets()
                .iter()
                .map(|t| {
                    let bound = t.accounts();
                    SavedTarget {
                        tid: t.tid(),
                        name: t.name().to_string(),
                        params: target_params(t.params(), t.nop(), t.is_offline()),
                        acl: t.acl().iter().map(acl_entry).collect(),
                        accounts: SavedBindings { incoming: bound.incoming, outgoing: bound.outgoing },
                        luns: with_pending(daemon, t.tid(), saved_luns(&t.scsi)),
                    }
                })
                .collect(),
            portals: daemon.iscsi.portals().into_iter().filter(|p| !boot.contains(p)).collect(),
            vhost: daemon
                .targets
                .vhost_targets()
                .iter()
                .map(|c| {
                    let target = c.target();
                    SavedVhostTarget {
                        tid: target.tid,
                        socket: target.name.clone(),
                        luns: with_pending(daemon, target.tid, saved_luns(target)),
                    }
                })
                .collect(),
            isns: daemon
                .isns
                .settings()
                .as_params()
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| Param::new(name, value))
                .collect(),
        }
    }

    /// The requests that rebuild this configuration, in an order where each finds what it needs and
    /// no target opens before its protection is in place: accounts first, then the discovery
    /// bindings, then each target with its parameters, CHAP bindings and LUNs but no access rule;
    /// the access rules (which are what let initiators in: a target without any admits nobody)
    /// come last of all, then the portals added at run time. The iSNS settings come first, so iSNS
    /// access control is on before any target opens.
    pub fn requests(&self) -> Vec<Request> {
        let mut ops = Vec::new();
        if !self.isns.is_empty() {
            ops.push(Op::System(SystemOp::Update { params: self.isns.clone() }));
        }
        for a in &self.accounts {
            ops.push(Op::Account(AccountOp::New { user: a.user.clone(), password: a.password.clone() }));
        }
        let bindings = |ops: &mut Vec<Op>, tid: u32, b: &SavedBindings| {
            for user in &b.incoming {
                ops.push(Op::Account(AccountOp::Bind { tid, user: user.clone(), outgoing: false }));
            }
            if let Some(user) = &b.outgoing {
                ops.push(Op::Account(AccountOp::Bind { tid, user: user.clone(), outgoing: true }));
            }
        };
        bindings(&mut ops, 0, &self.discovery);
        for t in &self.targets {
            ops.push(Op::Target(TargetOp::New { tid: t.tid, name: t.name.clone() }));
            if !t.params.is_empty() {
                ops.push(Op::Target(TargetOp::Update { tid: t.tid, params: t.params.clone() }));
            }
            bindings(&mut ops, t.tid, &t.accounts);
            for l in &t.luns {
                ops.push(Op::LogicalUnit(LunOp::New { tid: t.tid, lun: l.lun, spec: l.spec.clone() }));
            }
        }
        for t in self.targets.iter().filter(|t| !t.acl.is_empty()) {
            ops.push(Op::Target(TargetOp::Bind { tid: t.tid, rules: t.acl.clone() }));
        }
        for &address in &self.portals {
            ops.push(Op::Portal(PortalOp::New { address }));
        }
        let mut requests: Vec<Request> = ops.into_iter().map(Request::iscsi).collect();
        // vhost targets have no accounts or access rules to wait for: a guest may connect as soon as
        // the socket exists, and learns of each LUN added after it through the event queue.
        for t in &self.vhost {
            let vhost = |op| Request { lld: Lld::Vhost, op };
            requests.push(vhost(Op::Target(TargetOp::New { tid: t.tid, name: t.socket.clone() })));
            for l in &t.luns {
                requests.push(vhost(Op::LogicalUnit(LunOp::New { tid: t.tid, lun: l.lun, spec: l.spec.clone() })));
            }
        }
        requests
    }
}

/// A target's open LUNs and those waiting for their backing store, by LUN number (as saved
/// before: a pending LUN keeps its place).
fn with_pending(daemon: &Daemon, tid: u32, open: Vec<(u64, SavedLun)>) -> Vec<SavedLun> {
    let pending =
        daemon.config.pending.of_target(tid).into_iter().map(|(lun, p)| (lun, SavedLun { lun, spec: p.spec }));
    open.into_iter().chain(pending).collect::<std::collections::BTreeMap<u64, SavedLun>>().into_values().collect()
}

/// The LUNs of a target to save (not the controller at LUN 0), by number.
fn saved_luns(target: &rtgt_scsi::Target) -> Vec<(u64, SavedLun)> {
    target
        .luns()
        .iter()
        .filter(|(_, unit)| unit.device_type() != rtgt_scsi::DeviceType::Controller)
        .map(|(lun, unit)| {
            let mut spec = lun_spec(*lun, target.tid, &unit.info());
            // An RBD image is reopened with its connection options, not a size.
            if let Some(opts) = unit.store().and_then(|s| s.reopen_options()) {
                spec.store.size = None;
                spec.store.rbd_options = opts.to_string();
            }
            (*lun, SavedLun { lun: *lun, spec })
        })
        .collect()
}

/// The parameters to save: what differs from a new target's.
fn target_params(current: Vec<(String, String)>, nop: crate::state::NopSettings, offline: bool) -> Vec<Param> {
    let defaults = TargetParams::default().list();
    let mut out: Vec<Param> =
        current.into_iter().filter(|kv| !defaults.contains(kv)).map(|(name, value)| Param::new(name, value)).collect();
    if nop.interval != 0 {
        out.push(Param::new("nop_interval", nop.interval.to_string()));
    }
    if nop.count != 0 {
        out.push(Param::new("nop_count", nop.count.to_string()));
    }
    // Replayed through the same target update, so a restarted daemon keeps the target offline.
    if offline {
        out.push(Param::new("state", "offline"));
    }
    out
}

/// How to recreate a LUN: its type, its store (a CD/DVD drive's: the disc in its tray now, None
/// for an empty tray), and every parameter that differs from a new unit's of that type.
fn lun_spec(lun: u64, tid: u32, info: &LunInfo) -> LunSpec {
    let config = &info.config;
    let (device_type, default) = match config.device_type {
        rtgt_scsi::DeviceType::Cd => (DeviceType::Cd, LunConfig::cd(tid, lun)),
        rtgt_scsi::DeviceType::Changer => (DeviceType::Changer, LunConfig::changer(tid, lun)),
        rtgt_scsi::DeviceType::Tape => (DeviceType::Tape, LunConfig::tape(tid, lun)),
        _ => (DeviceType::Disk, LunConfig::disk(tid, lun)),
    };
    // Typed values compared with a new disk's; only what differs is saved.
    let mut typed = Vec::new();
    let mut differs = |changed: bool, param: LunParam| {
        if changed {
            typed.push(param);
        }
    };
    differs(config.vendor_id != default.vendor_id, LunParam::VendorId(config.vendor_id.clone()));
    differs(config.product_id != default.product_id, LunParam::ProductId(config.product_id.clone()));
    differs(config.product_rev != default.product_rev, LunParam::ProductRev(config.product_rev.clone()));
    differs(config.scsi_id != default.scsi_id, LunParam::ScsiId(config.scsi_id.clone()));
    differs(config.scsi_sn != default.scsi_sn, LunParam::ScsiSn(config.scsi_sn.clone()));
    differs(config.removable != default.removable, LunParam::Removable(config.removable));
    differs(config.readonly != default.readonly, LunParam::Readonly(config.readonly));
    differs(config.online != default.online, LunParam::Online(config.online));
    differs(
        config.thin_provisioning != default.thin_provisioning,
        LunParam::ThinProvisioning(config.thin_provisioning),
    );
    differs(config.descriptor_sense != default.descriptor_sense, LunParam::DescriptorSense(config.descriptor_sense));
    for page in &config.mode_pages {
        typed.push(LunParam::ModePage(crate::control::show::mode_page_text(page)));
    }
    // A changer's library: its layout, drives and the cartridges where they are now.
    typed.extend(info.library.iter().map(|c| LunParam::Changer(crate::control::changer_param(c))));
    // The live store's own names and flags, which it was opened from, so they parse; fault rules
    // (a testing aid) are not saved.
    let kind = info.backing_store_type.parse::<StoreKind>().unwrap_or_default();
    let store = StoreSpec {
        kind: Some(kind),
        // Stores without a file are sized by option; a file's size is the file's.
        size: (!matches!(kind, StoreKind::Rdwr | StoreKind::Ssc)).then_some(info.size),
        flags: StoreFlags::parse(&info.bsoflags).unwrap_or_default(),
        ..StoreSpec::default()
    };
    LunSpec {
        device_type,
        backing_store: info.backing_store_path.clone(),
        store,
        block_size: Some(config.block_size),
        params: typed,
    }
}

/// A request as a log line, never with a password in it.
pub fn describe(op: &Op) -> String {
    match op {
        Op::Account(AccountOp::New { user, .. }) => format!("account new {user}"),
        other => format!("{other:?}"),
    }
}

/// What a restore step rebuilds, in an administrator's words (for "... not restored: why").
pub fn in_words(op: &Op) -> String {
    match op {
        Op::Account(AccountOp::New { user, .. }) => format!("account {user}"),
        Op::Account(AccountOp::Bind { tid: 0, user, outgoing }) => {
            format!("{} discovery account {user}", if *outgoing { "outgoing" } else { "incoming" })
        }
        Op::Account(AccountOp::Bind { tid, user, outgoing }) => {
            format!("{} account {user} of target {tid}", if *outgoing { "outgoing" } else { "incoming" })
        }
        Op::Target(TargetOp::New { tid, name }) => format!("target {tid} ({name})"),
        Op::Target(TargetOp::Update { tid, .. }) => format!("the parameters of target {tid}"),
        Op::Target(TargetOp::Bind { tid, .. }) => format!("the access rules of target {tid}"),
        Op::LogicalUnit(LunOp::New { tid, lun, .. }) => format!("LUN {lun} of target {tid}"),
        Op::Portal(PortalOp::New { address }) => format!("portal {address}"),
        Op::System(SystemOp::Update { .. }) => "the iSNS settings".to_string(),
        other => describe(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_chap_targets() -> RunningConfig {
        let target = |tid: u32| SavedTarget {
            tid,
            name: format!("iqn.x:t{tid}"),
            params: vec![Param::new("MaxConnections", "2")],
            acl: vec![AclEntry::All],
            accounts: SavedBindings { incoming: vec!["alice".into()], outgoing: Some("tgt".into()) },
            luns: vec![SavedLun { lun: 1, spec: LunSpec::disk(Some("/d".into())) }],
        };
        RunningConfig {
            version: FORMAT_VERSION,
            accounts: vec![
                SavedAccount { user: "alice".into(), password: "pw".into() },
                SavedAccount { user: "tgt".into(), password: "pw2".into() },
            ],
            discovery: SavedBindings { incoming: vec!["alice".into()], outgoing: None },
            targets: vec![target(1), target(2)],
            portals: vec!["127.0.0.1:3261".parse().unwrap()],
            vhost: Vec::new(),
            isns: Vec::new(),
        }
    }

    #[test]
    fn requests_rebuild_in_dependency_order() {
        let config = two_chap_targets();
        let kinds: Vec<String> = config.requests().iter().map(|r| describe(&r.op)).collect();
        assert_eq!(kinds.len(), 16, "{kinds:#?}");
        assert_eq!(kinds[..2], ["account new alice", "account new tgt"]);
        assert!(kinds[2].contains("tid: 0"), "discovery bindings right after the accounts: {kinds:#?}");
        assert!(kinds[3].starts_with("Target(New"));
        assert!(kinds[4].starts_with("Target(Update"));
        assert!(kinds[5].contains("outgoing: false") && kinds[6].contains("outgoing: true"));
        assert!(kinds[7].starts_with("LogicalUnit(New"));
        assert!(kinds[13].starts_with("Target(Bind") && kinds[14].starts_with("Target(Bind"));
        assert!(kinds[15].starts_with("Portal(New"));
        assert!(kinds.iter().all(|k| !k.contains("pw")));
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<RunningConfig>(&json).unwrap(), config);
    }

    /// An access rule is what lets initiators in; until every account is created and bound (to
    /// discovery and to every target), none may be in place, or a CHAP target would take
    /// AuthMethod=None logins and discovery would list names to anyone.
    #[test]
    fn every_account_is_created_and_bound_before_any_access_rule() {
        let ops: Vec<Op> = two_chap_targets().requests().into_iter().map(|r| r.op).collect();
        let first_rule = ops.iter().position(|op| matches!(op, Op::Target(TargetOp::Bind { .. }))).unwrap();
        let last_account = ops.iter().rposition(|op| matches!(op, Op::Account(_))).unwrap();
        assert!(last_account < first_rule, "{ops:#?}");
        // And a target is complete (its LUNs too) before any target opens.
        let last_lun = ops.iter().rposition(|op| matches!(op, Op::LogicalUnit(_))).unwrap();
        assert!(last_lun < first_rule, "{ops:#?}");
    }

    #[test]
    fn vhost_targets_are_rebuilt_through_the_vhost_lld() {
        let mut config = two_chap_targets();
        let lun = SavedLun { lun: 1, spec: LunSpec::disk(Some("/d".into())) };
        config.vhost = vec![SavedVhostTarget { tid: 7, socket: "/run/vm.sock".into(), luns: vec![lun] }];
        let requests = config.requests();
        assert_eq!(requests.len(), 18);
        assert!(requests[..16].iter().all(|r| r.lld == Lld::Iscsi));
        assert_eq!(requests[16].lld, Lld::Vhost);
        assert!(matches!(&requests[16].op, Op::Target(TargetOp::New { tid: 7, name }) if name == "/run/vm.sock"));
        assert!(matches!(&requests[17].op, Op::LogicalUnit(LunOp::New { tid: 7, lun: 1, .. })));
        // A file saved before vhost targets were saved still reads.
        let mut old = serde_json::to_value(two_chap_targets()).unwrap();
        old.as_object_mut().unwrap().remove("vhost");
        assert!(serde_json::from_value::<RunningConfig>(old).unwrap().vhost.is_empty());
    }

    #[test]
    fn only_changed_parameters_are_saved() {
        let mut current = TargetParams::default().list();
        current[0].1 = "65536".into();
        let saved = target_params(current.clone(), crate::state::NopSettings { interval: 5, count: 0 }, false);
        assert_eq!(saved, vec![Param::new("MaxRecvDataSegmentLength", "65536"), Param::new("nop_interval", "5")]);
        let saved = target_params(current, crate::state::NopSettings::default(), true);
        assert_eq!(saved.last(), Some(&Param::new("state", "offline")));
    }
}
