//! A logical unit's persistent reservation state as the unit holds it (SPC-4 5.12): the current
//! snapshot, the flags the per-command check reads, and the APTPL store. A leaf below the unit:
//! the PERSISTENT RESERVE IN/OUT handlers (`super`) act on it.

use super::conflict::{self, Access};
use super::state::PrSnapshot;
use crate::failure::Failure;
use crate::sense::{Asc, Sense, SenseKey};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where a logical unit's persistent reservation state is kept across restarts (APTPL). The
/// daemon implements it; `save` must replace the previous state atomically.
pub trait PrPersistence: Send + Sync + std::fmt::Debug {
    /// Record `state` (called after every change while APTPL is, or was just, set).
    fn save(&self, state: &PrSnapshot) -> std::io::Result<()>;
    /// The saved state, if any.
    fn load(&self) -> std::io::Result<Option<PrSnapshot>>;
}

/// A logical unit's persistent reservations.
#[derive(Debug, Default)]
pub struct PersistentReservations {
    /// True while a reservation exists: the per-command check reads only this otherwise.
    reserved: AtomicBool,
    /// True while any registration exists (RESERVE/RELEASE then conflict, SPC-4 5.12.3).
    registered: AtomicBool,
    /// The current state, replaced whole so readers never wait for a save.
    state: Mutex<Arc<PrSnapshot>>,
    /// Serialises PERSISTENT RESERVE OUT: compute, save, install.
    update: Mutex<()>,
    persistence: Mutex<Option<Arc<dyn PrPersistence>>>,
}

impl PersistentReservations {
    /// The current state.
    pub fn snapshot(&self) -> Arc<PrSnapshot> {
        self.state.lock().clone()
    }

    /// Attach the store that APTPL saves to, and restore what it holds when that was saved with
    /// APTPL set. Returns whether state was restored.
    pub fn attach_persistence(&self, persistence: Arc<dyn PrPersistence>) -> std::io::Result<bool> {
        let _update = self.update.lock();
        let restored = match persistence.load()? {
            Some(saved) if saved.aptpl => {
                self.install(saved);
                true
            }
            _ => false,
        };
        *self.persistence.lock() = Some(persistence);
        Ok(restored)
    }

    fn install(&self, state: PrSnapshot) {
        self.reserved.store(state.reservation.is_some(), Ordering::Release);
        self.registered.store(!state.registrations.is_empty(), Ordering::Release);
        *self.state.lock() = Arc::new(state);
    }

    /// Whether any I_T nexus is registered.
    pub(crate) fn has_registrations(&self) -> bool {
        self.registered.load(Ordering::Acquire)
    }

    pub(super) fn persistence(&self) -> Option<Arc<dyn PrPersistence>> {
        self.persistence.lock().clone()
    }

    /// RESERVATION CONFLICT when `port` may not run `cdb` under the current reservation.
    pub(crate) fn check(&self, port: &str, cdb: &[u8]) -> Result<(), Failure> {
        if !self.reserved.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.allows(port, conflict::classify(cdb)) {
            Ok(())
        } else {
            Err(Failure::ReservationConflict)
        }
    }

    /// Whether `port` may access the unit as `access` under the current reservation: what
    /// EXTENDED COPY asks for each unit it reads or writes besides the one its CDB addressed.
    pub(crate) fn allows(&self, port: &str, access: Access) -> bool {
        !self.reserved.load(Ordering::Acquire) || conflict::allowed(&self.snapshot(), port, access)
    }

    /// Apply `change` to a copy of the state; save it when APTPL is or was set; install it.
    pub(super) fn update<T>(&self, change: impl FnOnce(&mut PrSnapshot) -> Result<T, Failure>) -> Result<T, Failure> {
        let _update = self.update.lock();
        let old = self.snapshot();
        let mut new = PrSnapshot::clone(&old);
        let result = change(&mut new)?;
        if new != *old {
            if new.aptpl || old.aptpl {
                if let Some(p) = self.persistence() {
                    p.save(&new).map_err(|e| {
                        tracing::error!(error = %e, "saving persistent reservations failed");
                        Failure::from(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE))
                    })?;
                }
            }
            self.install(new);
        }
        Ok(result)
    }
}
