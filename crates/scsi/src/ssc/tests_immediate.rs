//! REWIND, LOCATE(10/16), ERASE, LOAD UNLOAD and WRITE FILEMARKS with IMMED: GOOD once the
//! command is checked against the drive (buffered writes made durable first, for the ones that
//! move the tape), the operation going on on the drive's thread after it; the commands after it
//! wait for it, and its failure is the deferred error of the nexus that sent it. What can be
//! checked before is refused at once, as current sense.

use super::tests::*;
use crate::test_util::*;
use crate::TaskResult;
use std::time::Duration;

const TUR: [u8; 6] = [0, 0, 0, 0, 0, 0];
const REWIND_IMMED: [u8; 6] = [0x01, 0x01, 0, 0, 0, 0];
const ERASE_IMMED: [u8; 6] = [0x19, 0x02, 0, 0, 0, 0];
const UNLOAD_IMMED: [u8; 6] = [0x1b, 0x01, 0, 0, 0, 0];
const LOAD_IMMED: [u8; 6] = [0x1b, 0x01, 0, 0, 0x01, 0];

fn locate10_immed(object: u32) -> [u8; 10] {
    let o = object.to_be_bytes();
    [0x2b, 0x01, 0, o[0], o[1], o[2], o[3], 0, 0, 0]
}

/// LOCATE(16) with IMMED to a file (DEST_TYPE 1).
fn locate16_file_immed(file: u64) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x92;
    c[1] = 0x08 | 0x01;
    c[4..12].copy_from_slice(&file.to_be_bytes());
    c
}

fn write_filemarks_immed(count: u32) -> [u8; 6] {
    let n = count.to_be_bytes();
    [0x10, 0x01, n[1], n[2], n[3], 0]
}

/// Two files: blocks 0-2 and a filemark (3), blocks 4-5 and a filemark (6), then end of data (7).
fn two_files() -> Drive {
    let d = drive();
    for b in 0..5u8 {
        d.write(&[b; 10]);
        if b == 2 || b == 4 {
            assert_good(&d.t.run(&WEOF).0);
        }
    }
    d
}

/// Send `cdb` with the drive's next immediate operation held before it starts: the command is
/// answered GOOD all the same, and `probe`, sent meanwhile, only once the operation is let go.
/// What the probe returns.
#[track_caller]
fn held<T: Send + std::fmt::Debug>(d: &Drive, cdb: &[u8], probe: impl Fn(&Drive) -> T + Sync) -> T {
    let (open, gate) = std::sync::mpsc::channel();
    d.t.lu.tape().unwrap().hold_immediate(gate);
    assert_good(&d.t.run(cdb).0);
    let (done, answered) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| done.send(probe(d)).unwrap());
        let early = answered.recv_timeout(Duration::from_millis(300));
        assert!(early.is_err(), "{cdb:02x?}: the probe was answered while the operation was held: {early:?}");
        open.send(()).unwrap();
        answered.recv().unwrap()
    })
}

#[test]
fn immediate_rewind_locate_and_erase_answer_before_the_tape_moves() {
    let d = two_files();
    assert_eq!(position(&d), (false, 7));
    assert_eq!(held(&d, &REWIND_IMMED, position), (true, 0));
    assert_eq!(held(&d, &locate10_immed(5), position), (false, 5));
    // To file 1: just past the first filemark.
    assert_eq!(held(&d, &locate16_file_immed(1), position), (false, 4));
    // ERASE there ends the tape there: the second file is gone.
    assert_eq!(held(&d, &ERASE_IMMED, position), (false, 4));
    assert_good(&d.t.run(&REWIND).0);
    assert_good(&d.t.run(&[0x11, 0x03, 0, 0, 0, 0]).0);
    assert_eq!(position(&d), (false, 4));
}

#[test]
fn immediate_unload_and_load_answer_before_the_drive_changes_state() {
    let d = two_files();
    let other = d.t.target.add_nexus("iqn.2024-01.test:i2".into());
    d.t.clear_ua(&other);
    let tur = |d: &Drive| d.t.run(&TUR).0;
    let r = held(&d, &UNLOAD_IMMED, tur);
    assert_sense(&r, 0x02, 0x04, 0x02);
    // LOAD: ready at the beginning once it has run; the other nexus hears of a medium change.
    assert_good(&held(&d, &LOAD_IMMED, tur));
    assert_eq!(position(&d), (true, 0));
    assert_sense(&d.t.run_on(&other, &TUR, &[]).0, 0x06, 0x28, 0x00);
}

#[test]
fn immediate_write_filemarks_answers_before_the_marks_are_written() {
    let d = drive();
    d.write(&[7u8; 10]);
    assert_eq!(held(&d, &write_filemarks_immed(2), position), (false, 3));
    assert_good(&d.t.run(&REWIND).0);
    assert_good(&d.t.run(&read6(10, false)).0);
    assert_tape_sense(&d.t.run(&read6(10, false)).0, 0x00, (0, 1), 0x80, Some(10));
}

#[test]
fn a_failed_immediate_locate_is_the_deferred_error_of_its_sender() {
    let d = two_files();
    let other = d.t.target.add_nexus("iqn.2024-01.test:i2".into());
    d.t.clear_ua(&other);
    // Past the end of data: GOOD, then BLANK CHECK at the end of data.
    assert_good(&d.t.run(&locate10_immed(9)).0);
    // Another nexus waits for it and hears nothing of its failure.
    let (r, data) = d.t.run_on(&other, &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]);
    assert_good(&r);
    assert_eq!(data[4..8], 7u32.to_be_bytes());
    // The sender's next command ends with it, not processed; reported once.
    let (r, data) = d.t.run(&[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_deferred(&r, 0x08, (0, 5), 0, Some(0));
    assert!(data.is_empty());
    assert_good(&d.t.run(&TUR).0);
    // LOCATE(16) to a file that is not there: the deferred error is REQUEST SENSE's data.
    assert_good(&d.t.run(&locate16_file_immed(5)).0);
    let (r, s) = d.t.run(&[0x03, 0, 0, 0, 0xff, 0]);
    assert_good(&r);
    assert_eq!((s[0] & 0x7f, s[2] & 0x0f, s[12], s[13]), (0x71, 0x08, 0x00, 0x05), "{s:02x?}");
    assert_good(&d.t.run(&TUR).0);
}

#[test]
fn immediate_write_filemarks_past_the_end_is_a_deferred_volume_overflow() {
    let d = drive_with(1, rtgt_backstore::tape::MediumType::Data);
    let block = vec![9u8; 60 * 1024];
    // Up to the early warning.
    while d.t.run_out(&write6(block.len() as u32), &block).0.sense.is_none() {}
    // One mark past the early warning: GOOD and no deferred error (the warning is no failure, and
    // the next write reports it anyway).
    assert_good(&d.t.run(&write_filemarks_immed(1)).0);
    assert_good(&d.t.run(&TUR).0);
    // More marks than the tape holds: GOOD, then VOLUME OVERFLOW, EOM, the marks not written.
    let asked = 0x00ff_ffff;
    assert_good(&d.t.run(&write_filemarks_immed(asked)).0);
    let r: TaskResult = d.t.run(&TUR).0;
    let s = r.sense.as_deref().expect("a deferred error");
    assert_eq!((s[0], s[2], s[12], s[13]), (0xf1, 0x4d, 0x00, 0x02), "{s:02x?}");
    let left = u32::from_be_bytes(s[3..7].try_into().unwrap());
    assert!(left > 0 && left < asked, "marks not written: {left}");
    assert_good(&d.t.run(&TUR).0);
    // The tape is full: the next write overflows.
    let r = d.t.run_out(&write6(block.len() as u32), &block).0;
    assert_tape_sense(&r, 0x0d, (0, 2), 0x40, Some(block.len() as u32));
}

#[test]
fn what_can_be_checked_before_the_operation_is_refused_at_once() {
    let d = two_files();
    // Another partition, a write-protected unit, removal prevented: current sense, no motion.
    let mut other_partition = locate10_immed(1);
    other_partition[1] |= 0x02;
    other_partition[8] = 1;
    assert_sense(&d.t.run(&other_partition).0, 0x05, 0x24, 0x00);
    d.t.lu.set_readonly(true);
    assert_sense(&d.t.run(&ERASE_IMMED).0, 0x07, 0x27, 0x00);
    assert_sense(&d.t.run(&write_filemarks_immed(1)).0, 0x07, 0x27, 0x00);
    d.t.lu.set_readonly(false);
    assert_good(&d.t.run(&[0x1e, 0, 0, 0, 1, 0]).0);
    assert_sense(&d.t.run(&UNLOAD_IMMED).0, 0x05, 0x53, 0x02);
    assert_good(&d.t.run(&[0x1e, 0, 0, 0, 0, 0]).0);
    assert_eq!(position(&d), (false, 7));
    // Unloaded: NOT READY, INITIALIZING COMMAND REQUIRED, at once.
    assert_good(&d.t.run(&[0x1b, 0, 0, 0, 0, 0]).0);
    assert_sense(&d.t.run(&REWIND_IMMED).0, 0x02, 0x04, 0x02);
    assert_sense(&d.t.run(&locate10_immed(1)).0, 0x02, 0x04, 0x02);
}

#[test]
fn each_nexus_keeps_its_own_deferred_error() {
    let d = two_files();
    let other = d.t.target.add_nexus("iqn.2024-01.test:i2".into());
    d.t.clear_ua(&other);
    assert_good(&d.t.run(&REWIND).0);
    // This nexus: VERIFY IMMED of 1000 bytes over the first 10-byte block fails (ILI) after GOOD...
    assert_good(&d.t.run(&[0x13, 0x04, 0, 0x03, 0xe8, 0]).0);
    // ...then the other nexus's LOCATE IMMED past the end of data fails too, before this nexus
    // sends anything more: neither failure may push out the other.
    assert_good(&d.t.run_on(&other, &locate10_immed(9), &[]).0);
    let tur_other = || d.t.run_on(&other, &TUR, &[]).0;
    assert_deferred(&tur_other(), 0x08, (0, 5), 0, Some(0));
    assert_good(&tur_other());
    assert_deferred(&d.t.run(&TUR).0, 0x00, (0, 0), 0x20, Some(990));
    assert_good(&d.t.run(&TUR).0);
}
