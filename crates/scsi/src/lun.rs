//! A logical unit: its device type, identity, parameters, mutable state and backing store.
//!
//! What the command path reads on every command (online, write protection, sense format, the
//! reservation holder) is kept in atomics, so commands running concurrently share no lock.

use crate::sense::{Asc, Sense, SenseFormat, SenseKey};
use parking_lot::{Mutex, MutexGuard, RwLock};
use rtgt_backstore::{Backstore, BackstoreError, BlockStore};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::Poll;

pub use crate::device_type::DeviceType;
pub use crate::lun_config::{LunConfig, LunInfo};

pub use crate::spc::mode_state::ModeParams;

#[derive(Debug)]
pub struct LogicalUnit {
    /// Fixed for the unit's life (the block size and device type are copied out of it below);
    /// identity and feature flags can be replaced whole by `reconfigure`.
    config: RwLock<Arc<LunConfig>>,
    device_type: DeviceType,
    block_size: u32,
    store: Option<Backstore>,
    online: AtomicBool,
    readonly: AtomicBool,
    /// The configuration's thin_provisioning, which every command's opcode lookup asks: a copy here
    /// spares each command the configuration's lock and reference count, shared by every core.
    thin: AtomicBool,
    wce: AtomicBool,
    d_sense: AtomicBool,
    swp: AtomicBool,
    /// The RESERVE(6/10) reservation (shared with the jobs that clear it from a store).
    scsi2: Arc<crate::spc::reserve_state::Scsi2Reservation>,
    /// Persistent reservations (SPC-4 5.12); they survive nexus loss and resets.
    persistent_reservations: crate::spc::persistent_reservation::PersistentReservations,
    mode_select: Mutex<()>,
    /// Where MODE SELECT's changes are stored when several servers serve the unit.
    shared_mode: Mutex<Option<Arc<dyn crate::SharedModePages>>>,
    /// What only the unit's device type's own commands use.
    type_state: TypeState,
    /// Set once the unit is deleted from its target; `removal` wakes the commands still running.
    removed: AtomicBool,
    removal: tokio::sync::Notify,
    /// What its commands did, for /metrics and `tgtadm --op stats`.
    stats: crate::stats::LunStats,
    /// Asymmetric access: set once by the daemon when several gateways serve the unit.
    port_groups: std::sync::OnceLock<Arc<dyn crate::alua::PortGroups>>,
}

/// The state of one device type, beside what every unit has.
#[derive(Debug)]
pub(crate) enum TypeState {
    Disk(crate::sbc::state::DiskState),
    /// The controller keeps nothing of its own.
    Controller,
    /// The drive's tray, disc, prevention and media event.
    Cd(crate::mmc::state::CdState),
    /// The library's inventory, robot, drives and prevention.
    Changer(crate::smc::state::ChangerState),
    /// The tape drive's tape, position, modes and prevention.
    Tape(crate::ssc::state::TapeState),
}

impl TypeState {
    /// A new unit's type-specific state.
    fn new(device: DeviceType) -> Self {
        match device {
            DeviceType::Disk => TypeState::Disk(Default::default()),
            DeviceType::Controller => TypeState::Controller,
            DeviceType::Cd => TypeState::Cd(Default::default()),
            DeviceType::Changer => TypeState::Changer(Default::default()),
            DeviceType::Tape => TypeState::Tape(Default::default()),
        }
    }
}

/// Largest transfer one command may ask for, in bytes (MAXIMUM TRANSFER LENGTH in VPD 0xB0). No
/// command takes more Data-Out than this (COMPARE AND WRITE's two halves stay within it too), so
/// transports may refuse larger ones before buffering anything.
pub const MAX_TRANSFER_BYTES: u32 = 64 << 20;

impl LogicalUnit {
    /// A block size of 0 (or not a power of two) for a disk is replaced by 512 rather than trusted.
    /// A CD/DVD drive's `store` is the disc in its tray (None: empty), which media changes replace
    /// (`Target::change_medium`); its blocks are always 2048 bytes.
    pub fn new(mut config: LunConfig, store: Option<Backstore>) -> Self {
        let mut store = store;
        let mut type_state = TypeState::new(config.device_type);
        if let TypeState::Cd(cd) = &mut type_state {
            config.block_size = crate::mmc::state::BLOCK_SIZE;
            config.readonly = true;
            cd.insert(store.take());
        }
        if config.device_type == DeviceType::Changer {
            drop_derived_pages(&mut config);
        }
        if let TypeState::Tape(tape) = &type_state {
            // The tape is loaded through `LogicalUnit::load_tape`, not as a block store.
            config.block_size = 1;
            store = None;
            tape.set_buffered(config.write_cache);
        }
        if config.device_type == DeviceType::Disk && !config.block_size.is_power_of_two() {
            config.block_size = 512;
        }
        if config.block_size == 0 {
            config.block_size = 1;
        }
        LogicalUnit {
            online: AtomicBool::new(config.online),
            readonly: AtomicBool::new(config.readonly),
            thin: AtomicBool::new(config.thin_provisioning),
            wce: AtomicBool::new(config.write_cache),
            d_sense: AtomicBool::new(config.descriptor_sense),
            swp: AtomicBool::new(false),
            scsi2: Default::default(),
            persistent_reservations: Default::default(),
            mode_select: Mutex::new(()),
            shared_mode: Mutex::new(None),
            type_state,
            removed: AtomicBool::new(false),
            removal: tokio::sync::Notify::new(),
            stats: Default::default(),
            port_groups: std::sync::OnceLock::new(),
            device_type: config.device_type,
            block_size: config.block_size,
            config: RwLock::new(Arc::new(config)),
            store,
        }
    }

    pub fn info(&self) -> LunInfo {
        let mut config = LunConfig::clone(&self.config());
        let mode = self.mode_params();
        config.online = self.online.load(Ordering::Relaxed);
        config.readonly = self.readonly.load(Ordering::Relaxed);
        config.write_cache = mode.wce;
        config.descriptor_sense = mode.d_sense;
        let (kind, path, bsoflags) = match &self.store {
            Some(store) => {
                let flags = match store.open_flags() {
                    Some(flags) => {
                        let mut names = Vec::new();
                        if flags.sync {
                            names.push("sync");
                        }
                        if flags.direct {
                            names.push("direct");
                        }
                        names.join(":")
                    }
                    None => String::new(),
                };
                (store.kind().name().to_string(), store.path().map(|p| p.display().to_string()), flags)
            }
            None => ("null".to_string(), None, String::new()),
        };
        let (kind, path) = match self.cd() {
            // The disc in the tray, or an empty tray shown as tgt shows a LUN without a store.
            Some(cd) => match cd.disc() {
                Some(disc) => (disc.kind().name().to_string(), disc.path().map(|p| p.display().to_string())),
                None => ("null".to_string(), None),
            },
            None => (kind, path),
        };
        // The changer's file is tgt's placeholder (its "smc" backing store), never read.
        let kind = if self.device_type == DeviceType::Changer { "smc".to_string() } else { kind };
        let (kind, path) = match self.tape() {
            // An empty drive is shown as tgt shows a LUN without a store, and so saved and dumped.
            Some(tape) => match tape.shown_path() {
                Some(path) => ("ssc".to_string(), Some(path.display().to_string())),
                None => ("null".to_string(), None),
            },
            None => (kind, path),
        };
        LunInfo {
            config,
            size: self.size_bytes(),
            backing_store_type: kind,
            backing_store_path: path,
            bsoflags,
            prevent_removal: self.disk().is_ok_and(|d| d.removal_prevented())
                || self.cd().is_some_and(|c| c.removal_prevented())
                || self.changer().is_some_and(|c| c.removal_prevented())
                || self.tape().is_some_and(|t| t.removal_prevented()),
            swp: mode.swp,
            faults: self.store.as_ref().map(|s| s.fault_rules()).unwrap_or_default(),
            library: self.library_changes().unwrap_or_default(),
        }
    }

    /// Make every completed write durable (what SYNCHRONIZE CACHE does for the whole unit); for a
    /// clean shutdown. A unit without a store has nothing to flush.
    pub async fn flush(self: &Arc<Self>) -> Result<(), BackstoreError> {
        if let Some(tape) = self.tape() {
            return tape.flush(self).await.map_err(|sense| {
                BackstoreError::io(rtgt_backstore::ErrorKind::Flush, 0, std::io::Error::other(format!("{sense:?}")))
            });
        }
        match &self.store {
            Some(store) => store.flush().await,
            None => Ok(()),
        }
    }

    /// Serve the unit with asymmetric access (SPC-4 5.15): INQUIRY reports implicit ALUA, REPORT
    /// TARGET PORT GROUPS answers from `groups`, and commands outside what the local group's
    /// state admits are refused. Set before the unit is added to its target; a second call is
    /// refused (the groups of a unit in use do not change identity).
    pub fn set_port_groups(&self, groups: Arc<dyn crate::alua::PortGroups>) -> Result<(), String> {
        self.port_groups.set(groups).map_err(|_| "the unit already has its target port groups".to_string())
    }

    /// The unit's asymmetric access, if it has it.
    pub fn port_groups(&self) -> Option<&Arc<dyn crate::alua::PortGroups>> {
        self.port_groups.get()
    }

    /// The RELATIVE TARGET PORT IDENTIFIER of the port commands arrive through: 1 (a target's
    /// one port) unless port groups say otherwise.
    pub(crate) fn relative_target_port(&self) -> u16 {
        self.port_groups().map_or(1, |g| g.relative_port())
    }

    /// The configuration the unit was created with.
    pub fn config(&self) -> Arc<LunConfig> {
        self.config.read().clone()
    }

    pub fn device_type(&self) -> DeviceType {
        self.device_type
    }

    /// The unit's command statistics.
    pub fn stats(&self) -> &crate::stats::LunStats {
        &self.stats
    }

    pub fn store(&self) -> Option<&Backstore> {
        self.store.as_ref()
    }

    /// The logical block length: for a tape drive, its fixed block length (1 in variable mode),
    /// which MODE SELECT changes; the length of a fixed-mode WRITE's data-out follows it.
    pub fn block_size(&self) -> u32 {
        if let Some(tape) = self.tape() {
            return tape.block_len().max(1);
        }
        self.block_size
    }

    /// Capacity in bytes (0 without a store; a CD/DVD drive's is its disc's).
    pub fn size_bytes(&self) -> u64 {
        if let Some(cd) = self.cd() {
            return cd.disc().map_or(0, |d| d.size());
        }
        self.store.as_ref().map_or(0, |s| s.size())
    }

    /// Capacity in whole logical blocks.
    pub fn capacity_blocks(&self) -> u64 {
        self.size_bytes() / u64::from(self.block_size)
    }

    /// Whether the unit is thin provisioned (offers UNMAP and friends), as configured now.
    pub(crate) fn thin_provisioning(&self) -> bool {
        self.thin.load(Ordering::Relaxed)
    }

    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed)
    }

    /// Take the medium offline (NOT READY, MEDIUM NOT PRESENT) or bring it back (tgt's
    /// `online=0/1`, or START STOP UNIT on removable units).
    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::Relaxed);
    }

    /// Replace the administrator's parameters on a live unit (`--op update --params`). The block
    /// size and device type cannot change; online, readonly, the sense format and the write cache
    /// (WCE) take the new values. The sense format of a unit several servers serve is not this
    /// server's alone: it stays (and so does WCE), and changes only as the unit's other current
    /// mode parameters do (`Target::change_mode_params`). Returns what initiators would read
    /// differently; nobody is told here (`Target::reconfigure_lun` tells them).
    pub fn reconfigure(&self, mut config: LunConfig) -> crate::Reconfigured {
        let (before, mode_before, wp_before) = (self.config(), self.mode_params(), self.write_protected());
        config.device_type = self.device_type;
        config.block_size = self.block_size;
        if config.device_type == DeviceType::Changer {
            drop_derived_pages(&mut config);
        }
        self.online.store(config.online, Ordering::Relaxed);
        self.readonly.store(config.readonly, Ordering::Relaxed);
        if self.shared_mode.lock().is_none() {
            self.d_sense.store(config.descriptor_sense, Ordering::Relaxed);
            // The administrator's write cache setting (a caching mode page) applies now, as it
            // would to a unit made with it.
            self.wce.store(config.write_cache, Ordering::Relaxed);
        }
        self.thin.store(config.thin_provisioning, Ordering::Relaxed);
        let mut changed = crate::Reconfigured::between(&before, &config);
        changed.mode_parameters |= self.mode_params() != mode_before || self.write_protected() != wp_before;
        *self.config.write() = Arc::new(config);
        changed
    }

    /// Change the administrator's read-only setting (tgt's `readonly=0/1`).
    pub fn set_readonly(&self, readonly: bool) {
        self.readonly.store(readonly, Ordering::Relaxed);
    }

    /// Read-only by configuration or software write protected (SWP).
    pub fn write_protected(&self) -> bool {
        self.readonly.load(Ordering::Relaxed) || self.swp.load(Ordering::Relaxed)
    }

    pub fn sense_format(&self) -> SenseFormat {
        if self.d_sense.load(Ordering::Relaxed) {
            SenseFormat::Descriptor
        } else {
            SenseFormat::Fixed
        }
    }

    pub(crate) fn peripheral_byte(&self) -> u8 {
        // PERIPHERAL QUALIFIER 000b: connected.
        self.device_type.peripheral_type()
    }

    /// LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT: 0, one logical block per physical block. The
    /// stores do not know the geometry underneath; claiming larger physical blocks would only make
    /// initiators align to a guess.
    pub(crate) fn lbppbe(&self) -> u8 {
        0
    }

    pub(crate) fn max_transfer_blocks(&self) -> u32 {
        (MAX_TRANSFER_BYTES / self.block_size).max(1)
    }

    /// The disk's own state; HARDWARE ERROR, INTERNAL TARGET FAILURE on a unit of another type
    /// (a disk command row in another type's table would be a table mistake).
    pub(crate) fn disk(&self) -> Result<&crate::sbc::state::DiskState, Sense> {
        match &self.type_state {
            TypeState::Disk(disk) => Ok(disk),
            _ => Err(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE)),
        }
    }

    /// The tape drive's own state (None on a unit of another type).
    pub(crate) fn tape(&self) -> Option<&crate::ssc::state::TapeState> {
        match &self.type_state {
            TypeState::Tape(tape) => Some(tape),
            _ => None,
        }
    }

    /// The CD/DVD drive's own state (None on a unit of another type).
    pub(crate) fn cd(&self) -> Option<&crate::mmc::state::CdState> {
        match &self.type_state {
            TypeState::Cd(cd) => Some(cd),
            _ => None,
        }
    }

    /// The media changer's own state (None on a unit of another type).
    pub(crate) fn changer(&self) -> Option<&crate::smc::state::ChangerState> {
        match &self.type_state {
            TypeState::Changer(changer) => Some(changer),
            _ => None,
        }
    }

    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Acquire)
    }

    /// The store for a media-access command; NOT READY when the unit is offline or has none.
    pub(crate) fn medium(&self) -> Result<&Backstore, Sense> {
        match &self.store {
            Some(store) if self.is_online() => Ok(store),
            _ => Err(Sense::new(SenseKey::NotReady, Asc::MEDIUM_NOT_PRESENT)),
        }
    }

    /// The unit was deleted from its target: commands still running on it end now (see
    /// `unless_removed`), whatever they wait for (a slow store, a range lock).
    pub(crate) fn mark_removed(&self) {
        self.removed.store(true, Ordering::Release);
        self.removal.notify_waiters();
    }

    /// Run `command` to its end, or None if the unit is deleted first (the command's future is
    /// dropped where it waits). The command is polled first, so one that completes at once (most
    /// do) costs nothing more than an unpolled `Notified`.
    pub(crate) async fn unless_removed<F: Future>(&self, command: F) -> Option<F::Output> {
        // Created before the first poll of `command`: notify_waiters reaches it from then on.
        let mut removal = pin!(self.removal.notified());
        let mut command = pin!(command);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = command.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            if self.removed.load(Ordering::Acquire) || removal.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            Poll::Pending
        })
        .await
    }

    /// The current values of the changeable mode parameters.
    pub fn mode_params(&self) -> ModeParams {
        ModeParams {
            wce: self.wce.load(Ordering::Relaxed),
            d_sense: self.d_sense.load(Ordering::Relaxed),
            swp: self.swp.load(Ordering::Relaxed),
        }
    }

    /// The values the unit's configuration gives its changeable mode parameters (MODE SENSE's
    /// default values), which a power on brings back.
    pub fn default_mode_params(&self) -> ModeParams {
        let config = self.config();
        ModeParams { wce: config.write_cache, d_sense: config.descriptor_sense, swp: false }
    }

    pub(crate) fn set_mode_params(&self, p: ModeParams) {
        self.wce.store(p.wce, Ordering::Relaxed);
        self.d_sense.store(p.d_sense, Ordering::Relaxed);
        self.swp.store(p.swp, Ordering::Relaxed);
    }

    /// The NAA locally assigned designator (NAA 3, SPC-4 7.8.6.6.4) of the Device Identification
    /// page: a stable 60-bit FNV-1a hash of the SCSI ID.
    pub(crate) fn naa(&self) -> u64 {
        let id = &self.config().scsi_id;
        let hash =
            id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
        (hash & 0x0fff_ffff_ffff_ffff) | (0x3 << 60)
    }

    /// Whether the Device Identification page carries this designator: NAA (type 3) or T10
    /// vendor ID (type 1, the SCSI ID).
    pub(crate) fn has_designator(&self, designator_type: u8, designator: &[u8]) -> bool {
        match designator_type {
            3 => designator == self.naa().to_be_bytes(),
            1 => designator == self.config().scsi_id.as_bytes(),
            _ => false,
        }
    }

    pub(crate) fn mode_select_lock(&self) -> MutexGuard<'_, ()> {
        self.mode_select.lock()
    }

    /// Store MODE SELECT's changes in `shared` before they answer GOOD, from now on (several
    /// servers of one unit).
    pub fn attach_shared_mode_pages(&self, shared: Arc<dyn crate::SharedModePages>) {
        *self.shared_mode.lock() = Some(shared);
    }

    pub(crate) fn shared_mode_pages(&self) -> Option<Arc<dyn crate::SharedModePages>> {
        self.shared_mode.lock().clone()
    }

    /// Take the values the unit's servers store now (`SharedModePages::catch_up`), after another
    /// server changed them at this one's request; nothing without a store. Blocks.
    pub fn catch_up_mode_params(&self) -> std::io::Result<()> {
        match self.shared_mode_pages() {
            Some(shared) => shared.catch_up(),
            None => Ok(()),
        }
    }

    /// Take mode parameter values another server of the unit stored, telling no nexus (the
    /// caller decides who learns of them); returns whether they differ from the values here.
    /// Not under the MODE SELECT lock: a notification thread that waits for it while this
    /// server's MODE SELECT waits for that thread's acknowledgement would stall both.
    pub fn install_mode_params(&self, values: ModeParams) -> bool {
        let before = self.mode_params();
        self.set_mode_params(values);
        before != values
    }

    /// The unit's persistent reservations (to attach APTPL persistence, or to inspect them).
    pub fn persistent_reservations(&self) -> &crate::spc::persistent_reservation::PersistentReservations {
        &self.persistent_reservations
    }

    /// The id of the nexus holding the RESERVE(6/10) reservation (`u64::MAX`: held through
    /// another server of the unit, matching no nexus here).
    pub(crate) fn reservation_holder(&self) -> Option<u64> {
        self.scsi2.nexus()
    }

    pub(crate) fn scsi2_reservation(&self) -> &Arc<crate::spc::reserve_state::Scsi2Reservation> {
        &self.scsi2
    }

    /// Who holds the RESERVE(6/10) reservation, as every server of the unit names the nexus.
    pub fn reserve_holder(&self) -> Option<crate::ReserveHolder> {
        self.scsi2.holder()
    }

    /// Keep the RESERVE(6/10) holder in `shared` from now on (several servers of one unit).
    pub fn attach_shared_reserve(&self, shared: Arc<dyn crate::SharedReserve>) {
        self.scsi2.attach_shared(shared);
    }

    /// Install a RESERVE(6/10) reservation stored by another server of the unit: `holder`, whose
    /// commands arrive here as those of the nexus with id `nexus` (None: through no nexus here,
    /// so every nexus here conflicts); `None` for no reservation. A holder this server is clearing
    /// from the store (a stale copy of it: a catch-up, or the store read at a takeover) is not
    /// installed but cleared again; returns whether `held` was installed.
    pub fn install_reservation(&self, held: Option<(crate::ReserveHolder, Option<u64>)>) -> bool {
        self.scsi2.install(held)
    }

    /// The nexus that `holder` names is gone, found so by the server of the unit that nexus came
    /// through (SPC-2 5.5.1): its reservation is released here and cleared from the store.
    pub fn release_lost_reservation(&self, holder: crate::ReserveHolder) {
        self.scsi2.release_holder(&holder);
        self.scsi2.release_shared_later(holder);
    }

    /// The nexus is gone: its reservation and prevention go with it (SPC-2 5.5.1, SBC-3 5.13).
    pub(crate) fn forget_nexus(&self, nexus_id: u64) {
        if let Some(holder) = self.scsi2.release(nexus_id) {
            self.scsi2.release_shared_later(holder);
        }
        match &self.type_state {
            TypeState::Disk(disk) => disk.forget_nexus(nexus_id),
            TypeState::Cd(cd) => cd.set_prevent(nexus_id, false),
            TypeState::Changer(changer) => changer.set_prevent(nexus_id, false),
            TypeState::Tape(tape) => tape.forget_nexus(nexus_id),
            TypeState::Controller => {}
        }
    }

    /// Logical unit reset (SAM-5 6.6): reservation, medium removal prevention and a tape drive's
    /// pending deferred errors are cleared.
    pub(crate) fn reset(&self) {
        if let Some(holder) = self.scsi2.clear() {
            self.scsi2.release_shared_later(holder);
        }
        match &self.type_state {
            TypeState::Disk(disk) => disk.reset(),
            TypeState::Cd(cd) => cd.reset(),
            TypeState::Changer(changer) => changer.reset(),
            TypeState::Tape(tape) => tape.reset(),
            TypeState::Controller => {}
        }
    }
}

/// A changer's element address assignment and transport geometry pages follow its layout; an
/// administrator's copies of them are dropped (see `smc::mode_pages`).
fn drop_derived_pages(config: &mut LunConfig) {
    config.mode_pages.retain(|m| m.subpage != 0 || !crate::smc::state::DERIVED.contains(&m.page));
}

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    #[test]
    fn only_the_disk_carries_block_state() {
        let disk = TestLun::disk(1 << 20);
        assert!(disk.lu.disk().is_ok());
        let controller = TestLun::controller();
        let err = controller.lu.disk().unwrap_err();
        assert_eq!((err.key, err.asc), (crate::SenseKey::HardwareError, crate::Asc::INTERNAL_TARGET_FAILURE));
    }
}
