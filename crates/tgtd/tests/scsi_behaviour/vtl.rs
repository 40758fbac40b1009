//! The tape library as one thing on the real daemon: tgt's example configurations loaded whole
//! with tgt-admin (tape drives on tgt's "notape" placeholder, the changer with its mode pages and
//! vendor ids, tapes made with tgtimg), the changer's MOVE MEDIUM loading a tape into a tape LUN
//! that is then written and read through iSCSI, a refused unload while the drive's initiator
//! prevents removal, and the whole library (tapes where they are, data on them) across a kill -9
//! and a clean restart; and `tgt-admin --update` leaving a library whose tapes moved alone.

use crate::changer::{move_medium, read_element_status, tapes, tgt_admin, update_ok};
use crate::common;
use crate::tape::{new_tape, read_layout_exact, rtgt_tgtimg, write_layout};

use common::initiator::Connection;
use common::Tgtd;
use std::path::{Path, PathBuf};

pub(crate) const EXAMPLE_IQN: &str = "iqn.2008-09.com.example:server.tape";
const CHANGER: u64 = 4;

/// tgt's example configuration `name`, unchanged but for its two paths (/root/tapes and /root/smc
/// under `dir`), with what its comments tell a user to make: the changer's placeholder file, the
/// "notape" cleaning cartridge with an empty barcode (and the L700's links to it, one per drive)
/// and data tapes `barcodes`, all made with rtgt's tgtimg.
pub(crate) fn example(name: &str, dir: &Path, barcodes: &[&str]) -> PathBuf {
    let path = Path::new("/usr/share/doc/tgt/examples").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (Debian's tgt: scripts/install-deps)", path.display()));
    let tapes = dir.join("tapes");
    std::fs::create_dir_all(&tapes).unwrap();
    let text =
        text.replace("/root/tapes", tapes.to_str().unwrap()).replace("/root/smc", dir.join("smc").to_str().unwrap());
    std::fs::write(dir.join("smc"), [0u8; 1024]).unwrap();
    let tgtimg = rtgt_tgtimg();
    let notape = std::process::Command::new(&tgtimg)
        .args(["--op", "new", "--device-type", "tape", "--barcode", "", "--size", "1", "--type", "clean", "--file"])
        .arg(tapes.join("notape"))
        .output()
        .unwrap();
    assert!(notape.status.success(), "{}", common::text(&notape));
    for link in ["notape1", "notape2", "notape3"] {
        std::os::unix::fs::symlink(tapes.join("notape"), tapes.join(link)).unwrap();
    }
    for barcode in barcodes {
        new_tape(&tgtimg, &tapes, barcode, 8, "data");
    }
    let conf = dir.join(name);
    std::fs::write(&conf, text).unwrap();
    conf
}

/// One data transfer element as READ ELEMENT STATUS with VOLTAG and DVCID reports it: full, the
/// tape's barcode, the drive's vendor, product and serial number.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Drive {
    address: u16,
    full: bool,
    tag: String,
    vendor: String,
    product: String,
    serial: String,
}

fn drives(conn: &mut Connection) -> Vec<Drive> {
    // Element type 4, VOLTAG; DVCID (byte 6 bit 0).
    let cdb = [0xb8, 0x14, 0, 0, 0xff, 0xff, 0x01, 0, 0x10, 0, 0, 0];
    let out = conn.scsi(CHANGER, &cdb, &[], 0x1000).unwrap();
    assert_eq!(out.status, 0, "READ ELEMENT STATUS: {:02x?}", out.sense);
    let d = &out.data_in;
    let len = usize::from(u16::from_be_bytes([d[10], d[11]]));
    assert_eq!((d[8], len), (4, 12 + 36 + 4 + 34), "data transfer page, VOLTAG and DVCID descriptors");
    let field = |e: &[u8], range: std::ops::Range<usize>| String::from_utf8_lossy(&e[range]).trim_end().to_string();
    d[16..]
        .chunks(len)
        .map(|e| Drive {
            address: u16::from_be_bytes([e[0], e[1]]),
            full: e[2] & 1 != 0,
            tag: field(e, 12..44),
            vendor: field(e, 52..60),
            product: field(e, 60..76),
            serial: field(e, 76..86),
        })
        .collect()
}

fn tur(conn: &mut Connection, lun: u64) -> (u8, (u8, u8, u8)) {
    let out = conn.scsi(lun, &[0; 6], &[], 0).unwrap();
    (out.status, out.sense_code())
}

fn prevent(conn: &mut Connection, lun: u64, on: bool) {
    let out = conn.scsi(lun, &[0x1e, 0, 0, 0, u8::from(on), 0], &[], 0).unwrap();
    assert_eq!(out.status, 0, "PREVENT ALLOW MEDIUM REMOVAL: {:02x?}", out.sense);
}

/// A block of `len` bytes written at the position of LUN `lun`, then read back after a rewind.
fn write_then_read_one_block(conn: &mut Connection, lun: u64, seed: u8) {
    let data: Vec<u8> = (0..4096u32).map(|i| (i as u8).wrapping_mul(seed)).collect();
    let l = (data.len() as u32).to_be_bytes();
    let w = conn.scsi(lun, &[0x0a, 0, l[1], l[2], l[3], 0], &data, 0).unwrap();
    assert_eq!(w.status, 0, "WRITE(6) on LUN {lun}: {:02x?}", w.sense);
    assert_eq!(conn.scsi(lun, &[0x01, 0, 0, 0, 0, 0], &[], 0).unwrap().status, 0);
    let r = conn.scsi(lun, &[0x08, 0, l[1], l[2], l[3], 0], &[], data.len() as u32).unwrap();
    assert_eq!(r.status, 0, "READ(6) on LUN {lun}: {:02x?}", r.sense);
    assert!(r.data_in == data, "LUN {lun} read back other data");
}

/// What a restarted library must show: A0000001 in drive 500 (LUN 1) with the layout on it,
/// A0000002 and A0000003 in drives 501 and 502, and LUN 1 ready at once with the tape.
fn check_library_after_restart(tgtd: &Tgtd) {
    let mut conn = tgtd.session(EXAMPLE_IQN, 3, &[1, 2, 3, CHANGER]);
    let seen = drives(&mut conn);
    let loaded: Vec<_> = seen.iter().map(|d| (d.address, d.full, d.tag.as_str())).collect();
    assert_eq!(loaded, [(500, true, "A0000001"), (501, true, "A0000002"), (502, true, "A0000003")]);
    for lun in 1..=3 {
        assert_eq!(tur(&mut conn, lun), (0, (0, 0, 0)), "LUN {lun} has its tape after the restart");
    }
    read_layout_exact(&mut conn);
}

#[test]
fn the_l700_example_moves_tapes_into_its_drives_and_keeps_them_with_their_data_across_restarts() {
    let tgtd = Tgtd::start();
    let conf = example("targets.conf.vtl.L700", tgtd.dir.path(), &["A0000001", "A0000002", "A0000003"]);
    // Loaded whole and unchanged: no bind afterwards, as with tgt's tgt-admin (the file names no
    // initiator-address, so the target is open to all).
    let out = tgt_admin(&tgtd, &["-e", "-c", conf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out));
    for (slot, barcode) in [(1000, "A0000001"), (1001, "A0000002"), (1002, "A0000003")] {
        // The example's own way of adding tapes at run time.
        update_ok(&tgtd, CHANGER, &format!("element_type=2,address={slot},barcode={barcode},sides=1"));
    }
    let mut conn = tgtd.session(EXAMPLE_IQN, 1, &[1, 2, 3, CHANGER]);
    for lun in 1..=3 {
        // The placeholder is no tape: the drives are empty.
        assert_eq!(tur(&mut conn, lun), (2, (0x02, 0x3a, 0x00)), "LUN {lun} before any move");
        let inq = conn.scsi(lun, &[0x12, 0, 0, 0, 36, 0], &[], 36).unwrap();
        assert_eq!((inq.data_in[0], inq.data_in[1] & 0x80), (0x01, 0x80), "a removable tape drive");
        assert_eq!(&inq.data_in[8..28], b"HP      LTO3 ULTRIUM");
    }

    // As shipped, the example binds its three drive lines to element 500 (tgt keeps the last:
    // LUN 3) and leaves 501 and 502 without a drive.
    let as_shipped = drives(&mut conn);
    assert_eq!(as_shipped.iter().map(|d| d.address).collect::<Vec<_>>(), [500, 501, 502]);
    assert_eq!(as_shipped[0].serial, "HUM1A00003");
    assert_eq!(move_medium(&mut conn, CHANGER, 1000, 501).sense_code(), (0x04, 0x15, 0x01));
    assert_eq!(move_medium(&mut conn, CHANGER, 1000, 500).status, 0);
    assert_eq!(tur(&mut conn, 3), (2, (0x06, 0x28, 0x00)), "LUN 3 hears that a tape went in");
    assert_eq!(tur(&mut conn, 3), (0, (0, 0, 0)));
    write_then_read_one_block(&mut conn, 3, 3);
    assert_eq!(move_medium(&mut conn, CHANGER, 500, 1000).status, 0);
    assert_eq!(tur(&mut conn, 3), (2, (0x02, 0x3a, 0x00)), "the tape left LUN 3");

    // One drive per element, as the example means it.
    for (address, lun) in [(500, 1), (501, 2), (502, 3)] {
        update_ok(&tgtd, CHANGER, &format!("element_type=4,address={address},tid=1,lun={lun}"));
    }
    for (slot, address) in [(1000, 500), (1001, 501), (1002, 502)] {
        let out = move_medium(&mut conn, CHANGER, slot, address);
        assert_eq!(out.status, 0, "{slot} -> {address}: {:02x?}", out.sense);
    }
    for lun in 1..=3 {
        assert_eq!(tur(&mut conn, lun), (2, (0x06, 0x28, 0x00)), "LUN {lun}: NOT READY TO READY CHANGE");
        assert_eq!(tur(&mut conn, lun), (0, (0, 0, 0)), "LUN {lun} ready with its tape");
    }
    let loaded = drives(&mut conn);
    for (d, n) in loaded.iter().zip(1..) {
        let want = Drive {
            address: 499 + n,
            full: true,
            tag: format!("A000000{n}"),
            vendor: "HP".into(),
            product: "LTO3 ULTRIUM".into(),
            serial: format!("HUM1A0000{n}"),
        };
        assert_eq!(d, &want);
    }

    // Blocks and filemarks through the tape LUN; the tape stays in while the drive's initiator
    // prevents its removal, with the drive's sense.
    write_layout(&mut conn);
    prevent(&mut conn, 1, true);
    let refused = move_medium(&mut conn, CHANGER, 500, 1010);
    assert_eq!((refused.status, refused.sense_code()), (2, (0x05, 0x53, 0x02)));
    assert_eq!(drives(&mut conn)[0].tag, "A0000001", "a refused move moves nothing");
    prevent(&mut conn, 1, false);
    assert_eq!(move_medium(&mut conn, CHANGER, 500, 1010).status, 0);
    assert_eq!(tur(&mut conn, 1), (2, (0x02, 0x3a, 0x00)), "LUN 1 empty");
    let slots = read_element_status(&mut conn, CHANGER);
    assert!(tapes(&slots).contains(&(1010, "A0000001".into())), "{slots:?}");
    assert_eq!(move_medium(&mut conn, CHANGER, 1010, 500).status, 0);
    assert_eq!(tur(&mut conn, 1).1, (0x06, 0x28, 0x00));
    read_layout_exact(&mut conn);
    drop(conn);

    // Killed: every tape where it was, every block and filemark on A0000001.
    let tgtd = tgtd.crash_and_restart(&[]);
    check_library_after_restart(&tgtd);
    // Stopped cleanly and started again: the same.
    let dir = tgtd.stop_keeping_dir();
    let tgtd = Tgtd::start_in(dir, &[]);
    check_library_after_restart(&tgtd);
}

#[test]
fn the_msl2024_example_loads_whole_and_its_drive_takes_a_tape() {
    let tgtd = Tgtd::start();
    let conf = example("targets.conf.vtl.MSL2024", tgtd.dir.path(), &["A0000001"]);
    let out = tgt_admin(&tgtd, &["-e", "-c", conf.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::text(&out));
    // The library as made is the file's: a reload has nothing to do.
    let pretend = tgt_admin(&tgtd, &["--update", "ALL", "--pretend", "-c", conf.to_str().unwrap()]);
    assert_eq!(common::text(&pretend), format!("target {EXAMPLE_IQN} is up to date\n"));
    update_ok(&tgtd, CHANGER, "element_type=2,address=1000,barcode=A0000001,sides=1");
    let mut conn = tgtd.session(EXAMPLE_IQN, 1, &[1, CHANGER]);
    assert_eq!(tur(&mut conn, 1), (2, (0x02, 0x3a, 0x00)));
    let drive = drives(&mut conn);
    assert_eq!((drive.len(), drive[0].address, drive[0].full), (1, 2, false));
    assert_eq!((drive[0].vendor.as_str(), drive[0].serial.as_str()), ("HP", "HU012345AB"));
    assert_eq!(move_medium(&mut conn, CHANGER, 1000, 2).status, 0);
    assert_eq!(tur(&mut conn, 1).1, (0x06, 0x28, 0x00));
    write_then_read_one_block(&mut conn, 1, 7);
    assert_eq!(drives(&mut conn)[0].tag, "A0000001");
}

/// `tgt-admin --update` with the file the library was made from finds nothing to change in a
/// library whose tapes the robot moved (and that the operator filled at run time): the changer and
/// its drives are not made again, every tape stays where it is and the drive keeps its tape.
#[test]
fn tgt_admin_update_leaves_a_library_whose_tapes_moved_alone() {
    let tgtd = Tgtd::start();
    let conf = example("targets.conf.vtl.L700", tgtd.dir.path(), &["A0000001", "A0000002"]);
    let conf = conf.to_str().unwrap();
    let out = tgt_admin(&tgtd, &["-e", "-c", conf]);
    assert!(out.status.success(), "{}", common::text(&out));
    let pretend = tgt_admin(&tgtd, &["--update", "ALL", "--pretend", "-c", conf]);
    assert_eq!(common::text(&pretend), format!("target {EXAMPLE_IQN} is up to date\n"), "as made");
    update_ok(&tgtd, CHANGER, "element_type=2,address=1000,barcode=A0000001,sides=1");
    update_ok(&tgtd, CHANGER, "element_type=2,address=1001,barcode=A0000002,sides=1");
    let mut conn = tgtd.session(EXAMPLE_IQN, 1, &[1, 2, 3, CHANGER]);
    // The example binds element 500 to LUN 3.
    assert_eq!(move_medium(&mut conn, CHANGER, 1000, 500).status, 0);
    assert_eq!(move_medium(&mut conn, CHANGER, 1001, 1005).status, 0);
    assert_eq!(tur(&mut conn, 3).1, (0x06, 0x28, 0x00));
    write_then_read_one_block(&mut conn, 3, 5);
    let before = read_element_status(&mut conn, CHANGER);
    drop(conn);

    let out = tgt_admin(&tgtd, &["--update", "ALL", "-c", conf, "-v"]);
    assert!(out.status.success(), "{}", common::text(&out));
    let pretend = tgt_admin(&tgtd, &["--update", "ALL", "--pretend", "-c", conf]);
    assert!(!common::text(&pretend).contains("logicalunit"), "nothing to do for the LUNs: {}", common::text(&pretend));
    let mut conn = tgtd.session(EXAMPLE_IQN, 2, &[3, CHANGER]);
    // The drive was not made again: the tape still in, at its position (after the block read
    // last: end of data), its block on it.
    assert_eq!(tur(&mut conn, 3), (0, (0, 0, 0)), "LUN 3 still holds its tape");
    let at_end = conn.scsi(3, &[0x08, 0, 0, 0x10, 0, 0], &[], 4096).unwrap();
    assert_eq!(at_end.sense_code(), (0x08, 0x00, 0x05), "still after the block");
    assert_eq!(conn.scsi(3, &[0x01, 0, 0, 0, 0, 0], &[], 0).unwrap().status, 0);
    let r = conn.scsi(3, &[0x08, 0, 0, 0x10, 0, 0], &[], 4096).unwrap();
    assert_eq!((r.status, r.data_in.len()), (0, 4096), "{:02x?}", r.sense);
    assert_eq!(read_element_status(&mut conn, CHANGER), before);
    assert_eq!(tapes(&before), [(1005, "A0000002".into()), (500, "A0000001".into())]);
}
