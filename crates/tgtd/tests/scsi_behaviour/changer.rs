//! A media changer LUN (`--device-type changer`) on the real daemon, driven through iSCSI: tgt's
//! VTL examples load with tgt-admin and report their layout; tapes added with tgtadm at run time
//! move between slots and mail slots, refused moves carry SMC's sense, and where every tape is
//! survives a restart and a `tgt-admin --dump` / `-e` round trip.
//! Tapes moving into tape drives, and tgt's examples at work, are in `vtl`.

use crate::common;

use common::initiator::{Connection, ScsiOutcome};
use common::{bin_dir, Tgtd};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const IQN: &str = "iqn.2026-11.org.rtgt.test:vtl";
use crate::vtl::EXAMPLE_IQN;

/// One element as READ ELEMENT STATUS (VOLTAG) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Element {
    kind: u8,
    address: u16,
    full: bool,
    tag: String,
    source: Option<u16>,
}

pub(crate) fn read_element_status(conn: &mut Connection, lun: u64) -> Vec<Element> {
    let cdb = [0xb8, 0x10, 0, 0, 0xff, 0xff, 0, 0x01, 0, 0, 0, 0];
    let out = conn.scsi(lun, &cdb, &[], 0x10000).unwrap();
    assert_eq!(out.status, 0, "READ ELEMENT STATUS: {:02x?}", out.sense);
    let d = &out.data_in;
    let be16 = |at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
    let be24 = |at: usize| u32::from_be_bytes([0, d[at], d[at + 1], d[at + 2]]) as usize;
    assert_eq!(d.len(), 8 + be24(5), "the whole report");
    let mut elements = Vec::new();
    let mut at = 8;
    while at < d.len() {
        let (kind, len, bytes) = (d[at], usize::from(be16(at + 2)), be24(at + 5));
        assert_eq!(len, 52, "VOLTAG descriptors");
        for e in d[at + 8..at + 8 + bytes].chunks(len) {
            elements.push(Element {
                kind,
                address: u16::from_be_bytes([e[0], e[1]]),
                full: e[2] & 1 != 0,
                tag: String::from_utf8_lossy(&e[12..44]).trim_end().to_string(),
                source: (e[9] & 0x80 != 0).then(|| u16::from_be_bytes([e[10], e[11]])),
            });
        }
        at += 8 + bytes;
    }
    assert_eq!(elements.len(), usize::from(be16(2)));
    elements
}

pub(crate) fn move_medium(conn: &mut Connection, lun: u64, source: u16, destination: u16) -> ScsiOutcome {
    let (s, d) = (source.to_be_bytes(), destination.to_be_bytes());
    conn.scsi(lun, &[0xa5, 0, 0, 0, s[0], s[1], d[0], d[1], 0, 0, 0, 0], &[], 0).unwrap()
}

/// The elements of one type; (address, tag) of the full ones.
pub(crate) fn count(elements: &[Element], kind: u8) -> usize {
    elements.iter().filter(|e| e.kind == kind).count()
}

pub(crate) fn tapes(elements: &[Element]) -> Vec<(u16, String)> {
    elements.iter().filter(|e| e.full).map(|e| (e.address, e.tag.clone())).collect()
}

pub(crate) fn update(tgtd: &Tgtd, tid: u32, lun: u64, params: &str) -> Output {
    let (tid, lun) = (tid.to_string(), lun.to_string());
    let args = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", &tid, "--lun", &lun];
    tgtd.tgtadm(&[&args[..], &["--params", params]].concat())
}

pub(crate) fn update_ok(tgtd: &Tgtd, lun: u64, params: &str) {
    let out = update(tgtd, 1, lun, params);
    assert!(out.status.success(), "{params}: {}", common::text(&out));
}

pub(crate) fn tgt_admin(tgtd: &Tgtd, args: &[&str]) -> Output {
    Command::new(bin_dir().join("tgt-admin")).arg("--control-socket").arg(&tgtd.socket).args(args).output().unwrap()
}

/// Empty tape files (nothing reads them until a drive loads one).
fn tape_files(dir: &Path, barcodes: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    for b in barcodes {
        std::fs::write(dir.join(b), b"").unwrap();
    }
}

/// Target 1 with a changer at LUN 4: picker 1, slots 1000-1009, mail slots 10-11, drives 500-501
/// (500 bound to LUN 1, a disk: not a tape drive), tapes in `dir`/tapes, three of them in slots.
fn library(tgtd: &Tgtd) {
    let dir = tgtd.dir.path();
    let home = dir.join("tapes");
    tape_files(&home, &["A00001", "A00002", "A00003", "M00001"]);
    std::fs::write(dir.join("smc"), [0u8; 1024]).unwrap();
    tgtd.add_disk_target(1, IQN, &common::sparse_image(dir, "disk.img", 1 << 20));
    tgtd.add_lun_ok(1, 4, &["--device-type", "changer", "--backing-store", dir.join("smc").to_str().unwrap()]);
    let home = home.display();
    update_ok(tgtd, 4, &format!("element_type=1,start_address=1,quantity=1,media_home={home}"));
    update_ok(tgtd, 4, &format!("element_type=2,start_address=1000,quantity=10,media_home={home}"));
    update_ok(tgtd, 4, &format!("element_type=3,start_address=10,quantity=2,media_home={home}"));
    update_ok(tgtd, 4, &format!("element_type=4,start_address=500,quantity=2,media_home={home}"));
    update_ok(tgtd, 4, "element_type=4,address=500,tid=1,lun=1");
    for (slot, barcode) in [(1000, "A00001"), (1001, "A00002"), (1005, "A00003")] {
        update_ok(tgtd, 4, &format!("element_type=2,address={slot},barcode={barcode},sides=1"));
    }
}

fn restart(tgtd: Tgtd) -> Tgtd {
    let tgtd = tgtd.crash_and_restart(&[]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while tgtd.log().matches("tgtd ready").count() < 2 {
        assert!(Instant::now() < deadline, "tgtd did not get ready: {}", tgtd.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    tgtd
}

#[test]
fn tapes_move_between_slots_and_mail_slots_and_stay_there_across_a_restart() {
    let tgtd = Tgtd::start();
    library(&tgtd);
    let mut conn = tgtd.session(IQN, 1, &[4]);
    let inq = conn.scsi(4, &[0x12, 0, 0, 0, 96, 0], &[], 96).unwrap();
    assert_eq!((inq.data_in[0], inq.data_in[1]), (0x08, 0x80), "a removable medium changer");
    let all = read_element_status(&mut conn, 4);
    assert_eq!([1, 2, 3, 4].map(|k| count(&all, k)), [1, 10, 2, 2]);
    assert_eq!(tapes(&all), [(1000, "A00001".into()), (1001, "A00002".into()), (1005, "A00003".into())]);

    // A tape the operator puts in a mail slot while the library runs: the initiator hears of it.
    update_ok(&tgtd, 4, "element_type=3,address=10,barcode=M00001");
    let tur = conn.scsi(4, &[0; 6], &[], 0).unwrap();
    assert_eq!((tur.status, tur.sense_code()), (0x02, (0x06, 0x28, 0x01)));

    assert_eq!(move_medium(&mut conn, 4, 1000, 1009).status, 0);
    assert_eq!(move_medium(&mut conn, 4, 10, 1000).status, 0);
    assert_eq!(move_medium(&mut conn, 4, 1005, 11).status, 0);
    for (source, destination, sense) in [
        (1002, 1003, (0x05, 0x3b, 0x0e)),
        (1001, 1009, (0x05, 0x3b, 0x0d)),
        (1001, 2000, (0x05, 0x21, 0x01)),
        // Drive 500 names a disk, drive 501 nothing: the robot cannot load either.
        (1001, 500, (0x04, 0x15, 0x01)),
        (1001, 501, (0x04, 0x15, 0x01)),
    ] {
        let out = move_medium(&mut conn, 4, source, destination);
        assert_eq!((out.status, out.sense_code()), (0x02, sense), "{source} -> {destination}");
    }
    let moved = read_element_status(&mut conn, 4);
    let expected: Vec<(u16, String)> =
        vec![(11, "A00003".into()), (1000, "M00001".into()), (1001, "A00002".into()), (1009, "A00001".into())];
    let mut seen = tapes(&moved);
    seen.sort();
    assert_eq!(seen, expected);
    assert_eq!(moved.iter().find(|e| e.address == 1009).unwrap().source, Some(1000));
    drop(conn);

    // Killed and started again on its state directory: every tape where it was.
    let tgtd = restart(tgtd);
    let mut conn = tgtd.session(IQN, 1, &[4]);
    assert_eq!(read_element_status(&mut conn, 4), moved);
    drop(conn);

    // Dumped, deleted, loaded back from the dump: the same library.
    let dump = tgt_admin(&tgtd, &["--dump"]);
    assert!(dump.status.success(), "{}", common::text(&dump));
    let conf = tgtd.dir.path().join("dumped.conf");
    std::fs::write(&conf, &dump.stdout).unwrap();
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "delete", "--force", "--tid", "1"]);
    let loaded = tgt_admin(&tgtd, &["-e", "-c", conf.to_str().unwrap()]);
    assert!(loaded.status.success(), "{}\n{}", common::text(&loaded), String::from_utf8_lossy(&dump.stdout));
    let mut conn = tgtd.session(IQN, 2, &[4]);
    let again = read_element_status(&mut conn, 4);
    assert_eq!(tapes(&again), tapes(&moved));
    assert_eq!([1, 2, 3, 4].map(|k| count(&again, k)), [1, 10, 2, 2]);
}

#[test]
fn show_and_mistakes_say_what_tgt_says_or_more() {
    let tgtd = Tgtd::start();
    library(&tgtd);
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    let lun4 = &show[show.find("LUN: 4\n").expect("LUN 4")..];
    for line in [
        "Type: changer",
        "Size: 0 MB, Block size: 1",
        "Removable media: Yes",
        "Prevent removal: No",
        "Backing store type: smc",
        &format!("Backing store path: {}", tgtd.dir.path().join("smc").display()),
    ] {
        assert!(lun4.contains(line), "{line} in\n{lun4}");
    }
    // PREVENT ALLOW MEDIUM REMOVAL shows, and keeps the operator from emptying a mail slot.
    let mut conn = tgtd.session(IQN, 1, &[4]);
    let prevent = conn.scsi(4, &[0x1e, 0, 0, 0, 1, 0], &[], 0).unwrap();
    assert_eq!(prevent.status, 0, "{:02x?}", prevent.sense);
    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(show[show.find("LUN: 4\n").unwrap()..].contains("Prevent removal: Yes"));
    update_ok(&tgtd, 4, "element_type=3,address=10,barcode=M00001");
    assert_eq!(conn.scsi(4, &[0; 6], &[], 0).unwrap().sense_code(), (0x06, 0x28, 0x01));
    let refused = update(&tgtd, 1, 4, "element_type=3,address=10,clear_slot=1");
    assert!(common::text(&refused).contains("prevents medium removal"), "{}", common::text(&refused));
    assert_eq!(conn.scsi(4, &[0x1e, 0, 0, 0, 0, 0], &[], 0).unwrap().status, 0);
    update_ok(&tgtd, 4, "element_type=3,address=10,clear_slot=1");

    for (params, message) in [
        ("element_type=7,start_address=1,quantity=1", "element_type must be 1"),
        ("element_type=2,start_address=1009,quantity=2", "element address 1009 is already used"),
        ("element_type=2,address=1000,barcode=A00004", "no tape file"),
        ("element_type=2,address=1000,barcode=A00002", "A00002 is already in element 1001"),
        ("element_type=2,address=1002,barcode=../smc", "barcode '../smc'"),
        ("element_type=2,address=1000,barcode=M00001", "element 1000 already holds A00001"),
        ("element_type=2,address=3000,barcode=M00001", "no storage element at address 3000"),
        ("element_type=4,address=1000,tid=1,lun=1", "no data transfer element at address 1000"),
        ("element_type=2", "needs start_address="),
    ] {
        let out = update(&tgtd, 1, 4, params);
        assert!(!out.status.success() && common::text(&out).contains(message), "{params}: {}", common::text(&out));
    }
    let out = update(&tgtd, 1, 1, "element_type=1,start_address=1,quantity=1");
    assert!(common::text(&out).contains("not one"), "{}", common::text(&out));
    let out = tgtd.add_lun(1, 5, &["--device-type", "changer"]);
    assert!(common::text(&out).contains("needs --backing-store"), "{}", common::text(&out));
}

#[test]
fn tgts_vtl_examples_load_with_tgt_admin() {
    for (name, layout) in [("targets.conf.vtl.MSL2024", [1, 24, 0, 1]), ("targets.conf.vtl.L700", [1, 216, 20, 3])] {
        let tgtd = Tgtd::start();
        // Whole, as shipped (tape drives on the notape placeholder included): tgt-admin opens
        // the target to all, as tgt's does when a file names no initiator.
        let conf = crate::vtl::example(name, tgtd.dir.path(), &["A0000001"]);
        let out = tgt_admin(&tgtd, &["-e", "-c", conf.to_str().unwrap()]);
        assert!(out.status.success(), "{name}: {}", common::text(&out));
        // The example's way of adding a tape at run time.
        update_ok(&tgtd, 4, "element_type=2,address=1000,barcode=A0000001,sides=1");
        let mut conn = tgtd.session(EXAMPLE_IQN, 1, &[4]);
        let all = read_element_status(&mut conn, 4);
        assert_eq!([1, 2, 3, 4].map(|k| count(&all, k)), layout, "{name}");
        assert_eq!(tapes(&all), [(1000, "A0000001".into())]);
        // Element address assignment from the layout, whatever the example's all-zero page says.
        let sense = conn.scsi(4, &[0x1a, 0x08, 0x1d, 0, 0xff, 0], &[], 0xff).unwrap();
        let p = &sense.data_in[4..];
        let first_storage = u16::from_be_bytes([p[6], p[7]]);
        let storage = u16::from_be_bytes([p[8], p[9]]);
        assert_eq!((p[0], first_storage, storage), (0x1d, 1000, layout[1] as u16), "{name}");
        let inq = conn.scsi(4, &[0x12, 0, 0, 0, 36, 0], &[], 36).unwrap();
        assert!(inq.data_in[8..16].starts_with(b"HP") || inq.data_in[8..16].starts_with(b"STK"), "{name}");
    }
}
