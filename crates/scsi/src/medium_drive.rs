//! The seam between a media changer (SMC) and the drives it serves: the changer moves a medium
//! (a tape image file) between its slots and a drive through `MediumDrive`, asks it who it is for
//! READ ELEMENT STATUS's DVCID, and finds a drive through a `DriveResolver` that the daemon gives
//! it (a drive element names a tid and a LUN, possibly of another target). Neither the changer's
//! module nor a drive type's module names the other: a drive type that takes media from a changer
//! answers `Target::medium_drive` (in its own module, so this file stays a leaf that both types
//! import).

use crate::sense::Sense;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

/// A drive's answer that waits for the drive (the commands it runs before), without holding a
/// thread meanwhile.
pub type DriveFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What DVCID reports of a drive: its INQUIRY identity (SPC-4 6.6.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveIdentity {
    pub vendor: String,
    pub product: String,
    pub serial: String,
}

/// A drive as a changer's robot sees it.
pub trait MediumDrive: Send + Sync + std::fmt::Debug {
    /// Insert the medium stored at `medium` (a cartridge moved into the drive). Refused with sense
    /// when the drive already holds one or the file cannot be opened; once loaded, the drive's
    /// nexuses get UNIT ATTENTION, NOT READY TO READY CHANGE, MEDIUM MAY HAVE CHANGED.
    fn load(&self, medium: &Path) -> Result<(), Sense>;
    /// Take the medium out (a cartridge moved out of the drive) and name the file it was, once
    /// the drive's earlier commands have ended. Refused with sense when the drive is empty, or
    /// while an initiator prevents medium removal.
    fn unload(&self) -> DriveFuture<'_, Result<PathBuf, Sense>>;
    /// The file of the medium in the drive, if any.
    fn medium(&self) -> Option<PathBuf>;
    /// Who the drive is, as its INQUIRY says; None once it is gone.
    fn identity(&self) -> Option<DriveIdentity>;
}

/// Finds the drive at (tid, LUN) when the changer needs it: the daemon's target table answers, so
/// a drive created or deleted after the changer's element was bound is seen as it is now.
pub type DriveResolver = Arc<dyn Fn(u32, u64) -> Option<Arc<dyn MediumDrive>> + Send + Sync>;
