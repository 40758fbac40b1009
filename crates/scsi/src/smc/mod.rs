//! Media changers (SMC-3, peripheral device type 08h): the robot of a tape library, moving
//! cartridges (tape image files in a media directory, named by their barcodes) between its
//! slots, mail slots, picker and drives, laid out and filled by an administrator as tgt's VTL is.
//!
//! The changer knows its drives only through the `MediumDrive` seam: a data transfer element
//! names a (tid, LUN), and the daemon's `DriveResolver` finds the drive there when a move needs
//! it (or DVCID asks who it is), so a drive of another target, or one created after the changer,
//! is found as it is then.
//!
//! Files: `library` the inventory and its administration, `state` the unit's state (inventory,
//! robot, drives, prevention), `commands` the table, `element_status` READ ELEMENT STATUS, `moves`
//! MOVE MEDIUM and the other robot commands, `mode_pages` the SMC pages from the layout.

pub(crate) mod commands;
pub(crate) mod element_status;
pub(crate) mod library;
pub(crate) mod mode_pages;
pub(crate) mod moves;
pub(crate) mod state;

pub use crate::medium_drive::{DriveIdentity, DriveResolver};
pub use library::{Cartridge, ElementRange, ElementType, LibraryChange, LibraryError, MAX_BARCODE};
pub use state::MoveHook;

use crate::lun::LogicalUnit;
use crate::sense::{Asc, Sense, SenseKey};
use crate::target::Target;
use state::ChangerState;

/// SPC-4 annex D.
pub(crate) const INVALID_ELEMENT_ADDRESS: Asc = Asc(0x21, 0x01);
pub(crate) const MECHANICAL_POSITIONING_ERROR: Asc = Asc(0x15, 0x01);
pub(crate) const DESTINATION_FULL: Asc = Asc(0x3b, 0x0d);
pub(crate) const SOURCE_EMPTY: Asc = Asc(0x3b, 0x0e);
/// NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED / IMPORT OR EXPORT ELEMENT ACCESSED.
const INVENTORY_CHANGED: Asc = Asc(0x28, 0x00);
const MAIL_SLOT_ACCESSED: Asc = Asc(0x28, 0x01);

/// The changer's state; HARDWARE ERROR on a unit of another type (a table mistake).
pub(crate) fn changer(lu: &LogicalUnit) -> Result<&ChangerState, Sense> {
    lu.changer().ok_or(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE))
}

/// Why an administrator's change to a library was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangerError {
    #[error("logical unit {0} does not exist")]
    NoSuchLun(u64),
    #[error("logical unit {0} is not a media changer")]
    NotAChanger(u64),
    #[error(transparent)]
    Library(#[from] LibraryError),
}

impl LogicalUnit {
    /// Give a changer the way to its drives (the daemon's tables); nothing on other types.
    pub fn attach_drives(&self, resolver: DriveResolver) {
        if let Some(changer) = self.changer() {
            changer.set_drives(resolver);
        }
    }

    /// An administrator's change to this changer's library, before the unit serves anyone (at
    /// creation); `Target::change_library` is the same on a unit in service, initiators told.
    pub fn change_library(&self, change: LibraryChange) -> Result<(), ChangerError> {
        let changer = self.changer().ok_or(ChangerError::NotAChanger(0))?;
        Ok(changer.apply(change)?)
    }

    /// Call `hook` after every cartridge MOVE MEDIUM moves (the daemon saves its state).
    pub fn on_move(&self, hook: MoveHook) {
        if let Some(changer) = self.changer() {
            changer.set_move_hook(hook);
        }
    }

    /// The changes that build this changer's library as it is now (None for other types): for
    /// saving it, showing it and dumping it.
    pub fn library_changes(&self) -> Option<Vec<LibraryChange>> {
        self.changer().map(|c| c.library().changes())
    }

    /// Load into each bound drive the cartridge the library says it holds, when the drive is
    /// empty: after a restart, or once the drives are created.
    pub fn reload_drives(&self) {
        if let Some(changer) = self.changer() {
            changer.reload_drives();
        }
    }
}

impl Target {
    /// An administrator's change to the library of the changer at `lun`. A cartridge put in or
    /// taken out gives every nexus UNIT ATTENTION, NOT READY TO READY CHANGE (IMPORT OR EXPORT
    /// ELEMENT ACCESSED for a mail slot), as a library whose door was opened does (SMC-3 5.3).
    pub fn change_library(&self, lun: u64, change: LibraryChange) -> Result<(), ChangerError> {
        let unit = self.lun(lun).ok_or(ChangerError::NoSuchLun(lun))?;
        let changer = unit.changer().ok_or(ChangerError::NotAChanger(lun))?;
        let attention = match &change {
            LibraryChange::Insert { kind, .. } | LibraryChange::Remove { kind, .. } => {
                Some(if *kind == ElementType::ImportExport { MAIL_SLOT_ACCESSED } else { INVENTORY_CHANGED })
            }
            _ => None,
        };
        changer.apply(change)?;
        if let Some(asc) = attention {
            self.unit_attention_all(lun, asc);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
