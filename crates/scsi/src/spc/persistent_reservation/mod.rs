//! Persistent reservations (SPC-4 5.12, 6.15, 6.16): PERSISTENT RESERVE IN and OUT, the conflict
//! check every command passes, and the hook that saves the state when APTPL is set.
//!
//! Layout: `state` holds the registrations and reservation and the rules of each service action;
//! `conflict` says which commands a non-holder may run; `pr_in` and `pr_out` speak the commands'
//! formats; `transport_id` the iSCSI TransportIDs. This module knows no files: the daemon attaches
//! a `PrPersistence` to a logical unit and the state is saved through it.
//!
//! One target port per target (the iSCSI target portal group), so an I_T nexus is named by its
//! initiator port ("iqn...,i,0x<ISID>"); registrations outlive the nexus (SPC-4 5.12.2) and
//! apply again when the same initiator port logs in.

mod conflict;
pub(crate) mod pr_in;
mod pr_out;
mod state;
#[cfg(test)]
mod tests;
mod transport_id;

pub(crate) use conflict::Access;
pub use state::{PrRegistration, PrReservation, PrSnapshot, PrType};

use crate::cdb::{be16, Command};
use crate::lun::LogicalUnit;
use crate::sense::{Asc, Sense, SenseKey};
use crate::target::{Ctx, Failure};
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

    fn persistence(&self) -> Option<Arc<dyn PrPersistence>> {
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
    fn update<T>(&self, change: impl FnOnce(&mut PrSnapshot) -> Result<T, Failure>) -> Result<T, Failure> {
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

/// PERSISTENT RESERVE IN CDB (SPC-4 6.15.1): service action and ALLOCATION LENGTH.
pub(crate) fn decode_in(cdb: &[u8]) -> Result<Command, Sense> {
    Ok(Command::PersistentReserveIn { service_action: cdb[1] & 0x1f, alloc_len: be16(cdb, 7) })
}

/// PERSISTENT RESERVE OUT CDB (SPC-4 6.16.1): service action, SCOPE, TYPE, PARAMETER LIST LENGTH.
pub(crate) fn decode_out(cdb: &[u8]) -> Result<Command, Sense> {
    Ok(Command::PersistentReserveOut {
        service_action: cdb[1] & 0x1f,
        scope: cdb[2] >> 4,
        pr_type: cdb[2] & 0x0f,
        param_len: u32::from_be_bytes([cdb[5], cdb[6], cdb[7], cdb[8]]),
    })
}

/// The conflict check of every command on a logical unit (after decoding, SPC-4 5.12.1).
pub(crate) fn check(lu: &LogicalUnit, ctx: &Ctx<'_>, cdb: &[u8]) -> Result<(), Failure> {
    lu.persistent_reservations().check(&ctx.nexus.initiator_port, cdb)
}

pub(crate) fn reserve_in(
    lu: &LogicalUnit,
    service_action: u8,
    alloc_len: u16,
    data_in: &mut Vec<u8>,
) -> Result<(), Failure> {
    let pr = lu.persistent_reservations();
    let caps = pr_in::Capabilities { ptpl_capable: pr.persistence().is_some() };
    pr_in::reserve_in(&pr.snapshot(), caps, service_action, alloc_len, data_in)?;
    Ok(())
}

pub(crate) fn reserve_out(
    lu: &LogicalUnit,
    ctx: &Ctx<'_>,
    service_action: u8,
    scope: u8,
    pr_type: u8,
    param_len: u32,
    data_out: &[u8],
) -> Result<(), Failure> {
    let pr = lu.persistent_reservations();
    let cdb = pr_out::ProutCdb { service_action, scope, pr_type, param_len };
    let me = ctx.nexus.initiator_port.as_str();
    let aptpl_supported = pr.persistence().is_some();
    let outcome = pr.update(|state| pr_out::reserve_out(state, me, &cdb, data_out, aptpl_supported))?;
    // Unit attentions go to every nexus of each port named, never to the sender's own nexus.
    for nexus in ctx.target.nexuses() {
        if nexus.id == ctx.nexus.id {
            continue;
        }
        for (port, asc) in &outcome.notices {
            if state::same_port(port, &nexus.initiator_port) {
                nexus.unit_attentions.add(ctx.lun, *asc);
            }
        }
    }
    if !outcome.aborted.is_empty() {
        // SPC-4 5.12.11.2.6: the preempted nexuses lose their tasks on this LUN (aborted without a
        // response, TAS 0; see `Target::preempt_and_abort`).
        for nexus in ctx.target.nexuses() {
            if nexus.id == ctx.nexus.id || !outcome.aborted.iter().any(|p| state::same_port(p, &nexus.initiator_port)) {
                continue;
            }
            let aborted = ctx.target.preempt_and_abort(&nexus, ctx.lun);
            tracing::debug!(nexus = nexus.id, aborted, lun = ctx.lun, "PREEMPT AND ABORT");
        }
    }
    Ok(())
}
