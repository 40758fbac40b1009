//! The changer's commands through `Target::execute`, with drives faked behind the seam.

use super::*;
use crate::medium_drive::MediumDrive;
use crate::test_util::*;
use crate::LunConfig;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A drive that holds a path, refuses to give it up while `prevented`, and refuses any cartridge
/// while `broken`.
#[derive(Debug, Default)]
struct FakeDrive {
    medium: Mutex<Option<PathBuf>>,
    prevented: AtomicBool,
    broken: AtomicBool,
}

impl MediumDrive for FakeDrive {
    fn load(&self, medium: &Path) -> Result<(), Sense> {
        let mut held = self.medium.lock();
        if held.is_some() || self.broken.load(Ordering::Relaxed) {
            return Err(Sense::new(SenseKey::NotReady, Asc(0x3a, 0x00)));
        }
        *held = Some(medium.to_path_buf());
        Ok(())
    }
    fn unload(&self) -> crate::medium_drive::DriveFuture<'_, Result<PathBuf, Sense>> {
        let unloaded = if self.prevented.load(Ordering::Relaxed) {
            Err(Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED))
        } else {
            self.medium.lock().take().ok_or(Sense::new(SenseKey::NotReady, Asc(0x3a, 0x00)))
        };
        Box::pin(std::future::ready(unloaded))
    }
    fn medium(&self) -> Option<PathBuf> {
        self.medium.lock().clone()
    }
    fn identity(&self) -> Option<DriveIdentity> {
        Some(DriveIdentity { vendor: "HP".into(), product: "Ultrium 3-SCSI".into(), serial: "HU012345AB".into() })
    }
}

/// A library like tgt's MSL2024 example, smaller: picker 1, slots 1000-1003, mail slots 10-11,
/// drives 500 (bound to the fake drive at tid 1 LUN 2) and 501 (unbound); media in /tapes.
struct Lib {
    t: TestLun,
    drive: Arc<FakeDrive>,
}

fn lib() -> Lib {
    let t = TestLun::with_store(LunConfig::changer(1, 1), None, 1);
    let drive = Arc::new(FakeDrive::default());
    let found = drive.clone();
    t.lu.attach_drives(Arc::new(move |tid, lun| ((tid, lun) == (1, 2)).then(|| found.clone() as Arc<dyn MediumDrive>)));
    let range = |kind, start, quantity| LibraryChange::AddElements(ElementRange { kind, start, quantity });
    for change in [
        LibraryChange::MediaHome("/tapes".into()),
        range(ElementType::Transport, 1, 1),
        range(ElementType::Storage, 1000, 4),
        range(ElementType::ImportExport, 10, 2),
        range(ElementType::DataTransfer, 500, 2),
        LibraryChange::BindDrive { address: 500, tid: 1, lun: 2 },
        insert(ElementType::Storage, 1000, "A00001"),
        insert(ElementType::Storage, 1001, "A00002"),
    ] {
        t.target.change_library(1, change).unwrap();
    }
    t.clear_ua(&t.nexus);
    Lib { t, drive }
}

fn insert(kind: ElementType, address: u16, barcode: &str) -> LibraryChange {
    LibraryChange::Insert { kind, address, cartridge: Cartridge::new(barcode) }
}

/// READ ELEMENT STATUS: type, VOLTAG, start, count, DVCID, allocation length.
fn res(kind: u8, voltag: bool, start: u16, count: u16, dvcid: bool, alloc: u32) -> [u8; 12] {
    let (s, n, a) = (start.to_be_bytes(), count.to_be_bytes(), alloc.to_be_bytes());
    [0xb8, kind | if voltag { 0x10 } else { 0 }, s[0], s[1], n[0], n[1], u8::from(dvcid), a[1], a[2], a[3], 0, 0]
}

fn move_medium(source: u16, destination: u16) -> [u8; 12] {
    let (s, d) = (source.to_be_bytes(), destination.to_be_bytes());
    [0xa5, 0, 0, 0, s[0], s[1], d[0], d[1], 0, 0, 0, 0]
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn be24(d: &[u8], at: usize) -> usize {
    u32::from_be_bytes([0, d[at], d[at + 1], d[at + 2]]) as usize
}

/// (address, flags byte, SVALID source, volume tag) of one descriptor.
type Seen = (u16, u8, Option<u16>, String);

/// The element type, descriptor length and descriptors of the page at `at`.
fn page(d: &[u8], at: usize) -> (u8, usize, Vec<Seen>) {
    let len = usize::from(be16(d, at + 2));
    let bytes = be24(d, at + 5);
    let descriptors = d[at + 8..at + 8 + bytes]
        .chunks(len)
        .map(|e| {
            let source = (e[9] & 0x80 != 0).then(|| be16(e, 10));
            let tag = if d[at + 1] & 0x80 != 0 {
                String::from_utf8_lossy(&e[12..44]).trim_end().to_string()
            } else {
                String::new()
            };
            (be16(e, 0), e[2], source, tag)
        })
        .collect();
    (d[at], len, descriptors)
}

#[test]
fn inquiry_is_a_removable_medium_changer() {
    let l = lib();
    let (r, d) = l.t.run(&[0x12, 0, 0, 0, 96, 0]);
    assert_good(&r);
    assert_eq!((d[0], d[1]), (0x08, 0x80));
    assert_eq!(&d[16..31], b"VIRTUAL-CHANGER");
    // SMC-3 among the version descriptors.
    assert!(d[58..].chunks(2).any(|v| v == [0x04, 0x80]), "{:02x?}", &d[58..]);
}

#[test]
fn all_elements_in_type_order_with_volume_tags() {
    let l = lib();
    let (r, d) = l.t.run(&res(0, true, 0, 0xffff, false, 0xffff));
    assert_good(&r);
    // 9 elements, 4 pages of 52-byte descriptors.
    assert_eq!((be16(&d, 0), be16(&d, 2)), (1, 9));
    assert_eq!(be24(&d, 5), 4 * 8 + 9 * 52);
    assert_eq!(d.len(), 8 + be24(&d, 5));
    let (kind, len, mt) = page(&d, 8);
    assert_eq!((kind, len, mt.len()), (1, 52, 1));
    assert_eq!(mt[0], (1, 0x00, None, String::new()));
    let at = 8 + 8 + 52;
    let (kind, _, slots) = page(&d, at);
    assert_eq!(kind, 2);
    assert_eq!(slots[0], (1000, 0x09, None, "A00001".into()), "ACCESS and FULL");
    assert_eq!(slots[2], (1002, 0x08, None, String::new()));
    let at = at + 8 + 4 * 52;
    let (kind, _, mail) = page(&d, at);
    assert_eq!(kind, 3);
    assert_eq!(mail[0].1, 0x38, "INENAB, EXENAB, ACCESS");
    let at = at + 8 + 2 * 52;
    let (kind, _, drives) = page(&d, at);
    assert_eq!(kind, 4);
    assert_eq!(drives[0].1, 0x08);
    // The unbound drive: EXCEPT, DATA TRANSFER DEVICE REMOVED.
    assert_eq!(drives[1].1, 0x0c);
    assert_eq!(&d[at + 8 + 52 + 4..at + 8 + 52 + 6], [0x3b, 0x1a]);
}

#[test]
fn descriptor_lengths_follow_voltag_and_dvcid() {
    let l = lib();
    for (voltag, dvcid, len) in [(false, false, 16), (true, false, 52), (false, true, 50), (true, true, 86)] {
        let (r, d) = l.t.run(&res(2, voltag, 0, 10, dvcid, 4096));
        assert_good(&r);
        assert_eq!(usize::from(be16(&d, 10)), len);
        assert_eq!(d[9], if voltag { 0x80 } else { 0 }, "PVOLTAG");
        assert_eq!(d.len(), 16 + 4 * len);
    }
}

#[test]
fn dvcid_names_the_bound_drive() {
    let l = lib();
    let (r, d) = l.t.run(&res(4, true, 0, 10, true, 4096));
    assert_good(&r);
    let e = &d[16..16 + 86];
    assert_eq!(&e[48..52], [0x02, 0x01, 0, 34]);
    assert_eq!(&e[52..86], b"HP      Ultrium 3-SCSI  HU012345AB");
    // The unbound one has no identifier.
    assert_eq!(&d[16 + 86 + 48..16 + 2 * 86], [0; 38]);
    // Without VOLTAG the identifier starts at byte 12.
    let (_, d) = l.t.run(&res(4, false, 500, 1, true, 4096));
    assert_eq!(&d[16 + 12..16 + 16], [0x02, 0x01, 0, 34]);
    assert_eq!(&d[16 + 16..16 + 18], b"HP");
}

#[test]
fn start_address_count_and_allocation_length() {
    let l = lib();
    // From 1001 on, storage only: 1001..1003.
    let (_, d) = l.t.run(&res(2, false, 1001, 100, false, 4096));
    assert_eq!((be16(&d, 0), be16(&d, 2)), (1001, 3));
    // At most two elements of every type: the picker and the first slot.
    let (_, d) = l.t.run(&res(0, false, 0, 2, false, 4096));
    assert_eq!((be16(&d, 2), be24(&d, 5)), (2, 8 + 16 + 8 + 16));
    assert_eq!((d[8], d[32]), (1, 2));
    // NUMBER OF ELEMENTS 0: nothing.
    let (_, d) = l.t.run(&res(0, false, 0, 0, false, 4096));
    assert_eq!(d, [0, 0, 0, 0, 0, 0, 0, 0]);
    // Past every address: nothing.
    let (_, d) = l.t.run(&res(0, false, 2000, 10, false, 4096));
    assert_eq!(be16(&d, 2), 0);
    // The header alone tells how much there is; a cut leaves the counts whole.
    let (r, d) = l.t.run(&res(0, true, 0, 0xffff, false, 8));
    assert_good(&r);
    assert_eq!(d.len(), 8);
    assert_eq!((be16(&d, 2), be24(&d, 5)), (9, 4 * 8 + 9 * 52));
    let (_, d) = l.t.run(&res(0, true, 0, 0xffff, false, 70));
    assert_eq!(d.len(), 70);
    let (r, d) = l.t.run(&res(0, true, 0, 0xffff, false, 0));
    assert_good(&r);
    assert!(d.is_empty());
    // Element type 5 does not exist; byte 10 is reserved.
    assert_sense(&l.t.run(&res(5, false, 0, 1, false, 64)).0, 0x05, 0x24, 0x00);
    let mut cdb = res(0, false, 0, 1, false, 64);
    cdb[10] = 1;
    assert_sense(&l.t.run(&cdb).0, 0x05, 0x24, 0x00);
}

#[test]
fn slot_to_slot_and_mail_slot_moves() {
    let l = lib();
    assert_good(&l.t.run(&move_medium(1000, 1003)).0);
    assert_good(&l.t.run(&move_medium(1003, 11)).0);
    let (_, d) = l.t.run(&res(0, true, 0, 0xffff, false, 0xffff));
    let (_, _, mail) = page(&d, 8 + (8 + 52) + (8 + 4 * 52));
    // Moved by the robot: not IMPEXP; its source is the slot it came from.
    assert_eq!(mail[1], (11, 0x39, Some(1003), "A00001".into()));
    let (_, _, slots) = page(&d, 8 + 8 + 52);
    assert_eq!(slots[0].1 & 0x01, 0);
    assert_eq!(slots[3].1 & 0x01, 0);
    // Into the picker and out again.
    assert_good(&l.t.run(&move_medium(11, 1)).0);
    assert_good(&l.t.run(&move_medium(1, 1000)).0);
}

#[test]
fn refused_moves_carry_their_sense_and_move_nothing() {
    let l = lib();
    let before = l.t.lu.library_changes();
    assert_sense(&l.t.run(&move_medium(1002, 1003)).0, 0x05, 0x3b, 0x0e);
    assert_sense(&l.t.run(&move_medium(1000, 1001)).0, 0x05, 0x3b, 0x0d);
    assert_sense(&l.t.run(&move_medium(1000, 1000)).0, 0x05, 0x3b, 0x0d);
    assert_sense(&l.t.run(&move_medium(999, 1002)).0, 0x05, 0x21, 0x01);
    assert_sense(&l.t.run(&move_medium(1000, 7)).0, 0x05, 0x21, 0x01);
    // A transport address that is not the picker's.
    let mut cdb = move_medium(1000, 1002);
    cdb[3] = 2;
    assert_sense(&l.t.run(&cdb).0, 0x05, 0x21, 0x01);
    cdb[3] = 1;
    // INVERT with one-sided cartridges.
    cdb[10] = 1;
    assert_sense(&l.t.run(&cdb).0, 0x05, 0x24, 0x00);
    // To a drive element nothing is bound to: the robot cannot put it anywhere.
    assert_sense(&l.t.run(&move_medium(1000, 501)).0, 0x04, 0x15, 0x01);
    assert_eq!(l.t.lu.library_changes(), before);
    cdb[10] = 0;
    assert_good(&l.t.run(&cdb).0);
}

#[test]
fn a_move_to_a_drive_loads_it_and_a_move_out_unloads_it() {
    let l = lib();
    assert_good(&l.t.run(&move_medium(1001, 500)).0);
    assert_eq!(l.drive.medium(), Some(PathBuf::from("/tapes/A00002")));
    let (_, d) = l.t.run(&res(4, true, 500, 1, false, 4096));
    assert_eq!(page(&d, 8).2[0], (500, 0x09, Some(1001), "A00002".into()));
    // Prevented by the drive's initiators: the drive's sense, nothing moves.
    l.drive.prevented.store(true, Ordering::Relaxed);
    assert_sense(&l.t.run(&move_medium(500, 1002)).0, 0x05, 0x53, 0x02);
    assert!(l.drive.medium().is_some());
    l.drive.prevented.store(false, Ordering::Relaxed);
    assert_good(&l.t.run(&move_medium(500, 1002)).0);
    assert_eq!(l.drive.medium(), None);
    // A drive that holds a cartridge the library did not put there is full.
    *l.drive.medium.lock() = Some("/elsewhere".into());
    assert_sense(&l.t.run(&move_medium(1000, 500)).0, 0x05, 0x3b, 0x0d);
    *l.drive.medium.lock() = None;
    // A drive that refuses the cartridge (its file is gone): nothing moves.
    l.drive.broken.store(true, Ordering::Relaxed);
    assert_sense(&l.t.run(&move_medium(1000, 500)).0, 0x04, 0x15, 0x01);
    let (_, d) = l.t.run(&res(2, false, 1000, 1, false, 4096));
    assert_eq!(d[16 + 2] & 0x01, 1, "still in its slot");
}

#[test]
fn administrator_changes_tell_initiators_and_respect_prevention() {
    let l = lib();
    l.t.target.change_library(1, insert(ElementType::ImportExport, 10, "NEW001")).unwrap();
    assert_sense(&l.t.run(&[0, 0, 0, 0, 0, 0]).0, 0x06, 0x28, 0x01);
    let (_, d) = l.t.run(&res(3, false, 10, 1, false, 4096));
    assert_eq!(d[16 + 2], 0x3b, "IMPEXP: put in by the operator");
    l.t.target.change_library(1, insert(ElementType::Storage, 1003, "NEW002")).unwrap();
    assert_sense(&l.t.run(&[0, 0, 0, 0, 0, 0]).0, 0x06, 0x28, 0x00);
    // PREVENT ALLOW MEDIUM REMOVAL: the mail slot stays shut to the operator.
    assert_good(&l.t.run(&[0x1e, 0, 0, 0, 1, 0]).0);
    assert!(l.t.lu.info().prevent_removal);
    let out = LibraryChange::Remove { kind: ElementType::ImportExport, address: 10 };
    assert_eq!(l.t.target.change_library(1, out.clone()), Err(ChangerError::Library(LibraryError::RemovalPrevented)));
    assert_sense(&l.t.run(&[0x1e, 0, 0, 0, 2, 0]).0, 0x05, 0x24, 0x00);
    assert_good(&l.t.run(&[0x1e, 0, 0, 0, 0, 0]).0);
    l.t.target.change_library(1, out).unwrap();
    assert_eq!(
        l.t.target.change_library(0, insert(ElementType::Storage, 1002, "X")),
        Err(ChangerError::NotAChanger(0))
    );
}

#[test]
fn mode_pages_describe_the_layout() {
    let t = TestLun::with_store(
        LunConfig {
            // tgt's examples give an all-zero element address assignment page.
            mode_pages: vec![crate::ModePageSpec { page: 0x1d, subpage: 0, data: vec![0; 18] }],
            ..LunConfig::changer(1, 1)
        },
        None,
        1,
    );
    let l = lib();
    for unit in [&t, &l.t] {
        if std::ptr::eq(unit, &t) {
            for change in l.t.lu.library_changes().unwrap() {
                t.target.change_library(1, change).unwrap();
            }
            t.clear_ua(&t.nexus);
        }
        let (r, d) = unit.run(&[0x1a, 0x08, 0x1d, 0, 0xff, 0]);
        assert_good(&r);
        assert_eq!(&d[4..24], [0x1d, 0x12, 0, 1, 0, 1, 0x03, 0xe8, 0, 4, 0, 10, 0, 2, 0x01, 0xf4, 0, 2, 0, 0]);
    }
    let (_, d) = l.t.run(&[0x1a, 0x08, 0x1f, 0, 0xff, 0]);
    assert_eq!(&d[4..12], [0x1f, 0x12, 0x0f, 0, 0x0f, 0x0f, 0x0f, 0x0f]);
    assert_eq!(&d[16..20], [0; 4], "no EXCHANGE MEDIUM");
    let (_, d) = l.t.run(&[0x1a, 0x08, 0x1e, 0, 0xff, 0]);
    assert_eq!(&d[4..8], [0x1e, 0x02, 0, 0]);
    l.t.target.change_library(1, LibraryChange::Sides(2)).unwrap();
    let (_, d) = l.t.run(&[0x1a, 0x08, 0x1e, 0, 0xff, 0]);
    assert_eq!(d[6], 1, "ROTATE");
    let mut cdb = move_medium(1000, 1002);
    cdb[10] = 1;
    assert_good(&l.t.run(&cdb).0);
}

#[test]
fn initialize_and_position_check_addresses_only() {
    let l = lib();
    assert_good(&l.t.run(&[0x07, 0, 0, 0, 0, 0]).0);
    assert_good(&l.t.run(&[0x37, 0x01, 0x03, 0xe8, 0, 0, 0, 4, 0, 0]).0);
    assert_sense(&l.t.run(&[0x37, 0x01, 0x07, 0xd0, 0, 0, 0, 4, 0, 0]).0, 0x05, 0x21, 0x01);
    assert_good(&l.t.run(&[0x37, 0x02, 0x07, 0xd0, 0, 0, 0, 4, 0, 0]).0);
    assert_good(&l.t.run(&[0x2b, 0, 0, 1, 0x03, 0xe8, 0, 0, 0, 0]).0);
    assert_sense(&l.t.run(&[0x2b, 0, 0, 1, 0x07, 0xd0, 0, 0, 0, 0]).0, 0x05, 0x21, 0x01);
    assert_sense(&l.t.run(&[0x2b, 0, 0, 9, 0x03, 0xe8, 0, 0, 0, 0]).0, 0x05, 0x21, 0x01);
    assert_sense(&l.t.run(&[0x2b, 0, 0, 1, 0x03, 0xe8, 0, 0, 1, 0]).0, 0x05, 0x24, 0x00);
}

#[test]
fn reload_drives_puts_recorded_cartridges_back() {
    let l = lib();
    // A saved library with a cartridge in drive 500, restored before the drive came back.
    let changes = {
        assert_good(&l.t.run(&move_medium(1000, 500)).0);
        l.t.lu.library_changes().unwrap()
    };
    assert!(changes.contains(&LibraryChange::Insert {
        kind: ElementType::DataTransfer,
        address: 500,
        cartridge: Cartridge { source: Some(1000), ..Cartridge::new("A00001") },
    }));
    *l.drive.medium.lock() = None;
    l.t.lu.reload_drives();
    assert_eq!(l.drive.medium(), Some(PathBuf::from("/tapes/A00001")));
    // Already loaded: left alone.
    l.t.lu.reload_drives();
    assert_eq!(l.drive.medium(), Some(PathBuf::from("/tapes/A00001")));
}

/// mtx fills the SCSI-2 LUN field (byte 1 bits 7-5) of the robot's commands: a changer at LUN 4
/// gets 0x80 there. Accepted and ignored; other reserved bits are still refused.
#[test]
fn the_scsi2_lun_field_of_mtx_is_ignored() {
    let l = lib();
    let mut cdb = res(0, true, 0, 0xffff, false, 0xffff);
    cdb[1] |= 0x80;
    let (r, with_lun) = l.t.run(&cdb);
    assert_good(&r);
    assert_eq!(with_lun, l.t.run(&res(0, true, 0, 0xffff, false, 0xffff)).1);
    let mut mv = move_medium(1000, 1002);
    mv[1] = 0xa0;
    assert_good(&l.t.run(&mv).0);
    let mut init = [0x07, 0xe0, 0, 0, 0, 0];
    assert_good(&l.t.run(&init).0);
    init[1] = 0x01;
    assert_sense(&l.t.run(&init).0, 0x05, 0x24, 0x00);
}
