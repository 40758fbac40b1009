//! What a CD/DVD drive keeps beside the state every logical unit has: its tray (open or closed),
//! the disc in it (an image file, replaced by media changes), the nexuses preventing removal and
//! the media event waiting for GET EVENT STATUS NOTIFICATION.
//!
//! The disc is an `Arc` so that a READ clones it out of the lock and awaits the store without
//! holding anything: a media change meanwhile swaps the tray's disc, and the read in flight finishes
//! on the disc it started on.

use crate::removal_prevention::RemovalPrevention;
use parking_lot::Mutex;
use rtgt_backstore::Backstore;
use std::sync::Arc;

/// MMC logical block length for data discs (MMC-6 4.2.3.4: 2048-byte user data sectors).
pub(crate) const BLOCK_SIZE: u32 = 2048;

/// Media class events (MMC-6 6.7.2.5, table 170): what GET EVENT STATUS NOTIFICATION reports once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum MediaEvent {
    #[default]
    NoChange = 0,
    EjectRequest = 1,
    NewMedia = 2,
    MediaRemoval = 3,
}

#[derive(Debug, Default)]
struct Tray {
    disc: Option<Arc<Backstore>>,
    open: bool,
    event: MediaEvent,
}

/// Why the drive cannot read: the tray is open, or closed on nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Empty {
    TrayOpen,
    TrayClosed,
}

#[derive(Debug, Default)]
pub(crate) struct CdState {
    tray: Mutex<Tray>,
    /// Nexus ids with PREVENT ALLOW MEDIUM REMOVAL in effect.
    prevent: RemovalPrevention,
}

impl CdState {
    /// The disc the unit is created with (no event: nothing was there before).
    pub fn insert(&mut self, disc: Option<Backstore>) {
        self.tray.get_mut().disc = disc.map(Arc::new);
    }

    /// The disc in the tray, open or closed (for `show`).
    pub fn disc(&self) -> Option<Arc<Backstore>> {
        self.tray.lock().disc.clone()
    }

    /// The disc to read from: present and the tray closed.
    pub fn loaded(&self) -> Result<Arc<Backstore>, Empty> {
        let tray = self.tray.lock();
        match (&tray.disc, tray.open) {
            (_, true) => Err(Empty::TrayOpen),
            (None, false) => Err(Empty::TrayClosed),
            (Some(disc), false) => Ok(disc.clone()),
        }
    }

    /// Put another disc in (or none) and close the tray, as an operator swapping discs does.
    /// The event says what the initiator will see: new media, or the medium removed.
    pub fn change(&self, disc: Option<Backstore>) {
        let mut tray = self.tray.lock();
        tray.event = if disc.is_some() { MediaEvent::NewMedia } else { MediaEvent::MediaRemoval };
        tray.disc = disc.map(Arc::new);
        tray.open = false;
    }

    /// Open (eject) or close (load) the tray. True when a disc became readable (a load with a disc
    /// in the tray): the caller gives every nexus NOT READY TO READY CHANGE.
    pub fn set_tray_open(&self, open: bool) -> bool {
        let mut tray = self.tray.lock();
        if tray.open == open {
            return false;
        }
        tray.open = open;
        if tray.disc.is_none() {
            return false;
        }
        tray.event = if open { MediaEvent::MediaRemoval } else { MediaEvent::NewMedia };
        !open
    }

    /// Take the pending media event, and the media status (present, tray open) after it.
    pub fn take_event(&self) -> (MediaEvent, bool, bool) {
        let mut tray = self.tray.lock();
        let event = std::mem::take(&mut tray.event);
        (event, tray.disc.is_some(), tray.open)
    }

    /// Whether a media event waits to be reported.
    pub fn event_pending(&self) -> bool {
        self.tray.lock().event != MediaEvent::NoChange
    }

    /// Whether the tray is open (MECHANISM STATUS).
    pub fn tray_open(&self) -> bool {
        self.tray.lock().open
    }

    /// An eject was asked for while removal is prevented: the initiator hears of it as an eject
    /// request (MMC-6 6.7.2.5).
    pub fn eject_requested(&self) {
        self.tray.lock().event = MediaEvent::EjectRequest;
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
