//! `--mode logicalunit`: add a LUN on a backing store, change its flags, remove it, show it.

use super::show::lun_view;
use super::target_ops::find;
use crate::Daemon;
use rtgt_backstore::{BackstoreKind, BackstoreSpec};
use rtgt_mgmt::{DeviceType, ErrorCode, LunOp, LunSpec, MgmtError, Param, Reply};
use rtgt_scsi::{LogicalUnit, LunConfig};
use std::path::PathBuf;
use std::sync::Arc;

/// Flat space addressing (SAM-5 4.7.7) reaches 16383; the SCSI core encodes no more.
const MAX_LUN: u64 = 0x3fff;

pub(crate) fn apply(daemon: &Daemon, op: LunOp) -> Result<Reply, MgmtError> {
    match op {
        LunOp::New { tid, lun, spec } => new(daemon, tid, lun, &spec),
        LunOp::Delete { tid, lun } => delete(daemon, tid, lun),
        LunOp::Update { tid, lun, params } => update(daemon, tid, lun, &params),
        LunOp::Show { tid, lun } => {
            let unit = find(daemon, tid)?.scsi.lun(lun).ok_or_else(|| MgmtError::new(ErrorCode::NoLun))?;
            Ok(Reply::Lun(lun_view(lun, &unit.info())))
        }
    }
}

fn invalid(message: impl Into<String>) -> MgmtError {
    MgmtError::with_message(ErrorCode::InvalidRequest, message)
}

fn new(daemon: &Daemon, tid: u32, lun: u64, spec: &LunSpec) -> Result<Reply, MgmtError> {
    let target = find(daemon, tid)?;
    if lun > MAX_LUN {
        return Err(invalid(format!("LUN {lun} is above {MAX_LUN}")));
    }
    // LUN 0 may replace the automatic controller, nothing else may be replaced. Checked before the
    // store is opened so that a taken LUN never touches the file.
    if let Some(existing) = target.scsi.lun(lun) {
        if lun != 0 || existing.info().config.device_type != rtgt_scsi::DeviceType::Controller {
            return Err(MgmtError::new(ErrorCode::LunExists));
        }
    }
    if spec.device_type != DeviceType::Disk {
        return Err(MgmtError::with_message(
            ErrorCode::Unsupported,
            format!("device type {} is not supported yet", spec.device_type.name()),
        ));
    }
    let block_size = match spec.block_size {
        None => 512,
        Some(size @ (512 | 4096)) => size,
        Some(other) => return Err(invalid(format!("block size {other} is not 512 or 4096"))),
    };
    let kind = match spec.bstype.as_deref() {
        None => BackstoreKind::Rdwr,
        Some(name) => name.parse::<BackstoreKind>().map_err(|e| invalid(e.to_string()))?,
    };
    if kind == BackstoreKind::Rdwr && spec.backing_store.as_deref().is_none_or(str::is_empty) {
        return Err(invalid("a disk needs --backing-store (or --bstype memory or null)"));
    }
    let store = rtgt_backstore::open(&BackstoreSpec {
        kind,
        path: spec.backing_store.as_ref().filter(|p| !p.is_empty()).map(PathBuf::from),
        options: spec.bsopts.clone(),
        oflags: spec.bsoflags.clone(),
        readonly: false,
    })
    .map_err(|e| invalid(e.to_string()))?;
    // The store knows whether it keeps a volatile cache (WCE) and whether it can be written at all.
    let config = LunConfig {
        block_size,
        write_cache: store.volatile_cache(),
        readonly: store.readonly(),
        thin_provisioning: store.thin_provisioned(),
        ..LunConfig::disk(tid, lun)
    };
    let unit = LogicalUnit::new(config, Some(store));
    if let Some(dir) = &daemon.state_dir {
        // APTPL state saved by an earlier run comes back with the LUN (SPC-4 5.12.4).
        let file = crate::pr_state::PrStateFile::new(dir, &target.scsi.name, lun);
        match unit.persistent_reservations().attach_persistence(Arc::new(file.clone())) {
            Ok(true) => tracing::info!(tid, lun, "persistent reservations restored"),
            Ok(false) => {}
            Err(e) => {
                let path = file.path().display();
                tracing::warn!(tid, lun, %path, error = %e, "persistent reservations not restored")
            }
        }
    }
    target.scsi.add_lun(lun, Arc::new(unit)).map_err(|e| MgmtError::with_message(ErrorCode::LunExists, e))?;
    Ok(Reply::Done)
}

fn delete(daemon: &Daemon, tid: u32, lun: u64) -> Result<Reply, MgmtError> {
    // tgt answers "can't find the logical unit" for a missing target too.
    let target = daemon.registry.target(tid).ok_or_else(|| MgmtError::new(ErrorCode::NoLun))?;
    let unit = target.scsi.lun(lun).ok_or_else(|| MgmtError::new(ErrorCode::NoLun))?;
    if unit.info().config.device_type == rtgt_scsi::DeviceType::Controller {
        // The automatic LUN 0 is not the administrator's to remove.
        return Err(MgmtError::new(ErrorCode::NoLun));
    }
    target.scsi.remove_lun(lun).map_err(|e| MgmtError::with_message(ErrorCode::NoLun, e))?;
    Ok(Reply::Done)
}

/// A LUN parameter rtgt can change on a live unit.
enum Change {
    Online(bool),
    Readonly(bool),
}

/// Check every parameter first, then apply them all: a mistake changes nothing.
fn update(daemon: &Daemon, tid: u32, lun: u64, params: &[Param]) -> Result<Reply, MgmtError> {
    let target = find(daemon, tid)?;
    let unit = target.scsi.lun(lun).ok_or_else(|| MgmtError::new(ErrorCode::NoLun))?;
    if params.is_empty() {
        return Err(invalid("no parameter given"));
    }
    let flag = |p: &Param| match p.value.as_str() {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(invalid(format!("{} must be 0 or 1, not '{}'", p.name, p.value))),
    };
    let mut changes = Vec::with_capacity(params.len());
    for p in params {
        changes.push(match p.name.as_str() {
            "online" => Change::Online(flag(p)?),
            "readonly" => Change::Readonly(flag(p)?),
            // tgt's other LUN parameters: known, but the SCSI core cannot change them on a live unit.
            "vendor_id" | "product_id" | "product_rev" | "scsi_id" | "scsi_sn" | "removable" | "sense_format"
            | "thin_provisioning" | "mode_page" => {
                return Err(MgmtError::with_message(
                    ErrorCode::Unsupported,
                    format!("changing {} is not implemented yet (online and readonly are)", p.name),
                ))
            }
            other => return Err(invalid(format!("unknown logical unit parameter '{other}'"))),
        });
    }
    for change in changes {
        match change {
            Change::Online(on) => unit.set_online(on),
            Change::Readonly(ro) => unit.set_readonly(ro),
        }
    }
    Ok(Reply::Done)
}
