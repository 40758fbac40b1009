//! The tape as a medium that comes and goes: PREVENT ALLOW MEDIUM REMOVAL (SPC-4 6.13, per
//! nexus), the tape an administrator configures (`LogicalUnit::load_tape`) and the drive as a
//! media changer's robot sees it (`MediumDrive`), which raises NOT READY TO READY CHANGE on every
//! nexus when a tape goes in and refuses to take one out while removal is prevented.

use super::state::TapeLoadError;
use super::{tape, MEDIUM_MAY_HAVE_CHANGED};
use crate::cdb::Cdb;
use crate::lun::LogicalUnit;
use crate::medium_drive::{DriveFuture, DriveIdentity, MediumDrive};
use crate::opcodes::{now, Handler};
use crate::sense::{Asc, Sense, SenseKey};
use crate::target::Target;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

/// MEDIUM DESTINATION ELEMENT FULL and MEDIUM SOURCE ELEMENT EMPTY (SMC-3): what a robot's move
/// into a full drive or out of an empty one gets.
const DESTINATION_FULL: Asc = Asc(0x3b, 0x0d);
const SOURCE_EMPTY: Asc = Asc(0x3b, 0x0e);
/// INCOMPATIBLE MEDIUM INSTALLED: the file is no tape image.
const INCOMPATIBLE_MEDIUM: Asc = Asc(0x30, 0x00);

impl LogicalUnit {
    /// Put the tape image at `path` in this tape drive, loaded at its beginning, without telling
    /// initiators (for a unit being created; a changer's move goes through `MediumDrive`). tgt's
    /// placeholder for an empty drive (a cleaning cartridge with a blank barcode) leaves the drive
    /// empty; the result says whether a tape went in.
    pub fn load_tape(&self, path: &Path) -> Result<bool, TapeLoadError> {
        self.tape().ok_or(TapeLoadError::NotATapeDrive)?.load(path)
    }

    /// The tape in this drive, if any.
    pub fn tape_path(&self) -> Option<PathBuf> {
        self.tape().and_then(|t| t.medium())
    }
}

/// A tape drive at (target, LUN) for a changer: held weakly, so a changer keeps no deleted
/// target alive, and looked up on each move, so a LUN replaced meanwhile is the one moved into.
#[derive(Debug)]
pub(crate) struct TapeDrive {
    pub target: Weak<Target>,
    pub lun: u64,
}

impl TapeDrive {
    fn unit(&self) -> Result<(Arc<Target>, Arc<LogicalUnit>), Sense> {
        let gone = Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED);
        let target = self.target.upgrade().ok_or(gone.clone())?;
        let unit = target.lun(self.lun).ok_or(gone)?;
        Ok((target, unit))
    }
}

impl MediumDrive for TapeDrive {
    fn load(&self, medium: &Path) -> Result<(), Sense> {
        let (target, unit) = self.unit()?;
        match unit.load_tape(medium) {
            Ok(_) => {
                target.unit_attention_all(self.lun, MEDIUM_MAY_HAVE_CHANGED);
                Ok(())
            }
            Err(TapeLoadError::Occupied) => Err(Sense::illegal_request(DESTINATION_FULL)),
            Err(TapeLoadError::NotATapeDrive) => Err(Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED)),
            Err(e) => {
                tracing::warn!(path = %medium.display(), error = %e, "tape not loaded");
                Err(Sense::new(SenseKey::MediumError, INCOMPATIBLE_MEDIUM))
            }
        }
    }

    fn unload(&self) -> DriveFuture<'_, Result<PathBuf, Sense>> {
        Box::pin(async move {
            let (_, unit) = self.unit()?;
            let state = tape(&unit)?;
            if state.removal_prevented() {
                return Err(Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED));
            }
            state.unload(&unit).await?.ok_or(Sense::illegal_request(SOURCE_EMPTY))
        })
    }

    fn medium(&self) -> Option<PathBuf> {
        self.unit().ok().and_then(|(_, unit)| unit.tape_path())
    }

    fn identity(&self) -> Option<DriveIdentity> {
        let (_, unit) = self.unit().ok()?;
        let config = unit.config();
        Some(DriveIdentity {
            vendor: config.vendor_id.clone(),
            product: config.product_id.clone(),
            serial: config.scsi_sn.clone(),
        })
    }
}

/// PREVENT ALLOW MEDIUM REMOVAL: bit 0 of byte 4 (SSC-3 has no persistent prevention).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PreventAllow {
    pub prevent: bool,
}

impl Cdb for PreventAllow {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(PreventAllow { prevent: c[4] & 0x01 != 0 })
    }
}

pub(crate) const PREVENT_ALLOW: Handler = now!(PreventAllow, |req, PreventAllow { prevent }| {
    tape(req.lu).map(|t| t.set_prevent(req.ctx.nexus.id, prevent))
});

impl Target {
    /// The unit at `lun` as a changer's drive, when its device type takes media from a changer.
    pub fn medium_drive(self: &Arc<Self>, lun: u64) -> Option<Arc<dyn MediumDrive>> {
        let unit = self.lun(lun)?;
        // The tape drive (SSC) is the device type that takes media from a changer.
        unit.tape()?;
        Some(Arc::new(TapeDrive { target: Arc::downgrade(self), lun }))
    }
}
