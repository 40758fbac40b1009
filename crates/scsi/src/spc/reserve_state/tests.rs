use super::*;
use std::sync::atomic::AtomicUsize;

/// Whether `claim` took the reservation (its store write, if any, done).
fn taken(claim: Claim) -> bool {
    match claim {
        Claim::Taken(recording) => {
            if let Some(r) = recording {
                r.finish(true);
            }
            true
        }
        _ => false,
    }
}

fn holder(port: &str) -> ReserveHolder {
    ReserveHolder { initiator_port: port.into(), relative_port: 1, token: 1 }
}

/// A store holding one holder whose first `failing` clears fail; `during_release` runs
/// inside each clear, before it takes effect.
#[derive(Default)]
struct Store {
    stored: Mutex<Option<ReserveHolder>>,
    failing: AtomicUsize,
    releases: AtomicUsize,
    during_release: Mutex<Option<Box<dyn FnMut() + Send>>>,
    /// The failures say the value stored cannot be read.
    unreadable: std::sync::atomic::AtomicBool,
    /// The clearing jobs started (kept, not run).
    started: Mutex<Vec<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl SharedReserve for Store {
    fn record(&self, holder: &ReserveHolder) -> std::io::Result<()> {
        *self.stored.lock() = Some(holder.clone());
        Ok(())
    }

    fn release(&self, holder: &ReserveHolder) -> std::io::Result<()> {
        self.releases.fetch_add(1, Ordering::Relaxed);
        if let Some(hook) = self.during_release.lock().as_mut() {
            hook();
        }
        if self.failing.load(Ordering::Relaxed) > 0 {
            self.failing.fetch_sub(1, Ordering::Relaxed);
            if self.unreadable.load(Ordering::Relaxed) {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "garbage"));
            }
            return Err(std::io::Error::other("out of reach"));
        }
        let mut stored = self.stored.lock();
        if stored.as_ref() == Some(holder) {
            *stored = None;
        }
        Ok(())
    }

    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        self.started.lock().push(job);
        Ok(())
    }
}

/// A reservation attached to `store`, `h` having been held and released (a clear asked for).
fn released(store: &Arc<Store>, h: &ReserveHolder) -> Arc<Scsi2Reservation> {
    let state = Arc::new(Scsi2Reservation::default());
    state.attach_shared(store.clone());
    store.record(h).unwrap();
    let mut clearing = state.clearing.lock();
    clearing.holders.push((h.clone(), 1));
    clearing.worker = true;
    drop(clearing);
    state
}

#[test]
fn a_failed_clear_is_tried_again_until_it_lands() {
    let (store, h) = (Arc::new(Store::default()), holder("i,0x1"));
    store.failing.store(3, Ordering::Relaxed);
    let state = released(&store, &h);
    let pauses = Mutex::new(Vec::new());
    clear_until_done(&Arc::downgrade(&state), store.as_ref(), &|d| pauses.lock().push(d));
    assert_eq!(*store.stored.lock(), None);
    assert_eq!(store.releases.load(Ordering::Relaxed), 4);
    let ms: Vec<u128> = pauses.lock().iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [100, 200, 400]);
    assert!(!state.clearing());
}

#[test]
fn the_pause_between_tries_stops_growing() {
    let (store, h) = (Arc::new(Store::default()), holder("i,0x1"));
    store.failing.store(8, Ordering::Relaxed);
    let state = released(&store, &h);
    let pauses = Mutex::new(Vec::new());
    clear_until_done(&Arc::downgrade(&state), store.as_ref(), &|d| pauses.lock().push(d));
    assert_eq!(pauses.lock().last(), Some(&RETRY_MAX));
    assert_eq!(*store.stored.lock(), None);
}

#[test]
fn a_stale_copy_of_a_holder_being_cleared_is_not_installed_and_the_clear_goes_on() {
    let (store, h) = (Arc::new(Store::default()), holder("i,0x1"));
    store.failing.store(1, Ordering::Relaxed);
    let state = released(&store, &h);
    let (again, h2) = (state.clone(), h.clone());
    // While the first clear fails, the holder is read back from the store (a catch-up, or
    // this server taking over): it must neither hold here nor stop the clear.
    clear_until_done(&Arc::downgrade(&state), store.as_ref(), &move |_| {
        assert!(!again.install(Some((h2.clone(), Some(7)))));
    });
    assert_eq!((state.nexus(), state.holder()), (None, None));
    assert_eq!(*store.stored.lock(), None);
    assert!(!state.clearing());
    // Another holder installs as ever.
    assert!(state.install(Some((holder("i,0x2"), None))));
    assert_eq!(state.nexus(), Some(ELSEWHERE));
}

#[test]
fn a_clear_stops_once_the_unit_is_gone() {
    let (store, h) = (Arc::new(Store::default()), holder("i,0x1"));
    let weak = Arc::downgrade(&released(&store, &h));
    clear_until_done(&weak, store.as_ref(), &|_| panic!("no pause"));
    assert_eq!(store.releases.load(Ordering::Relaxed), 0);
}

#[test]
fn one_worker_clears_every_released_holder() {
    let store = Arc::new(Store::default());
    let state = Arc::new(Scsi2Reservation::default());
    state.attach_shared(store.clone());
    store.record(&holder("i,0x7")).unwrap();
    for i in 0..50 {
        state.release_shared_later(holder(&format!("i,0x{i:x}")));
    }
    assert_eq!(store.started.lock().len(), 1, "one clearing job per unit");
    store.failing.store(2, Ordering::Relaxed);
    let pauses = Mutex::new(Vec::new());
    clear_until_done(&Arc::downgrade(&state), store.as_ref(), &|d| pauses.lock().push(d));
    assert_eq!(*store.stored.lock(), None);
    assert_eq!(store.releases.load(Ordering::Relaxed), 52);
    assert_eq!(pauses.lock().len(), 1, "one pause per round, not per holder");
    assert!(!state.clearing());
    // Done: the next clear asked for starts a worker again.
    state.release_shared_later(holder("i,0x1"));
    assert_eq!(store.started.lock().len(), 2);
}

#[test]
fn a_clear_that_never_can_land_is_given_up() {
    let (store, h) = (Arc::new(Store::default()), holder("i,0x1"));
    store.failing.store(usize::MAX, Ordering::Relaxed);
    store.unreadable.store(true, Ordering::Relaxed);
    let state = released(&store, &h);
    clear_until_done(&Arc::downgrade(&state), store.as_ref(), &|_| panic!("retried"));
    assert_eq!(store.releases.load(Ordering::Relaxed), 1);
    assert!(!state.clearing());
}

#[test]
fn a_clear_asked_for_while_one_runs_makes_it_go_round_again() {
    let (store, h) = (Arc::new(Store::default()), holder("i,0x1"));
    let state = released(&store, &h);
    // While the clear writes, the holder is stored again and released again (a RESERVE and
    // a reset): its own write found the first record, the second must go too.
    let (again, store2, h2) = (state.clone(), store.clone(), h.clone());
    let mut once = true;
    *store.during_release.lock() = Some(Box::new(move || {
        if std::mem::take(&mut once) {
            *store2.stored.lock() = None;
            assert!(taken(again.claim(7, h2.clone())));
            *store2.stored.lock() = Some(h2.clone());
            again.clear();
            again.release_shared_later(h2.clone());
        }
    }));
    clear_until_done(&Arc::downgrade(&state), store.as_ref(), &|_| panic!("no failure"));
    assert_eq!(*store.stored.lock(), None);
    assert_eq!(store.releases.load(Ordering::Relaxed), 2);
    assert!(!state.clearing());
}

#[test]
fn a_late_clear_leaves_the_same_nexus_newer_reservation_stored() {
    let store = Arc::new(Store::default());
    let first = ReserveHolder::of("i,0x1", None, 1);
    let state = released(&store, &first);
    // The nexus reserves again (stored) while the clear of its first reservation is on its
    // way to the store: the clear lands after, and must find nothing of its own.
    let (again, store2) = (state.clone(), store.clone());
    let mut once = true;
    *store.during_release.lock() = Some(Box::new(move || {
        if std::mem::take(&mut once) {
            let second = ReserveHolder::of("i,0x1", None, 1);
            assert!(taken(again.claim(7, second.clone())));
            store2.record(&second).unwrap();
        }
    }));
    clear_until_done(&Arc::downgrade(&state), store.as_ref(), &|_| panic!("no failure"));
    let stored = store.stored.lock().clone().expect("the newer reservation stays stored");
    assert!(stored.same_nexus(&first) && stored != first);
    assert_eq!(state.holder(), Some(stored));
    assert!(!state.clearing());
}

#[test]
fn each_reservation_has_a_token_of_its_own() {
    let (a, b) = (ReserveHolder::of("i,0x1", Some(2), 1), ReserveHolder::of("i,0x1", Some(2), 1));
    assert!(a.same_nexus(&b) && a != b);
    assert_ne!(a.token, 0);
    assert_eq!(a.relative_port, 2);
    assert_eq!(ReserveHolder::of("i,0x1", None, 1).relative_port, 1);
}

#[test]
fn releasing_by_holder_leaves_another_holder_alone() {
    let state = Arc::new(Scsi2Reservation::default());
    assert!(matches!(state.claim(3, holder("i,0x1")), Claim::Taken(None)));
    state.release_holder(&holder("i,0x2"));
    assert_eq!(state.nexus(), Some(3));
    state.release_holder(&holder("i,0x1"));
    assert_eq!((state.nexus(), state.holder()), (None, None));
}
