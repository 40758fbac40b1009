//! A logical unit's RESERVE(6/10) reservation: which nexus holds it (read by every command's
//! conflict check: one atomic load), who that is as the unit's other ports name it, and, when
//! several servers serve the unit (gateways, one owning it at a time), the store they keep it in
//! so that it outlives a change of owner.
//!
//! Without a store everything is local, as on a single target. With one, the server that runs
//! RESERVE and RELEASE (the owner) stores the holder before answering GOOD; a reservation released
//! by a reset or by the loss of the holder's nexus is cleared from the store right after (off the
//! caller's thread: a reset may come from the store's own notification thread). Clearing is a
//! compare-and-swap on the holder, so a late clear never removes a newer reservation.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// No reservation.
const NONE: u64 = 0;
/// Held through a nexus of another server of the unit (ids count up from 1 and never get here):
/// every nexus here conflicts.
const ELSEWHERE: u64 = u64::MAX;

/// The holder of a RESERVE(6/10) reservation as every server of the unit names it: the I_T nexus's
/// initiator port (iSCSI name and ISID) and the relative target port it came through (SAM-5 4.7:
/// the two make the nexus). A nexus forwarded from another port keeps that port's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveHolder {
    pub initiator_port: String,
    pub relative_port: u16,
}

impl ReserveHolder {
    /// A nexus of `initiator_port` through `relative_port` (a proxy's, see `Nexus`), or else
    /// through the unit's own port `local_port`.
    pub(crate) fn of(initiator_port: &str, relative_port: Option<u16>, local_port: u16) -> Self {
        ReserveHolder { initiator_port: initiator_port.to_string(), relative_port: relative_port.unwrap_or(local_port) }
    }
}

/// Where the servers of one unit keep its RESERVE(6/10) holder (the daemon implements it on the
/// cluster). Both calls block for the store's round trips.
pub trait SharedReserve: Send + Sync + std::fmt::Debug {
    /// Store `holder` as the unit's, whatever was stored (the caller just took the reservation).
    fn record(&self, holder: &ReserveHolder) -> std::io::Result<()>;
    /// Store "no reservation" if `holder` is what is stored.
    fn release(&self, holder: &ReserveHolder) -> std::io::Result<()>;
    /// Start `job` where it may block: never on a thread that runs other commands.
    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        std::thread::Builder::new().name("reserve-shared".into()).spawn(job).map(|_| ())
    }
}

#[derive(Debug, Default)]
pub(crate) struct Scsi2Reservation {
    /// The holding nexus's id, `NONE` or `ELSEWHERE`: what the per-command check reads.
    nexus: AtomicU64,
    /// Who holds it (changed together with `nexus`, under this lock).
    holder: Mutex<Option<ReserveHolder>>,
    shared: Mutex<Option<Arc<dyn SharedReserve>>>,
}

/// What a reservation attempt found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Taken now: to be stored before GOOD.
    Taken,
    /// The nexus held it already.
    Held,
    /// Another nexus (here or elsewhere) holds it.
    Conflict,
}

impl Scsi2Reservation {
    /// The id of the nexus holding the reservation; `Some(u64::MAX)` when it is held through
    /// another server of the unit (no nexus here matches it).
    pub(crate) fn nexus(&self) -> Option<u64> {
        match self.nexus.load(Ordering::Acquire) {
            NONE => None,
            id => Some(id),
        }
    }

    pub(crate) fn holder(&self) -> Option<ReserveHolder> {
        self.holder.lock().clone()
    }

    pub(crate) fn shared(&self) -> Option<Arc<dyn SharedReserve>> {
        self.shared.lock().clone()
    }

    pub(crate) fn attach_shared(&self, shared: Arc<dyn SharedReserve>) {
        *self.shared.lock() = Some(shared);
    }

    pub(crate) fn claim(&self, nexus_id: u64, holder: ReserveHolder) -> Claim {
        let mut current = self.holder.lock();
        match self.nexus.load(Ordering::Acquire) {
            NONE => {
                *current = Some(holder);
                self.nexus.store(nexus_id, Ordering::Release);
                Claim::Taken
            }
            id if id == nexus_id => Claim::Held,
            _ => Claim::Conflict,
        }
    }

    /// Release what `nexus_id` holds; returns who that was (None: it held nothing).
    pub(crate) fn release(&self, nexus_id: u64) -> Option<ReserveHolder> {
        let mut current = self.holder.lock();
        if self.nexus.load(Ordering::Acquire) != nexus_id || nexus_id == NONE {
            return None;
        }
        self.nexus.store(NONE, Ordering::Release);
        current.take()
    }

    /// Release whatever is held (a reset); returns who held it.
    pub(crate) fn clear(&self) -> Option<ReserveHolder> {
        let mut current = self.holder.lock();
        self.nexus.store(NONE, Ordering::Release);
        current.take()
    }

    /// Whether `holder` still holds the reservation here.
    pub(crate) fn is_held_by(&self, holder: &ReserveHolder) -> bool {
        self.holder.lock().as_ref() == Some(holder)
    }

    /// Install what another server stored: `holder`, whose commands arrive here as those of the
    /// nexus with id `nexus` (None: through no nexus here; every nexus here conflicts).
    pub(crate) fn install(&self, held: Option<(ReserveHolder, Option<u64>)>) {
        let mut current = self.holder.lock();
        let (id, holder) = match held {
            None => (NONE, None),
            Some((holder, nexus)) => (nexus.unwrap_or(ELSEWHERE), Some(holder)),
        };
        self.nexus.store(id, Ordering::Release);
        *current = holder;
    }

    /// Clear `holder` from the store, off this thread, unless it holds the reservation again by
    /// then. Errors are logged: the next owner finds the nexus gone, or a reset clears it.
    pub(crate) fn release_shared_later(self: &Arc<Self>, holder: ReserveHolder) {
        let Some(shared) = self.shared() else { return };
        let me = self.clone();
        let store = shared.clone();
        let job = Box::new(move || {
            if me.is_held_by(&holder) {
                return;
            }
            if let Err(e) = store.release(&holder) {
                tracing::warn!(port = %holder.initiator_port, "clearing the stored RESERVE holder failed: {e}");
            }
        });
        if let Err(e) = shared.run_blocking(job) {
            tracing::warn!("clearing the stored RESERVE holder: {e}");
        }
    }
}
