//! Tape drives (SSC-3, peripheral device type 01h): a sequential-access drive whose tape is an
//! image file in tgt's format (`rtgt_backstore::tape`), so that tapes move between rtgt and tgt.
//!
//! The tape lives in the unit's `state::TapeState`, not in the unit's fixed store: a media changer
//! moves tapes in and out (`MediumDrive`), and an empty drive is a normal state. The shared path's
//! medium check is off for this type and `admit` makes it instead (NOT READY, MEDIUM NOT PRESENT
//! without a tape; NOT READY, INITIALIZING COMMAND REQUIRED after UNLOAD).
//!
//! Files: `commands` the table, `rw` READ(6), WRITE(6), WRITE FILEMARKS and VERIFY(6), `position`
//! SPACE, REWIND, LOCATE, READ POSITION, ERASE and LOAD UNLOAD, `modes` the mode pages and the
//! block descriptor (block length, density, buffered mode), READ BLOCK LIMITS and REPORT DENSITY
//! SUPPORT, `medium` PREVENT ALLOW MEDIUM REMOVAL and the changer's `MediumDrive`.

pub(crate) mod commands;
pub(crate) mod medium;
pub(crate) mod modes;
pub(crate) mod position;
mod queue;
pub(crate) mod rw;
pub(crate) mod state;

use crate::lun::LogicalUnit;
use crate::opcodes::{OpcodeEntry, MEDIUM};
use crate::sense::{Asc, Sense, SenseKey};
use rtgt_backstore::tape::TapeError;
use state::TapeState;

pub use state::TapeLoadError;

pub(crate) use state::NOT_READY_MEDIUM_NOT_PRESENT;
/// FILEMARK DETECTED.
pub(crate) const FILEMARK_DETECTED: Asc = Asc(0x00, 0x01);
/// END-OF-PARTITION/MEDIUM DETECTED (the early warning, and the end itself).
pub(crate) const END_OF_MEDIUM: Asc = Asc(0x00, 0x02);
/// BEGINNING-OF-PARTITION/MEDIUM DETECTED.
pub(crate) const BEGINNING_OF_MEDIUM: Asc = Asc(0x00, 0x04);
/// END-OF-DATA DETECTED.
pub(crate) const END_OF_DATA: Asc = Asc(0x00, 0x05);
/// WORM MEDIUM - OVERWRITE ATTEMPTED.
pub(crate) const WORM_OVERWRITE: Asc = Asc(0x30, 0x0c);
/// CLEANING CARTRIDGE INSTALLED.
pub(crate) const CLEANING_CARTRIDGE: Asc = Asc(0x30, 0x03);
/// MEDIUM FORMAT CORRUPTED.
const MEDIUM_FORMAT_CORRUPTED: Asc = Asc(0x31, 0x00);
/// NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED.
pub(crate) const MEDIUM_MAY_HAVE_CHANGED: Asc = Asc(0x28, 0x00);

/// The drive's state; HARDWARE ERROR on a unit of another type (a table mistake).
pub(crate) fn tape(lu: &LogicalUnit) -> Result<&TapeState, Sense> {
    lu.tape().ok_or(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE))
}

/// Commands flagged MEDIUM need a loaded tape.
pub(crate) fn admit(lu: &LogicalUnit, entry: &OpcodeEntry) -> Result<(), Sense> {
    if entry.has(MEDIUM) {
        tape(lu)?.ready()?;
    }
    Ok(())
}

/// A wait for the immediate operation running on the drive (a VERIFY, REWIND, LOCATE, ERASE, LOAD
/// UNLOAD or WRITE FILEMARKS with IMMED), if one is: the commands after it wait for it to end, as
/// they would on a drive busy with it, and learn its deferred error then.
pub(crate) fn settle(lu: &LogicalUnit) -> Option<state::Settle> {
    lu.tape().and_then(|t| t.settle())
}

/// The deferred error of an immediate operation that `nexus` sent (once it has ended: `settle`).
pub(crate) fn deferred_error(lu: &LogicalUnit, nexus: u64) -> Option<Sense> {
    lu.tape().and_then(|t| t.take_deferred(nexus))
}

/// REQUEST SENSE with nothing pending: NOT READY while there is no loaded tape.
pub(crate) fn state_sense(lu: &LogicalUnit) -> Option<Sense> {
    lu.tape().and_then(|t| t.ready().err())
}

/// A failed tape file operation as the drive reports it: a damaged image is MEDIUM FORMAT
/// CORRUPTED, an I/O error a read or write error.
pub(crate) fn tape_error(err: &TapeError, writing: bool) -> Sense {
    tracing::warn!(error = %err, "tape image");
    match err {
        TapeError::Corrupt { .. } | TapeError::NotATape(_) => {
            Sense::new(SenseKey::MediumError, MEDIUM_FORMAT_CORRUPTED)
        }
        TapeError::ReadOnly => Sense::new(SenseKey::DataProtect, Asc::WRITE_PROTECTED),
        TapeError::BlockTooLong => Sense::invalid_cdb_field(2, Some(7)),
        TapeError::Io { .. } | TapeError::Open { .. } if writing => Sense::new(SenseKey::MediumError, Asc::WRITE_ERROR),
        TapeError::Io { .. } | TapeError::Open { .. } => Sense::new(SenseKey::MediumError, Asc::UNRECOVERED_READ_ERROR),
    }
}

/// A residue for the INFORMATION field: negative ones (a block longer than asked for) in two's
/// complement over the field's four bytes (SSC-3 4.2.17).
pub(crate) fn residue(requested: u32, actual: u32) -> u64 {
    u64::from((requested as i64 - actual as i64) as i32 as u32)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_durability;
#[cfg(test)]
mod tests_immediate;
#[cfg(test)]
mod tests_position;
#[cfg(test)]
mod tests_queue;
#[cfg(test)]
mod tests_verify;
