//! The format against bytes Debian's tgtimg wrote, and the image's moves and writes on real files,
//! damaged ones included.

use super::*;
use std::os::unix::fs::FileExt;

/// The beginning-of-tape header of a 1 MiB tape made by Debian's tgtimg 1.0.85.
const TGT_BOT: [u8; 48] = [
    0x9f, 0x09, 0xfd, 0xea, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x04, 0x80,
];
/// And its end-of-data header.
const TGT_EOD: [u8; 48] = [
    0x72, 0x95, 0x14, 0x69, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0x04, 0x80,
];

fn new_tape(dir: &tempfile::TempDir, name: &str, mib: u64, medium: MediumType) -> std::path::PathBuf {
    let path = dir.path().join(name);
    let tape = NewTape { barcode: name.into(), capacity_mib: mib, medium, created_secs: 1_700_000_000 };
    TapeImage::create(&path, &tape).unwrap();
    path
}

#[test]
fn headers_encode_as_tgt_writes_them() {
    let bot = BlockHeader {
        kind: BlockKind::Bot,
        ondisk_len: 0,
        block_len: 1,
        number: 0,
        prev: 0,
        curr: 0,
        next: FIRST_HEADER,
    };
    assert_eq!(bot.encode(), TGT_BOT);
    let eod = BlockHeader::decode(&TGT_EOD, FIRST_HEADER, FIRST_HEADER + 48).unwrap();
    assert_eq!(
        eod,
        BlockHeader {
            kind: BlockKind::Eod,
            ondisk_len: 0,
            block_len: 0,
            number: 1,
            prev: 0,
            curr: FIRST_HEADER,
            next: FIRST_HEADER
        }
    );
    assert_eq!(eod.encode(), TGT_EOD);
}

#[test]
fn a_new_tape_is_laid_out_as_tgtimg_makes_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_tape(&dir, "A00000001", 1, MediumType::Data);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 1200);
    assert_eq!(bytes[..48], TGT_BOT);
    assert_eq!(bytes[1152..], TGT_EOD);
    let mam = &bytes[48..1152];
    assert_eq!(mam[..4], [0, 0, 0, 2], "format version");
    assert_eq!(mam[16..24], (1u64 << 20).to_be_bytes(), "max capacity");
    assert_eq!(mam[336], 1, "data cartridge");
    assert_eq!(&mam[264..284], b"A00000001_1700000000");
    assert_eq!(&mam[568..599], format!("{:<31}", "A00000001").as_bytes());
    assert_eq!(mam[599], 0);
    let image = TapeImage::open(&path, true).unwrap();
    assert_eq!(image.mam().barcode().trim_end(), "A00000001");
    assert_eq!(image.medium_type(), MediumType::Data);
    assert_eq!(image.peek(), Object::EndOfData);
    assert_eq!(image.object_id(), 0);
}

#[test]
fn blocks_and_filemarks_round_trip_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_tape(&dir, "T1", 2, MediumType::Data);
    let mut image = TapeImage::open(&path, false).unwrap();
    image.write_block(b"first", false).unwrap();
    image.write_block(&[7u8; 1000], false).unwrap();
    image.write_filemark(true).unwrap();
    image.write_block(b"second file", false).unwrap();
    assert_eq!(image.object_id(), 4);
    drop(image);

    let mut image = TapeImage::open(&path, false).unwrap();
    let mut seen = Vec::new();
    loop {
        let object = image.peek();
        if let Object::Data(len) = object {
            let mut buf = vec![0u8; len as usize];
            image.read_data(&mut buf).unwrap();
            seen.push(buf);
        }
        if image.forward().unwrap() == Object::EndOfData {
            break;
        }
    }
    assert_eq!(seen, [b"first".to_vec(), vec![7u8; 1000], b"second file".to_vec()]);
    assert_eq!(image.object_id(), 4);
    // Back over the last block and the filemark.
    assert_eq!(image.backward().unwrap(), Some(Object::Data(11)));
    assert_eq!(image.backward().unwrap(), Some(Object::Filemark));
    assert_eq!(image.object_id(), 2);
    // Writing here ends the tape here: the second file is gone, the file shrinks.
    image.write_block(b"over", true).unwrap();
    assert_eq!(image.peek(), Object::EndOfData);
    image.rewind().unwrap();
    assert_eq!(image.forward().unwrap(), Object::Data(5));
    assert_eq!(image.forward().unwrap(), Object::Data(1000));
    assert_eq!(image.forward().unwrap(), Object::Data(4));
    assert_eq!(image.forward().unwrap(), Object::EndOfData);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), image.end_after_write(0));
    assert_eq!(image.backward().unwrap(), Some(Object::Data(4)));
    image.rewind().unwrap();
    assert_eq!(image.backward().unwrap(), None);
    image.forward().unwrap();
    image.erase().unwrap();
    image.rewind().unwrap();
    assert_eq!(image.forward().unwrap(), Object::Data(5));
    assert_eq!(image.forward().unwrap(), Object::EndOfData);
}

#[test]
fn read_only_images_refuse_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_tape(&dir, "RO", 1, MediumType::Data);
    let mut image = TapeImage::open(&path, true).unwrap();
    assert!(matches!(image.write_block(b"x", false), Err(TapeError::ReadOnly)));
    assert!(matches!(image.erase(), Err(TapeError::ReadOnly)));
}

#[test]
fn files_that_are_not_tapes_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, b"garbage").unwrap();
    assert!(matches!(TapeImage::open(&small, true), Err(TapeError::NotATape(_))));
    let zeros = dir.path().join("zeros");
    std::fs::write(&zeros, vec![0u8; 4096]).unwrap();
    assert!(matches!(TapeImage::open(&zeros, true), Err(TapeError::NotATape(_))));
    let path = new_tape(&dir, "V", 1, MediumType::Data);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0, 0, 0, 3], 48).unwrap();
    assert!(matches!(TapeImage::open(&path, true), Err(TapeError::NotATape(_))));
    assert!(matches!(TapeImage::open(&dir.path().join("none"), true), Err(TapeError::Open { .. })));
}

/// Rewrite the header at `offset` with `edit` applied and a valid checksum: a hostile file
/// passes the checksum, so every other check must hold on its own.
fn forge(path: &std::path::Path, offset: u64, len: u64, edit: impl FnOnce(&mut BlockHeader)) {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut raw = [0u8; 48];
    file.read_exact_at(&mut raw, offset).unwrap();
    let mut h = BlockHeader::decode(&raw, offset, len).unwrap();
    edit(&mut h);
    file.write_all_at(&h.encode(), offset).unwrap();
}

#[test]
fn damaged_and_hostile_headers_are_corrupt_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = new_tape(&dir, "H", 1, MediumType::Data);
    let mut image = TapeImage::open(&path, false).unwrap();
    image.write_block(&[1u8; 100], true).unwrap();
    drop(image);
    let len = std::fs::metadata(&path).unwrap().len();
    let cases: [fn(&mut BlockHeader); 5] = [
        // A length far past the file: must not size any buffer.
        |h| {
            h.ondisk_len = u32::MAX;
            h.block_len = u32::MAX;
        },
        |h| h.next = u64::MAX,
        |h| h.next = h.curr,
        |h| h.prev = h.curr + 10,
        |h| h.curr += 1,
    ];
    for (i, edit) in cases.into_iter().enumerate() {
        let copy = dir.path().join(format!("copy{i}"));
        std::fs::copy(&path, &copy).unwrap();
        forge(&copy, FIRST_HEADER, len, edit);
        let err = TapeImage::open(&copy, false).unwrap_err();
        assert!(matches!(err, TapeError::Corrupt { .. }), "case {i}: {err:?}");
    }
    // A flipped bit without a new checksum.
    let copy = dir.path().join("flipped");
    std::fs::copy(&path, &copy).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
    file.write_all_at(&[0x7f], FIRST_HEADER + 20).unwrap();
    assert!(matches!(TapeImage::open(&copy, false), Err(TapeError::Corrupt { .. })));
    // An end of data that claims a data block follows it: the chain check catches the loop.
    let copy = dir.path().join("loop");
    std::fs::copy(&path, &copy).unwrap();
    let eod_at = FIRST_HEADER + 48 + 100;
    forge(&copy, eod_at, len, |h| h.number = 5);
    let mut image = TapeImage::open(&copy, false).unwrap();
    assert!(matches!(image.forward(), Err(TapeError::Corrupt { .. })));
}
