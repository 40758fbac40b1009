//! A unit's sanitize state (SBC-4 4.11): whether a sanitize operation runs and how far it has come,
//! and whether the last one failed. Every command consults it before touching the medium, so it
//! lives in atomics.

use super::sanitize_journal::{SanitizeJournal, SanitizeRecord};
use crate::sense::{Asc, Sense, SenseKey};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;

/// MEDIUM ERROR, SANITIZE COMMAND FAILED: a sanitize failed and the unit has not left the failure
/// mode (SBC-4 4.11.3).
pub(crate) const fn failed() -> Sense {
    Sense::new(SenseKey::MediumError, Asc::SANITIZE_COMMAND_FAILED)
}

/// How a failed sanitize may be left (SBC-4 4.11.3): the AUSE bit of the SANITIZE that started it
/// chose the unrestricted completion mode (EXIT FAILURE MODE is enough) or the restricted one (only
/// another sanitize that completes without error is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    None = 0,
    Restricted = 1,
    Unrestricted = 2,
}

impl Failure {
    /// The failure a sanitize started with this AUSE bit leaves behind.
    pub fn for_ause(ause: bool) -> Self {
        if ause {
            Failure::Unrestricted
        } else {
            Failure::Restricted
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct SanitizeState {
    /// 0 when no sanitize runs, else 1 + its progress in 65536ths.
    running: AtomicU32,
    /// A `Failure`.
    failure: AtomicU8,
    /// Where the state is kept across restarts, if anywhere.
    journal: Mutex<Option<Arc<dyn SanitizeJournal>>>,
}

impl SanitizeState {
    /// Claim the unit for a sanitize; false when one already runs.
    pub fn try_begin(&self) -> bool {
        self.running.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// The progress (in 65536ths) of the running sanitize, if one runs.
    pub fn progress(&self) -> Option<u16> {
        match self.running.load(Ordering::Acquire) {
            0 => None,
            n => Some((n - 1) as u16),
        }
    }

    /// Record that `done` of `total` units of work are finished.
    pub fn set_progress(&self, done: u64, total: u64) {
        let fraction = if total == 0 { 0 } else { (u128::from(done) * 65535 / u128::from(total)) as u32 };
        self.running.store(1 + fraction.min(65535), Ordering::Release);
    }

    /// The running sanitize ended: the failure is recorded before commands are let in again, so no
    /// command sees a failed sanitize's medium as if it had succeeded.
    pub fn end(&self, failure: Failure) {
        self.failure.store(failure as u8, Ordering::Release);
        self.running.store(0, Ordering::Release);
    }

    /// What a command that may not touch the unit now is answered: NOT READY, SANITIZE IN PROGRESS
    /// with the progress while a sanitize runs; MEDIUM ERROR, SANITIZE COMMAND FAILED after a failed
    /// one; None otherwise. REQUEST SENSE reports the same as the unit's state.
    pub fn sense(&self) -> Option<Sense> {
        match (self.progress(), self.failure()) {
            (Some(progress), _) => Some(Sense::sanitize_in_progress(progress)),
            (None, Failure::None) => None,
            (None, _) => Some(failed()),
        }
    }

    pub fn failure(&self) -> Failure {
        match self.failure.load(Ordering::Acquire) {
            1 => Failure::Restricted,
            2 => Failure::Unrestricted,
            _ => Failure::None,
        }
    }

    /// EXIT FAILURE MODE after an unrestricted failure.
    pub fn leave_failure(&self) {
        self.journal_clear();
        self.failure.store(Failure::None as u8, Ordering::Release);
    }

    pub fn set_journal(&self, journal: Arc<dyn SanitizeJournal>) {
        *self.journal.lock() = Some(journal);
    }

    /// Record `record` in the journal, if there is one. A journal that cannot be written costs the
    /// ability to finish the operation after a crash, not the operation itself: it is logged.
    pub fn journal_save(&self, record: &SanitizeRecord) {
        let journal = self.journal.lock().clone();
        if let Some(Err(e)) = journal.map(|j| j.save(record)) {
            tracing::warn!(error = %e, "sanitize state not saved: a restart would not finish this sanitize");
        }
    }

    pub fn journal_clear(&self) {
        let journal = self.journal.lock().clone();
        if let Some(Err(e)) = journal.map(|j| j.clear()) {
            tracing::warn!(error = %e, "saved sanitize state not removed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sanitize_at_a_time_with_progress_and_outcome() {
        let s = SanitizeState::default();
        assert_eq!(s.progress(), None);
        assert!(s.try_begin());
        assert!(!s.try_begin());
        assert_eq!(s.progress(), Some(0));
        s.set_progress(1, 2);
        assert_eq!(s.progress(), Some(32767));
        s.set_progress(5, 5);
        assert_eq!(s.progress(), Some(65535));
        s.end(Failure::for_ause(false));
        assert_eq!((s.progress(), s.failure()), (None, Failure::Restricted));
        assert!(s.try_begin());
        s.end(Failure::for_ause(true));
        assert_eq!(s.failure(), Failure::Unrestricted);
        s.leave_failure();
        assert_eq!(s.failure(), Failure::None);
    }
}
