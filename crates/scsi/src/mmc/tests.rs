//! The drive's commands through `Target::execute`, on an image in memory.

use crate::test_util::*;
use crate::LunConfig;
use rtgt_backstore::{Backstore, BlockStore, MemoryStore};

const TUR: [u8; 6] = [0, 0, 0, 0, 0, 0];

/// An image of `size` bytes whose byte i is i % 251.
pub(super) fn image(size: u64) -> Backstore {
    let store = MemoryStore::new(size);
    let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    block_on(store.write_at(0, &bytes, false)).unwrap();
    Backstore::Memory(store)
}

pub(super) fn drive(size: u64) -> TestLun {
    TestLun::with_store(LunConfig::cd(1, 1), Some(image(size)), 1)
}

fn read10(lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    [0x28, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}

#[test]
fn inquiry_says_removable_cd_dvd() {
    let t = drive(10 * 2048);
    let (r, d) = t.run(&[0x12, 0, 0, 0, 36, 0]);
    assert_good(&r);
    assert_eq!((d[0], d[1]), (0x05, 0x80));
    assert_eq!(&d[16..29], b"VIRTUAL-CDROM");
}

#[test]
fn capacity_counts_a_partial_last_block_which_reads_zero_padded() {
    let size = 3 * 2048 + 100;
    let t = drive(size);
    let (r, d) = t.run(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_good(&r);
    assert_eq!(d, [0, 0, 0, 3, 0, 0, 0x08, 0]);
    let (r, d) = t.run(&read10(2, 2));
    assert_good(&r);
    assert_eq!(d.len(), 4096);
    let want: Vec<u8> = (4096..4096 + 2048 + 100).map(|i| (i % 251) as u8).collect();
    assert_eq!(&d[..2148], &want[..]);
    assert!(d[2148..].iter().all(|&b| b == 0));
    // READ(12) of the same blocks; past the end is out of range.
    let (r, d12) = t.run(&[0xa8, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0]);
    assert_good(&r);
    assert_eq!(d12, d);
    assert_sense(&t.run(&read10(3, 2)).0, 0x05, 0x21, 0x00);
    assert_sense(&t.run(&[0xa8, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 2, 0, 0]).0, 0x05, 0x21, 0x00);
}

#[test]
fn writes_are_data_protect() {
    let t = drive(4 * 2048);
    let w10 = [0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    assert_sense(&t.run_out(&w10, &[0; 2048]).0, 0x07, 0x27, 0x00);
    assert_sense(&t.run_out(&[0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], &[0; 2048]).0, 0x07, 0x27, 0x00);
    // WRITE(6) is not an MMC command.
    assert_sense(&t.run_out(&[0x0a, 0, 0, 0, 1, 0], &[0; 2048]).0, 0x05, 0x20, 0x00);
}

#[test]
fn get_configuration_profiles_by_size_and_rt() {
    let cd = drive(10 * 2048);
    let (r, d) = cd.run(&[0x46, 0, 0, 0, 0, 0, 0, 0x10, 0, 0]);
    assert_good(&r);
    assert_eq!(&d[6..8], [0x00, 0x08], "current profile CD-ROM");
    let len = u32::from_be_bytes(d[..4].try_into().unwrap()) as usize;
    assert_eq!(len + 4, d.len());
    // Profile list: DVD-ROM not current, CD-ROM current.
    assert_eq!(&d[8..20], [0, 0, 0x03, 8, 0, 0x10, 0, 0, 0, 0x08, 1, 0]);
    // RT=10b: the one feature asked for (Removable Medium), with the tray mechanism.
    let (r, d) = cd.run(&[0x46, 0x02, 0, 0x03, 0, 0, 0, 0, 0xff, 0]);
    assert_good(&r);
    assert_eq!(&d[8..], [0x00, 0x03, 0x0b, 4, 0x39, 0, 0, 0]);
    // RT=01b from CD Read: only the current CD Read (DVD Read is not current).
    let (_, d) = cd.run(&[0x46, 0x01, 0, 0x1e, 0, 0, 0, 0, 0xff, 0]);
    assert_eq!(&d[8..], [0x00, 0x1e, 0x09, 4, 0, 0, 0, 0]);
    // Allocation length cuts, DATA LENGTH does not change.
    let (r, d) = cd.run(&[0x46, 0, 0, 0, 0, 0, 0, 0, 8, 0]);
    assert_good(&r);
    assert_eq!(d.len(), 8);
    assert_eq!(u32::from_be_bytes(d[..4].try_into().unwrap()), len as u32);
    assert_sense(&cd.run(&[0x46, 0x03, 0, 0, 0, 0, 0, 0, 8, 0]).0, 0x05, 0x24, 0x00);
    // A DVD-sized image (more than 360,000 blocks) is a DVD-ROM; 'null' keeps it cheap.
    let dvd = TestLun::with_store(
        LunConfig::cd(1, 1),
        Some(Backstore::Null(rtgt_backstore::NullStore::new(360_001 * 2048))),
        1,
    );
    let (_, d) = dvd.run(&[0x46, 0x01, 0, 0x1f, 0, 0, 0, 0, 0xff, 0]);
    assert_eq!(&d[6..8], [0x00, 0x10]);
    assert_eq!(&d[8..12], [0x00, 0x1f, 0x05, 4]);
}

#[test]
fn read_toc_formats_lba_and_msf() {
    let t = drive(1000 * 2048);
    let (r, d) = t.run(&[0x43, 0, 0, 0, 0, 0, 0, 0, 0xff, 0]);
    assert_good(&r);
    assert_eq!(d, [0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0, 0, 0x14, 0xaa, 0, 0, 0, 0x03, 0xe8]);
    // MSF: track 1 at 00:02:00, lead-out at LBA 1000 + 150 frames = 00:15:25.
    let (r, d) = t.run(&[0x43, 0x02, 0, 0, 0, 0, 0, 0, 0xff, 0]);
    assert_good(&r);
    assert_eq!(&d[8..12], [0, 0, 2, 0]);
    assert_eq!(&d[16..20], [0, 0, 15, 25]);
    // Starting at the lead-out.
    let (_, d) = t.run(&[0x43, 0, 0, 0, 0, 0, 0xaa, 0, 0xff, 0]);
    assert_eq!(d, [0, 10, 1, 1, 0, 0x14, 0xaa, 0, 0, 0, 0x03, 0xe8]);
    // Session information.
    let (_, d) = t.run(&[0x43, 0, 1, 0, 0, 0, 0, 0, 0xff, 0]);
    assert_eq!(d, [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0]);
    // Allocation length of 4: the header only.
    let (_, d) = t.run(&[0x43, 0, 0, 0, 0, 0, 0, 0, 4, 0]);
    assert_eq!(d, [0, 18, 1, 1]);
    assert_sense(&t.run(&[0x43, 0, 2, 0, 0, 0, 0, 0, 0xff, 0]).0, 0x05, 0x24, 0x00);
    assert_sense(&t.run(&[0x43, 0, 0, 0, 0, 0, 2, 0, 0xff, 0]).0, 0x05, 0x24, 0x00);
    assert_eq!(super::disc_info::address(u64::from(u32::MAX), true), [0, 255, 59, 74]);
}

#[test]
fn disc_and_track_information() {
    let t = drive(1000 * 2048);
    let (r, d) = t.run(&[0x51, 0, 0, 0, 0, 0, 0, 0, 0xff, 0]);
    assert_good(&r);
    assert_eq!(d.len(), 34);
    assert_eq!(&d[..8], [0, 32, 0x0e, 1, 1, 1, 1, 0x20]);
    assert_sense(&t.run(&[0x51, 1, 0, 0, 0, 0, 0, 0, 0xff, 0]).0, 0x05, 0x24, 0x00);
    // Track 1 by number and by an LBA inside it; track 2 does not exist.
    let (r, d) = t.run(&[0x52, 1, 0, 0, 0, 1, 0, 0, 0xff, 0]);
    assert_good(&r);
    assert_eq!(d.len(), 36);
    // LRA_V: the LAST RECORDED ADDRESS is valid (NWA_V 0: nothing can be written).
    assert_eq!(&d[..8], [0, 34, 1, 1, 0, 0x04, 0x01, 0x02]);
    assert_eq!(&d[24..32], [0, 0, 0x03, 0xe8, 0, 0, 0x03, 0xe7]);
    assert_good(&t.run(&[0x52, 0, 0, 0, 0x03, 0xe7, 0, 0, 0xff, 0]).0);
    assert_sense(&t.run(&[0x52, 0, 0, 0, 0x03, 0xe8, 0, 0, 0xff, 0]).0, 0x05, 0x24, 0x00);
    assert_sense(&t.run(&[0x52, 1, 0, 0, 0, 2, 0, 0, 0xff, 0]).0, 0x05, 0x24, 0x00);
    let (_, d) = t.run(&[0x52, 1, 0, 0, 0, 1, 0, 0, 4, 0]);
    assert_eq!(d, [0, 34, 1, 1]);
}

#[test]
fn capabilities_mode_page() {
    let t = drive(10 * 2048);
    let (r, d) = t.run(&[0x5a, 0, 0x2a, 0, 0, 0, 0, 0, 0xff, 0]);
    assert_good(&r);
    // Header: mode data length, no block descriptors; then page 2Ah, length 1Ch.
    assert_eq!(u16::from_be_bytes([d[0], d[1]]) as usize + 2, d.len());
    assert_eq!(&d[6..8], [0, 0]);
    assert_eq!(&d[8..10], [0x2a, 0x1c]);
    assert_eq!(d[10], 0x0b);
    assert_eq!(d[14], 0x29);
    assert_eq!(d.len(), 8 + 30);
}

#[test]
fn empty_tray_open_and_closed() {
    let t = drive(10 * 2048);
    assert_good(&t.run(&TUR).0);
    // Eject: tray open.
    assert_good(&t.run(&[0x1b, 0, 0, 0, 0x02, 0]).0);
    assert_sense(&t.run(&TUR).0, 0x02, 0x3a, 0x02);
    assert_sense(&t.run(&read10(0, 1)).0, 0x02, 0x3a, 0x02);
    // MECHANISM STATUS: door open; GESN: media removal, tray open, medium present.
    let (r, d) = t.run(&[0xbd, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0]);
    assert_good(&r);
    assert_eq!(d, [0, 0x10, 0, 0, 0, 0, 0, 0]);
    let gesn = [0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0];
    assert_eq!(t.run(&gesn).1, [0, 6, 4, 0x52, 3, 0x03, 0, 0]);
    // The event is reported once.
    assert_eq!(t.run(&gesn).1, [0, 6, 4, 0x52, 0, 0x03, 0, 0]);
    // REQUEST SENSE says why.
    let (_, d) = t.run(&[0x03, 0, 0, 0, 18, 0]);
    assert_eq!((d[2], d[12], d[13]), (0x02, 0x3a, 0x02));
    // Load: readable again, new media.
    assert_good(&t.run(&[0x1b, 0, 0, 0, 0x03, 0]).0);
    assert_good(&t.run(&TUR).0);
    assert_eq!(t.run(&gesn).1, [0, 6, 4, 0x52, 2, 0x02, 0, 0]);
    // Medium removed by the administrator: tray closed, empty.
    t.target.change_medium(1, None, false).unwrap();
    assert_sense(&t.run(&TUR).0, 0x02, 0x3a, 0x01);
    assert_sense(&t.run(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).0, 0x02, 0x3a, 0x01);
    assert_eq!(t.run(&gesn).1, [0, 6, 4, 0x52, 3, 0, 0, 0]);
    // GET CONFIGURATION answers without a disc: no current profile.
    let (r, d) = t.run(&[0x46, 0, 0, 0, 0, 0, 0, 0, 0xff, 0]);
    assert_good(&r);
    assert_eq!(&d[6..8], [0, 0]);
    // Not polled, and classes without media.
    assert_sense(&t.run(&[0x4a, 0, 0, 0, 0x10, 0, 0, 0, 8, 0]).0, 0x05, 0x24, 0x00);
    assert_eq!(t.run(&[0x4a, 1, 0, 0, 0x04, 0, 0, 0, 8, 0]).1, [0, 2, 0x80, 0x52]);
}

/// GET CONFIGURATION's Core feature claims the device busy class (DBE) and its Morphing feature
/// the operational change class (OCEvent): GET EVENT STATUS NOTIFICATION reports both, with the
/// media class, and names all three as supported (MMC-6 6.7).
#[test]
fn the_event_classes_get_configuration_claims_are_reported() {
    let t = drive(10 * 2048);
    let (_, d) = t.run(&[0x46, 0x02, 0, 0x01, 0, 0, 0, 0, 0xff, 0]);
    assert_eq!(&d[8..], [0, 0x01, 0x0b, 8, 0, 0, 0, 1, 0x01, 0, 0, 0], "Core: DBE");
    let (_, d) = t.run(&[0x46, 0x02, 0, 0x02, 0, 0, 0, 0, 0xff, 0]);
    assert_eq!(&d[8..], [0, 0x02, 0x07, 4, 0x02, 0, 0, 0], "Morphing: OCEvent");
    let gesn = |classes: u8| t.run(&[0x4a, 1, 0, 0, classes, 0, 0, 0, 0xff, 0]).1;
    // Operational change: no change, the drive available, nothing changed.
    assert_eq!(gesn(0x02), [0, 6, 1, 0x52, 0, 0, 0, 0]);
    // Device busy: no event, not busy, no time.
    assert_eq!(gesn(0x40), [0, 6, 6, 0x52, 0, 0, 0, 0]);
    // Several classes: the highest priority (lowest numbered) one with an event pending...
    assert_good(&t.run(&[0x1b, 0, 0, 0, 0x02, 0]).0);
    assert_eq!(gesn(0x52), [0, 6, 4, 0x52, 3, 0x03, 0, 0]);
    // ...and with none pending, the highest priority one asked for.
    assert_eq!(gesn(0x52), [0, 6, 1, 0x52, 0, 0, 0, 0]);
    assert_eq!(gesn(0x50), [0, 6, 4, 0x52, 0, 0x03, 0, 0]);
    // Classes the drive does not have (power management, external request, multi-host): NEA.
    assert_eq!(gesn(0x2c), [0, 2, 0x80, 0x52]);
}

#[test]
fn prevention_refuses_eject_load_and_media_change() {
    let t = drive(10 * 2048);
    assert_good(&t.run(&[0x1e, 0, 0, 0, 1, 0]).0);
    assert!(t.lu.info().prevent_removal);
    assert_sense(&t.run(&[0x1b, 0, 0, 0, 0x02, 0]).0, 0x05, 0x53, 0x02);
    assert_eq!(t.target.change_medium(1, None, false), Err(crate::MediumChangeError::RemovalPrevented(1)));
    // The refused change asks the initiator for the disc.
    assert_eq!(t.run(&[0x4a, 1, 0, 0, 0x10, 0, 0, 0, 8, 0]).1[4], 1);
    assert_good(&t.run(&TUR).0);
    // Forced, it happens anyway.
    t.target.change_medium(1, None, true).unwrap();
    assert_sense(&t.run(&TUR).0, 0x02, 0x3a, 0x01);
    assert_good(&t.run(&[0x1e, 0, 0, 0, 0, 0]).0);
    assert!(!t.lu.info().prevent_removal);
}

#[test]
fn media_change_gives_every_nexus_a_unit_attention() {
    let t = drive(10 * 2048);
    let other = t.target.add_nexus("iqn.2024-01.test:i2".into());
    t.clear_ua(&other);
    t.target.change_medium(1, Some(image(20 * 2048 + 1)), false).unwrap();
    for nexus in [&t.nexus, &other] {
        assert_sense(&t.run_on(nexus, &TUR, &[]).0, 0x06, 0x28, 0x00);
        assert_good(&t.run_on(nexus, &TUR, &[]).0);
    }
    let (_, d) = t.run(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&d[..4], [0, 0, 0, 20]);
    assert_eq!(t.lu.info().size, 20 * 2048 + 1);
    // A load by one nexus tells the others only.
    assert_good(&t.run(&[0x1b, 0, 0, 0, 0x02, 0]).0);
    assert_good(&t.run(&[0x1b, 0, 0, 0, 0x03, 0]).0);
    assert_good(&t.run(&TUR).0);
    assert_sense(&t.run_on(&other, &TUR, &[]).0, 0x06, 0x28, 0x00);
    // A disk is not a drive.
    let disk = TestLun::disk(1 << 20);
    assert_eq!(disk.target.change_medium(1, None, false), Err(crate::MediumChangeError::NotRemovable(1)));
    assert_eq!(disk.target.change_medium(9, None, false), Err(crate::MediumChangeError::NoSuchLun(9)));
}

#[test]
fn speed_and_streaming_are_accepted() {
    let t = drive(10 * 2048);
    assert_good(&t.run(&[0xbb, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]).0);
    assert_good(&t.run_out(&[0xb6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 28, 0], &[0; 28]).0);
}
