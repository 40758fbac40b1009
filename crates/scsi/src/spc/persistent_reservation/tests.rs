//! PERSISTENT RESERVE IN/OUT through the command path: service actions, conflicts between two
//! nexuses, unit attentions, the RESERVE/RELEASE interplay and APTPL saving.

use super::*;
use crate::sense::Asc;
use crate::test_util::*;
use crate::Nexus;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const A: &str = "iqn.2024-01.test:i1";

fn prin(sa: u8, alloc: u16) -> [u8; 10] {
    let [hi, lo] = alloc.to_be_bytes();
    [0x5e, sa, 0, 0, 0, 0, 0, hi, lo, 0]
}

fn prout_cdb(sa: u8, pr_type: u8, len: u32) -> [u8; 10] {
    let l = len.to_be_bytes();
    [0x5f, sa, pr_type, 0, 0, l[0], l[1], l[2], l[3], 0]
}

fn params(key: u64, sark: u64, flags: u8) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&key.to_be_bytes());
    p.extend_from_slice(&sark.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, flags, 0, 0, 0]);
    p
}

struct Two {
    t: TestLun,
    b: Arc<Nexus>,
}

impl Two {
    fn new() -> Self {
        let t = TestLun::disk(1 << 20);
        let b = t.target.add_nexus("iqn.2024-01.test:i2,i,0x000000000002".into());
        t.clear_ua(&b);
        Two { t, b }
    }

    fn out(&self, n: &Nexus, sa: u8, pr_type: u8, key: u64, sark: u64) -> TaskResult {
        let p = params(key, sark, 0);
        self.t.run_on(n, &prout_cdb(sa, pr_type, 24), &p).0
    }

    fn a(&self) -> &Nexus {
        &self.t.nexus
    }

    fn keys(&self) -> (u32, Vec<u64>) {
        let (r, d) = self.t.run(&prin(0, 1024));
        assert_good(&r);
        let gen = u32::from_be_bytes(d[0..4].try_into().unwrap());
        let n = u32::from_be_bytes(d[4..8].try_into().unwrap()) as usize;
        (gen, d[8..8 + n].chunks(8).map(|c| u64::from_be_bytes(c.try_into().unwrap())).collect())
    }

    /// (key, type) of the reservation, if any.
    fn reservation(&self) -> Option<(u64, u8)> {
        let (r, d) = self.t.run(&prin(1, 1024));
        assert_good(&r);
        match u32::from_be_bytes(d[4..8].try_into().unwrap()) {
            0 => None,
            16 => Some((u64::from_be_bytes(d[8..16].try_into().unwrap()), d[21] & 0x0f)),
            n => panic!("additional length {n}"),
        }
    }

    fn read(&self, n: &Nexus) -> ScsiStatus {
        self.t.run_on(n, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[]).0.status
    }

    fn write(&self, n: &Nexus) -> ScsiStatus {
        self.t.run_on(n, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0; 512]).0.status
    }
}

use crate::{ScsiStatus, TaskResult};
const GOOD: ScsiStatus = ScsiStatus::Good;
const CONFLICT: ScsiStatus = ScsiStatus::ReservationConflict;

#[test]
fn register_change_and_unregister() {
    let s = Two::new();
    assert_eq!(s.keys(), (0, vec![]));
    assert_good(&s.out(s.a(), 0, 0, 0, 0x11));
    assert_eq!(s.keys(), (1, vec![0x11]));
    // Wrong current key: conflict and nothing changes.
    assert_eq!(s.out(s.a(), 0, 0, 0x99, 0x12).status, CONFLICT);
    assert_good(&s.out(s.a(), 0, 0, 0x11, 0x12));
    assert_eq!(s.keys(), (2, vec![0x12]));
    // REGISTER AND IGNORE EXISTING KEY.
    assert_good(&s.out(s.a(), 6, 0, 0x5555, 0x13));
    assert_eq!(s.keys(), (3, vec![0x13]));
    // An unregistered nexus giving a key conflicts; with sark 0 it is a no-op.
    assert_eq!(s.out(&s.b, 0, 0, 0x13, 0x21).status, CONFLICT);
    assert_good(&s.out(&s.b, 0, 0, 0, 0));
    assert_eq!(s.keys(), (3, vec![0x13]));
    assert_good(&s.out(s.a(), 0, 0, 0x13, 0));
    assert_eq!(s.keys(), (4, vec![]));
}

#[test]
fn read_keys_truncates_but_reports_full_length() {
    let s = Two::new();
    s.out(s.a(), 6, 0, 0, 1);
    s.out(&s.b, 6, 0, 0, 2);
    let (r, d) = s.t.run(&prin(0, 12));
    assert_good(&r);
    assert_eq!(d, [0, 0, 0, 2, 0, 0, 0, 16, 0, 0, 0, 0]);
}

#[test]
fn reserve_and_release_rules() {
    let s = Two::new();
    // Not registered: conflict.
    assert_eq!(s.out(s.a(), 1, 1, 0, 0).status, CONFLICT);
    s.out(s.a(), 6, 0, 0, 0xa);
    s.out(&s.b, 6, 0, 0, 0xb);
    assert_good(&s.out(s.a(), 1, 1, 0xa, 0));
    assert_eq!(s.reservation(), Some((0xa, 1)));
    // Again with the same type: fine; another type or another nexus: conflict.
    assert_good(&s.out(s.a(), 1, 1, 0xa, 0));
    assert_eq!(s.out(s.a(), 1, 3, 0xa, 0).status, CONFLICT);
    assert_eq!(s.out(&s.b, 1, 1, 0xb, 0).status, CONFLICT);
    // RESERVE does not change the generation.
    assert_eq!(s.keys().0, 2);
    // Release by a non-holder: no effect. With the wrong type: INVALID RELEASE.
    assert_good(&s.out(&s.b, 2, 1, 0xb, 0));
    assert_eq!(s.reservation(), Some((0xa, 1)));
    assert_sense(&s.out(s.a(), 2, 3, 0xa, 0), 0x05, 0x26, 0x04);
    assert_good(&s.out(s.a(), 2, 1, 0xa, 0));
    assert_eq!(s.reservation(), None);
    // Bad type and scope are CDB errors.
    assert_sense(&s.out(s.a(), 1, 2, 0xa, 0), 0x05, 0x24, 0x00);
    assert_sense(&s.out(s.a(), 1, 0x11, 0xa, 0), 0x05, 0x24, 0x00);
}

#[test]
fn access_by_type_for_registered_and_unregistered_nexuses() {
    // (type, registered read, registered write, unregistered read, unregistered write)
    let rows = [
        (1, GOOD, CONFLICT, GOOD, CONFLICT),
        (3, CONFLICT, CONFLICT, CONFLICT, CONFLICT),
        (5, GOOD, GOOD, GOOD, CONFLICT),
        (6, GOOD, GOOD, CONFLICT, CONFLICT),
        (7, GOOD, GOOD, GOOD, CONFLICT),
        (8, GOOD, GOOD, CONFLICT, CONFLICT),
    ];
    for (t, rr, rw, ur, uw) in rows {
        let s = Two::new();
        s.out(s.a(), 6, 0, 0, 1);
        s.out(&s.b, 6, 0, 0, 2);
        assert_good(&s.out(s.a(), 1, t, 1, 0));
        let expected = if t >= 7 { 0 } else { 1 };
        assert_eq!(s.reservation(), Some((expected, t)));
        assert_eq!((s.read(s.a()), s.write(s.a())), (GOOD, GOOD), "type {t}");
        assert_eq!((s.read(&s.b), s.write(&s.b)), (rr, rw), "type {t} registered");
        // Always allowed.
        assert_eq!(s.t.run_on(&s.b, &[0, 0, 0, 0, 0, 0], &[]).0.status, GOOD);
        assert_eq!(s.t.run_on(&s.b, &[0x12, 0, 0, 0, 36, 0], &[]).0.status, GOOD);
        assert_good(&s.out(&s.b, 0, 0, 2, 0));
        s.t.clear_ua(&s.b);
        assert_eq!((s.read(&s.b), s.write(&s.b)), (ur, uw), "type {t} unregistered");
        assert_eq!(s.t.run_on(&s.b, &prin(0, 100), &[]).0.status, GOOD);
    }
}

#[test]
fn unregistering_holder_releases_but_all_registrants_survive() {
    for (t, survives) in [(1, false), (3, false), (5, false), (6, false), (7, true), (8, true)] {
        let s = Two::new();
        s.out(s.a(), 6, 0, 0, 1);
        s.out(&s.b, 6, 0, 0, 2);
        s.out(s.a(), 1, t, 1, 0);
        assert_good(&s.out(s.a(), 0, 0, 1, 0));
        assert_eq!(s.reservation().is_some(), survives, "type {t}");
        // Registrants-only: the others learn RESERVATIONS RELEASED.
        let ua = s.b.unit_attentions.take(1);
        assert_eq!(ua, if t == 5 || t == 6 { Some(Asc(0x2a, 0x04)) } else { None }, "type {t}");
        if survives {
            assert_good(&s.out(&s.b, 2, t, 2, 0));
            assert_eq!(s.reservation(), None);
        }
    }
}

#[test]
fn release_of_registrants_types_tells_the_others() {
    let s = Two::new();
    s.out(s.a(), 6, 0, 0, 1);
    s.out(&s.b, 6, 0, 0, 2);
    s.out(s.a(), 1, 5, 1, 0);
    assert_good(&s.out(s.a(), 2, 5, 1, 0));
    assert_eq!(s.b.unit_attentions.take(1), Some(Asc(0x2a, 0x04)));
    assert_eq!(s.a().unit_attentions.take(1), None);
    // Plain write exclusive: nobody is told.
    s.out(s.a(), 1, 1, 1, 0);
    s.out(s.a(), 2, 1, 1, 0);
    assert_eq!(s.b.unit_attentions.take(1), None);
}

#[test]
fn clear_removes_everything_and_preempts_others() {
    let s = Two::new();
    s.out(s.a(), 6, 0, 0, 1);
    s.out(&s.b, 6, 0, 0, 2);
    s.out(&s.b, 1, 3, 2, 0);
    assert_eq!(s.out(s.a(), 3, 0, 9, 0).status, CONFLICT);
    assert_good(&s.out(s.a(), 3, 0, 1, 0));
    assert_eq!(s.keys(), (3, vec![]));
    assert_eq!(s.reservation(), None);
    assert_eq!(s.b.unit_attentions.take(1), Some(Asc(0x2a, 0x03)));
    assert_eq!(s.a().unit_attentions.take(1), None);
}

#[test]
fn preempt_without_reservation_removes_registrations() {
    let s = Two::new();
    s.out(s.a(), 6, 0, 0, 1);
    s.out(&s.b, 6, 0, 0, 2);
    let gen = s.keys().0;
    assert_good(&s.out(&s.b, 4, 3, 2, 1));
    assert_eq!(s.a().unit_attentions.take(1), Some(Asc(0x2a, 0x05)));
    assert_eq!(s.keys(), (gen + 1, vec![2]));
    assert_eq!(s.reservation(), None);
    // A key nobody has: conflict; zero: parameter list error.
    assert_eq!(s.out(&s.b, 4, 3, 2, 0x77).status, CONFLICT);
    assert_sense(&s.out(&s.b, 4, 3, 2, 0), 0x05, 0x26, 0x00);
}

#[test]
fn preempt_the_holder_takes_the_reservation() {
    let s = Two::new();
    s.out(s.a(), 6, 0, 0, 1);
    s.out(&s.b, 6, 0, 0, 2);
    s.out(s.a(), 1, 1, 1, 0);
    assert_good(&s.out(&s.b, 5, 3, 2, 1));
    assert_eq!(s.a().unit_attentions.take(1), Some(Asc(0x2a, 0x05)));
    assert_eq!(s.keys().1, vec![2]);
    let (r, d) = s.t.run_on(&s.b, &prin(1, 100), &[]);
    assert_good(&r);
    assert_eq!((&d[8..16], d[21]), (&2u64.to_be_bytes()[..], 3));
    // The preempted nexus is now a stranger under exclusive access.
    assert_eq!(s.read(s.a()), CONFLICT);
}

#[test]
fn preempt_all_registrants_with_zero_key() {
    let s = Two::new();
    s.out(s.a(), 6, 0, 0, 1);
    s.out(&s.b, 6, 0, 0, 2);
    s.out(s.a(), 1, 8, 1, 0);
    assert_good(&s.out(&s.b, 4, 1, 2, 0));
    assert_eq!(s.a().unit_attentions.take(1), Some(Asc(0x2a, 0x05)));
    assert_eq!(s.keys().1, vec![2]);
    assert_eq!(s.t.run_on(&s.b, &prin(1, 100), &[]).1[21], 1);
}

#[test]
fn register_and_move_hands_over_the_reservation() {
    let s = Two::new();
    s.out(s.a(), 6, 0, 0, 1);
    s.out(s.a(), 1, 1, 1, 0);
    let mut p = params(1, 0x22, 0);
    p[17] = 0x02; // UNREG
    p[18..20].copy_from_slice(&1u16.to_be_bytes());
    let mut id = Vec::new();
    transport_id::encode(&s.b.initiator_port, &mut id);
    p[20..24].copy_from_slice(&(id.len() as u32).to_be_bytes());
    p.extend_from_slice(&id);
    let cdb = prout_cdb(7, 0, p.len() as u32);
    assert_good(&s.t.run_out(&cdb, &p).0);
    assert_eq!(s.keys().1, vec![0x22]);
    assert_eq!(s.reservation(), Some((0x22, 1)));
    assert_eq!(s.write(&s.b), GOOD);
    assert_eq!(s.write(s.a()), CONFLICT);
    // The sender is no longer the holder: conflict.
    assert_eq!(s.t.run_out(&cdb, &p).0.status, CONFLICT);
}

#[test]
fn spec_i_pt_registers_the_named_ports() {
    let s = Two::new();
    let mut p = params(0, 0x31, 0x08);
    let mut ids = Vec::new();
    transport_id::encode("iqn.2024-01.test:i2", &mut ids);
    p.extend_from_slice(&(ids.len() as u32).to_be_bytes());
    p.extend_from_slice(&ids);
    assert_good(&s.t.run_out(&prout_cdb(0, 0, p.len() as u32), &p).0);
    assert_eq!(s.keys().1, vec![0x31, 0x31]);
    // The name-only registration covers b's port.
    assert_good(&s.out(&s.b, 1, 1, 0x31, 0));
    // SPEC_I_PT with REGISTER AND IGNORE: invalid field in the parameter list.
    assert_sense(&s.t.run_out(&prout_cdb(6, 0, p.len() as u32), &p).0, 0x05, 0x26, 0x00);
}

#[test]
fn parameter_list_length_and_reserved_fields() {
    let s = Two::new();
    assert_sense(&s.t.run_out(&prout_cdb(0, 0, 23), &[0; 23]).0, 0x05, 0x1a, 0x00);
    assert_sense(&s.t.run_out(&prout_cdb(0, 0, 28), &[0; 28]).0, 0x05, 0x1a, 0x00);
    // Data-out shorter than the CDB says.
    assert_sense(&s.t.run_out(&prout_cdb(0, 0, 24), &[0; 10]).0, 0x05, 0x1a, 0x00);
    // Service actions past the defined ones.
    assert_sense(&s.t.run(&prin(4, 100)).0, 0x05, 0x24, 0x00);
    assert_sense(&s.t.run_out(&prout_cdb(8, 0, 24), &[0; 24]).0, 0x05, 0x24, 0x00);
    // Reserved CDB byte.
    assert_sense(&s.t.run(&[0x5e, 0, 0, 1, 0, 0, 0, 0, 8, 0]).0, 0x05, 0x24, 0x00);
    // APTPL without persistence attached.
    let p = params(0, 1, 0x01);
    assert_sense(&s.t.run_out(&prout_cdb(0, 0, 24), &p).0, 0x05, 0x26, 0x00);
    assert_eq!(s.keys().1, Vec::<u64>::new());
}

#[test]
fn report_capabilities() {
    let s = Two::new();
    let (r, d) = s.t.run(&prin(2, 100));
    assert_good(&r);
    assert_eq!(d, [0, 8, 0x1c, 0xa0, 0xea, 0x01, 0, 0]);
}

#[test]
fn read_full_status_lists_holder_and_transport_ids() {
    let s = Two::new();
    s.out(s.a(), 6, 0, 0, 1);
    s.out(&s.b, 6, 0, 0, 2);
    s.out(&s.b, 1, 5, 2, 0);
    let (r, d) = s.t.run(&prin(3, 1024));
    assert_good(&r);
    let total = u32::from_be_bytes(d[4..8].try_into().unwrap()) as usize;
    assert_eq!(total + 8, d.len());
    let mut at = 8;
    let mut seen = Vec::new();
    while at < d.len() {
        let key = u64::from_be_bytes(d[at..at + 8].try_into().unwrap());
        let holder = d[at + 12] & 1 == 1;
        let len = u32::from_be_bytes(d[at + 20..at + 24].try_into().unwrap()) as usize;
        let id = transport_id::parse(&d, at + 24).unwrap();
        assert_eq!(id.len, len);
        assert_eq!(&d[at + 18..at + 20], &[0, 1]);
        if holder {
            assert_eq!(d[at + 13], 5);
        }
        seen.push((key, holder, id.port));
        at += 24 + len;
    }
    assert_eq!(seen, vec![(1, false, A.to_string()), (2, true, s.b.initiator_port.clone())]);
}

#[test]
fn reserve6_conflicts_with_registrations() {
    let s = Two::new();
    s.out(s.a(), 6, 0, 0, 1);
    assert_eq!(s.t.run(&[0x16, 0, 0, 0, 0, 0]).0.status, CONFLICT);
    assert_eq!(s.t.run_on(&s.b, &[0x17, 0, 0, 0, 0, 0], &[]).0.status, CONFLICT);
    s.out(s.a(), 0, 0, 1, 0);
    // A RESERVE(6) holder keeps others from PERSISTENT RESERVE.
    assert_good(&s.t.run(&[0x16, 0, 0, 0, 0, 0]).0);
    assert_eq!(s.out(&s.b, 6, 0, 0, 2).status, CONFLICT);
    assert_eq!(s.t.run_on(&s.b, &prin(0, 100), &[]).0.status, CONFLICT);
}

#[test]
fn registrations_survive_nexus_loss_and_apply_to_the_same_port() {
    let s = Two::new();
    s.out(&s.b, 6, 0, 0, 2);
    s.out(&s.b, 1, 3, 2, 0);
    s.t.target.remove_nexus(&s.b);
    s.t.target.lun_reset(1).unwrap();
    let again = s.t.target.add_nexus(s.b.initiator_port.clone());
    s.t.clear_ua(&again);
    s.t.clear_ua(s.a());
    assert_eq!(s.write(&again), GOOD);
    assert_eq!(s.read(s.a()), CONFLICT);
}

#[derive(Debug, Default)]
struct MemoryPersistence {
    saved: parking_lot::Mutex<Option<PrSnapshot>>,
    fail: std::sync::atomic::AtomicBool,
}

impl PrPersistence for MemoryPersistence {
    fn save(&self, state: &PrSnapshot) -> io::Result<()> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(io::Error::other("disk full"));
        }
        *self.saved.lock() = Some(state.clone());
        Ok(())
    }

    fn load(&self) -> io::Result<Option<PrSnapshot>> {
        Ok(self.saved.lock().clone())
    }
}

#[test]
fn aptpl_saves_restores_and_a_failed_save_changes_nothing() {
    let s = Two::new();
    let store = Arc::new(MemoryPersistence::default());
    assert!(!s.t.lu.persistent_reservations().attach_persistence(store.clone()).unwrap());
    let (_, caps) = s.t.run(&prin(2, 8));
    assert_eq!(caps[2] & 1, 1, "PTPL_C");
    // Without APTPL nothing is saved.
    s.out(s.a(), 6, 0, 0, 1);
    assert_eq!(*store.saved.lock(), None);
    let p = params(1, 1, 0x01);
    assert_good(&s.t.run_out(&prout_cdb(0, 0, 24), &p).0);
    s.out(s.a(), 1, 3, 1, 0);
    let saved = store.saved.lock().clone().unwrap();
    assert!(saved.aptpl);
    assert_eq!(saved.reservation.as_ref().map(|r| r.pr_type), Some(PrType::ExclusiveAccess));
    assert_eq!(s.t.run(&prin(2, 8)).1[3] & 1, 1, "PTPL_A");
    // A new unit restores it.
    let other = Two::new();
    assert!(other.t.lu.persistent_reservations().attach_persistence(store.clone()).unwrap());
    assert_eq!(other.reservation(), Some((1, 3)));
    assert_eq!(other.write(&other.b), CONFLICT);
    // A failed save leaves the state as it was.
    store.fail.store(true, Ordering::Relaxed);
    assert_sense(&s.out(s.a(), 2, 3, 1, 0), 0x04, 0x44, 0x00);
    assert_eq!(s.reservation(), Some((1, 3)));
}

#[test]
fn reporting_commands_pass_write_exclusive_only() {
    for (t, expected) in [(1, GOOD), (3, CONFLICT)] {
        let s = Two::new();
        s.out(s.a(), 6, 0, 0, 1);
        s.out(s.a(), 1, t, 1, 0);
        let mode_sense = s.t.run_on(&s.b, &[0x1a, 0, 0x3f, 0, 0xff, 0], &[]).0.status;
        assert_eq!(mode_sense, expected, "type {t}");
        let sync = s.t.run_on(&s.b, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]).0.status;
        assert_eq!(sync, CONFLICT, "type {t}");
        assert_eq!(s.t.run_on(&s.b, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]).0.status, GOOD);
    }
}

#[test]
fn preempt_and_abort_changing_type_tells_the_remaining_registrants() {
    let s = Two::new();
    let c = s.t.target.add_nexus("iqn.2024-01.test:i3,i,0x000000000003".into());
    s.t.clear_ua(&c);
    s.out(s.a(), 6, 0, 0, 1);
    s.out(&s.b, 6, 0, 0, 2);
    s.out(&c, 6, 0, 0, 3);
    s.out(s.a(), 1, 5, 1, 0);
    // c preempts the holder's key and takes an exclusive access reservation.
    assert_good(&s.out(&c, 5, 3, 3, 1));
    assert_eq!(s.a().unit_attentions.take(1), Some(Asc(0x2a, 0x05)));
    assert_eq!(s.b.unit_attentions.take(1), Some(Asc(0x2a, 0x04)));
    assert_eq!(c.unit_attentions.take(1), None);
    assert_eq!(s.keys().1, vec![2, 3]);
    assert_eq!(s.reservation(), Some((3, 3)));
    // b is registered but not the holder of an exclusive access reservation: everything conflicts.
    assert_eq!(s.read(&s.b), CONFLICT);
}

#[test]
fn preempt_and_abort_aborts_the_preempted_nexus_tasks_only() {
    use crate::task_set::tests::Recorder;
    let s = Two::new();
    let c = s.t.target.add_nexus("iqn.2024-01.test:i3,i,0x000000000003".into());
    s.t.clear_ua(&c);
    // Running tasks: the sender's on LUN 1, b's on LUN 1 and LUN 0, c's (not preempted) on LUN 1.
    let a_task = Recorder::start(s.a(), 1, 1);
    let b_task = Recorder::start(&s.b, 2, 1);
    let b_other_lun = Recorder::start(&s.b, 3, 0);
    let c_task = Recorder::start(&c, 4, 1);
    s.out(s.a(), 6, 0, 0, 1);
    s.out(&s.b, 6, 0, 0, 2);
    s.out(&c, 6, 0, 0, 3);
    s.t.clear_ua(&c);
    // PREEMPT (not AND ABORT) leaves tasks alone.
    assert_good(&s.out(s.a(), 4, 0, 1, 2));
    assert_eq!(b_task.aborted(), None);
    s.t.clear_ua(&s.b);
    s.out(&s.b, 6, 0, 0, 2);
    assert_good(&s.out(s.a(), 5, 0, 1, 2));
    assert_eq!(b_task.aborted(), Some(crate::AbortCause::Aborted), "b's task on LUN 1 is aborted");
    assert!(!s.b.tasks().contains(b_task.id));
    assert_eq!(b_other_lun.aborted(), None, "b's task on another LUN is not");
    assert!(s.b.tasks().contains(b_other_lun.id));
    assert_eq!(a_task.aborted(), None, "the sender's own tasks are not");
    assert_eq!(c_task.aborted(), None, "a nexus not preempted keeps its tasks");
    assert!(c.tasks().contains(c_task.id) && s.a().tasks().contains(a_task.id));
    // b hears that its registration went and that its commands were cleared.
    assert_eq!(s.b.unit_attentions.take(1), Some(Asc(0x2a, 0x05)));
    assert_eq!(s.b.unit_attentions.take(1), Some(Asc(0x2f, 0x00)));
    assert_eq!(c.unit_attentions.take(1), None);
}

#[test]
fn preempt_and_abort_without_tasks_adds_no_commands_cleared() {
    let s = Two::new();
    s.out(s.a(), 6, 0, 0, 1);
    s.out(&s.b, 6, 0, 0, 2);
    assert_good(&s.out(s.a(), 5, 0, 1, 2));
    assert_eq!(s.b.unit_attentions.take(1), Some(Asc(0x2a, 0x05)));
    assert_eq!(s.b.unit_attentions.take(1), None);
}

#[test]
fn all_tg_pt_is_reported_in_full_status() {
    let s = Two::new();
    let p = params(0, 9, 0x04);
    assert_good(&s.t.run_out(&prout_cdb(6, 0, 24), &p).0);
    let (_, d) = s.t.run(&prin(3, 1024));
    assert_eq!(d[8 + 12], 0x02, "ALL_TG_PT set, not holder");
}
