//! Persistent reservations shared by two servers of one logical unit (two gateways), through a
//! `SharedPr` that stands for the cluster: a change made through one is in force on the other as
//! its PERSISTENT RESERVE OUT completes, with its unit attentions and aborts, and a change
//! computed on a state another server replaced meanwhile is computed again.

use super::*;
use crate::test_util::*;
use crate::{LogicalUnit, Nexus, ScsiStatus, Target};
use parking_lot::Mutex;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// The cluster's copy and the servers that hold one, as the daemon's watch would reach them.
#[derive(Debug, Default)]
struct Store {
    state: Mutex<(PrSnapshot, u64)>,
    servers: Mutex<Vec<(Weak<LogicalUnit>, Weak<Target>)>>,
    /// Commits that find the state changed by "someone else" first (a race lost).
    races: AtomicUsize,
    commits: AtomicUsize,
}

#[derive(Debug)]
struct Server {
    store: Arc<Store>,
    me: usize,
}

impl SharedPr for Server {
    fn latest(&self) -> io::Result<(PrSnapshot, u64)> {
        Ok(self.store.state.lock().clone())
    }

    fn commit(&self, version: u64, state: &PrSnapshot, events: &PrEvents) -> io::Result<Option<u64>> {
        let mut current = self.store.state.lock();
        if self.store.races.load(Ordering::SeqCst) > 0 {
            self.store.races.fetch_sub(1, Ordering::SeqCst);
            // Another server registered a key meanwhile.
            current.0.registrations.push(PrRegistration {
                initiator_port: "iqn.2024-01.test:other,i,0x9".into(),
                key: 0x99,
                all_tg_pt: false,
            });
            current.0.generation += 1;
            current.1 += 1;
            return Ok(None);
        }
        if current.1 != version {
            return Ok(None);
        }
        *current = (state.clone(), version + 1);
        self.store.commits.fetch_add(1, Ordering::SeqCst);
        for (i, (lu, target)) in self.store.servers.lock().iter().enumerate() {
            if i == self.me {
                continue;
            }
            if let (Some(lu), Some(target)) = (lu.upgrade(), target.upgrade()) {
                lu.persistent_reservations().install_shared(state.clone(), version + 1);
                target.reservation_events(1, events);
            }
        }
        Ok(Some(version + 1))
    }
}

fn gateways() -> (Arc<Store>, TestLun, TestLun) {
    let store = Arc::new(Store::default());
    let (g1, g2) = (TestLun::disk(1 << 20), TestLun::disk(1 << 20));
    for (i, g) in [&g1, &g2].into_iter().enumerate() {
        store.servers.lock().push((Arc::downgrade(&g.lu), Arc::downgrade(&g.target)));
        g.lu.persistent_reservations().attach_shared(Arc::new(Server { store: store.clone(), me: i })).unwrap();
    }
    (store, g1, g2)
}

fn prout(t: &TestLun, n: &Nexus, sa: u8, pr_type: u8, key: u64, sark: u64) -> ScsiStatus {
    let mut p = Vec::new();
    p.extend_from_slice(&key.to_be_bytes());
    p.extend_from_slice(&sark.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    let r = t.run_on(n, &[0x5f, sa, pr_type, 0, 0, 0, 0, 0, 24, 0], &p).0;
    r.status
}

fn write(t: &TestLun, n: &Nexus) -> ScsiStatus {
    t.run_on(n, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0; 512]).0.status
}

#[test]
fn a_reservation_made_through_one_server_is_in_force_on_the_other() {
    let (_store, g1, g2) = gateways();
    // Initiator 1 on server 1, initiator 2 on server 2 (the test LUNs' nexuses are named alike:
    // give server 2 a nexus of its own initiator).
    let i2 = g2.target.add_nexus("iqn.2024-01.test:i2,i,0x2".into());
    g2.clear_ua(&i2);
    assert_eq!(prout(&g1, &g1.nexus, 0, 0, 0, 0xa), ScsiStatus::Good);
    assert_eq!(prout(&g2, &i2, 0, 0, 0, 0xb), ScsiStatus::Good);
    // WRITE EXCLUSIVE by initiator 1 through server 1: initiator 2's write through server 2
    // conflicts at once, checked against server 2's own copy.
    assert_eq!(prout(&g1, &g1.nexus, 1, 1, 0xa, 0), ScsiStatus::Good);
    assert_eq!(write(&g2, &i2), ScsiStatus::ReservationConflict);
    assert_eq!(write(&g1, &g1.nexus), ScsiStatus::Good);
    // READ KEYS on server 2 sees both keys and the generation of both registrations and the reserve.
    let (r, d) = g2.run_on(&i2, &[0x5e, 0, 0, 0, 0, 0, 0, 0, 64, 0], &[]);
    assert_good(&r);
    assert_eq!(u32::from_be_bytes(d[0..4].try_into().unwrap()), 2, "PRGENERATION");
    assert_eq!(u32::from_be_bytes(d[4..8].try_into().unwrap()), 16, "two keys");
    // Initiator 2 preempts and aborts through server 2: initiator 1's nexus on server 1 is told
    // REGISTRATIONS PREEMPTED, and loses its reservation there too.
    assert_eq!(prout(&g2, &i2, 5, 1, 0xb, 0xa), ScsiStatus::Good);
    assert_eq!(g1.nexus.unit_attentions.take(1), Some(crate::Asc(0x2a, 0x05)));
    assert_eq!(write(&g1, &g1.nexus), ScsiStatus::ReservationConflict);
    assert_eq!(write(&g2, &i2), ScsiStatus::Good);
}

#[test]
fn a_change_is_computed_again_on_a_state_changed_meanwhile() {
    let (store, g1, g2) = gateways();
    store.races.store(2, Ordering::SeqCst);
    assert_eq!(prout(&g1, &g1.nexus, 0, 0, 0, 0xa), ScsiStatus::Good);
    // Two lost races, one commit, whose state carries the other servers' registrations as well.
    assert_eq!(store.commits.load(Ordering::SeqCst), 1);
    let state = store.state.lock().0.clone();
    assert_eq!(state.registrations.iter().map(|r| r.key).collect::<Vec<_>>(), [0x99, 0x99, 0xa]);
    assert_eq!(g2.lu.persistent_reservations().snapshot().registrations.len(), 3, "installed on server 2");
    // A PERSISTENT RESERVE OUT that changes nothing (unregistering what is not registered) commits nothing.
    let i2 = g2.target.add_nexus("iqn.2024-01.test:i2,i,0x2".into());
    g2.clear_ua(&i2);
    assert_eq!(prout(&g2, &i2, 0, 0, 0, 0), ScsiStatus::Good);
    assert_eq!(store.commits.load(Ordering::SeqCst), 1);
}

#[test]
fn an_older_notification_does_not_replace_a_newer_state() {
    let (_store, g1, _g2) = gateways();
    let pr = g1.lu.persistent_reservations();
    let newer = PrSnapshot { generation: 5, ..PrSnapshot::default() };
    assert!(pr.install_shared(newer.clone(), 7));
    assert!(!pr.install_shared(PrSnapshot { generation: 4, ..PrSnapshot::default() }, 6));
    assert_eq!(*pr.snapshot(), newer);
}

/// A store whose commits wait until `open` is set: a cluster that has not answered yet.
#[derive(Debug, Default)]
struct Gated {
    state: Mutex<(PrSnapshot, u64)>,
    open: Mutex<bool>,
    opened: parking_lot::Condvar,
}

impl SharedPr for Gated {
    fn latest(&self) -> io::Result<(PrSnapshot, u64)> {
        Ok(self.state.lock().clone())
    }

    fn commit(&self, version: u64, state: &PrSnapshot, _: &PrEvents) -> io::Result<Option<u64>> {
        let mut open = self.open.lock();
        while !*open {
            self.opened.wait(&mut open);
        }
        *self.state.lock() = (state.clone(), version + 1);
        Ok(Some(version + 1))
    }
}

#[test]
fn a_store_that_does_not_answer_is_waited_for_off_the_thread_that_runs_commands() {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let store = Arc::new(Gated::default());
    let g = TestLun::disk(1 << 20);
    g.lu.persistent_reservations().attach_shared(store.clone()).unwrap();
    let (target, nexus, lun) = (g.target.clone(), g.nexus.clone(), g.lun);
    let (tx, rx) = std::sync::mpsc::channel();
    // The thread that runs commands polls PERSISTENT RESERVE OUT (REGISTER) once: it must get the
    // thread back at once (Pending), not wait inside for the store.
    std::thread::spawn(move || {
        let params = [&[0u8; 8][..], &0xau64.to_be_bytes(), &[0; 8]].concat();
        let mut data_in = Vec::new();
        let mut command =
            std::pin::pin!(target.execute(&nexus, lun, &[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], &params, &mut data_in));
        let first = command.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        let _ = tx.send(matches!(first, Poll::Pending));
        let _ = tx.send(block_on(command).status == ScsiStatus::Good);
    });
    let pending = rx.recv_timeout(std::time::Duration::from_secs(5));
    assert_eq!(pending, Ok(true), "the command thread waited for the store");
    // Meanwhile another command runs on this thread: the unit's own state is not held.
    assert_eq!(write(&g, &g.nexus), ScsiStatus::Good);
    *store.open.lock() = true;
    store.opened.notify_all();
    assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(5)), Ok(true), "GOOD once the store answered");
    assert_eq!(store.state.lock().0.registrations.len(), 1);
}
