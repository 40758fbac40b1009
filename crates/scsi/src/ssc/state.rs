//! What a tape drive keeps beside the state every logical unit has: the tape in it (an image file,
//! positioned), whether it is loaded (UNLOAD leaves it in the drive, not ready), the placeholder
//! tape tgt's configurations give an empty drive, the nexuses preventing removal, and the mode
//! parameters a tape drive has: the fixed block length (0: variable-block mode), the density code
//! and buffered mode.
//!
//! Commands on one drive run one at a time under `drive`'s lock, as a tape's head is in one place:
//! the lock is held across the (synchronous, positioned) file I/O of one command, never across an
//! await. An immediate command (VERIFY with IMMED) goes on after its GOOD on a thread of its own,
//! marked in `Drive::immediate`: every later command waits for it (`idle`) before it takes the
//! drive, and a failure is kept as the deferred error of the nexus that sent it. The mode parameters are atomics, so the shared command path reads the block length
//! without taking the lock.

use crate::removal_prevention::RemovalPrevention;
use crate::sense::{Asc, Sense, SenseKey};
use parking_lot::{Condvar, Mutex, MutexGuard};
use rtgt_backstore::tape::{MediumType, TapeError, TapeImage};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

pub(crate) const NOT_READY_MEDIUM_NOT_PRESENT: Sense = Sense::new(SenseKey::NotReady, Asc::MEDIUM_NOT_PRESENT);
/// LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED: the tape is in, unloaded; LOAD makes it ready.
pub(crate) const NOT_READY_NEEDS_LOAD: Sense = Sense::new(SenseKey::NotReady, Asc(0x04, 0x02));

/// Why a tape could not be put in a drive.
#[derive(Debug, thiserror::Error)]
pub enum TapeLoadError {
    #[error("the drive already holds a tape")]
    Occupied,
    #[error("the logical unit is not a tape drive")]
    NotATapeDrive,
    #[error(transparent)]
    Tape(#[from] TapeError),
}

#[derive(Debug, Default)]
pub(crate) struct Drive {
    pub image: Option<TapeImage>,
    /// False after UNLOAD until LOAD.
    pub ready: bool,
    /// Writes done since the last flush (buffered mode).
    pub dirty: bool,
    /// An immediate command still runs on its own thread: nothing else may use the drive yet.
    pub immediate: bool,
    /// The failure of an immediate command, for the nexus (id) that sent it (SPC-4 4.5.5).
    pub deferred: Option<(u64, Sense)>,
}

#[derive(Debug, Default)]
pub(crate) struct TapeState {
    drive: Mutex<Drive>,
    /// Signalled when an immediate command ends.
    idle: Condvar,
    /// Tests hold an immediate command before it starts until this receives (or is dropped).
    #[cfg(test)]
    gate: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    /// The dummy tape the drive was configured with to stand for "no tape" (tgt's examples do
    /// so): shown as the backing store while the drive is empty, never read or written.
    placeholder: Mutex<Option<PathBuf>>,
    /// Nexus ids with PREVENT ALLOW MEDIUM REMOVAL in effect.
    prevent: RemovalPrevention,
    block_len: AtomicU32,
    density: AtomicU8,
    /// Buffered mode 1 (SSC-3 8.3: GOOD once the data is in the buffer, made durable by WRITE
    /// FILEMARKS and the positioning commands) or 0 (every write durable before GOOD).
    buffered: AtomicBool,
}

/// Open a tape for a drive: for writing when the file allows it, else read-only (the tape is
/// then write protected, as a cartridge with its tab set).
pub(crate) fn open_tape(path: &Path) -> Result<TapeImage, TapeError> {
    match TapeImage::open(path, false) {
        Err(TapeError::Open { source, .. })
            if source.kind() == std::io::ErrorKind::PermissionDenied || source.raw_os_error() == Some(EROFS) =>
        {
            TapeImage::open(path, true)
        }
        other => other,
    }
}

/// EROFS (Linux): a tape on a read-only file system.
const EROFS: i32 = 30;

/// tgt's stand-in for an empty drive: a cleaning cartridge without a barcode.
fn is_placeholder(image: &TapeImage) -> bool {
    image.medium_type() == MediumType::Cleaning && image.mam().barcode().trim().is_empty()
}

impl TapeState {
    /// Put the tape at `path` in the drive, loaded at the beginning. A placeholder tape leaves
    /// the drive empty and is remembered for `show`.
    pub fn load(&self, path: &Path) -> Result<bool, TapeLoadError> {
        let mut drive = self.idle_drive();
        if drive.image.is_some() {
            return Err(TapeLoadError::Occupied);
        }
        let image = open_tape(path)?;
        if is_placeholder(&image) {
            *self.placeholder.lock() = Some(path.to_path_buf());
            return Ok(false);
        }
        drive.image = Some(image);
        drive.ready = true;
        drive.dirty = false;
        Ok(true)
    }

    /// Take the tape out (what was written made durable first); its path, None when empty.
    pub fn unload(&self) -> Result<Option<PathBuf>, TapeError> {
        let mut drive = self.idle_drive();
        if let Some(image) = &drive.image {
            image.sync()?;
        }
        let image = drive.image.take();
        drive.ready = false;
        drive.dirty = false;
        Ok(image.map(|i| i.path().to_path_buf()))
    }

    /// The path of the tape in the drive.
    pub fn medium(&self) -> Option<PathBuf> {
        self.drive.lock().image.as_ref().map(|i| i.path().to_path_buf())
    }

    /// What `show` gives as the backing store: the tape, or the placeholder of an empty drive.
    pub fn shown_path(&self) -> Option<PathBuf> {
        self.medium().or_else(|| self.placeholder.lock().clone())
    }

    /// The drive, for a command that needs a loaded tape: NOT READY otherwise.
    pub fn ready(&self) -> Result<MutexGuard<'_, Drive>, Sense> {
        let drive = self.idle_drive();
        match (&drive.image, drive.ready) {
            (None, _) => Err(NOT_READY_MEDIUM_NOT_PRESENT),
            (Some(_), false) => Err(NOT_READY_NEEDS_LOAD),
            (Some(_), true) => Ok(drive),
        }
    }

    /// The drive, whatever it holds (LOAD UNLOAD), once no immediate command runs.
    pub fn drive(&self) -> MutexGuard<'_, Drive> {
        self.idle_drive()
    }

    /// The drive once no immediate command runs on it. Waiting blocks the calling thread, as
    /// waiting for the lock of another command's file I/O does.
    fn idle_drive(&self) -> MutexGuard<'_, Drive> {
        let mut drive = self.drive.lock();
        while drive.immediate {
            self.idle.wait(&mut drive);
        }
        drive
    }

    /// Mark the drive taken by an immediate command that goes on after its GOOD; it runs under
    /// `run_immediate`, which only it may call.
    pub fn start_immediate(&self, drive: &mut Drive) {
        drive.immediate = true;
    }

    /// Run the immediate command started with `start_immediate` (on its own thread), keep its
    /// failure as `nexus`'s deferred error, and let the waiting commands go.
    pub fn run_immediate(&self, nexus: u64, command: impl FnOnce(&mut Drive) -> Result<(), Sense>) {
        #[cfg(test)]
        if let Some(gate) = self.gate.lock().take() {
            // A test's hold; a closed channel lets it go as an opened one does.
            let _ = gate.recv();
        }
        let mut drive = self.drive.lock();
        debug_assert!(drive.immediate, "run_immediate without start_immediate");
        if let Err(sense) = command(&mut drive) {
            drive.deferred = Some((nexus, sense.into_deferred()));
        }
        drive.immediate = false;
        drop(drive);
        self.idle.notify_all();
    }

    /// Hold the next immediate command before it starts, until `gate` receives.
    #[cfg(test)]
    pub fn hold_immediate(&self, gate: std::sync::mpsc::Receiver<()>) {
        *self.gate.lock() = Some(gate);
    }

    /// The deferred error pending for `nexus`, taken (after any immediate command ended).
    pub fn take_deferred(&self, nexus: u64) -> Option<Sense> {
        let mut drive = self.idle_drive();
        match drive.deferred.take() {
            Some((owner, sense)) if owner == nexus => Some(sense),
            other => {
                drive.deferred = other;
                None
            }
        }
    }

    /// Make every write so far durable.
    pub fn flush(&self) -> Result<(), TapeError> {
        let mut drive = self.idle_drive();
        flush(&mut drive)
    }

    pub fn block_len(&self) -> u32 {
        self.block_len.load(Ordering::Relaxed)
    }

    pub fn set_block_len(&self, len: u32) {
        self.block_len.store(len, Ordering::Relaxed);
    }

    pub fn density(&self) -> u8 {
        self.density.load(Ordering::Relaxed)
    }

    pub fn set_density(&self, density: u8) {
        self.density.store(density, Ordering::Relaxed);
    }

    pub fn buffered(&self) -> bool {
        self.buffered.load(Ordering::Relaxed)
    }

    pub fn set_buffered(&self, buffered: bool) {
        self.buffered.store(buffered, Ordering::Relaxed);
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

/// Flush the drive's tape if it has unflushed writes.
pub(crate) fn flush(drive: &mut Drive) -> Result<(), TapeError> {
    if drive.dirty {
        if let Some(image) = &drive.image {
            image.sync()?;
        }
        drive.dirty = false;
    }
    Ok(())
}
