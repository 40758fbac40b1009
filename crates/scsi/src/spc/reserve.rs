//! RESERVE(6/10) and RELEASE(6/10) (SPC-2 7.21, 7.24): a simple whole-unit reservation held by one
//! I_T nexus. Other nexuses get RESERVATION CONFLICT for commands not allowed under a reservation
//! (the opcode table's RESERVATION_OK flag). Cleared by RELEASE from the holder, by the holder's
//! nexus going away, and by logical unit or target reset.
//!
//! With persistent reservations (SPC-4 5.12.3): while any I_T nexus is registered, RESERVE and
//! RELEASE from every nexus end in RESERVATION CONFLICT, so the two schemes never mix. (The other
//! direction, PERSISTENT RESERVE from a nexus other than the RESERVE holder, conflicts through the
//! opcode table like any command without RESERVATION_OK.)
//!
//! When several servers serve the unit (`SharedReserve`), the holder is stored where the next
//! owner finds it before RESERVE or RELEASE answers GOOD (`reserve_state`).

use crate::cdb::NoFields;
use crate::failure::Failure;
use crate::lun::LogicalUnit;
use crate::opcodes::{io, Handler};
use crate::sense::{Asc, Sense, SenseKey};
use crate::spc::reserve_state::{is_not_written, Claim, ReserveHolder};
use crate::target::Ctx;
use std::sync::Arc;

fn store_failure(what: &str, e: &std::io::Error) -> Failure {
    tracing::error!(error = %e, "{what} the RESERVE holder failed");
    Failure::from(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE))
}

/// Run `work` where a store's blocking work runs (`start` hands it there: the store's
/// `run_blocking`) and await it. If the command is aborted meanwhile, `work` still runs to its
/// end: a store left half changed is worse than a late one. Shared with MODE SELECT.
pub(crate) async fn off_runtime<T: Send + 'static>(
    start: impl FnOnce(Box<dyn FnOnce() + Send>) -> std::io::Result<()>,
    work: impl FnOnce() -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    let (done, result) = tokio::sync::oneshot::channel();
    let job = Box::new(move || {
        let _ = done.send(work());
    });
    if let Err(e) = start(job) {
        tracing::error!(error = %e, "starting a job of the unit's shared store failed");
        return Err(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE).into());
    }
    result.await.unwrap_or_else(|_| Err(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE).into()))
}

pub(crate) async fn reserve(lu: &Arc<LogicalUnit>, ctx: &Ctx<'_>) -> Result<(), Failure> {
    if lu.persistent_reservations().has_registrations() {
        return Err(Failure::ReservationConflict);
    }
    let state = lu.scsi2_reservation().clone();
    let nexus = ctx.nexus;
    let holder = ReserveHolder::of(&nexus.initiator_port, nexus.relative_port, lu.relative_target_port());
    let recording = match state.claim(ctx.nexus.id, holder.clone()) {
        Claim::Conflict => return Err(Failure::ReservationConflict),
        Claim::Held(None) => return Ok(()),
        // Its RESERVE still being stored (that command aborted, say, and this one its retry):
        // GOOD only once it is.
        Claim::Held(Some(mut pending)) => {
            let stored = pending.wait_for(Option::is_some).await.is_ok_and(|outcome| *outcome == Some(true));
            return if stored {
                Ok(())
            } else {
                Err(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE).into())
            };
        }
        Claim::Taken(None) => return Ok(()),
        Claim::Taken(Some(recording)) => recording,
    };
    let Some(shared) = state.shared() else { return Ok(()) };
    // Stored before GOOD: an owner that dies right after leaves the holder to the next one.
    let store = shared.clone();
    off_runtime(
        |job| shared.run_blocking(job),
        move || match store.record(&holder) {
            Ok(()) => {
                recording.finish(true);
                // A reset (or the nexus's loss) that came meanwhile may have cleared the store
                // before this write: clear it again, until that lands.
                if !state.is_held_by(&holder) {
                    state.release_shared_later(holder);
                }
                Ok(())
            }
            Err(e) => {
                // This reservation goes (not whatever the nexus may hold by now: a reset and a
                // new RESERVE may have come meanwhile). Unless the store says it wrote nothing,
                // the write may have landed all the same (an answer lost on the way back): a
                // holder that never got GOOD must not be left stored.
                recording.finish(false);
                if !is_not_written(&e) {
                    state.release_shared_later(holder);
                }
                Err(store_failure("storing", &e))
            }
        },
    )
    .await
}

/// Releasing a reservation one does not hold is not an error (SPC-2 7.24).
pub(crate) async fn release(lu: &Arc<LogicalUnit>, ctx: &Ctx<'_>) -> Result<(), Failure> {
    if lu.persistent_reservations().has_registrations() {
        return Err(Failure::ReservationConflict);
    }
    let state = lu.scsi2_reservation().clone();
    let Some(shared) = state.shared() else {
        state.release(ctx.nexus.id);
        return Ok(());
    };
    let Some(holder) = state.holder_of(ctx.nexus.id) else { return Ok(()) };
    // Cleared from the store first: should that fail, the reservation stays where it is, as the
    // next owner would find it, and the initiator may try again.
    let store = shared.clone();
    off_runtime(
        |job| shared.run_blocking(job),
        move || {
            store.release(&holder).map_err(|e| store_failure("clearing", &e))?;
            // That reservation only: a reset and a new RESERVE meanwhile leave the new one.
            state.release_holder(&holder);
            Ok(())
        },
    )
    .await
}

pub(crate) const RESERVE: Handler = io!(NoFields, |req, NoFields| reserve(req.lu, req.ctx));
pub(crate) const RELEASE: Handler = io!(NoFields, |req, NoFields| release(req.lu, req.ctx));

#[cfg(test)]
mod tests {
    use crate::test_util::*;
    use crate::ScsiStatus;

    #[test]
    fn reservation_conflicts_for_others_only() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        assert_good(&t.run(&[0x16, 0, 0, 0, 0, 0]).0);
        let (r, _) = t.run_on(&other, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[]);
        assert_eq!(r.status, ScsiStatus::ReservationConflict);
        assert_eq!(r.sense, None);
        assert_good(&t.run_on(&other, &[0x12, 0, 0, 0, 36, 0], &[]).0);
        assert_eq!(t.run_on(&other, &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]).0.status, ScsiStatus::ReservationConflict);
        // RELEASE by a non-holder succeeds and changes nothing.
        assert_good(&t.run_on(&other, &[0x17, 0, 0, 0, 0, 0], &[]).0);
        assert_eq!(t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0.status, ScsiStatus::ReservationConflict);
        assert_good(&t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]).0);
        assert_good(&t.run(&[0x17, 0, 0, 0, 0, 0]).0);
        assert_good(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0);
    }

    #[test]
    fn lun_reset_releases() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        assert_good(&t.run(&[0x16, 0, 0, 0, 0, 0]).0);
        t.target.lun_reset(1).unwrap();
        t.clear_ua(&other);
        assert_good(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0);
    }

    /// A store of the holder in memory, failing writes when told to.
    #[derive(Debug, Default)]
    struct Store {
        holder: parking_lot::Mutex<Option<crate::ReserveHolder>>,
        failing: std::sync::atomic::AtomicBool,
        /// Writes land, but their answer is an error (lost on the way back).
        answer_lost: std::sync::atomic::AtomicBool,
    }

    impl crate::SharedReserve for Store {
        fn record(&self, holder: &crate::ReserveHolder) -> std::io::Result<()> {
            if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(std::io::Error::other("down"));
            }
            *self.holder.lock() = Some(holder.clone());
            if self.answer_lost.load(std::sync::atomic::Ordering::Relaxed) {
                return Err(std::io::Error::other("timed out"));
            }
            Ok(())
        }

        fn release(&self, holder: &crate::ReserveHolder) -> std::io::Result<()> {
            let mut stored = self.holder.lock();
            if stored.as_ref() == Some(holder) {
                *stored = None;
            }
            Ok(())
        }
    }

    #[test]
    fn a_shared_holder_is_stored_before_good_and_cleared_by_release_and_reset() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        let store = std::sync::Arc::new(Store::default());
        t.lu.attach_shared_reserve(store.clone());
        let me = crate::ReserveHolder { initiator_port: t.nexus.initiator_port.clone(), relative_port: 1, token: 0 };
        assert_good(&t.run(&[0x16, 0, 0, 0, 0, 0]).0);
        let stored = store.holder.lock().clone().expect("stored");
        assert!(stored.same_nexus(&me), "{stored:?}");
        assert_eq!(t.lu.reserve_holder(), Some(stored.clone()));
        assert_eq!(t.run_on(&other, &[0x16, 0, 0, 0, 0, 0], &[]).0.status, ScsiStatus::ReservationConflict);
        assert_eq!(*store.holder.lock(), Some(stored));
        assert_good(&t.run(&[0x17, 0, 0, 0, 0, 0]).0);
        assert_eq!(*store.holder.lock(), None);
        // A store that cannot be written: no GOOD, and no reservation.
        store.failing.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(t.run(&[0x16, 0, 0, 0, 0, 0]).0.status, ScsiStatus::CheckCondition);
        assert_good(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0);
        store.failing.store(false, std::sync::atomic::Ordering::Relaxed);
        // A reset clears the store too (right after, off the resetting thread).
        assert_good(&t.run(&[0x16, 0, 0, 0, 0, 0]).0);
        t.target.lun_reset(1).unwrap();
        let started = std::time::Instant::now();
        while store.holder.lock().is_some() {
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "the reset left the holder stored");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn a_store_that_took_a_reserve_it_answered_with_an_error_is_cleared() {
        let t = TestLun::disk(1 << 20);
        let store = std::sync::Arc::new(Store::default());
        t.lu.attach_shared_reserve(store.clone());
        store.answer_lost.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(t.run(&[0x16, 0, 0, 0, 0, 0]).0.status, ScsiStatus::CheckCondition);
        let started = std::time::Instant::now();
        while store.holder.lock().is_some() {
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "a refused RESERVE left its holder stored");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(t.lu.reserve_holder(), None);
    }

    /// A store whose first `record` waits for `open` and then fails (the cluster contended,
    /// then out of reach); the others land.
    #[derive(Debug, Default)]
    struct SlowFirst {
        inner: Store,
        records: std::sync::atomic::AtomicUsize,
        open: parking_lot::Mutex<bool>,
        opened: parking_lot::Condvar,
    }

    impl SlowFirst {
        fn open(&self) {
            *self.open.lock() = true;
            self.opened.notify_all();
        }

        fn wait_for_first_record(&self) {
            let started = std::time::Instant::now();
            while self.records.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                assert!(started.elapsed() < std::time::Duration::from_secs(5), "no record");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
    }

    impl crate::SharedReserve for SlowFirst {
        fn record(&self, holder: &crate::ReserveHolder) -> std::io::Result<()> {
            if self.records.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                let mut open = self.open.lock();
                while !*open {
                    self.opened.wait(&mut open);
                }
                return Err(std::io::Error::other("busy"));
            }
            self.inner.record(holder)
        }

        fn release(&self, holder: &crate::ReserveHolder) -> std::io::Result<()> {
            self.inner.release(holder)
        }
    }

    fn run_in_thread(
        t: &TestLun,
        nexus: &std::sync::Arc<crate::Nexus>,
        cdb: [u8; 6],
    ) -> std::thread::JoinHandle<crate::TaskResult> {
        let (target, nexus, lun) = (t.target.clone(), nexus.clone(), t.lun);
        std::thread::spawn(move || block_on(target.execute(&nexus, lun, &cdb, &[], &mut Vec::new())))
    }

    #[test]
    fn a_reserve_retried_while_the_first_is_being_stored_answers_with_its_outcome() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        let store = std::sync::Arc::new(SlowFirst::default());
        t.lu.attach_shared_reserve(store.clone());
        // RESERVE #1 is slow to store; the initiator aborts it (the write runs on) and retries.
        let first = run_in_thread(&t, &t.nexus, [0x16, 0, 0, 0, 0, 0]);
        store.wait_for_first_record();
        let retry = run_in_thread(&t, &t.nexus, [0x16, 0, 0, 0, 0, 0]);
        std::thread::sleep(std::time::Duration::from_millis(100));
        store.open();
        assert_eq!(first.join().unwrap().status, ScsiStatus::CheckCondition);
        let retry = retry.join().unwrap();
        // The first write failed and its reservation is gone: the retry must not have got GOOD.
        assert_eq!(t.lu.reserve_holder(), None);
        assert_eq!(retry.status, ScsiStatus::CheckCondition, "GOOD for a reservation dropped right after");
        assert_good(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0);
    }

    #[test]
    fn a_failed_store_write_leaves_the_nexus_newer_reservation() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        let store = std::sync::Arc::new(SlowFirst::default());
        t.lu.attach_shared_reserve(store.clone());
        let first = run_in_thread(&t, &t.nexus, [0x16, 0, 0, 0, 0, 0]);
        store.wait_for_first_record();
        // A reset releases #1 while it is being stored; the nexus reserves again (stored, GOOD).
        t.target.lun_reset(1).unwrap();
        t.clear_ua(&t.nexus);
        t.clear_ua(&other);
        assert_good(&t.run(&[0x16, 0, 0, 0, 0, 0]).0);
        let second = t.lu.reserve_holder().expect("held");
        store.open();
        assert_eq!(first.join().unwrap().status, ScsiStatus::CheckCondition);
        assert_eq!(t.lu.reserve_holder(), Some(second.clone()), "#1's failure released #2");
        assert_eq!(t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0.status, ScsiStatus::ReservationConflict);
        assert_eq!(*store.inner.holder.lock(), Some(second));
    }

    /// A store whose first `release` waits for `open` before it takes effect.
    #[derive(Debug, Default)]
    struct SlowFirstRelease {
        inner: Store,
        releases: std::sync::atomic::AtomicUsize,
        open: parking_lot::Mutex<bool>,
        opened: parking_lot::Condvar,
    }

    impl crate::SharedReserve for SlowFirstRelease {
        fn record(&self, holder: &crate::ReserveHolder) -> std::io::Result<()> {
            self.inner.record(holder)
        }

        fn release(&self, holder: &crate::ReserveHolder) -> std::io::Result<()> {
            if self.releases.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                let mut open = self.open.lock();
                while !*open {
                    self.opened.wait(&mut open);
                }
            }
            self.inner.release(holder)
        }
    }

    #[test]
    fn a_slow_release_leaves_the_nexus_newer_reservation() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        let store = std::sync::Arc::new(SlowFirstRelease::default());
        t.lu.attach_shared_reserve(store.clone());
        assert_good(&t.run(&[0x16, 0, 0, 0, 0, 0]).0);
        let releasing = run_in_thread(&t, &t.nexus, [0x17, 0, 0, 0, 0, 0]);
        let started = std::time::Instant::now();
        while store.releases.load(std::sync::atomic::Ordering::Relaxed) == 0 {
            assert!(started.elapsed() < std::time::Duration::from_secs(5), "no release");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // While RELEASE clears the store, a reset releases the reservation and the nexus
        // reserves again (stored, GOOD).
        t.target.lun_reset(1).unwrap();
        t.clear_ua(&t.nexus);
        t.clear_ua(&other);
        assert_good(&t.run(&[0x16, 0, 0, 0, 0, 0]).0);
        let second = t.lu.reserve_holder().expect("held");
        *store.open.lock() = true;
        store.opened.notify_all();
        assert_good(&releasing.join().unwrap());
        assert_eq!(t.lu.reserve_holder(), Some(second.clone()), "the first RELEASE released the second reservation");
        assert_eq!(t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0.status, ScsiStatus::ReservationConflict);
        assert_eq!(*store.inner.holder.lock(), Some(second));
    }

    /// A store that cannot even read what is stored, and counts the clears asked of it.
    #[derive(Debug, Default)]
    struct Unreadable {
        releases: std::sync::atomic::AtomicUsize,
    }

    impl crate::SharedReserve for Unreadable {
        fn record(&self, _: &crate::ReserveHolder) -> std::io::Result<()> {
            Err(crate::not_written(std::io::Error::other("no connection")))
        }

        fn release(&self, _: &crate::ReserveHolder) -> std::io::Result<()> {
            self.releases.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(std::io::Error::other("no connection"))
        }
    }

    #[test]
    fn a_reserve_whose_store_wrote_nothing_leaves_nothing_to_clear() {
        let t = TestLun::disk(1 << 20);
        let store = std::sync::Arc::new(Unreadable::default());
        t.lu.attach_shared_reserve(store.clone());
        for _ in 0..3 {
            assert_eq!(t.run(&[0x16, 0, 0, 0, 0, 0]).0.status, ScsiStatus::CheckCondition);
        }
        assert_eq!(t.lu.reserve_holder(), None);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(store.releases.load(std::sync::atomic::Ordering::Relaxed), 0, "a clear was started");
    }

    #[test]
    fn a_reservation_held_through_another_server_conflicts_for_every_nexus_here() {
        let t = TestLun::disk(1 << 20);
        t.clear_ua(&t.nexus);
        let elsewhere = crate::ReserveHolder { initiator_port: "iqn.x,i,0x1".into(), relative_port: 2, token: 5 };
        t.lu.install_reservation(Some((elsewhere.clone(), None)));
        assert_eq!(t.run(&[0x00, 0, 0, 0, 0, 0]).0.status, ScsiStatus::ReservationConflict);
        // SPC-2 5.5.1: PERSISTENT RESERVE OUT conflicts with a RESERVE reservation of another nexus.
        let register = [0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0];
        assert_eq!(t.run_out(&register, &[0; 24]).0.status, ScsiStatus::ReservationConflict);
        assert_eq!(t.lu.reserve_holder(), Some(elsewhere));
        // Held through this nexus (its commands forwarded here, say): its own.
        let mine = crate::ReserveHolder { initiator_port: t.nexus.initiator_port.clone(), relative_port: 1, token: 6 };
        t.lu.install_reservation(Some((mine, Some(t.nexus.id))));
        assert_good(&t.run(&[0x00, 0, 0, 0, 0, 0]).0);
        t.lu.install_reservation(None);
        assert_eq!(t.lu.reserve_holder(), None);
    }
}
