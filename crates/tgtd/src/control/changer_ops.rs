//! Media changer LUNs (`--device-type changer`): building one with its library from tgt's
//! parameters, changing the library at run time (cartridges added and taken out, drives bound),
//! and the typed parameters the library is shown, saved and dumped as.

use super::lun_ops::invalid;
use crate::Daemon;
use rtgt_backstore::{BackstoreKind, BackstoreSpec, OpenFlags};
use rtgt_mgmt::{ChangerParam, LunParam, LunSpec, MgmtError};
use rtgt_scsi::smc::{Cartridge, ElementRange, ElementType, LibraryChange};
use rtgt_scsi::{LogicalUnit, LunConfig};
use std::path::PathBuf;

/// A parameter as the library's change.
pub(crate) fn library_change(p: &ChangerParam) -> LibraryChange {
    let kind = |code: &u8| ElementType::from_code(*code).unwrap_or(ElementType::Storage);
    match p {
        ChangerParam::MediaHome(dir) => LibraryChange::MediaHome(PathBuf::from(dir)),
        ChangerParam::Layout { element_type, start, quantity } => {
            LibraryChange::AddElements(ElementRange { kind: kind(element_type), start: *start, quantity: *quantity })
        }
        ChangerParam::Insert { element_type, address, barcode, volume_tag, source } => LibraryChange::Insert {
            kind: kind(element_type),
            address: *address,
            cartridge: Cartridge { volume_tag: volume_tag.clone(), source: *source, ..Cartridge::new(barcode) },
        },
        ChangerParam::Clear { element_type, address } => {
            LibraryChange::Remove { kind: kind(element_type), address: *address }
        }
        ChangerParam::Drive { address, tid, lun } => {
            LibraryChange::BindDrive { address: *address, tid: *tid, lun: *lun }
        }
        ChangerParam::Sides(n) => LibraryChange::Sides(*n),
    }
}

/// The library's change as the parameter that makes it.
pub(crate) fn changer_param(c: &LibraryChange) -> ChangerParam {
    match c {
        LibraryChange::MediaHome(dir) => ChangerParam::MediaHome(dir.display().to_string()),
        LibraryChange::AddElements(r) => {
            ChangerParam::Layout { element_type: r.kind.code(), start: r.start, quantity: r.quantity }
        }
        LibraryChange::Insert { kind, address, cartridge } => ChangerParam::Insert {
            element_type: kind.code(),
            address: *address,
            barcode: cartridge.barcode.clone(),
            volume_tag: cartridge.volume_tag.clone(),
            source: cartridge.source,
        },
        LibraryChange::Remove { kind, address } => ChangerParam::Clear { element_type: kind.code(), address: *address },
        LibraryChange::BindDrive { address, tid, lun } => {
            ChangerParam::Drive { address: *address, tid: *tid, lun: *lun }
        }
        LibraryChange::Sides(n) => ChangerParam::Sides(*n),
    }
}

/// The changer parameters among `params`, the media directory first (a cartridge is checked
/// against it, whatever order tgt-admin sorted the lines in).
fn changer_params(params: &[LunParam]) -> Vec<&ChangerParam> {
    let all = params.iter().filter_map(|p| match p {
        LunParam::Changer(c) => Some(c),
        _ => None,
    });
    let (homes, rest): (Vec<_>, Vec<_>) = all.partition(|c| matches!(c, ChangerParam::MediaHome(_)));
    homes.into_iter().chain(rest).collect()
}

/// A media changer with its library laid out from `spec`'s parameters. Its backing store is tgt's
/// placeholder file (tgt's examples give a small file of zeros): it must exist and is never read.
pub(crate) fn build_changer(daemon: &Daemon, tid: u32, lun: u64, spec: &LunSpec) -> Result<LogicalUnit, MgmtError> {
    let path = spec
        .backing_store
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| invalid("a changer needs --backing-store (any small file, as in tgt's examples)"))?;
    let placeholder = rtgt_backstore::open(BackstoreSpec {
        kind: BackstoreKind::Rdwr,
        path: Some(PathBuf::from(path)),
        size: None,
        flags: OpenFlags { sync: false, direct: false, readonly: true },
        faults: Vec::new(),
        rbd_options: String::new(),
        block_size: 512,
    })
    .map_err(|e| invalid(format!("changer backing store {path}: {e}")))?;
    let mut config = LunConfig::changer(tid, lun);
    for p in spec.params.iter().filter(|p| !matches!(p, LunParam::Changer(_))) {
        super::lun_ops::configure(&mut config, p)?;
    }
    let unit = LogicalUnit::new(config, Some(placeholder));
    for p in changer_params(&spec.params) {
        unit.change_library(library_change(p)).map_err(|e| invalid(format!("{}: {e}", p.text())))?;
    }
    unit.attach_drives(daemon.targets.drive_lookup());
    // Where the cartridges are is part of the saved configuration: a move saves it as a
    // management request does.
    let me = daemon.weak();
    unit.on_move(std::sync::Arc::new(move || {
        let Some(daemon) = me.upgrade() else { return };
        if let Err(err) = daemon.config.save(&daemon) {
            tracing::error!(%err, "saving the state after a media changer move failed");
        }
    }));
    Ok(unit)
}

/// `--op update` with changer parameters on the changer at `lun`, applied in order (a mistake
/// stops there; what came before it stays done, as each is one administrator's action). A
/// cartridge put in must have its file in the media directory.
pub(crate) fn update(target: &rtgt_scsi::Target, lun: u64, params: &[&ChangerParam]) -> Result<(), MgmtError> {
    let unit = target.lun(lun).ok_or_else(|| MgmtError::new(rtgt_mgmt::ErrorCode::NoLun))?;
    if unit.device_type() != rtgt_scsi::DeviceType::Changer {
        return Err(invalid(format!("element_type and media_home apply to a media changer; LUN {lun} is not one")));
    }
    let mut ordered: Vec<&ChangerParam> =
        params.iter().copied().filter(|c| matches!(c, ChangerParam::MediaHome(_))).collect();
    ordered.extend(params.iter().copied().filter(|c| !matches!(c, ChangerParam::MediaHome(_))));
    for p in ordered {
        if let ChangerParam::Insert { barcode, .. } = p {
            let home = unit.library_changes().unwrap_or_default().into_iter().find_map(|c| match c {
                LibraryChange::MediaHome(dir) => Some(dir),
                _ => None,
            });
            let home = home.ok_or_else(|| invalid(format!("{}: set media_home= first", p.text())))?;
            let file = home.join(barcode);
            if !file.is_file() {
                return Err(invalid(format!("{}: no tape file {}", p.text(), file.display())));
            }
        }
        target.change_library(lun, library_change(p)).map_err(|e| invalid(format!("{}: {e}", p.text())))?;
    }
    Ok(())
}

/// A LUN was created: a changer whose drive element names it may have a cartridge for it.
pub(crate) fn reload_all_changers(daemon: &Daemon) {
    for entry in daemon.targets.all() {
        for (_, unit) in entry.scsi.luns() {
            if unit.device_type() == rtgt_scsi::DeviceType::Changer {
                unit.reload_drives();
            }
        }
    }
}
