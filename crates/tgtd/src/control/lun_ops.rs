//! `--mode logicalunit`: add a LUN on a backing store, remove it, show it.

use super::show::lun_view;
use super::target_ops::find;
use crate::Daemon;
use rtgt_backstore::{BackstoreKind, BackstoreSpec};
use rtgt_mgmt::{DeviceType, ErrorCode, LunOp, LunSpec, MgmtError, Reply};
use rtgt_scsi::{LogicalUnit, LunConfig};
use std::path::PathBuf;
use std::sync::Arc;

/// Flat space addressing (SAM-5 4.7.7) reaches 16383; the SCSI core encodes no more.
const MAX_LUN: u64 = 0x3fff;

pub(crate) fn apply(daemon: &Daemon, op: LunOp) -> Result<Reply, MgmtError> {
    match op {
        LunOp::New { tid, lun, spec } => new(daemon, tid, lun, &spec),
        LunOp::Delete { tid, lun } => delete(daemon, tid, lun),
        LunOp::Update { tid, lun, params } => {
            let target = find(daemon, tid)?;
            if !target.scsi.has_lun(lun) {
                return Err(MgmtError::new(ErrorCode::NoLun));
            }
            if params.is_empty() {
                return Err(MgmtError::with_message(ErrorCode::InvalidRequest, "no parameter given"));
            }
            // The SCSI core has no way yet to change a live unit's identity or flags.
            Err(MgmtError::with_message(ErrorCode::Unsupported, "changing LUN parameters is not implemented yet"))
        }
        LunOp::Show { tid, lun } => {
            let unit = find(daemon, tid)?.scsi.lun(lun).ok_or_else(|| MgmtError::new(ErrorCode::NoLun))?;
            Ok(Reply::Lun(lun_view(lun, &unit.info())))
        }
    }
}

/// tgt's defaults for a new disk: IET's identity, a SCSI ID and serial number made of tid and LUN.
pub(crate) fn disk_config(tid: u32, lun: u64, block_size: u32) -> LunConfig {
    LunConfig {
        device_type: rtgt_scsi::DeviceType::Disk,
        block_size,
        vendor_id: "IET".to_string(),
        product_id: "VIRTUAL-DISK".to_string(),
        product_rev: "0001".to_string(),
        scsi_id: format!("IET     {tid:04x}{lun:04x}"),
        scsi_sn: format!("beaf{tid}{lun}"),
        removable: false,
        readonly: false,
        online: true,
        thin_provisioning: false,
        descriptor_sense: false,
        write_cache: true,
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
    let unit = LogicalUnit::new(disk_config(tid, lun, block_size), Some(store));
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
