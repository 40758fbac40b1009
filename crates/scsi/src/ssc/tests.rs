//! The drive's commands through `Target::execute`, on tape images in a temporary directory: reads
//! and writes in both modes with the sense a real drive gives, modes, protection and the medium.

use crate::test_util::*;
use crate::{LunConfig, ScsiStatus, TaskResult};
use rtgt_backstore::tape::{MediumType, NewTape, TapeImage};
use std::path::PathBuf;

pub(super) struct Drive {
    pub t: TestLun,
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

pub(super) fn new_tape(dir: &std::path::Path, name: &str, mib: u64, medium: MediumType) -> PathBuf {
    let path = dir.join(name);
    let tape = NewTape { barcode: name.into(), capacity_mib: mib, medium, created_secs: 1 };
    TapeImage::create(&path, &tape).unwrap();
    path
}

/// A drive at LUN 1 with a new tape of `mib` MiB loaded.
pub(super) fn drive_with(mib: u64, medium: MediumType) -> Drive {
    let dir = tempfile::tempdir().unwrap();
    let path = new_tape(dir.path(), "A0001", mib, medium);
    let t = TestLun::with_store(LunConfig::tape(1, 1), None, 1);
    assert!(t.lu.load_tape(&path).unwrap());
    Drive { t, path, _dir: dir }
}

pub(super) fn drive() -> Drive {
    drive_with(4, MediumType::Data)
}

pub(super) fn write6(len: u32) -> [u8; 6] {
    let l = len.to_be_bytes();
    [0x0a, 0, l[1], l[2], l[3], 0]
}

pub(super) fn read6(len: u32, sili: bool) -> [u8; 6] {
    let l = len.to_be_bytes();
    [0x08, if sili { 2 } else { 0 }, l[1], l[2], l[3], 0]
}

pub(super) const REWIND: [u8; 6] = [0x01, 0, 0, 0, 0, 0];
pub(super) const WEOF: [u8; 6] = [0x10, 0, 0, 0, 1, 0];

/// CHECK CONDITION with this key, ASC/ASCQ, stream bits and INFORMATION.
#[track_caller]
pub(super) fn assert_tape_sense(r: &TaskResult, key: u8, asc: (u8, u8), stream: u8, info: Option<u32>) {
    assert_eq!(r.status, ScsiStatus::CheckCondition);
    let s = r.sense.as_deref().unwrap();
    assert_eq!((s[2] & 0x0f, s[12], s[13]), (key, asc.0, asc.1), "sense {s:02x?}");
    assert_eq!(s[2] & 0xe0, stream, "stream bits {s:02x?}");
    match info {
        Some(v) => {
            assert_eq!(s[0] & 0x80, 0x80, "VALID");
            assert_eq!(s[3..7], v.to_be_bytes());
        }
        None => assert_eq!(s[0] & 0x80, 0),
    }
}

/// Fixed-format sense of a deferred error (response code 71h, SPC-4 4.5.5) with this key,
/// ASC/ASCQ, stream bits and INFORMATION.
#[track_caller]
pub(super) fn assert_deferred(r: &TaskResult, key: u8, asc: (u8, u8), stream: u8, info: Option<u32>) {
    let s = r.sense.as_deref().expect("sense data");
    assert_eq!(s[0] & 0x7f, 0x71, "deferred error {s:02x?}");
    assert_tape_sense(r, key, asc, stream, info);
}

impl Drive {
    pub(super) fn write(&self, data: &[u8]) {
        assert_good(&self.t.run_out(&write6(data.len() as u32), data).0);
    }

    /// How many times the loaded tape was made durable (fdatasync) since it was loaded.
    pub(super) fn syncs(&self) -> u64 {
        let drive = self.t.lu.tape().unwrap().drive();
        drive.image.as_ref().expect("a tape is loaded").syncs()
    }
}

/// Short-form READ POSITION: (BOP, first logical object location).
pub(super) fn position(d: &Drive) -> (bool, u32) {
    let (r, data) = d.t.run(&[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_good(&r);
    assert_eq!(data.len(), 20);
    assert_eq!(data[4..8], data[8..12], "first and last are the same");
    (data[0] & 0x80 != 0, u32::from_be_bytes(data[4..8].try_into().unwrap()))
}

#[test]
fn inquiry_says_removable_sequential_access() {
    let d = drive();
    let (r, data) = d.t.run(&[0x12, 0, 0, 0, 36, 0]);
    assert_good(&r);
    assert_eq!((data[0], data[1]), (0x01, 0x80));
    assert_eq!(&data[16..28], b"VIRTUAL-TAPE");
}

#[test]
fn variable_blocks_and_filemarks_read_back_with_the_sense_a_drive_gives() {
    let d = drive();
    d.write(&[1u8; 100]);
    d.write(&[2u8; 300]);
    assert_good(&d.t.run(&WEOF).0);
    d.write(&[3u8; 50]);
    assert_good(&d.t.run(&REWIND).0);
    // Exact length.
    let (r, data) = d.t.run(&read6(100, false));
    assert_good(&r);
    assert_eq!(data, [1u8; 100]);
    // Asked for more than the block: ILI, the residue positive, the block's data transferred.
    let (r, data) = d.t.run(&read6(1000, false));
    assert_tape_sense(&r, 0x00, (0, 0), 0x20, Some(700));
    assert_eq!(data, [2u8; 300]);
    // The filemark: FILEMARK, nothing transferred, INFORMATION the whole length; then past it.
    let (r, data) = d.t.run(&read6(512, false));
    assert_tape_sense(&r, 0x00, (0, 1), 0x80, Some(512));
    assert!(data.is_empty());
    // Asked for less: ILI with a negative residue, the part asked for transferred.
    let (r, data) = d.t.run(&read6(20, false));
    assert_tape_sense(&r, 0x00, (0, 0), 0x20, Some((20i32 - 50) as u32));
    assert_eq!(data, [3u8; 20]);
    // Past the last block: BLANK CHECK, END-OF-DATA DETECTED.
    let (r, _) = d.t.run(&read6(512, false));
    assert_tape_sense(&r, 0x08, (0, 5), 0, Some(512));
    // SILI suppresses the short-block ILI.
    assert_good(&d.t.run(&REWIND).0);
    let (r, data) = d.t.run(&read6(4096, true));
    assert_good(&r);
    assert_eq!(data.len(), 100);
}

#[test]
fn fixed_block_mode_through_the_block_descriptor() {
    let d = drive();
    // Variable mode at first: FIXED is refused.
    assert_sense(&d.t.run_out(&[0x0a, 1, 0, 0, 1, 0], &[0; 512]).0, 0x05, 0x24, 0x00);
    // MODE SELECT(6) with a block descriptor of 512 bytes, as st sets a block size.
    let select = [0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 0x02, 0x00];
    assert_good(&d.t.run_out(&[0x15, 0x10, 0, 0, 12, 0], &select).0);
    let (r, sense) = d.t.run(&[0x1a, 0, 0, 0, 12, 0]);
    assert_good(&r);
    // The mode data length counts page 0 too, cut by the allocation length.
    assert_eq!(sense, [13, 0, 0x10, 8, 0x44, 0, 0, 0, 0, 0, 0x02, 0x00]);
    let data: Vec<u8> = (0..1536u32).map(|i| i as u8).collect();
    assert_good(&d.t.run_out(&[0x0a, 1, 0, 0, 3, 0], &data).0);
    assert_good(&d.t.run(&WEOF).0);
    assert_good(&d.t.run(&REWIND).0);
    let (r, back) = d.t.run(&[0x08, 1, 0, 0, 2, 0]);
    assert_good(&r);
    assert_eq!(back, data[..1024]);
    // Four asked, one left before the filemark: FILEMARK, residue 3 blocks, the one block read.
    let (r, back) = d.t.run(&[0x08, 1, 0, 0, 4, 0]);
    assert_tape_sense(&r, 0x00, (0, 1), 0x80, Some(3));
    assert_eq!(back, data[1024..]);
    // SILI with FIXED is refused.
    assert_sense(&d.t.run(&[0x08, 3, 0, 0, 1, 0]).0, 0x05, 0x24, 0x00);
    // A block of another length in fixed mode: ILI, the residue in blocks.
    assert_good(&d.t.run(&REWIND).0);
    assert_good(&d.t.run_out(&[0x15, 0x10, 0, 0, 12, 0], &[0, 0, 0x10, 8, 0, 0, 0, 0, 0, 0, 0x01, 0]).0);
    let (r, back) = d.t.run(&[0x08, 1, 0, 0, 2, 0]);
    assert_tape_sense(&r, 0x00, (0, 0), 0x20, Some(2));
    assert!(back.is_empty());
}

#[test]
fn block_limits_and_mode_pages_for_st() {
    let d = drive();
    let (r, limits) = d.t.run(&[0x05, 0, 0, 0, 0, 0]);
    assert_good(&r);
    assert_eq!(limits, [0, 0xff, 0xff, 0xff, 0, 1]);
    // Page 0 (header and descriptor only), and all pages with the two tape pages.
    let (r, data) = d.t.run(&[0x1a, 0, 0x00, 0, 0xff, 0]);
    assert_good(&r);
    assert_eq!(data, [13, 0, 0x10, 8, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let (r, data) = d.t.run(&[0x5a, 0, 0x3f, 0, 0, 0, 0, 0x0f, 0xff, 0]);
    assert_good(&r);
    assert_eq!(u16::from_be_bytes([data[0], data[1]]) as usize + 2, data.len());
    assert_eq!(data[6..8], [0, 8]);
    let pages: Vec<u8> = {
        let mut at = 16;
        let mut codes = Vec::new();
        while at < data.len() {
            codes.push(data[at]);
            at += data[at + 1] as usize + 2;
        }
        codes
    };
    assert_eq!(pages, [0x00, 0x0a, 0x0f, 0x10, 0x1c]);
    // MODE SELECT of buffered mode 0 and back.
    assert_good(&d.t.run_out(&[0x15, 0x10, 0, 0, 4, 0], &[0, 0, 0x00, 0]).0);
    assert_eq!(d.t.run(&[0x1a, 0x08, 0, 0, 4, 0]).1[2], 0x00);
    assert_sense(&d.t.run_out(&[0x15, 0x10, 0, 0, 4, 0], &[0, 0, 0x20, 0]).0, 0x05, 0x26, 0x00);
    // REPORT DENSITY SUPPORT: one LTO-3 descriptor, with the tape's capacity for MEDIA.
    let (r, data) = d.t.run(&[0x44, 1, 0, 0, 0, 0, 0, 0, 0xff, 0]);
    assert_good(&r);
    assert_eq!(data.len(), 56);
    assert_eq!(data[4..7], [0x44, 0x44, 0xa0]);
    assert_eq!(data[16..20], 4u32.to_be_bytes(), "4 MiB is 4 MB");
}

#[test]
fn no_tape_is_not_ready_medium_not_present() {
    let t = TestLun::with_store(LunConfig::tape(1, 1), None, 1);
    assert_sense(&t.run(&[0, 0, 0, 0, 0, 0]).0, 0x02, 0x3a, 0x00);
    assert_sense(&t.run(&read6(512, false)).0, 0x02, 0x3a, 0x00);
    assert_sense(&t.run(&[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0]).0, 0x02, 0x3a, 0x00);
    let (r, data) = t.run(&[0x03, 0, 0, 0, 18, 0]);
    assert_good(&r);
    assert_eq!((data[2], data[12]), (0x02, 0x3a));
    // READ BLOCK LIMITS and MODE SENSE answer without a tape (density 0).
    assert_good(&t.run(&[0x05, 0, 0, 0, 0, 0]).0);
    assert_eq!(t.run(&[0x1a, 0, 0, 0, 12, 0]).1[4], 0);
}

#[test]
fn tgts_placeholder_tape_is_an_empty_drive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notape");
    let placeholder =
        NewTape { barcode: String::new(), capacity_mib: 1, medium: MediumType::Cleaning, created_secs: 1 };
    TapeImage::create(&path, &placeholder).unwrap();
    let t = TestLun::with_store(LunConfig::tape(1, 1), None, 1);
    assert!(!t.lu.load_tape(&path).unwrap());
    assert_sense(&t.run(&[0, 0, 0, 0, 0, 0]).0, 0x02, 0x3a, 0x00);
    assert_eq!(t.lu.info().backing_store_path.as_deref(), Some(path.to_str().unwrap()));
    assert_eq!(t.lu.tape_path(), None);
}

#[test]
fn write_protection_of_unit_file_cleaning_and_worm_tapes() {
    let d = drive();
    d.t.lu.set_readonly(true);
    assert_sense(&d.t.run_out(&write6(10), &[0; 10]).0, 0x07, 0x27, 0x00);
    assert_sense(&d.t.run(&WEOF).0, 0x07, 0x27, 0x00);
    assert_eq!(d.t.run(&[0x1a, 0, 0, 0, 4, 0]).1[2] & 0x80, 0x80, "WP");
    d.t.lu.set_readonly(false);
    d.write(&[0; 10]);

    let cleaning = drive_with(1, MediumType::Cleaning);
    assert_sense(&cleaning.t.run_out(&write6(10), &[0; 10]).0, 0x07, 0x30, 0x03);

    let worm = drive_with(1, MediumType::Worm);
    worm.write(b"once");
    assert_good(&worm.t.run(&WEOF).0);
    assert_good(&worm.t.run(&REWIND).0);
    assert_sense(&worm.t.run_out(&write6(4), b"over").0, 0x07, 0x30, 0x0c);
    assert_sense(&worm.t.run(&[0x19, 0, 0, 0, 0, 0]).0, 0x07, 0x30, 0x0c);

    // A tape file the daemon may not write is write protected, not refused.
    let dir = tempfile::tempdir().unwrap();
    let path = new_tape(dir.path(), "RO", 1, MediumType::Data);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o444);
    std::fs::set_permissions(&path, perms).unwrap();
    let t = TestLun::with_store(LunConfig::tape(1, 1), None, 1);
    t.lu.load_tape(&path).unwrap();
    // As root the file opens for writing anyway; the refusal is then for whoever is not root.
    if std::fs::OpenOptions::new().write(true).open(&path).is_err() {
        assert_sense(&t.run_out(&write6(1), &[0]).0, 0x07, 0x27, 0x00);
    }
}

#[test]
fn early_warning_then_volume_overflow_at_the_end_of_the_tape() {
    let d = drive_with(1, MediumType::Data);
    let block = vec![9u8; 60 * 1024];
    let mut warned = 0;
    let mut written = 0;
    loop {
        let (r, _) = d.t.run_out(&write6(block.len() as u32), &block);
        match r.status {
            ScsiStatus::Good => written += 1,
            _ => {
                let s = r.sense.clone().unwrap();
                if s[2] & 0x0f == 0x0d {
                    // VOLUME OVERFLOW, EOM, the whole block not written.
                    assert_tape_sense(&r, 0x0d, (0, 2), 0x40, Some(block.len() as u32));
                    break;
                }
                assert_tape_sense(&r, 0x00, (0, 2), 0x40, Some(0));
                warned += 1;
                written += 1;
            }
        }
        assert!(written < 100, "never reached the end");
    }
    assert!(warned >= 1, "an early warning before the end");
    assert_eq!((written, warned), (17, 2), "17 blocks of 60 KiB fit in 1 MiB with their headers, 2 past the warning");
    // Everything acknowledged reads back.
    assert_good(&d.t.run(&REWIND).0);
    for _ in 0..written {
        let (r, data) = d.t.run(&read6(block.len() as u32, false));
        assert_good(&r);
        assert_eq!(data, block);
    }
    assert_tape_sense(&d.t.run(&read6(16, false)).0, 0x08, (0, 5), 0, Some(16));
}

#[test]
fn changer_moves_raise_unit_attention_and_respect_prevention() {
    let d = drive();
    let drive = d.t.target.medium_drive(1).expect("a tape drive takes media");
    assert_eq!(drive.medium(), Some(d.path.clone()));
    let other = tempfile::tempdir().unwrap();
    let second = new_tape(other.path(), "B0001", 1, MediumType::Data);
    // Full drive: refused as a full destination.
    assert_eq!(drive.load(&second).unwrap_err().asc, crate::Asc(0x3b, 0x0d));
    // Prevented: the tape stays.
    assert_good(&d.t.run(&[0x1e, 0, 0, 0, 1, 0]).0);
    assert!(d.t.lu.info().prevent_removal);
    assert_eq!(pollster::block_on(drive.unload()).unwrap_err().asc, crate::Asc::MEDIUM_REMOVAL_PREVENTED);
    assert_sense(&d.t.run(&[0x1b, 0, 0, 0, 0, 0]).0, 0x05, 0x53, 0x02);
    assert_good(&d.t.run(&[0x1e, 0, 0, 0, 0, 0]).0);
    assert_eq!(pollster::block_on(drive.unload()).unwrap(), d.path);
    assert_eq!(pollster::block_on(drive.unload()).unwrap_err().asc, crate::Asc(0x3b, 0x0e));
    assert_sense(&d.t.run(&[0, 0, 0, 0, 0, 0]).0, 0x02, 0x3a, 0x00);
    drive.load(&second).unwrap();
    assert_sense(&d.t.run(&[0, 0, 0, 0, 0, 0]).0, 0x06, 0x28, 0x00);
    assert_good(&d.t.run(&[0, 0, 0, 0, 0, 0]).0);
    assert_eq!(drive.medium(), Some(second));
    // A disk is no changer's drive.
    let disk = TestLun::disk(1 << 20);
    assert!(disk.target.medium_drive(1).is_none());
}
