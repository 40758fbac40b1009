//! A logical unit's RESERVE(6/10) reservation: which nexus holds it (read by every command's
//! conflict check: one atomic load), who that is as the unit's other ports name it, and, when
//! several servers serve the unit (gateways, one owning it at a time), the store they keep it in
//! so that it outlives a change of owner.
//!
//! Without a store everything is local, as on a single target. With one, the server that runs
//! RESERVE and RELEASE (the owner) stores the holder before answering GOOD; a reservation released
//! by a reset or by the loss of the holder's nexus is cleared from the store right after (off the
//! caller's thread: a reset may come from the store's own notification thread). Each
//! reservation taken carries a token of its own, and clearing is a compare-and-swap on the holder
//! and its token, so a late clear never removes a newer reservation, not even one that the same
//! nexus took again.
//!
//! A released holder must never come back at the next server to load it, so a clear that fails
//! (the store out of reach, or busy) is not dropped: it is tried again, less and less often,
//! until it lands, the unit is gone, or the store says it never can (its value unreadable, or
//! the store closed). Meanwhile a copy of it read from the store (another server's, or the one
//! this server loads when it takes over) is stale: not installed, cleared again.
//! One worker per unit clears them all, whatever their number; a clear asked for while one runs
//! makes it go round once more, so a holder stored again between its write and its end is not
//! left behind.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// No reservation.
const NONE: u64 = 0;
/// Held through a nexus of another server of the unit (ids count up from 1 and never get here):
/// every nexus here conflicts.
const ELSEWHERE: u64 = u64::MAX;
/// The pause after a clear of the store failed, doubled after each failure up to `RETRY_MAX`.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The holder of a RESERVE(6/10) reservation as every server of the unit names it: the I_T nexus's
/// initiator port (iSCSI name and ISID) and the relative target port it came through (SAM-5 4.7:
/// the two make the nexus). A nexus forwarded from another port keeps that port's number.
/// Holders are equal only with equal tokens: one nexus's two reservations, one after the other,
/// are two holders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveHolder {
    pub initiator_port: String,
    pub relative_port: u16,
    /// Drawn at random for each reservation taken (never 0: what a holder stored without one
    /// reads as), so that its store's clear can tell it from the nexus's next one.
    pub token: u64,
}

impl ReserveHolder {
    /// A new reservation of a nexus of `initiator_port` through `relative_port` (a proxy's, see
    /// `Nexus`), or else through the unit's own port `local_port`.
    pub(crate) fn of(initiator_port: &str, relative_port: Option<u16>, local_port: u16) -> Self {
        ReserveHolder {
            initiator_port: initiator_port.to_string(),
            relative_port: relative_port.unwrap_or(local_port),
            token: rand::random::<u64>().max(1),
        }
    }

    /// Whether `self` and `other` name the same I_T nexus, whichever reservation each is.
    pub fn same_nexus(&self, other: &ReserveHolder) -> bool {
        self.initiator_port == other.initiator_port && self.relative_port == other.relative_port
    }
}

/// Where the servers of one unit keep its RESERVE(6/10) holder (the daemon implements it on the
/// cluster). Both calls block for the store's round trips.
pub trait SharedReserve: Send + Sync + std::fmt::Debug {
    /// Store `holder` as the unit's, whatever was stored (the caller just took the reservation).
    /// An error that certainly wrote nothing is marked by `not_written` (no clear follows it);
    /// any other may have landed all the same (an answer lost on the way back).
    fn record(&self, holder: &ReserveHolder) -> std::io::Result<()>;
    /// Store "no reservation" if `holder` is what is stored, token included: a later
    /// reservation of the same nexus stays.
    fn release(&self, holder: &ReserveHolder) -> std::io::Result<()>;
    /// Start `job` where it may block: never on a thread that runs other commands.
    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        std::thread::Builder::new().name("reserve-shared".into()).spawn(job).map(|_| ())
    }
}

/// A store's failure that wrote nothing (see `SharedReserve::record`).
#[derive(Debug)]
struct NotWritten(std::io::Error);

impl std::fmt::Display for NotWritten {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for NotWritten {}

/// Mark `e` as a failure of `SharedReserve::record` that certainly wrote nothing (its kind stays).
pub fn not_written(e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), NotWritten(e))
}

/// Whether `e` was marked by `not_written`.
pub(crate) fn is_not_written(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<NotWritten>())
}

#[derive(Debug, Default)]
pub(crate) struct Scsi2Reservation {
    /// The holding nexus's id, `NONE` or `ELSEWHERE`: what the per-command check reads.
    nexus: AtomicU64,
    /// Who holds it (changed together with `nexus`, under this lock).
    holder: Mutex<Option<ReserveHolder>>,
    shared: Mutex<Option<Arc<dyn SharedReserve>>>,
    /// The clears of the store asked for, and whether the unit's worker runs them.
    clearing: Mutex<Clearing>,
    /// The store write of the reservation just taken, while it runs: its token, and where its
    /// outcome shows (`Some(true)`: stored).
    recording: Mutex<Option<(u64, watch::Receiver<Option<bool>>)>>,
}

/// The holders to clear from the store, each with the number of clears asked for it (a holder
/// is done once a clear started after the last of them landed), and whether a worker runs.
#[derive(Debug, Default)]
struct Clearing {
    holders: Vec<(ReserveHolder, u64)>,
    worker: bool,
}

/// What a reservation attempt found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// Taken now; with a store, to be stored before GOOD (finish the `Recording`).
    Taken(Option<Recording>),
    /// The nexus held it already; with the outcome of its store write still to come, if it is.
    Held(Option<watch::Receiver<Option<bool>>>),
    /// Another nexus (here or elsewhere) holds it.
    Conflict,
}

/// The store write of a reservation just taken. A RESERVE of the same nexus meanwhile waits for
/// its outcome rather than answering GOOD for a reservation that may be dropped. A failed write
/// releases that reservation (by its token: whatever the nexus holds by then stays); dropped
/// unfinished (the write never ran), it failed.
#[derive(Debug)]
pub(crate) struct Recording {
    state: Arc<Scsi2Reservation>,
    holder: ReserveHolder,
    outcome: watch::Sender<Option<bool>>,
    done: bool,
}

impl Recording {
    /// The write ended: `stored` or not.
    pub(crate) fn finish(mut self, stored: bool) {
        self.end(stored);
    }

    fn end(&mut self, stored: bool) {
        self.done = true;
        {
            let mut current = self.state.holder.lock();
            if !stored && current.as_ref() == Some(&self.holder) {
                self.state.nexus.store(NONE, Ordering::Release);
                *current = None;
            }
            let mut recording = self.state.recording.lock();
            if recording.as_ref().is_some_and(|(token, _)| *token == self.holder.token) {
                *recording = None;
            }
        }
        self.outcome.send_replace(Some(stored));
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        if !self.done {
            self.end(false);
        }
    }
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

    pub(crate) fn claim(self: &Arc<Self>, nexus_id: u64, holder: ReserveHolder) -> Claim {
        let mut current = self.holder.lock();
        match self.nexus.load(Ordering::Acquire) {
            NONE => {
                *current = Some(holder.clone());
                self.nexus.store(nexus_id, Ordering::Release);
                if self.shared.lock().is_none() {
                    return Claim::Taken(None);
                }
                let (outcome, pending) = watch::channel(None);
                *self.recording.lock() = Some((holder.token, pending));
                Claim::Taken(Some(Recording { state: self.clone(), holder, outcome, done: false }))
            }
            id if id == nexus_id => {
                let token = current.as_ref().map(|h| h.token);
                let recording = self.recording.lock();
                Claim::Held(recording.as_ref().filter(|(t, _)| Some(*t) == token).map(|(_, rx)| rx.clone()))
            }
            _ => Claim::Conflict,
        }
    }

    /// Who holds the reservation if the nexus `nexus_id` does.
    pub(crate) fn holder_of(&self, nexus_id: u64) -> Option<ReserveHolder> {
        let current = self.holder.lock();
        (nexus_id != NONE && self.nexus.load(Ordering::Acquire) == nexus_id).then(|| current.clone()).flatten()
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

    /// Release the reservation if `holder` holds it, whichever nexus here it arrives through.
    pub(crate) fn release_holder(&self, holder: &ReserveHolder) {
        let mut current = self.holder.lock();
        if current.as_ref() == Some(holder) {
            self.nexus.store(NONE, Ordering::Release);
            *current = None;
        }
    }

    /// Whether `holder` still holds the reservation here.
    pub(crate) fn is_held_by(&self, holder: &ReserveHolder) -> bool {
        self.holder.lock().as_ref() == Some(holder)
    }

    /// Install what another server stored: `holder`, whose commands arrive here as those of the
    /// nexus with id `nexus` (None: through no nexus here; every nexus here conflicts). A holder
    /// this server is clearing is a stale copy of a released one: none is installed, and the
    /// clear goes round again. Returns whether `held` was installed.
    pub(crate) fn install(self: &Arc<Self>, held: Option<(ReserveHolder, Option<u64>)>) -> bool {
        // The list's lock first, as the clearing worker takes them: a clear that ends meanwhile
        // ends before the stale copy could be installed, or sees it.
        let clearing = self.clearing.lock();
        let mut current = self.holder.lock();
        let stale = held.as_ref().map(|(h, _)| h).filter(|h| clearing.holders.iter().any(|(c, _)| c == *h)).cloned();
        let (id, holder) = match held {
            Some(_) if stale.is_some() => (NONE, None),
            None => (NONE, None),
            Some((holder, nexus)) => (nexus.unwrap_or(ELSEWHERE), Some(holder)),
        };
        self.nexus.store(id, Ordering::Release);
        *current = holder;
        drop((current, clearing));
        match stale {
            Some(h) => {
                tracing::info!(port = %h.initiator_port, "a RESERVE holder being cleared found stored again: cleared");
                self.release_shared_later(h);
                false
            }
            None => true,
        }
    }

    /// Clear `holder` from the store, off this thread; retried until it lands (see the module's
    /// comment). One worker per unit clears every holder asked for, so retries never hold more
    /// than one thread.
    pub(crate) fn release_shared_later(self: &Arc<Self>, holder: ReserveHolder) {
        let Some(shared) = self.shared() else { return };
        {
            let mut clearing = self.clearing.lock();
            match clearing.holders.iter_mut().find(|(h, _)| *h == holder) {
                Some((_, asked)) => *asked += 1,
                None => clearing.holders.push((holder, 1)),
            }
            if std::mem::replace(&mut clearing.worker, true) {
                return;
            }
        }
        let (me, store) = (Arc::downgrade(self), shared.clone());
        let job = Box::new(move || clear_until_done(&me, store.as_ref(), &std::thread::sleep));
        if let Err(e) = shared.run_blocking(job) {
            // The next clear asked for starts it again, for these holders too.
            self.clearing.lock().worker = false;
            tracing::error!("clearing the stored RESERVE holder: {e}");
        }
    }

    /// Whether a clear of the store is still under way (tests).
    #[cfg(test)]
    pub(crate) fn clearing(&self) -> bool {
        let clearing = self.clearing.lock();
        !clearing.holders.is_empty() || clearing.worker
    }
}

/// Whether a failed clear can never succeed however often it is tried: the stored value cannot
/// be read as a holder (garbage, or a newer format), or the store is closed for good.
fn permanent(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::InvalidData | std::io::ErrorKind::NotConnected)
}

/// The unit's clearing worker started by `release_shared_later`: clears from `store` every
/// holder asked for until none is left; `pause` waits after a round with a failure.
fn clear_until_done(state: &Weak<Scsi2Reservation>, store: &dyn SharedReserve, pause: &dyn Fn(Duration)) {
    let mut wait = RETRY_FIRST;
    let mut failures = 0u32;
    loop {
        let Some(me) = state.upgrade() else { return };
        // Under the list's lock, so that a clear asked for from now on finds the worker
        // running (or, once it ended, starts another).
        let round = {
            let mut clearing = me.clearing.lock();
            if clearing.holders.is_empty() {
                clearing.worker = false;
                return;
            }
            clearing.holders.clone()
        };
        let mut failed = false;
        for (holder, asked) in round {
            let result = store.release(&holder);
            let mut clearing = me.clearing.lock();
            match result {
                // Asked again while this write ran (that holder may have been stored after it):
                // it stays for another round.
                Ok(()) => clearing.holders.retain(|(h, n)| *h != holder || *n != asked),
                Err(e) if permanent(&e) => {
                    tracing::error!(port = %holder.initiator_port, "clearing the stored RESERVE holder: {e}");
                    clearing.holders.retain(|(h, _)| *h != holder);
                }
                Err(e) => {
                    failed = true;
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(port = %holder.initiator_port, failures,
                            "clearing the stored RESERVE holder failed, trying again: {e}");
                    }
                }
            }
        }
        drop(me);
        if failed {
            pause(wait);
            wait = (wait * 2).min(RETRY_MAX);
        } else {
            if failures > 0 {
                tracing::info!(failures, "the stored RESERVE holders cleared at last");
            }
            (wait, failures) = (RETRY_FIRST, 0);
        }
    }
}

#[cfg(test)]
mod tests;
