//! tgtimg's command line and the tapes it makes, on files in a temporary directory.

use super::*;
use rtgt_backstore::tape::Object;

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

#[test]
fn options_in_getopts_spellings() {
    let a =
        parse(&argv(&["--op=new", "-Y", "tape", "-bA1", "--size", "2", "--ty", "WORM", "--file", "f"])).ok().unwrap();
    assert_eq!((a.op, a.device), (Some(Op::New), Some(Device::Tape)));
    assert_eq!(
        (a.barcode.as_deref(), a.size.as_deref(), a.media_type.as_deref()),
        (Some("A1"), Some("2"), Some("WORM"))
    );
    assert_eq!(a.file.as_deref(), Some("f"));
    assert_eq!(parse(&argv(&["--op", "nope"])).err().map(|e| e.0), Some(1));
    assert_eq!(parse(&argv(&["--device-type", "osd"])).err().map(|e| e.0), Some(EINVAL));
    assert_eq!(parse(&argv(&["stray"])).err().map(|e| e.0), Some(EINVAL));
    assert_eq!(parse(&argv(&["--file"])).err().map(|e| e.0), Some(EINVAL));
}

#[test]
fn media_types_by_prefix_and_sizes_as_sscanf_reads_them() {
    assert!(is("Database", "data") && is("WORMS", "worm") && !is("dat", "data"));
    assert_eq!((number("12MB"), number("x"), number(" 7")), (12, 0, 7));
    assert_eq!(show::created("A1_1700000000"), Some(1_700_000_000));
    assert_eq!(show::created("nounderscore"), None);
}

#[test]
fn new_tapes_of_each_type_open_in_a_drive() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, medium) in [("data", MediumType::Data), ("clean", MediumType::Cleaning), ("worm", MediumType::Worm)] {
        let path = dir.path().join(kind);
        let args = ["--op", "new", "--device-type", "tape", "--barcode", "B7", "--size", "0", "--type", kind, "--file"];
        let mut all = argv(&args);
        all.push(path.display().to_string());
        assert!(run(&all).is_ok());
        let mut image = TapeImage::open(&path, true).unwrap();
        assert_eq!(image.medium_type(), medium);
        assert_eq!(image.mam().max_capacity(), 8000 << 20, "size 0 is tgtimg's default of 8000 MiB");
        assert_eq!(image.forward().unwrap(), Object::EndOfData);
    }
    // A disk image of 3 MiB, a blank DVD+R.
    let disk = dir.path().join("disk.img");
    assert!(run(&argv(&[
        "--op",
        "new",
        "--device-type",
        "disk",
        "--type",
        "disk",
        "--size",
        "3",
        "--file",
        disk.to_str().unwrap()
    ]))
    .is_ok());
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 3 << 20);
    let dvd = dir.path().join("dvd.iso");
    assert!(
        run(&argv(&["--op", "new", "--device-type", "cd", "--type", "dvd+r", "--file", dvd.to_str().unwrap()])).is_ok()
    );
    assert_eq!(std::fs::metadata(&dvd).unwrap().len(), 0);
}

#[test]
fn show_lines_name_each_header() {
    let bot = rtgt_backstore::tape::BlockHeader {
        kind: rtgt_backstore::tape::BlockKind::Bot,
        ondisk_len: 0,
        block_len: 1,
        number: 0,
        prev: 0,
        curr: 0,
        next: 1152,
    };
    assert_eq!(show::header_line(&bot), "Beginning of Tape(16): Capacity 1 MB, Blk No.: 0, prev 0, curr 0, next 1152");
    let data = rtgt_backstore::tape::BlockHeader {
        kind: rtgt_backstore::tape::BlockKind::Data,
        ondisk_len: 50,
        block_len: 50,
        number: 1,
        curr: 1152,
        next: 1250,
        ..bot
    };
    assert_eq!(show::header_line(&data), " Uncompressed data(2): Blk No. 1, prev 0, curr 1152,  next 1250, sz 50");
}
