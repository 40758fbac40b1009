//! A logical unit's persistent reservation state as the unit holds it (SPC-4 5.12): the current
//! snapshot, the flags the per-command check reads, and the APTPL store. A leaf below the unit:
//! the PERSISTENT RESERVE IN/OUT handlers (`super`) act on it.
//!
//! A unit served by several daemons (gateways of one image) keeps the state in a `SharedPr`
//! instead: every change is computed on the latest shared state and committed atomically, and the
//! commit returns only once every other server holds the new state. The local copy stays what the
//! per-command check reads, so no command but PERSISTENT RESERVE IN/OUT waits for the store, and
//! those wait off the threads that run commands (`off_runtime`): a slow store never stalls the
//! other commands those threads carry.

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

/// What a change did besides the new state, for the servers of a shared state to act on for
/// their own I_T nexuses: unit attentions to establish per initiator port (SPC-4 5.12.11) and the
/// initiator ports whose tasks PREEMPT AND ABORT aborts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrEvents {
    pub notices: Vec<(String, Asc)>,
    pub aborted: Vec<String>,
}

impl PrEvents {
    pub fn is_empty(&self) -> bool {
        self.notices.is_empty() && self.aborted.is_empty()
    }
}

/// Persistent reservations shared by several servers of one logical unit (the daemon implements
/// it on the cluster). Versions grow with every commit.
pub trait SharedPr: Send + Sync + std::fmt::Debug {
    /// The latest state and its version.
    fn latest(&self) -> std::io::Result<(PrSnapshot, u64)>;
    /// Replace the state of `version` by `state`, telling the other servers `events`. `Ok(None)`
    /// when another server changed the state since `version` (nothing written); `Ok(Some(v))`
    /// once committed as version `v` and installed by every other server that answers.
    fn commit(&self, version: u64, state: &PrSnapshot, events: &PrEvents) -> std::io::Result<Option<u64>>;
    /// Start `job`, which calls `latest` and `commit` and so may block for the store's round
    /// trips, somewhere it may block: never on a thread that runs other commands. The default is
    /// a thread of its own; a daemon with a pool of threads for blocking work uses that.
    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        std::thread::Builder::new().name("pr-shared".into()).spawn(job).map(|_| ())
    }
}

/// How many times a change is recomputed when other servers keep changing the state under it.
const SHARED_ATTEMPTS: usize = 16;

fn store_failure(what: &str, e: &std::io::Error) -> Failure {
    tracing::error!(error = %e, "{what} persistent reservations failed");
    Failure::from(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE))
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
    shared: Mutex<Option<Arc<dyn SharedPr>>>,
    /// The shared state's version the local copy holds (0 without a shared state).
    version: Mutex<u64>,
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

    /// Keep the state in `shared` from now on, starting from its latest state. Returns that state.
    pub fn attach_shared(&self, shared: Arc<dyn SharedPr>) -> std::io::Result<Arc<PrSnapshot>> {
        let _update = self.update.lock();
        let (state, version) = shared.latest()?;
        *self.shared.lock() = Some(shared);
        self.install_version(state, version);
        Ok(self.snapshot())
    }

    /// Another server committed `state` as `version`: install it unless the local copy is newer
    /// already (notifications may arrive out of order). Returns whether it was installed.
    pub fn install_shared(&self, state: PrSnapshot, version: u64) -> bool {
        self.install_version(state, version)
    }

    fn install_version(&self, state: PrSnapshot, version: u64) -> bool {
        let mut current = self.version.lock();
        if version < *current {
            return false;
        }
        *current = version;
        self.install(state);
        true
    }

    fn shared(&self) -> Option<Arc<dyn SharedPr>> {
        self.shared.lock().clone()
    }

    /// Run `work` (a `refresh` or an `update`, with what it needs owned) where the shared store
    /// says blocking work goes, and await its result; at once, on this thread, when the state is
    /// this unit's own (nothing to wait for but an APTPL save to a local file). If the caller
    /// stops waiting (the command was aborted), `work` still runs to its end: a change committed
    /// to the store is never half done.
    pub(super) async fn off_runtime<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let Some(shared) = self.shared() else { return work() };
        let (done, result) = tokio::sync::oneshot::channel();
        let job = Box::new(move || {
            let _ = done.send(work());
        });
        shared.run_blocking(job).map_err(|e| store_failure("starting the work on", &e))?;
        // The job ends by sending; dropped unsent only if it panicked.
        result.await.unwrap_or_else(|_| Err(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE).into()))
    }

    /// Whether the state is kept with other servers (APTPL is then always possible).
    pub(super) fn is_shared(&self) -> bool {
        self.shared.lock().is_some()
    }

    /// Read the latest shared state into the local copy (PERSISTENT RESERVE IN answers from it, so
    /// that a notification this server missed cannot make it report an old state).
    pub(super) fn refresh(&self) -> Result<(), Failure> {
        let Some(shared) = self.shared() else { return Ok(()) };
        let _update = self.update.lock();
        let (state, version) = shared.latest().map_err(|e| store_failure("reading", &e))?;
        self.install_version(state, version);
        Ok(())
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

    /// Apply `change` to a copy of the state; save it when APTPL is or was set; install it. A
    /// shared state is changed on its latest version and committed with `events` of the result.
    pub(super) fn update<T>(
        &self,
        mut change: impl FnMut(&mut PrSnapshot) -> Result<T, Failure>,
        events: impl Fn(&T) -> PrEvents,
    ) -> Result<T, Failure> {
        let _update = self.update.lock();
        if let Some(shared) = self.shared() {
            for _ in 0..SHARED_ATTEMPTS {
                let (latest, version) = shared.latest().map_err(|e| store_failure("reading", &e))?;
                self.install_version(latest.clone(), version);
                let mut new = latest.clone();
                let result = change(&mut new)?;
                if new == latest {
                    return Ok(result);
                }
                match shared.commit(version, &new, &events(&result)).map_err(|e| store_failure("saving", &e))? {
                    Some(committed) => {
                        self.install_version(new, committed);
                        return Ok(result);
                    }
                    // Another server changed it meanwhile: compute again on its state.
                    None => continue,
                }
            }
            tracing::error!("persistent reservations: the shared state kept changing; giving up");
            return Err(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE).into());
        }
        let old = self.snapshot();
        let mut new = PrSnapshot::clone(&old);
        let result = change(&mut new)?;
        if new != *old {
            if new.aptpl || old.aptpl {
                if let Some(p) = self.persistence() {
                    p.save(&new).map_err(|e| store_failure("saving", &e))?;
                }
            }
            self.install(new);
        }
        Ok(result)
    }
}
