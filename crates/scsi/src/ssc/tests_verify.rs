//! VERIFY(6) (SSC-3 7.11, the medium verification of BYTCMP 0; byte compare is not offered):
//! it moves over the blocks as READ(6) would, with READ(6)'s sense at a filemark, the end of data
//! or a block of another length, and transfers nothing either way. With IMMED it answers GOOD at
//! once and its sense comes later, as a deferred error.

use super::tests::*;
use crate::test_util::*;

fn verify6(fixed: bool, len: u32) -> [u8; 6] {
    let l = len.to_be_bytes();
    [0x13, fixed as u8, l[1], l[2], l[3], 0]
}

/// VERIFY, insisting that no data moves in either direction; its result.
#[track_caller]
fn verify(d: &Drive, cdb: &[u8; 6]) -> crate::TaskResult {
    let (r, data) = d.t.run(cdb);
    assert!(data.is_empty(), "VERIFY returned data");
    assert_eq!(r.data_out_expected, 0, "VERIFY asked for data-out");
    r
}

#[test]
fn verify_in_variable_mode_checks_one_block_with_the_sense_of_a_read() {
    let d = drive();
    d.write(&[1u8; 100]);
    d.write(&[2u8; 300]);
    assert_good(&d.t.run(&WEOF).0);
    d.write(&[3u8; 50]);
    assert_good(&d.t.run(&REWIND).0);
    // The right length: GOOD, past the block.
    assert_good(&verify(&d, &verify6(false, 100)));
    assert_eq!(position(&d), (false, 1));
    // Of no length: nothing verified, no motion.
    assert_good(&verify(&d, &verify6(false, 0)));
    assert_eq!(position(&d), (false, 1));
    // Longer than the block: ILI, the residue positive, past the block.
    assert_tape_sense(&verify(&d, &verify6(false, 1000)), 0x00, (0, 0), 0x20, Some(700));
    assert_eq!(position(&d), (false, 2));
    // The filemark: FILEMARK, INFORMATION the whole length, past the mark.
    assert_tape_sense(&verify(&d, &verify6(false, 512)), 0x00, (0, 1), 0x80, Some(512));
    assert_eq!(position(&d), (false, 3));
    // Shorter than the block: ILI, the residue negative.
    assert_tape_sense(&verify(&d, &verify6(false, 20)), 0x00, (0, 0), 0x20, Some((20i32 - 50) as u32));
    assert_eq!(position(&d), (false, 4));
    // The end of data: BLANK CHECK, END-OF-DATA DETECTED, no motion.
    assert_tape_sense(&verify(&d, &verify6(false, 512)), 0x08, (0, 5), 0, Some(512));
    assert_eq!(position(&d), (false, 4));
    // BYTCMP (a compare with data-out) is not offered; IMMED is accepted.
    assert_sense(&d.t.run(&[0x13, 0x02, 0, 0, 10, 0]).0, 0x05, 0x24, 0x00);
    assert_good(&d.t.run(&REWIND).0);
    assert_good(&verify(&d, &[0x13, 0x04, 0, 0, 100, 0]));
    assert_eq!(position(&d), (false, 1));
    // Nothing on the tape changed.
    assert_good(&d.t.run(&REWIND).0);
    assert_eq!(d.t.run(&read6(100, false)).1, [1u8; 100]);
}

#[test]
fn verify_in_fixed_mode_counts_blocks_up_to_a_filemark_or_the_end_of_data() {
    let d = drive();
    // FIXED while the block length is 0 (variable mode) is refused.
    assert_sense(&d.t.run(&verify6(true, 1)).0, 0x05, 0x24, 0x00);
    let select = [0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 0x02, 0x00];
    assert_good(&d.t.run_out(&[0x15, 0x10, 0, 0, 12, 0], &select).0);
    let data: Vec<u8> = (0..1536u32).map(|i| i as u8).collect();
    assert_good(&d.t.run_out(&[0x0a, 1, 0, 0, 3, 0], &data).0);
    assert_good(&d.t.run(&WEOF).0);
    assert_good(&d.t.run_out(&[0x0a, 1, 0, 0, 1, 0], &data[..512]).0);
    assert_good(&d.t.run(&REWIND).0);
    assert_good(&verify(&d, &verify6(true, 2)));
    assert_eq!(position(&d), (false, 2));
    // Four asked, one verified before the filemark: FILEMARK, residue 3 blocks, past the mark.
    assert_tape_sense(&verify(&d, &verify6(true, 4)), 0x00, (0, 1), 0x80, Some(3));
    assert_eq!(position(&d), (false, 4));
    // Two asked, one there: BLANK CHECK at the end of data, residue 1.
    assert_tape_sense(&verify(&d, &verify6(true, 2)), 0x08, (0, 5), 0, Some(1));
    assert_eq!(position(&d), (false, 5));
    // Blocks of another length than the mode's: ILI, residue in blocks, past the block.
    assert_good(&d.t.run(&REWIND).0);
    assert_good(&d.t.run_out(&[0x15, 0x10, 0, 0, 12, 0], &[0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 0x01, 0]).0);
    assert_tape_sense(&verify(&d, &verify6(true, 2)), 0x00, (0, 0), 0x20, Some(2));
    assert_eq!(position(&d), (false, 1));
}

#[test]
fn an_immediate_verify_answers_good_and_reports_its_failure_as_a_deferred_error() {
    let d = drive();
    d.write(&[1u8; 100]);
    d.write(&[2u8; 300]);
    assert_good(&d.t.run(&REWIND).0);
    // IMMED with 1000 bytes over a 100-byte block: GOOD at once, whatever the verify finds.
    assert_good(&verify(&d, &[0x13, 0x04, 0, 0x03, 0xe8, 0]));
    // Another nexus's command waits for the verify (past the block) and hears nothing of its error.
    let other = d.t.target.add_nexus("iqn.2024-01.test:i2".into());
    d.t.clear_ua(&other);
    let (r, data) = d.t.run_on(&other, &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]);
    assert_good(&r);
    assert_eq!(data[4..8], 1u32.to_be_bytes());
    // The sender's next command ends with the error as a deferred one (ILI, residue 900) and is
    // not processed: the READ moved nothing and transferred nothing.
    let (r, data) = d.t.run(&read6(300, false));
    assert_deferred(&r, 0x00, (0, 0), 0x20, Some(900));
    assert!(data.is_empty());
    assert_eq!(position(&d), (false, 1));
    // Reported once.
    let (r, data) = d.t.run(&read6(300, false));
    assert_good(&r);
    assert_eq!(data, [2u8; 300]);
    // At the end of data: GOOD, then REQUEST SENSE returns the deferred BLANK CHECK (73h in the
    // descriptor format), and the next command runs normally.
    assert_good(&verify(&d, &[0x13, 0x04, 0, 0x02, 0, 0]));
    let (r, s) = d.t.run(&[0x03, 0x01, 0, 0, 0xff, 0]);
    assert_good(&r);
    assert_eq!(s[..4], [0x73, 0x08, 0x00, 0x05], "{s:02x?}");
    assert_good(&d.t.run(&[0, 0, 0, 0, 0, 0]).0);
    // A CDB the drive cannot take is refused at once, IMMED or not.
    assert_sense(&d.t.run(&[0x13, 0x05, 0, 0, 1, 0]).0, 0x05, 0x24, 0x00);
}

#[test]
fn a_command_after_an_immediate_verify_waits_for_it() {
    let d = drive();
    d.write(&[1u8; 100]);
    assert_good(&d.t.run(&REWIND).0);
    // Hold the verify before it starts: the VERIFY is answered all the same.
    let (open, gate) = std::sync::mpsc::channel();
    d.t.lu.tape().unwrap().hold_immediate(gate);
    assert_good(&verify(&d, &[0x13, 0x04, 0, 0, 100, 0]));
    // A READ POSITION sent now is answered only once the verify has run, with its position.
    let (done, answered) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| done.send(position(&d)).unwrap());
        let early = answered.recv_timeout(std::time::Duration::from_millis(300));
        assert!(early.is_err(), "READ POSITION answered while the verify was held: {early:?}");
        open.send(()).unwrap();
        assert_eq!(answered.recv().unwrap(), (false, 1));
    });
}

#[test]
fn a_fixed_mode_verify_is_not_bounded_by_the_largest_transfer() {
    // VERIFY moves no data: 1025 blocks of 64 KiB (past the 64 MiB a READ may transfer) are
    // verified up to the end of data like any other count.
    let d = drive();
    let select = [0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
    assert_good(&d.t.run_out(&[0x15, 0x10, 0, 0, 12, 0], &select).0);
    assert_good(&d.t.run_out(&[0x0a, 1, 0, 0, 1, 0], &[7u8; 65536]).0);
    assert_good(&d.t.run(&REWIND).0);
    assert_tape_sense(&verify(&d, &verify6(true, 1025)), 0x08, (0, 5), 0, Some(1024));
    assert_eq!(position(&d), (false, 1));
}
