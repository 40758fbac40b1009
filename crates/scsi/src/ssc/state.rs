//! What a tape drive keeps beside the state every logical unit has: the tape in it (an image file,
//! positioned), whether it is loaded (UNLOAD leaves it in the drive, not ready), the placeholder
//! tape tgt's configurations give an empty drive, the nexuses preventing removal, and the mode
//! parameters a tape drive has: the fixed block length (0: variable-block mode), the density code
//! and buffered mode.
//!
//! Commands that use the tape run one at a time, in the order they were queued, on the drive's
//! own thread (`queue`), as a tape's head is in one place: their file I/O can take long (a SPACE
//! over a big tape, thousands of filemarks) and must never hold a thread that runs other
//! commands. A command aborted before its turn never runs. An immediate command (one with IMMED:
//! `TapeState::perform`) answers GOOD there and goes on, marked in `immediate`: the commands after
//! it wait for it without blocking (`settle`), and a failure is kept as the deferred error of the
//! nexus that sent it (each nexus its own). What other commands and `show` ask of the drive without
//! moving the tape (is it ready, which tape, write protected) is published in `shown`, so they
//! never wait for the tape. The mode parameters are atomics, so the shared command path reads the
//! block length without a lock.

use crate::removal_prevention::RemovalPrevention;
use crate::sense::{Asc, Sense, SenseKey};
use parking_lot::Mutex;
use rtgt_backstore::tape::{MediumType, TapeError, TapeImage};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use tokio::sync::watch;

pub(crate) const NOT_READY_MEDIUM_NOT_PRESENT: Sense = Sense::new(SenseKey::NotReady, Asc::MEDIUM_NOT_PRESENT);
/// LOGICAL UNIT NOT READY, INITIALIZING COMMAND REQUIRED: the tape is in, unloaded; LOAD makes it ready.
pub(crate) const NOT_READY_NEEDS_LOAD: Sense = Sense::new(SenseKey::NotReady, Asc(0x04, 0x02));

pub(super) fn internal_failure() -> Sense {
    Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE)
}

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
}

impl Drive {
    /// NOT READY unless a tape is in and loaded.
    pub fn check_ready(&self) -> Result<(), Sense> {
        match (&self.image, self.ready) {
            (None, _) => Err(NOT_READY_MEDIUM_NOT_PRESENT),
            (Some(_), false) => Err(NOT_READY_NEEDS_LOAD),
            (Some(_), true) => Ok(()),
        }
    }
}

/// What the drive shows without its tape being touched: updated whenever a tape goes in or out
/// or is loaded or unloaded, under the drive's lock.
#[derive(Debug, Default, Clone)]
struct Shown {
    path: Option<PathBuf>,
    ready: bool,
    /// The tape cannot be written: a read-only file or a cleaning cartridge.
    protected: bool,
    /// The tape's capacity in bytes (its MAM's).
    capacity: u64,
}

impl Shown {
    fn of(drive: &Drive) -> Shown {
        match &drive.image {
            None => Shown::default(),
            Some(image) => Shown {
                path: Some(image.path().to_path_buf()),
                ready: drive.ready,
                protected: !image.writable() || image.medium_type() == MediumType::Cleaning,
                capacity: image.mam().max_capacity(),
            },
        }
    }
}

/// A job for the drive's thread.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// A wait for the drive's immediate command to end (see `settle`).
pub(crate) type Settle = Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Debug)]
pub(crate) struct TapeState {
    /// Locked by the command that uses the tape, on the drive's thread (and briefly by a tape
    /// going in or out at an administrator's or changer's request).
    drive: Mutex<Drive>,
    /// The drive's thread, started with its first command; it ends once the unit is gone.
    queue: Mutex<Option<std::sync::mpsc::Sender<Job>>>,
    shown: Mutex<Shown>,
    /// True while an immediate command goes on after its GOOD.
    immediate: watch::Sender<bool>,
    /// The failures of immediate commands, each for the nexus (id) that sent it: SPC-4 4.5.5
    /// reports a deferred error to that I_T nexus only, so one nexus's failure must not push out
    /// another's still unreported. At most one per nexus (its next command takes it), so a few.
    deferred: Mutex<Vec<(u64, Sense)>>,
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

impl Default for TapeState {
    fn default() -> Self {
        TapeState {
            drive: Mutex::default(),
            queue: Mutex::default(),
            shown: Mutex::default(),
            immediate: watch::Sender::new(false),
            deferred: Mutex::default(),
            #[cfg(test)]
            gate: Mutex::default(),
            placeholder: Mutex::default(),
            prevent: RemovalPrevention::default(),
            block_len: AtomicU32::default(),
            density: AtomicU8::default(),
            buffered: AtomicBool::default(),
        }
    }
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

/// Ends an immediate command however it ends: the drive is free again for the commands waiting
/// for it, and one that did not finish (it panicked) leaves its nexus a deferred error saying so.
struct ImmediateRun<'a> {
    state: &'a TapeState,
    nexus: u64,
    finished: bool,
}

impl Drop for ImmediateRun<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.state.defer(self.nexus, internal_failure());
        }
        self.state.immediate.send_replace(false);
    }
}

impl TapeState {
    /// Put the tape at `path` in the drive, loaded at the beginning. A placeholder tape leaves
    /// the drive empty and is remembered for `show`. Only an empty drive takes a tape, and an
    /// empty drive runs no long command, so this waits for the drive's lock without queueing.
    pub fn load(&self, path: &Path) -> Result<bool, TapeLoadError> {
        if self.shown.lock().path.is_some() {
            return Err(TapeLoadError::Occupied);
        }
        let mut drive = self.drive.lock();
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
        self.publish(&drive);
        Ok(true)
    }

    /// Publish what the drive shows after a tape went in or out, or was loaded or unloaded.
    pub fn publish(&self, drive: &Drive) {
        *self.shown.lock() = Shown::of(drive);
    }

    /// The path of the tape in the drive.
    pub fn medium(&self) -> Option<PathBuf> {
        self.shown.lock().path.clone()
    }

    /// What `show` gives as the backing store: the tape, or the placeholder of an empty drive.
    pub fn shown_path(&self) -> Option<PathBuf> {
        self.medium().or_else(|| self.placeholder.lock().clone())
    }

    /// NOT READY unless a tape is in and loaded, as the drive shows now.
    pub fn ready(&self) -> Result<(), Sense> {
        let shown = self.shown.lock();
        match (&shown.path, shown.ready) {
            (None, _) => Err(NOT_READY_MEDIUM_NOT_PRESENT),
            (Some(_), false) => Err(NOT_READY_NEEDS_LOAD),
            (Some(_), true) => Ok(()),
        }
    }

    /// The tape in the drive cannot be written (a read-only file, a cleaning cartridge).
    pub fn tape_protected(&self) -> bool {
        self.shown.lock().protected
    }

    /// The capacity of the tape in the drive, in bytes (NOT READY without a loaded one).
    pub fn capacity(&self) -> Result<u64, Sense> {
        self.ready()?;
        Ok(self.shown.lock().capacity)
    }

    /// The drive itself, locked: for the drive's thread (`queue`), which runs the commands that
    /// use the tape, and for tests that look at the tape.
    pub fn drive(&self) -> parking_lot::MutexGuard<'_, Drive> {
        self.drive.lock()
    }

    /// The way to the drive's thread (None until it is started: `queue`).
    pub(super) fn queue(&self) -> parking_lot::MutexGuard<'_, Option<std::sync::mpsc::Sender<Job>>> {
        self.queue.lock()
    }

    /// Start an immediate command on the drive's thread (from a job, before it answers GOOD):
    /// the commands after it wait for it (`settle`) until `run_immediate` ends it.
    pub fn start_immediate(&self) {
        self.immediate.send_replace(true);
    }

    /// Run the immediate command begun with `start_immediate` on `drive`, keep its failure as
    /// `nexus`'s deferred error, and let the waiting commands go, even if `command` panics.
    pub fn run_immediate(&self, nexus: u64, drive: &mut Drive, command: impl FnOnce(&mut Drive) -> Result<(), Sense>) {
        let mut run = ImmediateRun { state: self, nexus, finished: false };
        #[cfg(test)]
        if let Some(gate) = self.gate.lock().take() {
            // A test's hold; a closed channel lets it go as an opened one does.
            let _ = gate.recv();
        }
        let result = command(drive);
        run.finished = true;
        if let Err(sense) = result {
            self.defer(nexus, sense);
        }
    }

    /// Keep `sense` as `nexus`'s deferred error, in place of one it has not taken yet (a nexus
    /// takes its error with its next command, so that one is older than anything it has seen).
    fn defer(&self, nexus: u64, sense: Sense) {
        let mut deferred = self.deferred.lock();
        deferred.retain(|(owner, _)| *owner != nexus);
        deferred.push((nexus, sense.into_deferred()));
    }

    /// Hold the next immediate command before it starts, until `gate` receives.
    #[cfg(test)]
    pub fn hold_immediate(&self, gate: std::sync::mpsc::Receiver<()>) {
        *self.gate.lock() = Some(gate);
    }

    /// A wait for the immediate command that runs now, if one does: a command's deferred error
    /// is known only once it ends.
    pub fn settle(&self) -> Option<Settle> {
        if !*self.immediate.borrow() {
            return None;
        }
        let mut idle = self.immediate.subscribe();
        Some(Box::pin(async move {
            let _ = idle.wait_for(|busy| !busy).await;
        }))
    }

    /// The deferred error pending for `nexus`, taken.
    pub fn take_deferred(&self, nexus: u64) -> Option<Sense> {
        let mut deferred = self.deferred.lock();
        let at = deferred.iter().position(|(owner, _)| *owner == nexus)?;
        Some(deferred.swap_remove(at).1)
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

    /// I_T nexus loss: the nexus's prevention and its pending deferred error go with it.
    pub fn forget_nexus(&self, nexus_id: u64) {
        self.prevent.set(nexus_id, false);
        self.deferred.lock().retain(|(owner, _)| *owner != nexus_id);
    }

    /// Logical unit reset (SAM-5 6.6): prevention and every pending deferred error are cleared.
    pub fn reset(&self) {
        self.prevent.clear();
        self.deferred.lock().clear();
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
