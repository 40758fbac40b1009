//! Persistent reservations of one logical unit served by two gateways: kept in the cluster, in
//! force on both as PERSISTENT RESERVE OUT completes, unit attentions and PREEMPT AND ABORT reach
//! the other gateway's nexuses, the state survives every gateway's restart with APTPL (and only
//! with it), and a PERSISTENT RESERVE OUT waiting for a gateway that does not answer stalls no
//! other command.

use super::{prout, session, start_gateway, write_waiting_for_data, TwoGateways};
use super::{CONFLICT, EXCLUSIVE_ACCESS, GOOD, WRITE_EXCLUSIVE};
use crate::common::initiator::Connection;
use crate::{conf, image};

const I1: &str = "iqn.2026-11.org.rtgt.test:pr-one";
const I2: &str = "iqn.2026-11.org.rtgt.test:pr-two";

/// READ KEYS: (PRGENERATION, keys).
fn keys(c: &mut Connection) -> (u32, Vec<u64>) {
    let out = c.scsi(1, &[0x5e, 0, 0, 0, 0, 0, 0, 0x04, 0, 0], &[], 1024).unwrap();
    assert_eq!(out.status, 0, "READ KEYS: {:x?}", out.sense);
    let d = out.data_in;
    let n = u32::from_be_bytes(d[4..8].try_into().unwrap()) as usize;
    (
        u32::from_be_bytes(d[0..4].try_into().unwrap()),
        d[8..8 + n].chunks(8).map(|k| u64::from_be_bytes(k.try_into().unwrap())).collect(),
    )
}

/// READ RESERVATION: (key, type) of the reservation, if any.
fn reservation(c: &mut Connection) -> Option<(u64, u8)> {
    let out = c.scsi(1, &[0x5e, 1, 0, 0, 0, 0, 0, 0x04, 0, 0], &[], 1024).unwrap();
    assert_eq!(out.status, 0, "READ RESERVATION: {:x?}", out.sense);
    let d = out.data_in;
    (u32::from_be_bytes(d[4..8].try_into().unwrap()) >= 16)
        .then(|| (u64::from_be_bytes(d[8..16].try_into().unwrap()), d[21] & 0x0f))
}

fn write(c: &mut Connection) -> u8 {
    c.write10(1, 0, &[7u8; 512], 512).unwrap().status
}

const APTPL: u8 = 0x01;

#[test]
fn reservations_are_one_state_on_both_gateways() {
    let gw = TwoGateways::start();
    // Initiator 1 through a (the owner), initiator 2 through b (standby: PERSISTENT RESERVE IN
    // and OUT are processed there, SPC-4 5.15.2.4.4).
    let (mut one, mut two) = gw.sessions(I1, I2);
    assert_eq!(prout(&mut one, 0, 0, 0, 0xa1, 0).0, GOOD);
    // The registration made through a is in b's answer as soon as a said GOOD.
    assert_eq!(keys(&mut two), (1, vec![0xa1]));
    assert_eq!(prout(&mut two, 0, 0, 0, 0xb2, 0).0, GOOD);
    assert_eq!(keys(&mut one), (2, vec![0xa1, 0xb2]));
    // Initiator 2 holds an exclusive access reservation, taken through b: initiator 1's write
    // through a (the gateway serving I/O) conflicts, checked on a's own copy.
    assert_eq!(prout(&mut two, 1, EXCLUSIVE_ACCESS, 0xb2, 0, 0).0, GOOD);
    assert_eq!(reservation(&mut one), Some((0xb2, EXCLUSIVE_ACCESS)));
    assert_eq!(write(&mut one), CONFLICT);
    // Initiator 1 preempts and aborts initiator 2 through a: initiator 2's nexus on b is told
    // REGISTRATIONS PREEMPTED (2Ah/05h) at its next command.
    assert_eq!(prout(&mut one, 5, WRITE_EXCLUSIVE, 0xa1, 0xb2, 0).0, GOOD);
    let ua = two.scsi(1, &[0; 6], &[], 0).unwrap();
    assert_eq!(ua.sense_code(), (0x06, 0x2a, 0x05), "{}", gw.b.log());
    assert_eq!(write(&mut one), GOOD);
    assert_eq!(keys(&mut two), (3, vec![0xa1]), "PREEMPT counts, RESERVE does not");
    assert_eq!(reservation(&mut two), Some((0xa1, WRITE_EXCLUSIVE)));
    // A conflict found on the cluster's latest state: initiator 2, no longer registered, cannot
    // reserve through b.
    assert_eq!(prout(&mut two, 1, WRITE_EXCLUSIVE, 0xb2, 0, 0).0, CONFLICT);
}

#[test]
fn reservations_survive_every_gateway_restart_with_aptpl_only() {
    let TwoGateways { conf, name, a, mut b } = TwoGateways::start();
    let mut one = session(a.portal(), I1);
    assert_eq!(prout(&mut one, 0, 0, 0, 0xa1, 0).0, GOOD);
    assert_eq!(prout(&mut one, 1, WRITE_EXCLUSIVE, 0xa1, 0, 0).0, GOOD);
    // a restarts (kill -9) while b stays up: the unit never went off, so even without APTPL the
    // registration and the reservation stay, on b and on a once back.
    let dir = a.crash();
    let mut two = session(b.portal(), I2);
    assert_eq!(keys(&mut two).1, vec![0xa1]);
    let a = crate::common::Tgtd::start_in(dir, &[]);
    let mut one = session(a.portal(), I1);
    assert_eq!(reservation(&mut one), Some((0xa1, WRITE_EXCLUSIVE)));
    // Both stop: the unit is off. Without APTPL the state is gone when the first comes back.
    drop((one, two));
    let dir_a = a.stop_keeping_dir();
    assert!(b.terminate().success());
    let a = crate::common::Tgtd::start_in(dir_a, &[]);
    let mut one = session(a.portal(), I1);
    assert_eq!(keys(&mut one).1, Vec::<u64>::new());
    assert_eq!(reservation(&mut one), None);
    // With APTPL set, the same power cycle keeps both.
    assert_eq!(prout(&mut one, 0, 0, 0, 0xa1, APTPL).0, GOOD);
    assert_eq!(prout(&mut one, 1, WRITE_EXCLUSIVE, 0xa1, 0, 0).0, GOOD);
    drop(one);
    let dir_a = a.stop_keeping_dir();
    let b = start_gateway(&conf, &name, "gw-b", 2);
    let mut two = session(b.portal(), I2);
    assert_eq!(keys(&mut two).1, vec![0xa1]);
    assert_eq!(reservation(&mut two), Some((0xa1, WRITE_EXCLUSIVE)));
    drop(dir_a);
}

#[test]
fn a_reservation_waiting_for_a_silent_gateway_stalls_no_other_command() {
    use std::time::{Duration, Instant};
    let conf = conf();
    let name = image(&conf, 16);
    // One runtime worker: a command handler that blocked it would stall every other command.
    let dir = tempfile::tempdir().unwrap();
    let a = crate::common::Tgtd::start_in_env(dir, &[], &[("TOKIO_WORKER_THREADS", "1")]);
    super::gateway(&a, &conf, &name, "gw-a", 1);
    let file = crate::common::sparse_image(a.dir.path(), "plain.img", 1 << 20);
    a.add_lun_ok(1, 2, &["--backing-store", file.to_str().unwrap()]);
    let b = start_gateway(&conf, &name, "gw-b", 2);
    let mut one = session(a.portal(), I1);
    let mut two = session(a.portal(), I2);
    let _ = two.scsi(2, &[0; 6], &[], 0).unwrap();
    // b stops answering: a change's notification now waits (5 s) for b's acknowledgement.
    // SAFETY: kill(2) on the PID of the tgtd this test started.
    assert_eq!(unsafe { libc::kill(b.pid(), libc::SIGSTOP) }, 0);
    let started = Instant::now();
    let register = std::thread::spawn(move || {
        let r = prout(&mut one, 0, 0, 0, 0xa1, 0);
        (r, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(300));
    let read = two.read10(2, 0, 8, 512).unwrap();
    let read_done = started.elapsed();
    assert_eq!(read.status, GOOD, "{:x?}", read.sense);
    let (registered, register_done) = register.join().unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(b.pid(), libc::SIGCONT) }, 0);
    assert_eq!(registered.0, GOOD, "{}", a.log());
    eprintln!("READ answered after {read_done:?}, PERSISTENT RESERVE OUT after {register_done:?}");
    assert!(register_done >= Duration::from_secs(2), "the change did not wait for b: {register_done:?}");
    assert!(read_done + Duration::from_secs(1) < register_done, "the READ waited for the reservation");
}

/// A gateway whose image was gone when it started keeps the LUN waiting for it; opened later
/// (`--params online=1`), it joins the other gateways as a LUN created then does: the
/// registrations made through the owner are in its answers, and its own reach the owner.
#[test]
fn a_gateway_lun_opened_after_a_late_image_shares_the_reservations() {
    let conf = conf();
    let name = image(&conf, 16);
    let b = start_gateway(&conf, &name, "gw-b", 2);
    let dir = b.stop_keeping_dir();
    let (at, away) = (format!("rbd/{name}"), format!("rbd/{name}-away"));
    crate::rbd(&conf, &["rename", &at, &away]);
    let b = crate::common::Tgtd::start_in(dir, &[]);
    let show = b.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(show.contains("LUN: 1"), "the LUN waits for its image:\n{show}");
    crate::rbd(&conf, &["rename", &away, &at]);
    let a = start_gateway(&conf, &name, "gw-a", 1);
    let out = b.update_lun(1, 1, "online=1");
    assert!(out.status.success(), "online=1: {}", crate::common::text(&out));
    let mut one = session(a.portal(), I1);
    let mut two = session(b.portal(), I2);
    assert_eq!(prout(&mut one, 0, 0, 0, 0xa1, 0).0, GOOD);
    assert_eq!(keys(&mut two).1, vec![0xa1], "{}", b.log());
    assert_eq!(prout(&mut two, 0, 0, 0, 0xb2, 0).0, GOOD);
    assert_eq!(keys(&mut one).1, vec![0xa1, 0xb2]);
    assert_eq!(super::groups(&mut one), [(1, super::ACTIVE), (2, super::NON_OPTIMIZED)]);
}

/// SPC-4 5.12.11.2.6 across gateways: initiator 1's PREEMPT AND ABORT through a aborts the task
/// initiator 2 has waiting for its data on b (no answer, and its data never lands, though with
/// no reservation left an unregistered initiator may write), and initiator 2 is told why.
#[test]
fn preempt_and_abort_through_one_gateway_aborts_a_task_on_the_other() {
    use std::time::Duration;
    let gw = TwoGateways::start();
    let mut one = session(gw.a.portal(), I1);
    let mut two = super::session_without_immediate_data(gw.b.portal(), I2);
    assert_eq!(prout(&mut one, 0, 0, 0, 0xa1, 0).0, GOOD);
    assert_eq!(prout(&mut two, 0, 0, 0, 0xb2, 0).0, GOOD);
    // Initiator 2's WRITE through b waits for its Data-Out: a task of its nexus on b.
    let lba = 40;
    let (itt, ttt) = write_waiting_for_data(&mut two, lba, 4096);
    // Initiator 1 preempts initiator 2's registration and aborts its tasks (no reservation: the
    // preempt leaves none, so only the abort can keep initiator 2's write out).
    assert_eq!(prout(&mut one, 5, WRITE_EXCLUSIVE, 0xa1, 0xb2, 0), (GOOD, (0, 0, 0)));
    let mine = crate::pattern(31, 4096);
    assert_eq!(one.write10(1, lba, &mine, 512).unwrap().status, GOOD);
    // Initiator 2's data comes late: the aborted task takes none of it and answers nothing (TAS 0).
    two.send_data_out(1, itt, ttt, &crate::pattern(32, 4096), 0).unwrap();
    two.stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    if let Ok(pdu) = two.recv() {
        panic!("an answer for the aborted WRITE: {pdu:?}\n{}", gw.b.log());
    }
    two.stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert!(super::read(&mut one, lba, 8) == mine, "initiator 2's aborted WRITE landed");
    // Initiator 2 learns why: REGISTRATIONS PREEMPTED and COMMANDS CLEARED BY ANOTHER INITIATOR.
    let mut told = Vec::new();
    for _ in 0..4 {
        let out = two.scsi(1, &[0; 6], &[], 0).unwrap();
        if out.status == GOOD {
            break;
        }
        told.push(out.sense_code());
    }
    told.sort();
    assert_eq!(told, [(0x06, 0x2a, 0x05), (0x06, 0x2f, 0x00)], "{}", gw.b.log());
    assert_eq!(keys(&mut two).1, vec![0xa1]);
}
