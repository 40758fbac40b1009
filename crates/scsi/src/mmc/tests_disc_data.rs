//! READ CD, READ DVD STRUCTURE, REPORT KEY and READ BUFFER CAPACITY through `Target::execute`.

use super::tests::drive;
use crate::test_util::*;
use crate::LunConfig;
use rtgt_backstore::{Backstore, NullStore};

/// READ CD of `blocks` sectors at `lba`: expected sector type `kind`, main channel `main`,
/// sub-channel `sub`.
fn read_cd(kind: u8, lba: u32, blocks: u32, main: u8, sub: u8) -> [u8; 12] {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    [0xbe, kind << 2, l[0], l[1], l[2], l[3], n[1], n[2], n[3], main, sub, 0]
}

/// A DVD-sized disc (more than an 80-minute CD holds); the null store keeps it cheap.
fn dvd(blocks: u64) -> TestLun {
    TestLun::with_store(LunConfig::cd(1, 1), Some(Backstore::Null(NullStore::new(blocks * 2048))), 1)
}

/// The sense-key specific field pointer's byte (fixed sense bytes 16-17).
fn field_pointer(r: &crate::TaskResult) -> u16 {
    let s = r.sense.as_deref().expect("sense data");
    u16::from_be_bytes([s[16], s[17]])
}

fn read_dvd_structure(media: u8, layer: u8, format: u8, alloc: u16) -> [u8; 12] {
    let a = alloc.to_be_bytes();
    [0xad, media, 0, 0, 0, 0, layer, format, a[0], a[1], 0, 0]
}

#[test]
fn read_cd_returns_user_data_of_mode_1_sectors() {
    let size = 3 * 2048 + 100;
    let t = drive(size);
    let (r, d10) = t.run(&[0x28, 0, 0, 0, 0, 1, 0, 0, 3, 0]);
    assert_good(&r);
    // Any sector type and Mode 1, user data only: the same bytes as READ(10), the partial last
    // block zero-padded.
    for kind in [0b000, 0b010] {
        let (r, d) = t.run(&read_cd(kind, 1, 3, 0x10, 0));
        assert_good(&r);
        assert_eq!(d, d10);
    }
    let want: Vec<u8> = (2048..4096).map(|i| (i % 251) as u8).collect();
    assert_eq!(&d10[..2048], &want[..]);
    // The sub-header of a Mode 1 sector is empty: still 2048 bytes a sector.
    let (r, d) = t.run(&read_cd(0, 1, 3, 0x50, 0));
    assert_good(&r);
    assert_eq!(d, d10);
    // Nothing selected: no data, but the range is still checked.
    let (r, d) = t.run(&read_cd(0, 0, 4, 0x00, 0));
    assert_good(&r);
    assert!(d.is_empty());
    assert_sense(&t.run(&read_cd(0, 2, 3, 0x00, 0)).0, 0x05, 0x21, 0x00);
    // Past the last block; a transfer length of 0 transfers nothing.
    assert_sense(&t.run(&read_cd(0, 3, 2, 0x10, 0)).0, 0x05, 0x21, 0x00);
    assert_sense(&t.run(&read_cd(0, u32::MAX, 1, 0x10, 0)).0, 0x05, 0x21, 0x00);
    let (r, d) = t.run(&read_cd(0, 0, 0, 0x10, 0));
    assert_good(&r);
    assert!(d.is_empty());
}

#[test]
fn read_cd_refuses_what_the_image_does_not_hold() {
    let t = drive(10 * 2048);
    // CD-DA, Mode 2 formless, Mode 2 Form 1, Mode 2 Form 2: not this track's sectors.
    for kind in [0b001, 0b011, 0b100, 0b101] {
        assert_sense(&t.run(&read_cd(kind, 0, 1, 0x10, 0)).0, 0x05, 0x64, 0x00);
    }
    // Reserved sector types.
    for kind in [0b110, 0b111] {
        assert_sense(&t.run(&read_cd(kind, 0, 1, 0x10, 0)).0, 0x05, 0x24, 0x00);
    }
    // SYNC, header, all headers, EDC/ECC, C2 flags, C2 and block errors, a whole raw sector.
    for main in [0x90, 0x30, 0x70, 0x18, 0x12, 0x14, 0x16, 0xf8] {
        let (r, _) = t.run(&read_cd(0, 0, 1, main, 0));
        assert_sense(&r, 0x05, 0x24, 0x00);
        // The field pointer names byte 9 (sense-key specific bytes 15-17 of fixed sense).
        assert_eq!(field_pointer(&r), 9, "main channel {main:#04x}");
    }
    // Raw P-W, formatted Q, corrected R-W sub-channel.
    for sub in [1, 2, 4] {
        let (r, _) = t.run(&read_cd(0, 0, 1, 0x10, sub));
        assert_sense(&r, 0x05, 0x24, 0x00);
        assert_eq!(field_pointer(&r), 10);
    }
    // The usage data refuses the reserved bit of byte 9 and the reserved sub-channel bits.
    assert_sense(&t.run(&read_cd(0, 0, 1, 0x11, 0)).0, 0x05, 0x24, 0x00);
    assert_sense(&t.run(&read_cd(0, 0, 1, 0x10, 0x08)).0, 0x05, 0x24, 0x00);
}

#[test]
fn read_cd_and_dvd_structure_with_an_empty_tray() {
    let t = dvd(400_000);
    t.target.change_medium(1, None, false).unwrap();
    t.clear_ua(&t.nexus);
    assert_sense(&t.run(&read_cd(0, 0, 1, 0x10, 0)).0, 0x02, 0x3a, 0x01);
    assert_sense(&t.run(&read_dvd_structure(0, 0, 0, 0xffff)).0, 0x02, 0x3a, 0x01);
    // The drive's own answers need no disc.
    assert_good(&t.run(&[0xa4, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0x08, 0]).0);
    assert_good(&t.run(&[0x5c, 0, 0, 0, 0, 0, 0, 0, 12, 0]).0);
}

#[test]
fn dvd_structure_physical_format_of_a_dvd_rom() {
    let blocks = 400_000u32;
    let t = dvd(u64::from(blocks));
    let (r, d) = t.run(&read_dvd_structure(0, 0, 0x00, 0xffff));
    assert_good(&r);
    assert_eq!(d.len(), 4 + 2048);
    assert_eq!(&d[..4], [0x08, 0x02, 0, 0], "DATA LENGTH 2050");
    // DVD-ROM version 1, 120 mm, one embossed layer, data area from PSN 030000h.
    assert_eq!(&d[4..8], [0x01, 0x0f, 0x01, 0x00]);
    assert_eq!(&d[8..12], [0, 0x03, 0, 0]);
    assert_eq!(u32::from_be_bytes(d[12..16].try_into().unwrap()), 0x30000 + blocks - 1);
    assert!(d[16..].iter().all(|&b| b == 0));
    // Allocation length cuts; DATA LENGTH stays.
    let (r, d) = t.run(&read_dvd_structure(0, 0, 0x00, 8));
    assert_good(&r);
    assert_eq!(d, [0x08, 0x02, 0, 0, 0x01, 0x0f, 0x01, 0x00]);
    let (r, d) = t.run(&read_dvd_structure(0, 0, 0x00, 0));
    assert_good(&r);
    assert!(d.is_empty());
    // One layer only.
    assert_sense(&t.run(&read_dvd_structure(0, 1, 0x00, 0xffff)).0, 0x05, 0x24, 0x00);
    // Copyright: no protection system, every region.
    let (r, d) = t.run(&read_dvd_structure(0, 0, 0x01, 0xffff));
    assert_good(&r);
    assert_eq!(d, [0, 6, 0, 0, 0, 0, 0, 0]);
    // The list of structures: 00h, 01h and FFh, each readable.
    let (r, d) = t.run(&read_dvd_structure(0, 0, 0xff, 0xffff));
    assert_good(&r);
    assert_eq!(d, [0, 14, 0, 0, 0x00, 0x40, 0x08, 0x04, 0x01, 0x40, 0, 8, 0xff, 0x40, 0, 16]);
    // Disc key, BCA, manufacturer's data ...: not on this disc.
    for format in [0x02, 0x03, 0x04, 0x05, 0x0e, 0x30] {
        assert_sense(&t.run(&read_dvd_structure(0, 0, format, 0xffff)).0, 0x05, 0x24, 0x00);
    }
    // Blu-ray structures of a DVD, reserved media types.
    assert_sense(&t.run(&read_dvd_structure(1, 0, 0x00, 0xffff)).0, 0x05, 0x30, 0x02);
    assert_sense(&t.run(&read_dvd_structure(2, 0, 0x00, 0xffff)).0, 0x05, 0x24, 0x00);
}

#[test]
fn dvd_structure_of_a_cd_is_an_incompatible_format() {
    let t = drive(1000 * 2048);
    for format in [0x00, 0x01, 0xff] {
        assert_sense(&t.run(&read_dvd_structure(0, 0, format, 0xffff)).0, 0x05, 0x30, 0x02);
    }
}

#[test]
fn report_key_gives_the_rpc_state_and_refuses_key_exchange() {
    let t = drive(10 * 2048);
    let report_key = |class: u8, format: u8, alloc: u8| [0xa4, 0, 0, 0, 0, 0, 0, class, 0, alloc, format, 0];
    let (r, d) = t.run(&report_key(0, 0x08, 8));
    assert_good(&r);
    // No region set (type 00b), 4 vendor resets and 5 user changes left, no region chosen, RPC not
    // enforced.
    assert_eq!(d, [0, 6, 0, 0, 0x25, 0xff, 0x00, 0]);
    // An AGID in the field changes nothing; a short allocation length cuts.
    assert_eq!(t.run(&report_key(0, 0xc8, 8)).1, d);
    assert_eq!(t.run(&report_key(0, 0x08, 4)).1, [0, 6, 0, 0]);
    // AGID for CSS and CPRM, challenge, KEY1, title key, ASF, invalidate AGID: no such feature.
    for format in [0x00, 0x01, 0x02, 0x04, 0x05, 0x11, 0x3f] {
        let (r, _) = t.run(&report_key(0, format, 8));
        assert_sense(&r, 0x05, 0x24, 0x00);
        assert_eq!(field_pointer(&r), 10, "key format {format:#04x}");
    }
    // Key classes other than DVD CSS/CPPM.
    assert_sense(&t.run(&report_key(0x02, 0x08, 8)).0, 0x05, 0x24, 0x00);
}

#[test]
fn read_buffer_capacity_reports_an_empty_buffer() {
    let t = drive(10 * 2048);
    let (r, d) = t.run(&[0x5c, 0, 0, 0, 0, 0, 0, 0, 12, 0]);
    assert_good(&r);
    // 2 MiB, all of it blank.
    assert_eq!(d, [0, 10, 0, 0, 0, 0x20, 0, 0, 0, 0x20, 0, 0]);
    let (r, d) = t.run(&[0x5c, 1, 0, 0, 0, 0, 0, 0, 12, 0]);
    assert_good(&r);
    // BLOCK: 1024 blocks of 2048 bytes available.
    assert_eq!(d, [0, 10, 0, 1, 0, 0, 0, 0, 0, 0, 0x04, 0]);
    assert_eq!(t.run(&[0x5c, 0, 0, 0, 0, 0, 0, 0, 2, 0]).1, [0, 10]);
}
