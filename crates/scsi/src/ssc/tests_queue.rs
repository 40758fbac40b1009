//! The drive's queue: commands wait for the drive without holding their caller's thread, one
//! aborted before its turn never runs, an immediate command that panics frees the drive, and a
//! pending deferred error goes with its nexus or a logical unit reset.

use super::tests::*;
use crate::test_util::*;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Waker};

const TUR: [u8; 6] = [0, 0, 0, 0, 0, 0];
/// VERIFY(6) IMMED of 1000 bytes in variable mode: over a 100-byte block it fails (ILI) after GOOD.
const VERIFY_IMMED_1000: [u8; 6] = [0x13, 0x04, 0, 0x03, 0xe8, 0];

/// A drive with one 100-byte block, rewound.
fn one_block() -> Drive {
    let d = drive();
    d.write(&[1u8; 100]);
    assert_good(&d.t.run(&REWIND).0);
    d
}

#[test]
fn a_command_aborted_while_it_waits_for_the_drive_never_runs() {
    let d = one_block();
    let (open, gate) = std::sync::mpsc::channel();
    d.t.lu.tape().unwrap().hold_immediate(gate);
    assert_good(&d.t.run(&[0x13, 0x04, 0, 0, 100, 0]).0);
    // A WRITE queued behind the held verify: polled, it waits (the caller's thread is free)...
    let (cdb, data) = (write6(50), [9u8; 50]);
    let mut data_in = Vec::new();
    {
        let mut write = pin!(d.t.target.execute(&d.t.nexus, 1, &cdb, &data, &mut data_in));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(write.as_mut().poll(&mut cx).is_pending(), "the WRITE did not wait for the verify");
        // ...and is dropped, as an ABORT TASK or a reset drops it.
    }
    open.send(()).unwrap();
    // The drive went on without it: past the verified block is still the end of data.
    assert_eq!(position(&d), (false, 1));
    let (r, _) = d.t.run(&read6(50, false));
    assert_tape_sense(&r, 0x08, (0, 5), 0, Some(50));
}

#[test]
fn an_immediate_verify_that_panics_frees_the_drive_and_leaves_a_deferred_error() {
    let d = one_block();
    let state = d.t.lu.tape().unwrap();
    state.start_immediate();
    assert!(state.settle().is_some(), "the commands after an immediate command wait for it");
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut drive = state.drive();
        state.run_immediate(d.t.nexus.id, &mut drive, |_| panic!("a verify that breaks"));
    }));
    assert!(panicked.is_err());
    assert!(state.settle().is_none(), "the drive is still marked busy");
    // Its sender hears of it once (HARDWARE ERROR as a deferred error), then the drive works.
    let r = d.t.run(&TUR).0;
    let s = r.sense.as_deref().expect("a deferred error");
    assert_eq!((s[0] & 0x7f, s[2] & 0x0f, s[12], s[13]), (0x71, 0x04, 0x44, 0x00), "{s:02x?}");
    assert_good(&d.t.run(&TUR).0);
    assert_eq!(position(&d), (true, 0));
}

#[test]
fn a_logical_unit_reset_drops_a_pending_deferred_error() {
    let d = one_block();
    assert_good(&d.t.run(&VERIFY_IMMED_1000).0);
    d.t.target.lun_reset(1).unwrap();
    // The reset's unit attention, then nothing of the verify's failure.
    assert_sense(&d.t.run(&TUR).0, 0x06, 0x29, 0x03);
    assert_good(&d.t.run(&TUR).0);
}

#[test]
fn a_nexus_that_goes_takes_its_pending_deferred_error_with_it() {
    let d = one_block();
    let other = d.t.target.add_nexus("iqn.2024-01.test:i2".into());
    d.t.clear_ua(&other);
    assert_good(&d.t.run_on(&other, &VERIFY_IMMED_1000, &[]).0);
    // Once the verify has ended, its failure waits for `other`...
    assert_good(&d.t.run(&TUR).0);
    let state = d.t.lu.tape().unwrap();
    d.t.target.remove_nexus(&other);
    // ...and is gone with it.
    assert_eq!(state.take_deferred(other.id), None);
}

#[test]
fn a_nexus_that_goes_leaves_the_deferred_error_of_another() {
    let d = one_block();
    let other = d.t.target.add_nexus("iqn.2024-01.test:i2".into());
    d.t.clear_ua(&other);
    // Both nexuses' verifies fail after GOOD (the rewind between waits for the first).
    assert_good(&d.t.run(&VERIFY_IMMED_1000).0);
    assert_good(&d.t.run_on(&other, &REWIND, &[]).0);
    assert_good(&d.t.run_on(&other, &VERIFY_IMMED_1000, &[]).0);
    d.t.target.remove_nexus(&other);
    assert_deferred(&d.t.run(&TUR).0, 0x00, (0, 0), 0x20, Some(900));
    assert_good(&d.t.run(&TUR).0);
    assert_eq!(d.t.lu.tape().unwrap().take_deferred(other.id), None);
}
