//! Moving on the tape through `Target::execute`: SPACE both ways, REWIND, LOCATE, READ POSITION,
//! ERASE and LOAD UNLOAD.

use super::tests::*;
use crate::test_util::*;

fn space(code: u8, count: i32) -> [u8; 6] {
    let c = count.to_be_bytes();
    [0x11, code, c[1], c[2], c[3], 0]
}

/// Two files: blocks 0-2 and a filemark (3), blocks 4-5 and a filemark (6), then end of data (7).
fn two_files() -> Drive {
    let d = drive();
    for b in 0..3u8 {
        d.write(&[b; 10]);
    }
    assert_good(&d.t.run(&WEOF).0);
    for b in 4..6u8 {
        d.write(&[b; 10]);
    }
    assert_good(&d.t.run(&WEOF).0);
    assert_good(&d.t.run(&REWIND).0);
    d
}

#[test]
fn space_over_blocks_stops_at_filemarks_both_ways() {
    let d = two_files();
    assert_eq!(position(&d), (true, 0));
    assert_good(&d.t.run(&space(0, 2)).0);
    assert_eq!(position(&d), (false, 2));
    // Two more: one block, then the filemark stops it past the mark, one block short.
    assert_tape_sense(&d.t.run(&space(0, 3)).0, 0x00, (0, 1), 0x80, Some(2));
    assert_eq!(position(&d), (false, 4));
    // Backward: the filemark stops it before the mark.
    assert_tape_sense(&d.t.run(&space(0, -2)).0, 0x00, (0, 1), 0x80, Some(2));
    assert_eq!(position(&d), (false, 3));
    assert_good(&d.t.run(&space(0, -3)).0);
    assert_eq!(position(&d), (true, 0));
    // Backward at the beginning: EOM, BEGINNING-OF-PARTITION/MEDIUM DETECTED.
    assert_tape_sense(&d.t.run(&space(0, -1)).0, 0x00, (0, 4), 0x40, Some(1));
    // Forward into the end of data: BLANK CHECK.
    assert_good(&d.t.run(&space(3, 0)).0);
    assert_eq!(position(&d), (false, 7));
    assert_tape_sense(&d.t.run(&space(0, 1)).0, 0x08, (0, 5), 0, Some(1));
}

#[test]
fn space_over_filemarks_and_to_end_of_data() {
    let d = two_files();
    assert_good(&d.t.run(&space(1, 1)).0);
    assert_eq!(position(&d), (false, 4));
    let (r, data) = d.t.run(&read6(10, false));
    assert_good(&r);
    assert_eq!(data, [4u8; 10]);
    assert_tape_sense(&d.t.run(&space(1, 2)).0, 0x08, (0, 5), 0, Some(1));
    assert_eq!(position(&d), (false, 7));
    // Back over one filemark: before it; back over two: before the first.
    assert_good(&d.t.run(&space(1, -1)).0);
    assert_eq!(position(&d), (false, 6));
    assert_good(&d.t.run(&space(1, -1)).0);
    assert_eq!(position(&d), (false, 3));
    assert_tape_sense(&d.t.run(&space(1, -1)).0, 0x00, (0, 4), 0x40, Some(1));
    assert_eq!(position(&d), (true, 0));
    // Sequential filemarks are not supported.
    assert_sense(&d.t.run(&space(2, 1)).0, 0x05, 0x24, 0x00);
}

#[test]
fn locate_and_the_long_and_extended_positions() {
    let d = two_files();
    assert_good(&d.t.run(&[0x2b, 0, 0, 0, 0, 0, 5, 0, 0, 0]).0);
    assert_eq!(position(&d), (false, 5));
    let (r, long) = d.t.run(&[0x34, 0x06, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_good(&r);
    assert_eq!(long.len(), 32);
    assert_eq!(long[8..16], 5u64.to_be_bytes());
    assert_eq!(long[16..24], 1u64.to_be_bytes(), "one filemark before");
    let (r, ext) = d.t.run(&[0x34, 0x08, 0, 0, 0, 0, 0, 0, 32, 0]);
    assert_good(&r);
    assert_eq!(ext[2..4], [0, 28]);
    assert_eq!(ext[8..16], 5u64.to_be_bytes());
    assert_eq!(ext[16..24], 5u64.to_be_bytes());
    assert_sense(&d.t.run(&[0x34, 0x03, 0, 0, 0, 0, 0, 0, 0, 0]).0, 0x05, 0x24, 0x00);
    // Back to 1, then LOCATE(16) to file 1 (after the first filemark), then to end of data.
    assert_good(&d.t.run(&[0x2b, 0, 0, 0, 0, 0, 1, 0, 0, 0]).0);
    let (_, data) = d.t.run(&read6(10, false));
    assert_eq!(data, [1u8; 10]);
    let mut l16 = [0x92, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_good(&d.t.run(&l16).0);
    assert_eq!(position(&d), (false, 4));
    l16[1] = 0x18;
    assert_good(&d.t.run(&l16).0);
    assert_eq!(position(&d), (false, 7));
    // Past the end of data: BLANK CHECK; another partition: refused.
    assert_tape_sense(&d.t.run(&[0x2b, 0, 0, 0, 0, 0, 9, 0, 0, 0]).0, 0x08, (0, 5), 0, Some(0));
    assert_sense(&d.t.run(&[0x2b, 0x02, 0, 0, 0, 0, 1, 0, 1, 0]).0, 0x05, 0x24, 0x00);
}

#[test]
fn erase_ends_the_tape_at_the_position() {
    let d = two_files();
    assert_good(&d.t.run(&space(1, 1)).0);
    assert_good(&d.t.run(&[0x19, 0x01, 0, 0, 0, 0]).0);
    assert_good(&d.t.run(&REWIND).0);
    assert_good(&d.t.run(&space(3, 0)).0);
    assert_eq!(position(&d), (false, 4));
}

#[test]
fn unload_leaves_the_tape_not_ready_until_load() {
    let d = two_files();
    assert_good(&d.t.run(&space(0, 2)).0);
    let other = d.t.target.add_nexus("iqn.2024-01.test:i2".into());
    d.t.clear_ua(&other);
    assert_good(&d.t.run(&[0x1b, 0, 0, 0, 0, 0]).0);
    assert_sense(&d.t.run(&[0, 0, 0, 0, 0, 0]).0, 0x02, 0x04, 0x02);
    // LOAD with EOT is refused; LOAD makes it ready at the beginning, the other nexus is told.
    assert_sense(&d.t.run(&[0x1b, 0, 0, 0, 0x05, 0]).0, 0x05, 0x24, 0x00);
    assert_good(&d.t.run(&[0x1b, 0, 0, 0, 1, 0]).0);
    assert_eq!(position(&d), (true, 0));
    assert_sense(&d.t.run_on(&other, &[0, 0, 0, 0, 0, 0], &[]).0, 0x06, 0x28, 0x00);
}
