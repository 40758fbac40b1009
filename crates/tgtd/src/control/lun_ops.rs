//! `--mode logicalunit`: add a LUN on a backing store, change its flags, remove it, show it.

use super::lun_gateways::{join_gateways, set_shared_sense_format, shared_by_gateways};
use super::show::lun_view;
use super::target_ops::find;
use crate::Daemon;
use rtgt_backstore::{BackstoreError, BackstoreKind, BackstoreSpec, FaultRule, OpenFlags};
use rtgt_iscsi::IscsiTarget;
use rtgt_mgmt::{DeviceType, ErrorCode, LunChange, LunOp, LunParam, LunSpec, MgmtError, Reply, StoreKind};
use rtgt_scsi::{LogicalUnit, LunConfig};
use std::path::PathBuf;
use std::sync::Arc;

/// Flat space addressing (SAM-5 4.7.7) reaches 16383; the SCSI core encodes no more.
const MAX_LUN: u64 = 0x3fff;

pub(crate) fn apply(daemon: &Daemon, op: LunOp) -> Result<Reply, MgmtError> {
    match op {
        LunOp::New { tid, lun, spec } => new(daemon, tid, lun, &spec),
        LunOp::Delete { tid, lun } => delete(daemon, tid, lun),
        LunOp::Update { tid, lun, changes } => update(daemon, tid, lun, &changes),
        LunOp::Show { tid, lun } => {
            let target = find(daemon, tid)?;
            if let Some(unit) = target.scsi.lun(lun) {
                return Ok(Reply::Lun(lun_view(lun, &unit.info())));
            }
            let pending = daemon.config.pending.get(tid, lun).ok_or_else(|| MgmtError::new(ErrorCode::NoLun))?;
            Ok(Reply::Lun(super::show::pending_lun_view(tid, lun, &pending)))
        }
        LunOp::Stats { tid, lun } => crate::metrics::stats_view::reply(&find(daemon, tid)?.scsi, lun),
    }
}

pub(crate) fn invalid(message: impl Into<String>) -> MgmtError {
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
    let unit = Arc::new(build_unit(daemon, tid, lun, spec)?);
    warn_if_shared(daemon, tid, lun, spec);
    attach_saved_state(daemon, tid, lun, &target.scsi.name, spec, &unit);
    join_gateways(daemon, Some(&target), &target.scsi, &unit, lun)?;
    target.scsi.add_lun(lun, unit).map_err(|e| MgmtError::with_message(ErrorCode::LunExists, e))?;
    // A LUN created where a saved one waited for its store (tgt-admin re-adding it) replaces it.
    daemon.config.pending.forget(tid, lun);
    // A changer whose library says this LUN's drive holds a cartridge loads it now.
    super::changer_ops::reload_all_changers(daemon);
    Ok(Reply::Done)
}

/// The unit `spec` describes: a media changer (which finds its drives through the daemon), or a
/// disk, CD/DVD or tape drive. Shared by iSCSI and vhost LUNs.
pub(crate) fn build_unit(daemon: &Daemon, tid: u32, lun: u64, spec: &LunSpec) -> Result<LogicalUnit, MgmtError> {
    match spec.device_type {
        DeviceType::Changer => super::changer_ops::build_changer(daemon, tid, lun, spec),
        _ => build_disk(tid, lun, spec),
    }
}

/// Two LUNs on one file (the same device and inode, whatever the path) see each other's writes
/// behind their caches and reservations: tgt-admin calls such a file "in use". Allowed (a
/// read-only second export can be deliberate), but said in the log.
fn warn_if_shared(daemon: &Daemon, tid: u32, lun: u64, spec: &LunSpec) {
    use std::os::unix::fs::MetadataExt;
    let Some(path) = spec.backing_store.as_deref().filter(|p| !p.is_empty()) else { return };
    let Ok(meta) = std::fs::metadata(path) else { return };
    let id = (meta.dev(), meta.ino());
    for target in daemon.targets.iscsi_targets() {
        for (other_lun, unit) in target.scsi.luns() {
            if (target.tid(), other_lun) == (tid, lun) {
                continue;
            }
            let Some(other_path) = unit.info().backing_store_path else { continue };
            let same = std::fs::metadata(&other_path).is_ok_and(|m| (m.dev(), m.ino()) == id);
            if same {
                tracing::warn!(
                    "LUN {lun} of target {tid}: {path} is already in use by LUN {other_lun} of target {} ({}): \
                     both LUNs write the same data",
                    target.tid(),
                    other_path
                );
            }
        }
    }
}

/// `--op update --params online=1` on a saved LUN whose backing store was missing: open it now
/// with its saved spec. Any other change waits until it is open.
/// Shared by iSCSI and vhost LUNs; the caller tells a vhost guest of the LUN.
pub(crate) fn retry_pending(
    daemon: &Daemon,
    iscsi: Option<&Arc<IscsiTarget>>,
    target: &Arc<rtgt_scsi::Target>,
    lun: u64,
    changes: &[LunChange],
) -> Result<Reply, MgmtError> {
    let tid = target.tid;
    let pending = daemon.config.pending.get(tid, lun).ok_or_else(|| MgmtError::new(ErrorCode::NoLun))?;
    if changes != [LunChange::Set(LunParam::Online(true))] {
        return Err(invalid(format!(
            "LUN {lun} of target {tid} is not open (backing store missing: {}): only online=1 (open it again) applies",
            pending.reason
        )));
    }
    let unit = match build_unit(daemon, tid, lun, &pending.spec) {
        Ok(unit) => Arc::new(unit),
        Err(err) => {
            let reason = crate::state::pending::reason(&err);
            daemon.config.pending.keep(tid, lun, pending.spec, reason.clone());
            return Err(invalid(format!("LUN {lun} of target {tid} still cannot be opened: {reason}")));
        }
    };
    // Asked for online: a LUN saved offline comes back online, as the request says.
    unit.set_online(true);
    warn_if_shared(daemon, tid, lun, &pending.spec);
    attach_saved_state(daemon, tid, lun, &target.name, &pending.spec, &unit);
    if let Err(e) = join_gateways(daemon, iscsi, target, &unit, lun) {
        daemon.config.pending.keep(tid, lun, pending.spec, e.to_string());
        return Err(e);
    }
    target.add_lun(lun, unit).map_err(|e| MgmtError::with_message(ErrorCode::LunExists, e))?;
    daemon.config.pending.forget(tid, lun);
    tracing::info!("LUN {lun} of target {tid}: backing store opened, the LUN is back");
    Ok(Reply::Done)
}

/// Give a new LUN what an earlier run saved for it under `--state-dir`, and a place to save more:
/// APTPL reservations come back (SPC-4 5.12.4); a sanitize the earlier run did not finish is
/// finished now, and a failed one holds the unit in the sanitize failure mode again (SBC-4 4.11).
/// Shared by iSCSI and vhost LUNs; what cannot be restored is logged, the LUN is created anyway.
pub(crate) fn attach_saved_state(
    daemon: &Daemon,
    tid: u32,
    lun: u64,
    target_name: &str,
    spec: &LunSpec,
    unit: &Arc<LogicalUnit>,
) {
    let Some(dir) = &daemon.state_dir else { return };
    let backing = spec.backing_store.as_deref().unwrap_or("");
    let file = crate::pr_state::PrStateFile::new(dir, target_name, lun, backing);
    match unit.persistent_reservations().attach_persistence(Arc::new(file.clone())) {
        Ok(true) => tracing::info!(tid, lun, "persistent reservations restored"),
        Ok(false) => {}
        Err(e) => {
            let path = file.path().display();
            tracing::warn!(tid, lun, %path, error = %e, "persistent reservations not restored")
        }
    }
    // Only a disk sanitizes: a cd/dvd drive has no journal to look for (and no warning to log).
    if unit.device_type() != rtgt_scsi::DeviceType::Disk {
        return;
    }
    let file = crate::sanitize_journal::SanitizeJournalFile::new(dir, target_name, lun, backing);
    match unit.attach_sanitize_journal(Arc::new(file.clone())) {
        Ok(rtgt_scsi::JournalRestore::Nothing) => {}
        Ok(rtgt_scsi::JournalRestore::Resumed) => {
            tracing::warn!(tid, lun, "a sanitize interrupted by the last stop starts again")
        }
        Ok(rtgt_scsi::JournalRestore::FailureMode) => {
            tracing::warn!(tid, lun, "the last sanitize failed: the unit stays in the sanitize failure mode")
        }
        Err(e) => {
            let path = file.path().display();
            tracing::warn!(tid, lun, %path, error = %e, "saved sanitize state not acted on")
        }
    }
}

/// A disk logical unit on the backing store `spec` names, with its parameters applied: shared by
/// iSCSI LUNs and vhost LUNs, so both take the same options and report the same capabilities.
pub(crate) fn build_disk(tid: u32, lun: u64, spec: &LunSpec) -> Result<LogicalUnit, MgmtError> {
    if spec.device_type == DeviceType::Cd {
        return build_cd(tid, lun, spec);
    }
    if spec.device_type == DeviceType::Tape {
        return build_tape(tid, lun, spec);
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
    // Mode pages are checked before the store is opened, so a mistake never touches the file.
    let params = &spec.params;
    let mut scratch = LunConfig::disk(tid, lun);
    for p in params {
        configure(&mut scratch, p)?;
    }
    let store = &spec.store;
    if store.kind == Some(StoreKind::Ssc) {
        return Err(invalid("bstype ssc is a tape's: --device-type tape"));
    }
    let kind = store_kind(store.kind_or_default());
    if kind == BackstoreKind::Rdwr && spec.backing_store.as_deref().is_none_or(str::is_empty) {
        return Err(invalid("a disk needs --backing-store (or --bstype memory or null)"));
    }
    // The fault rules' grammar is the backing store's: checked here, each refusal naming the option.
    let faults = store
        .faults
        .iter()
        .map(|rule| {
            FaultRule::parse(rule).map_err(|e| match e {
                BackstoreError::BadOption(why) => invalid(format!("--bsopts: {why}")),
                other => invalid(format!("--bsopts: {other}")),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let store = rtgt_backstore::open(BackstoreSpec {
        kind,
        path: spec.backing_store.as_ref().filter(|p| !p.is_empty()).map(PathBuf::from),
        size: store.size,
        flags: OpenFlags { sync: store.flags.sync, direct: store.flags.direct, readonly: false },
        faults,
        rbd_options: store.rbd_options.clone(),
        block_size,
    })
    .map_err(|e| invalid(e.to_string()))?;
    if store.has_faults() {
        let bsopts = rtgt_mgmt::request::masked_bsopts(&spec.store.bsopts());
        tracing::warn!(tid, lun, %bsopts, "fault injection is on for this LUN (a testing aid; not saved)");
    }
    // The store knows whether it keeps a volatile cache (WCE) and whether it can be written at all.
    let mut config = LunConfig {
        block_size,
        write_cache: store.volatile_cache(),
        thin_provisioning: store.thin_provisioned(),
        ..LunConfig::disk(tid, lun)
    };
    #[cfg(feature = "rbd")]
    if let Some((rbd, _)) = crate::rbd_gateway::gateway_of(&store) {
        crate::rbd_gateway::identity(&mut config, rbd);
    }
    for p in params {
        configure(&mut config, p)?;
    }
    config.readonly |= store.readonly();
    #[cfg(feature = "rbd")]
    let groups =
        crate::rbd_gateway::gateway_of(&store).map(|(_, g)| crate::rbd_gateway::GatewayPortGroups::new(g.clone()));
    let unit = LogicalUnit::new(config, Some(store));
    #[cfg(feature = "rbd")]
    if let Some(groups) = groups {
        unit.set_port_groups(Arc::new(groups)).map_err(invalid)?;
    }
    Ok(unit)
}

/// A tape drive (`--device-type tape`) with the tape image `--backing-store` names loaded. An
/// empty drive: `--bstype null` without a path, `NONE` (or `NONE:N`) as the path, or tgt's
/// placeholder tape (a cleaning cartridge with a blank barcode, as tgt's VTL examples make); a
/// missing or unreadable file is refused, so that a typo is not an empty drive.
fn build_tape(tid: u32, lun: u64, spec: &LunSpec) -> Result<LogicalUnit, MgmtError> {
    let mut config = LunConfig::tape(tid, lun);
    for p in &spec.params {
        configure(&mut config, p)?;
    }
    if !matches!(spec.store.kind, None | Some(StoreKind::Ssc) | Some(StoreKind::Rdwr) | Some(StoreKind::Null)) {
        return Err(invalid("a tape drive's store is a tape image (bstype ssc) or none (bstype null)"));
    }
    let path = spec.backing_store.as_deref().filter(|p| !p.is_empty() && *p != "NONE" && !p.starts_with("NONE:"));
    let unit = LogicalUnit::new(config, None);
    match (path, spec.store.kind) {
        (None, Some(StoreKind::Null)) => Ok(unit),
        (Some(_), Some(StoreKind::Null)) => {
            Err(invalid("a tape drive with --bstype null is empty: no --backing-store"))
        }
        (None, _) if spec.backing_store.as_deref().is_some_and(|p| p.starts_with("NONE")) => Ok(unit),
        (None, _) => Err(invalid("a tape drive needs --backing-store (a tape image, or NONE for an empty drive)")),
        (Some(path), _) => {
            unit.load_tape(std::path::Path::new(path)).map_err(|e| invalid(format!("tape {path}: {e}")))?;
            Ok(unit)
        }
    }
}

/// A CD/DVD drive (`--device-type cd`) with the disc image `--backing-store` names in its tray.
fn build_cd(tid: u32, lun: u64, spec: &LunSpec) -> Result<LogicalUnit, MgmtError> {
    if spec.block_size.is_some_and(|b| b != 2048) {
        return Err(invalid("a cd/dvd has 2048-byte blocks"));
    }
    let mut config = LunConfig::cd(tid, lun);
    for p in &spec.params {
        configure(&mut config, p)?;
    }
    let path = spec.backing_store.as_deref().filter(|p| !p.is_empty());
    // `--bstype null` asks for an empty tray on purpose (a restart restores an emptied drive so);
    // otherwise a disc is required, so that a forgotten --backing-store is not an empty drive.
    if spec.store.kind == Some(StoreKind::Null) {
        return match path {
            None => Ok(LogicalUnit::new(config, None)),
            Some(_) => Err(invalid("a cd/dvd with --bstype null has an empty tray: no --backing-store")),
        };
    }
    let path = path.ok_or_else(|| invalid("a cd/dvd needs --backing-store (a disc image) or --bstype null"))?;
    let disc = open_disc(path)?;
    Ok(LogicalUnit::new(config, Some(disc)))
}

/// A disc image, opened read-only (a drive never writes it): a missing or empty file is refused,
/// so that a typo does not become an empty tray.
fn open_disc(path: &str) -> Result<rtgt_backstore::Backstore, MgmtError> {
    let store = rtgt_backstore::open(BackstoreSpec {
        kind: BackstoreKind::Rdwr,
        path: Some(PathBuf::from(path)),
        size: None,
        flags: OpenFlags { sync: false, direct: false, readonly: true },
        faults: Vec::new(),
        rbd_options: String::new(),
        block_size: 2048,
    })
    .map_err(|e| invalid(format!("disc image {path}: {e}")))?;
    if rtgt_backstore::BlockStore::size(&store) == 0 {
        return Err(invalid(format!("disc image {path} is empty")));
    }
    Ok(store)
}

/// `media=` (and `force=1`) on a cd/dvd LUN of either LLD. Refused while an initiator prevents
/// removal unless forced, saying how to force it; forced, the initiators that held the disc are
/// told as for any change (UNIT ATTENTION, new-media event) and their prevention stays, as a
/// drive's lock stays when an operator uses its emergency eject.
pub(crate) fn change_disc(
    target: &rtgt_scsi::Target,
    lun: u64,
    disc: Option<rtgt_backstore::Backstore>,
    force: bool,
) -> Result<(), MgmtError> {
    target.change_medium(lun, disc, force).map_err(|e| match e {
        rtgt_scsi::MediumChangeError::RemovalPrevented(_) => {
            invalid(format!("{e}: the disc stays in (add force=1 to --params to change it anyway)"))
        }
        other => invalid(other.to_string()),
    })
}

/// The disc image `media=PATH` names (None for `media=none`), for callers of `change_disc`.
pub(crate) fn open_media(path: Option<&str>) -> Result<Option<rtgt_backstore::Backstore>, MgmtError> {
    path.map(open_disc).transpose()
}

/// The engine a checked `--bstype` names (the wire's names are the backing store crate's).
fn store_kind(kind: StoreKind) -> BackstoreKind {
    match kind {
        StoreKind::Rdwr => BackstoreKind::Rdwr,
        StoreKind::Aio => BackstoreKind::Aio,
        StoreKind::Memory => BackstoreKind::Memory,
        StoreKind::Null => BackstoreKind::Null,
        StoreKind::Rbd => BackstoreKind::Rbd,
        // Refused for disks before this is asked.
        StoreKind::Ssc => BackstoreKind::Rdwr,
    }
}

fn delete(daemon: &Daemon, tid: u32, lun: u64) -> Result<Reply, MgmtError> {
    // tgt answers "can't find the logical unit" for a missing target too.
    let target = daemon.targets.iscsi(tid).ok_or_else(|| MgmtError::new(ErrorCode::NoLun))?;
    let Some(unit) = target.scsi.lun(lun) else {
        // A saved LUN waiting for its store is deleted from the configuration like any other.
        return match daemon.config.pending.forget(tid, lun) {
            true => Ok(Reply::Done),
            false => Err(MgmtError::new(ErrorCode::NoLun)),
        };
    };
    if unit.info().config.device_type == rtgt_scsi::DeviceType::Controller {
        // The automatic LUN 0 is not the administrator's to remove; it is there, so tgt's
        // "invalid request" rather than "can't find".
        return Err(MgmtError::with_message(
            ErrorCode::InvalidRequest,
            "LUN 0 is the target's controller; it goes with the target",
        ));
    }
    target.scsi.remove_lun(lun).map_err(|e| MgmtError::with_message(ErrorCode::NoLun, e))?;
    Ok(Reply::Done)
}

/// Apply one of tgt's LUN parameters to a configuration. Only a mode page can still be refused
/// here: its bytes are checked against the pages the SCSI core knows.
pub(crate) fn configure(config: &mut LunConfig, p: &LunParam) -> Result<(), MgmtError> {
    match p {
        LunParam::ThinProvisioning(on) => config.thin_provisioning = *on,
        LunParam::Removable(on) => config.removable = *on,
        LunParam::Readonly(on) => config.readonly = *on,
        LunParam::Online(on) => config.online = *on,
        LunParam::DescriptorSense(on) => config.descriptor_sense = *on,
        LunParam::VendorId(s) => config.vendor_id = s.clone(),
        LunParam::ProductId(s) => config.product_id = s.clone(),
        LunParam::ProductRev(s) => config.product_rev = s.clone(),
        LunParam::ScsiId(s) => config.scsi_id = s.clone(),
        LunParam::ScsiSn(s) => config.scsi_sn = s.clone(),
        LunParam::Changer(c) => {
            return Err(invalid(format!(
                "{}: element_type= and media_home= apply to a media changer (--device-type changer)",
                c.text()
            )))
        }
        LunParam::ModePage(text) => {
            let page = rtgt_scsi::ModePageSpec::parse(text).map_err(|e| invalid(e.to_string()))?;
            // A disk's caching page carries the write cache setting (WCE, SBC-4 6.5.5: byte 2,
            // bit 2): tgt-admin's `write-cache off` is this page with WCE clear.
            if (config.device_type, page.page, page.subpage) == (rtgt_scsi::DeviceType::Disk, 0x08, 0) {
                if let Some(flags) = page.data.first() {
                    config.write_cache = flags & 0x04 != 0;
                }
            }
            config.mode_pages.retain(|m| (m.page, m.subpage) != (page.page, page.subpage));
            config.mode_pages.push(page);
        }
    }
    Ok(())
}

/// `alua_owner=GROUP`: move a multi-gateway RBD LUN's ownership to that gateway (blocking until
/// it owns the unit, as this gateway sees it).
fn move_ownership(unit: &LogicalUnit, group: u16) -> Result<(), MgmtError> {
    #[cfg(feature = "rbd")]
    if let Some((_, status)) = unit.store().and_then(crate::rbd_gateway::gateway_of) {
        return status
            .move_ownership(group, crate::rbd_gateway::OWNERSHIP_MOVE_TIMEOUT)
            .map_err(|e| invalid(format!("alua_owner={group}: {e}")));
    }
    let _ = unit;
    Err(invalid(format!("alua_owner={group}: only an RBD LUN served by several gateways (bsopts gateway=) has owners")))
}

/// A LUN parameter rtgt can change on a live unit.
enum Change {
    Online(bool),
    Readonly(bool),
}

/// Check every change first (a mode page against the pages the core knows), then apply them all:
/// a mistake changes nothing.
fn update(daemon: &Daemon, tid: u32, lun: u64, requested: &[LunChange]) -> Result<Reply, MgmtError> {
    let target = find(daemon, tid)?;
    let Some(unit) = target.scsi.lun(lun) else {
        return retry_pending(daemon, Some(&target), &target.scsi, lun, requested);
    };
    if requested.is_empty() {
        return Err(invalid("no parameter given"));
    }
    // A changer's library first: each group is one administrator's action on it.
    let library: Vec<&rtgt_mgmt::ChangerParam> = requested
        .iter()
        .filter_map(|c| match c {
            LunChange::Set(LunParam::Changer(p)) => Some(p),
            _ => None,
        })
        .collect();
    if !library.is_empty() {
        super::changer_ops::update(&target.scsi, lun, &library)?;
    }
    if let Some(group) = requested.iter().find_map(|c| match c {
        LunChange::AluaOwner(g) => Some(*g),
        _ => None,
    }) {
        move_ownership(&unit, group)?;
    }
    let requested: Vec<LunChange> = requested
        .iter()
        .filter(|c| !matches!(c, LunChange::Set(LunParam::Changer(_)) | LunChange::AluaOwner(_)))
        .cloned()
        .collect();
    if requested.is_empty() {
        return Ok(Reply::Done);
    }
    let requested = requested.as_slice();
    let mut changes = Vec::with_capacity(requested.len());
    // Everything but online/readonly is checked on a copy of the configuration, then swapped in whole.
    let mut config = unit.info().config;
    let mut reconfigured = false;
    let mut reload_capacity = false;
    let mut media = None;
    let mut force = false;
    let shared = shared_by_gateways(&unit);
    let mut shared_sense_format = None;
    for change in requested {
        changes.push(match change {
            // A disc change: the image is opened (and refused) before anything else changes.
            LunChange::Media(path) => {
                media = Some(path.as_deref().map(open_disc).transpose()?);
                continue;
            }
            LunChange::ForceMedia(on) => {
                force = *on;
                continue;
            }
            // Done above, before the rest.
            LunChange::AluaOwner(_) => continue,
            // Online resize: re-read the store's size; every nexus is told CAPACITY DATA HAS CHANGED.
            LunChange::ReloadCapacity => {
                reload_capacity = true;
                continue;
            }
            LunChange::Set(LunParam::Online(on)) => Change::Online(*on),
            LunChange::Set(LunParam::Readonly(ro)) => Change::Readonly(*ro),
            LunChange::Set(LunParam::DescriptorSense(on)) if shared => {
                shared_sense_format = Some(*on);
                continue;
            }
            LunChange::Set(other) => {
                configure(&mut config, other)?;
                reconfigured = true;
                continue;
            }
        });
    }
    // The disc first: it is the one change that can still be refused (an initiator prevents
    // removal), and a refused request must change nothing.
    if let Some(disc) = media {
        change_disc(&target.scsi, lun, disc, force)?;
    } else if force {
        return Err(invalid("force=1 applies to a disc change: give it with media="));
    }
    // The other change that can still fail (the cluster, the owner): before the rest too.
    if let Some(on) = shared_sense_format {
        set_shared_sense_format(&target.scsi, lun, &unit, on)?;
    }
    // Initiators learn of what changed on their next command (INQUIRY DATA HAS CHANGED, MODE
    // PARAMETERS CHANGED): a Linux initiator re-reads its identity, multipath its WWID.
    if reconfigured {
        target.scsi.reconfigure_lun(lun, config).map_err(invalid)?;
    }
    for change in changes {
        match change {
            Change::Online(on) => unit.set_online(on),
            Change::Readonly(ro) => {
                target.scsi.set_lun_readonly(lun, ro).map_err(invalid)?;
            }
        }
    }
    if reload_capacity {
        target.scsi.reload_lun_size(lun).map_err(invalid)?;
    }
    Ok(Reply::Done)
}

#[cfg(test)]
mod param_tests;
