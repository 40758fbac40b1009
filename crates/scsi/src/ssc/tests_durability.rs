//! WRITE FILEMARKS and when what was written becomes durable (SSC-3 7.10, 8.3): the marks IMMED
//! writes, IMMED refused in unbuffered mode, the flush WRITE FILEMARKS makes, and unbuffered writes
//! made durable before GOOD. `Drive::syncs` counts the tape file's fdatasyncs.

use super::tests::*;
use crate::test_util::*;
use rtgt_backstore::tape::{Object, TapeImage};

fn write_filemarks(immed: bool, count: u8) -> [u8; 6] {
    [0x10, immed as u8, 0, 0, count, 0]
}

/// MODE SELECT(6) of the header alone, BUFFERED MODE 1 or 0.
fn set_buffered(d: &Drive, buffered: bool) {
    let header = [0, 0, if buffered { 0x10 } else { 0 }, 0];
    assert_good(&d.t.run_out(&[0x15, 0x10, 0, 0, 4, 0], &header).0);
}

/// The objects of the tape file as another reader of it finds them, up to its end of data.
fn objects_in_file(d: &Drive) -> Vec<Object> {
    let mut image = TapeImage::open(&d.path, true).unwrap();
    let mut seen = Vec::new();
    loop {
        let object = image.peek();
        seen.push(object);
        if object == Object::EndOfData {
            return seen;
        }
        image.forward().unwrap();
    }
}

#[test]
fn write_filemarks_with_immed_writes_the_marks_and_answers_good() {
    let d = drive();
    d.write(&[7u8; 10]);
    let before = d.syncs();
    let (r, data) = d.t.run(&write_filemarks(true, 2));
    assert_good(&r);
    assert!(data.is_empty());
    // The position is after the second mark, at the end of data, as without IMMED.
    assert_eq!(position(&d), (false, 3));
    // Both marks are in the file, with the block before them.
    assert_eq!(objects_in_file(&d), [Object::Data(10), Object::Filemark, Object::Filemark, Object::EndOfData]);
    // IMMED answers without waiting for the flush; the next positioning command makes it.
    assert_eq!(d.syncs(), before, "IMMED waited for a flush");
    assert_good(&d.t.run(&REWIND).0);
    assert_eq!(d.syncs(), before + 1, "REWIND flushes the marks IMMED left buffered");
    assert_good(&d.t.run(&read6(10, false)).0);
    for _ in 0..2 {
        assert_tape_sense(&d.t.run(&read6(10, false)).0, 0x00, (0, 1), 0x80, Some(10));
    }
    assert_tape_sense(&d.t.run(&read6(10, false)).0, 0x08, (0, 5), 0, Some(10));
}

#[test]
fn write_filemarks_with_immed_is_refused_in_unbuffered_mode() {
    let d = drive();
    set_buffered(&d, false);
    d.write(&[7u8; 10]);
    // SSC-3 7.10: IMMED is only valid in buffered mode: INVALID FIELD IN CDB, nothing written.
    assert_sense(&d.t.run(&write_filemarks(true, 1)).0, 0x05, 0x24, 0x00);
    assert_eq!(position(&d), (false, 1));
    assert_eq!(objects_in_file(&d), [Object::Data(10), Object::EndOfData]);
    assert_good(&d.t.run(&write_filemarks(false, 1)).0);
    assert_eq!(objects_in_file(&d), [Object::Data(10), Object::Filemark, Object::EndOfData]);
}

#[test]
fn write_filemarks_makes_buffered_writes_durable() {
    let d = drive();
    let start = d.syncs();
    // Buffered mode (the default): GOOD with the blocks in the file, not yet synced.
    for b in 0..3u8 {
        d.write(&[b; 100]);
    }
    assert_eq!(d.syncs(), start, "buffered writes synced one by one");
    assert_good(&d.t.run(&WEOF).0);
    assert_eq!(d.syncs(), start + 1, "WRITE FILEMARKS did not flush");
    // A count of 0 writes no mark and only flushes what is pending.
    d.write(&[9u8; 100]);
    assert_eq!(d.syncs(), start + 1);
    assert_good(&d.t.run(&write_filemarks(false, 0)).0);
    assert_eq!(d.syncs(), start + 2, "WRITE FILEMARKS of 0 marks did not flush");
    assert_eq!(position(&d), (false, 5), "no mark written");
    let data = Object::Data(100);
    assert_eq!(objects_in_file(&d), [data, data, data, Object::Filemark, data, Object::EndOfData]);
}

#[test]
fn unbuffered_writes_are_durable_before_good() {
    let d = drive();
    set_buffered(&d, false);
    let start = d.syncs();
    for (n, b) in (1..=3u64).zip(0u8..) {
        d.write(&[b; 100]);
        assert_eq!(d.syncs(), start + n, "write {n} answered GOOD before it was durable");
    }
    // Fixed-block mode: every block of the command.
    let select = [0, 0, 0x00, 8, 0, 0, 0, 0, 0, 0, 0x02, 0x00];
    assert_good(&d.t.run_out(&[0x15, 0x10, 0, 0, 12, 0], &select).0);
    assert_good(&d.t.run_out(&[0x0a, 1, 0, 0, 2, 0], &[5u8; 1024]).0);
    assert!(d.syncs() >= start + 4, "a fixed-mode write answered GOOD before it was durable");
}
