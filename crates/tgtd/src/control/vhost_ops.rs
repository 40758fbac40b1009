//! `--lld vhost`: vhost-user-scsi targets and their LUNs. A vhost target's name is the unix socket
//! its VM connects to (`--targetname /run/rtgt/vm1.sock`), as an iSCSI target's name is its IQN.
//! LUN changes are reported to a connected guest through the event queue (hotplug, capacity).

use super::show::lun_view;
use crate::targets::TargetTableError;
use crate::vhost::VhostTargetError;
use crate::Daemon;
use rtgt_mgmt::{
    ErrorCode, Lld, LunChange, LunOp, LunParam, MgmtError, NexusView, Op, Reply, TargetOp, TargetParam, TargetState,
    TargetView,
};
use rtgt_vhost::{LunEvent, VhostError, VhostScsiDevice};
use std::path::Path;
use std::sync::Arc;

/// virtio-scsi LUN fields carry 14 bits (flat addressing).
const MAX_LUN: u64 = 0x3fff;

fn invalid(message: impl Into<String>) -> MgmtError {
    MgmtError::with_message(ErrorCode::InvalidRequest, message)
}

fn unsupported(what: &str) -> MgmtError {
    MgmtError::with_message(ErrorCode::Unsupported, format!("{what} is not supported for vhost targets"))
}

/// Apply one `--lld vhost` request.
pub(crate) fn apply(daemon: &Daemon, op: Op) -> Result<Reply, MgmtError> {
    match op {
        Op::Target(op) => target(daemon, op),
        Op::LogicalUnit(op) => lun(daemon, op),
        _ => Err(unsupported("this mode")),
    }
}

fn find(daemon: &Daemon, tid: u32) -> Result<Arc<VhostScsiDevice>, MgmtError> {
    daemon.targets.vhost(tid).ok_or_else(|| MgmtError::new(ErrorCode::NoTarget))
}

fn target(daemon: &Daemon, op: TargetOp) -> Result<Reply, MgmtError> {
    match op {
        TargetOp::New { tid, name } => {
            let socket = Path::new(&name);
            if !socket.is_absolute() {
                return Err(invalid("a vhost target's name is the absolute path of its socket"));
            }
            daemon.add_vhost_target(tid, socket).map_err(|e| match e {
                // tgt's plain "this target already exists", whichever LLD holds the tid or the name.
                TargetTableError::TidTaken(_) | TargetTableError::NameTaken(_) => {
                    MgmtError::new(ErrorCode::TargetExists)
                }
                // A path that cannot be this target's socket (a file, a live socket) is a bad
                // request, not a taken target.
                TargetTableError::Vhost(VhostTargetError::Start(VhostError::Socket(_))) => {
                    MgmtError::with_message(ErrorCode::InvalidRequest, e.to_string())
                }
                _ => MgmtError::with_message(ErrorCode::TargetExists, e.to_string()),
            })?;
            Ok(Reply::Done)
        }
        TargetOp::Delete { tid, force } => {
            let device = find(daemon, tid)?;
            if device.connected() && !force {
                return Err(MgmtError::new(ErrorCode::TargetActive));
            }
            daemon.targets.remove_vhost(tid).ok_or_else(|| MgmtError::new(ErrorCode::NoTarget))?;
            daemon.config.forget_target(tid);
            Ok(Reply::Done)
        }
        TargetOp::Show { tid: None } => {
            Ok(Reply::TargetList(daemon.targets.vhost_targets().iter().map(|c| view(daemon, c)).collect()))
        }
        TargetOp::Show { tid: Some(tid) } => Ok(Reply::TargetList(vec![view(daemon, &*find(daemon, tid)?)])),
        _ => Err(unsupported("this operation")),
    }
}

/// A vhost target as `show` lists it: the guest, when connected, is its one I_T nexus; saved LUNs
/// waiting for their backing store are listed as missing.
pub(crate) fn view(daemon: &Daemon, device: &VhostScsiDevice) -> TargetView {
    let target = device.target();
    let connected = device.connected();
    // The connected guest is the target's one I_T nexus (tgt's "I_T nexus" lines; no connections:
    // there is no network address to show).
    let nexus_list = target.nexuses();
    let guests: Vec<String> = nexus_list.iter().map(|n| n.initiator_port.clone()).collect();
    let nexuses = nexus_list
        .iter()
        .map(|n| NexusView {
            id: n.id,
            initiator: n.initiator_port.clone(),
            alias: None,
            isid: String::new(),
            connections: Vec::new(),
            params: Vec::new(),
        })
        .collect();
    let param = |name: &str, value: String| TargetParam { name: name.into(), value };
    TargetView {
        tid: target.tid,
        name: target.name.clone(),
        driver: Lld::Vhost,
        state: TargetState::Ready,
        nop_interval: None,
        nop_count: None,
        nexuses,
        luns: luns(daemon, target),
        accounts: Vec::new(),
        acl: Vec::new(),
        params: vec![
            param("socket", device.socket().display().to_string()),
            param("guest_connected", if connected { "yes" } else { "no" }.into()),
            param("connections", device.connections().to_string()),
            param("initiator", guests.join(" ")),
        ],
    }
}

/// Open LUNs and pending ones, by number.
fn luns(daemon: &Daemon, target: &rtgt_scsi::Target) -> Vec<rtgt_mgmt::LunView> {
    let mut views: Vec<_> = target.luns().iter().map(|(lun, unit)| lun_view(*lun, &unit.info())).collect();
    for (lun, pending) in daemon.config.pending.of_target(target.tid) {
        if views.iter().all(|v| v.lun != lun) {
            views.push(super::show::pending_lun_view(target.tid, lun, &pending));
        }
    }
    views.sort_by_key(|v| v.lun);
    views
}

/// A unit the administrator made, as opposed to the automatic controller at LUN 0 (which has no
/// store). A cd/dvd drive keeps its disc in its tray, not in `store()`, and is real even empty.
fn is_real(unit: &rtgt_scsi::LogicalUnit) -> bool {
    // A tape drive keeps its tape out of `store()` too, and is real empty.
    unit.store().is_some() || unit.device_type() != rtgt_scsi::DeviceType::Controller
}

fn lun(daemon: &Daemon, op: LunOp) -> Result<Reply, MgmtError> {
    match op {
        LunOp::New { tid, lun, spec } => {
            let device = find(daemon, tid)?;
            let target = device.target();
            if lun > MAX_LUN {
                return Err(invalid(format!("LUN {lun} is above {MAX_LUN}")));
            }
            if target.lun(lun).is_some_and(|u| lun != 0 || is_real(&u)) {
                return Err(MgmtError::new(ErrorCode::LunExists));
            }
            let unit = Arc::new(super::lun_ops::build_unit(daemon, tid, lun, &spec)?);
            super::lun_ops::attach_saved_state(daemon, tid, lun, &target.name, &spec, &unit);
            target.add_lun(lun, unit).map_err(|e| MgmtError::with_message(ErrorCode::LunExists, e))?;
            // Created where a saved LUN waited for its store: it replaces it.
            daemon.config.pending.forget(tid, lun);
            device.notify(LunEvent::Added(lun));
            // A changer whose library says this LUN's drive holds a cartridge loads it now.
            super::changer_ops::reload_all_changers(daemon);
            Ok(Reply::Done)
        }
        LunOp::Delete { tid, lun } => {
            let device = find(daemon, tid)?;
            let target = device.target();
            if target.lun(lun).is_none_or(|u| !is_real(&u)) {
                // A saved LUN waiting for its store is deleted from the configuration like any other.
                return match daemon.config.pending.forget(tid, lun) {
                    true => Ok(Reply::Done),
                    false => Err(MgmtError::new(ErrorCode::NoLun)),
                };
            }
            target.remove_lun(lun).map_err(|e| MgmtError::with_message(ErrorCode::NoLun, e))?;
            device.notify(LunEvent::Removed(lun));
            Ok(Reply::Done)
        }
        LunOp::Show { tid, lun } => {
            if let Some(unit) = find(daemon, tid)?.target().lun(lun) {
                return Ok(Reply::Lun(lun_view(lun, &unit.info())));
            }
            let pending = daemon.config.pending.get(tid, lun).ok_or_else(|| MgmtError::new(ErrorCode::NoLun))?;
            Ok(Reply::Lun(super::show::pending_lun_view(tid, lun, &pending)))
        }
        LunOp::Stats { tid, lun } => crate::metrics::stats_view::reply(find(daemon, tid)?.target(), lun),
        LunOp::Update { tid, lun, changes } => {
            let device = find(daemon, tid)?;
            let Some(unit) = device.target().lun(lun) else {
                // A saved LUN whose store was missing: `online=1` opens it now.
                let reply = super::lun_ops::retry_pending(daemon, None, device.target(), lun, &changes)?;
                device.notify(LunEvent::Added(lun));
                return Ok(reply);
            };
            // Only what changes a live unit's size, state or disc: online and readonly, a size
            // reload, a disc change. Checked before any applies: a change a vhost LUN does not
            // take changes nothing, and the disc (the one change still refused when an initiator
            // prevents removal) is changed first.
            if let Some(LunChange::Set(other)) = changes.iter().find(|c| {
                !matches!(
                    c,
                    LunChange::ReloadCapacity
                        | LunChange::Media(_)
                        | LunChange::ForceMedia(_)
                        | LunChange::Set(LunParam::Online(_) | LunParam::Readonly(_) | LunParam::Changer(_))
                )
            }) {
                return Err(invalid(format!("unsupported vhost LUN parameter '{}'", other.to_param().name)));
            }
            // A changer's library, as on an iSCSI target: each group is one administrator's action.
            let library: Vec<&rtgt_mgmt::ChangerParam> = changes
                .iter()
                .filter_map(|c| match c {
                    LunChange::Set(LunParam::Changer(p)) => Some(p),
                    _ => None,
                })
                .collect();
            if !library.is_empty() {
                super::changer_ops::update(device.target(), lun, &library)?;
            }
            let force = changes.iter().any(|c| matches!(c, LunChange::ForceMedia(true)));
            let media = changes.iter().find_map(|c| match c {
                LunChange::Media(path) => Some(path.as_deref()),
                _ => None,
            });
            match media {
                // The guest learns of it as any initiator does: UNIT ATTENTION on its next command,
                // a media event when it polls (Linux's sr does both).
                Some(path) => {
                    super::lun_ops::change_disc(device.target(), lun, super::lun_ops::open_media(path)?, force)?
                }
                None if force => return Err(invalid("force=1 applies to a disc change: give it with media=")),
                None => {}
            }
            for change in &changes {
                match change {
                    LunChange::ReloadCapacity => {
                        device.target().reload_lun_size(lun).map_err(invalid)?;
                        device.notify(LunEvent::CapacityChanged(lun));
                    }
                    LunChange::Set(LunParam::Online(on)) => unit.set_online(*on),
                    // WP in MODE SENSE's header changes: the guest is told MODE PARAMETERS CHANGED.
                    LunChange::Set(LunParam::Readonly(ro)) => {
                        device.target().set_lun_readonly(lun, *ro).map_err(invalid)?;
                    }
                    LunChange::Media(_) | LunChange::ForceMedia(_) | LunChange::Set(_) | LunChange::AluaOwner(_) => {}
                }
            }
            Ok(Reply::Done)
        }
    }
}
