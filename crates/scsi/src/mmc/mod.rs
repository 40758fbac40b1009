//! CD/DVD drives (MMC-6, peripheral device type 05h): a read-only drive whose disc is an image
//! file, with a tray an initiator opens and closes (START STOP UNIT) and an administrator swaps
//! discs in (`Target::change_medium`).
//!
//! The disc lives in the unit's `state::CdState`, not in the unit's fixed store, because it
//! changes; so the shared path's medium check is off for this type (`DeviceType::has_medium`) and
//! `admit` makes it instead, telling an open tray (02/3A/02) from a closed empty one (02/3A/01).
//! Blocks are 2048 bytes; an image whose size is not a multiple of that ends in a partial block
//! that reads as zeros past the end of the file.
//!
//! Files: `commands` the table, `mode_pages` the capabilities page, `read` READ CAPACITY and
//! READ(10/12) (and writes refused), `read_cd` READ CD, `configuration` GET CONFIGURATION,
//! `disc_info` READ TOC, READ DISC INFORMATION and READ TRACK INFORMATION, `dvd_structure` READ DVD
//! STRUCTURE, `report_key` REPORT KEY and `buffer_capacity` READ BUFFER CAPACITY (answered as a
//! drive without content protection or writing answers), `tray` the media commands (START STOP
//! UNIT, PREVENT ALLOW MEDIUM REMOVAL, GET EVENT STATUS NOTIFICATION, MECHANISM STATUS, SET CD SPEED).

pub(crate) mod buffer_capacity;
pub(crate) mod commands;
pub(crate) mod configuration;
pub(crate) mod disc_info;
pub(crate) mod dvd_structure;
pub(crate) mod mode_pages;
pub(crate) mod read;
pub(crate) mod read_cd;
pub(crate) mod report_key;
pub(crate) mod state;
pub(crate) mod tray;

use crate::lun::LogicalUnit;
use crate::opcodes::{OpcodeEntry, MEDIUM};
use crate::sense::{Asc, Sense, SenseKey};
use crate::target::Target;
use rtgt_backstore::Backstore;
use state::Empty;
use std::sync::Arc;

pub(crate) use state::BLOCK_SIZE;

/// MEDIUM NOT PRESENT - TRAY CLOSED / TRAY OPEN (SPC-4 annex D).
const MEDIUM_NOT_PRESENT_TRAY_CLOSED: Asc = Asc(0x3a, 0x01);
const MEDIUM_NOT_PRESENT_TRAY_OPEN: Asc = Asc(0x3a, 0x02);
/// NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED.
pub(crate) const MEDIUM_MAY_HAVE_CHANGED: Asc = Asc(0x28, 0x00);

/// Blocks of a disc of `size` bytes: a partial last block counts (it reads zero-padded).
pub(crate) fn disc_blocks(size: u64) -> u64 {
    size.div_ceil(u64::from(BLOCK_SIZE))
}

/// The disc to read, or NOT READY with the tray's state.
pub(crate) fn loaded(lu: &LogicalUnit) -> Result<Arc<Backstore>, Sense> {
    let cd = lu.cd().ok_or(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE))?;
    cd.loaded().map_err(|empty| {
        Sense::new(
            SenseKey::NotReady,
            match empty {
                Empty::TrayOpen => MEDIUM_NOT_PRESENT_TRAY_OPEN,
                Empty::TrayClosed => MEDIUM_NOT_PRESENT_TRAY_CLOSED,
            },
        )
    })
}

/// Commands flagged MEDIUM need a readable disc; the check runs before the command (and before
/// reservation checks, which this type has no commands to set).
pub(crate) fn admit(lu: &LogicalUnit, entry: &OpcodeEntry) -> Result<(), Sense> {
    if entry.has(MEDIUM) {
        loaded(lu)?;
    }
    Ok(())
}

/// REQUEST SENSE with nothing pending: NOT READY while the drive has nothing to read.
pub(crate) fn state_sense(lu: &LogicalUnit) -> Option<Sense> {
    loaded(lu).err()
}

/// Why a media change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediumChangeError {
    #[error("logical unit {0} does not exist")]
    NoSuchLun(u64),
    #[error("logical unit {0} is not a cd/dvd drive")]
    NotRemovable(u64),
    #[error("an initiator prevents medium removal on logical unit {0}")]
    RemovalPrevented(u64),
}

impl Target {
    /// Put `disc` in the CD/DVD drive at `lun` (None empties it), as an operator swapping discs:
    /// the tray ends closed, every nexus gets UNIT ATTENTION, NOT READY TO READY CHANGE, MEDIUM MAY
    /// HAVE CHANGED when a disc went in, and GET EVENT STATUS NOTIFICATION reports new media or the
    /// medium removed. While an initiator prevents removal the change is refused (an eject request
    /// event tells it someone wants the disc) unless `force`.
    pub fn change_medium(&self, lun: u64, disc: Option<Backstore>, force: bool) -> Result<(), MediumChangeError> {
        let unit = self.lun(lun).ok_or(MediumChangeError::NoSuchLun(lun))?;
        let cd = unit.cd().ok_or(MediumChangeError::NotRemovable(lun))?;
        if cd.removal_prevented() && !force {
            cd.eject_requested();
            return Err(MediumChangeError::RemovalPrevented(lun));
        }
        let inserted = disc.is_some();
        cd.change(disc);
        if inserted {
            self.unit_attention_all(lun, MEDIUM_MAY_HAVE_CHANGED);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_disc_data;
