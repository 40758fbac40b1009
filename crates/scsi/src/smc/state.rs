//! What a media changer keeps beside the state every logical unit has: the library's inventory
//! behind a lock, the robot (one move at a time), the way to its drives (given by the daemon,
//! which knows every target) and the nexuses preventing medium removal.
//!
//! A move holds the robot for its whole length, drives' loads and unloads included (awaited: a
//! drive busy with a long command keeps the move waiting, not a thread), and takes the
//! inventory's lock only to read and to record; a drive is never called with the inventory locked,
//! so a drive that looks back at the library (or a resolver that locks the daemon's tables) cannot
//! deadlock with READ ELEMENT STATUS.

use super::library::{Library, LibraryChange, LibraryError};
use crate::medium_drive::{DriveIdentity, DriveResolver, MediumDrive};
use crate::removal_prevention::RemovalPrevention;
use parking_lot::{Mutex, MutexGuard, RwLock};
use std::sync::Arc;

pub(crate) const ELEMENT_ADDRESS_ASSIGNMENT: u8 = 0x1d;
pub(crate) const TRANSPORT_GEOMETRY: u8 = 0x1e;
/// Mode pages that follow the layout whatever an administrator sets (`mode_pages` builds them;
/// the unit drops an administrator's copy at creation).
pub(crate) const DERIVED: [u8; 2] = [ELEMENT_ADDRESS_ASSIGNMENT, TRANSPORT_GEOMETRY];

#[derive(Debug, Default)]
pub(crate) struct ChangerState {
    library: Mutex<Library>,
    robot: tokio::sync::Mutex<()>,
    drives: DriveSlot,
    /// Nexus ids with PREVENT ALLOW MEDIUM REMOVAL in effect.
    prevent: RemovalPrevention,
    /// Told after a move, so that where the cartridges are survives a restart.
    moved: HookSlot,
}

#[derive(Default)]
struct HookSlot(RwLock<Option<MoveHook>>);

/// The changer's way to the drives its data transfer elements name (the daemon's target table).
#[derive(Default)]
struct DriveSlot(RwLock<Option<DriveResolver>>);

impl std::fmt::Debug for DriveSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DriveSlot")
    }
}

impl std::fmt::Debug for HookSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookSlot")
    }
}

/// Called after MOVE MEDIUM moved a cartridge (no lock of the changer held).
pub type MoveHook = Arc<dyn Fn() + Send + Sync>;

impl ChangerState {
    pub fn library(&self) -> MutexGuard<'_, Library> {
        self.library.lock()
    }

    /// Serialise moves (and administrator changes that touch drives) with each other.
    pub async fn robot(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.robot.lock().await
    }

    /// The robot, for an administrator's change: waits (blocking the caller) for a move that
    /// runs, which may itself wait for a busy drive to unload.
    fn robot_blocking(&self) -> tokio::sync::MutexGuard<'_, ()> {
        pollster::block_on(self.robot.lock())
    }

    pub fn set_move_hook(&self, hook: MoveHook) {
        *self.moved.0.write() = Some(hook);
    }

    pub fn moved(&self) {
        let hook = self.moved.0.read().clone();
        if let Some(hook) = hook {
            hook();
        }
    }

    pub fn set_drives(&self, resolver: DriveResolver) {
        *self.drives.0.write() = Some(resolver);
    }

    /// The drive a data transfer element names, if it is there and takes media from a changer.
    pub fn drive(&self, at: Option<(u32, u64)>) -> Option<Arc<dyn MediumDrive>> {
        let (tid, lun) = at?;
        let resolve = self.drives.0.read().clone()?;
        resolve(tid, lun)
    }

    /// Who the drive a data transfer element names is (DVCID), if it is there.
    pub fn identity(&self, at: Option<(u32, u64)>) -> Option<DriveIdentity> {
        self.drive(at)?.identity()
    }

    /// An administrator's change. Taking a cartridge out of the library through a mail slot is
    /// refused while an initiator prevents removal (SMC-3 6.13). A cartridge put in a drive's
    /// element is loaded into the drive when the drive is there and empty; otherwise it is loaded
    /// when `reload_drives` next finds the drive.
    pub fn apply(&self, change: LibraryChange) -> Result<(), LibraryError> {
        let _robot = self.robot_blocking();
        if let LibraryChange::Remove { kind: super::ElementType::ImportExport, .. } = &change {
            if self.removal_prevented() {
                return Err(LibraryError::RemovalPrevented);
            }
        }
        let loads_drive = matches!(&change, LibraryChange::Insert { kind: super::ElementType::DataTransfer, .. });
        self.library.lock().apply(change)?;
        if loads_drive {
            self.load_recorded();
        }
        Ok(())
    }

    /// Load every drive the inventory says holds a cartridge but that is empty (after a restart,
    /// or once a drive bound earlier is created).
    pub fn reload_drives(&self) {
        let _robot = self.robot_blocking();
        self.load_recorded();
    }

    fn load_recorded(&self) {
        let (home, wanted): (_, Vec<_>) = {
            let library = self.library.lock();
            let wanted = library
                .elements
                .iter()
                .filter_map(|e| Some((e.address, e.drive, e.medium.as_ref()?.barcode.clone())))
                .filter(|(address, ..)| {
                    library.find(*address).is_some_and(|e| e.kind == super::ElementType::DataTransfer)
                })
                .collect();
            (library.media_home.clone(), wanted)
        };
        let Some(home) = home else { return };
        for (address, at, barcode) in wanted {
            let Some(drive) = self.drive(at) else { continue };
            if drive.medium().is_some() {
                continue;
            }
            if let Err(sense) = drive.load(&home.join(&barcode)) {
                tracing::warn!(address, %barcode, ?sense, "the drive did not take its cartridge back");
            }
        }
    }

    pub fn set_prevent(&self, nexus_id: u64, prevent: bool) {
        self.prevent.set(nexus_id, prevent);
    }

    pub fn removal_prevented(&self) -> bool {
        self.prevent.is_prevented()
    }

    /// Logical unit reset (SAM-5 6.6): prevention is cleared.
    pub fn reset(&self) {
        self.prevent.clear();
    }
}
