//! A tape drive (`--device-type tape`) on the real daemon, driven through iSCSI: blocks of several
//! sizes and filemarks written and read back with the sense a drive gives, positions, an empty
//! drive and write protection, persistence across a restart, and tapes that move between rtgt and
//! Debian's tgt both ways (made by either tgtimg, written by either tgtd).

use crate::common;

use common::initiator::{Connection, ScsiOutcome};
use common::Tgtd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const IQN: &str = "iqn.2026-11.org.rtgt.test:tape";

/// What the tests write: blocks of these sizes (None: a filemark), so that short, long, tiny and
/// multi-PDU blocks and several files all cross.
const LAYOUT: &[Option<usize>] = &[Some(10), Some(512), Some(70_000), None, Some(3), Some(65_536), None, Some(1), None];

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed * 13) % 251) as u8).collect()
}

pub(crate) fn rtgt_tgtimg() -> PathBuf {
    let path = common::bin_dir().join("tgtimg");
    assert!(path.exists(), "{} is missing: run `cargo build --workspace --bins` first", path.display());
    path
}

const DEBIAN_TGTIMG: &str = "/usr/sbin/tgtimg";
const DEBIAN_TGTD: &str = "/usr/sbin/tgtd";
const DEBIAN_TGTADM: &str = "/usr/sbin/tgtadm";

fn require_debian_tgt() {
    assert!(
        Path::new(DEBIAN_TGTD).exists() && Path::new(DEBIAN_TGTIMG).exists(),
        "Debian's tgt is not installed (scripts/install-deps installs it): apt-get install -y tgt"
    );
}

/// A new data tape of `mib` MiB made by `tgtimg` (rtgt's or Debian's).
pub(crate) fn new_tape(tgtimg: &Path, dir: &Path, barcode: &str, mib: u32, kind: &str) -> PathBuf {
    let path = dir.join(barcode);
    let out = Command::new(tgtimg)
        .args([
            "--op",
            "new",
            "--device-type",
            "tape",
            "--barcode",
            barcode,
            "--size",
            &mib.to_string(),
            "--type",
            kind,
        ])
        .arg("--file")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", tgtimg.display(), common::text(&out));
    path
}

pub(crate) fn show_tape(tgtimg: &str, path: &Path) -> Output {
    Command::new(tgtimg).args(["--op", "show", "--device-type", "tape", "--file"]).arg(path).output().unwrap()
}

fn write6(conn: &mut Connection, data: &[u8]) -> ScsiOutcome {
    let l = (data.len() as u32).to_be_bytes();
    conn.scsi(1, &[0x0a, 0, l[1], l[2], l[3], 0], data, 0).unwrap()
}

fn read6(conn: &mut Connection, len: u32) -> ScsiOutcome {
    let l = len.to_be_bytes();
    conn.scsi(1, &[0x08, 0, l[1], l[2], l[3], 0], &[], len).unwrap()
}

fn weof(conn: &mut Connection) -> ScsiOutcome {
    conn.scsi(1, &[0x10, 0, 0, 0, 1, 0], &[], 0).unwrap()
}

fn rewind(conn: &mut Connection) {
    let r = conn.scsi(1, &[0x01, 0, 0, 0, 0, 0], &[], 0).unwrap();
    assert_eq!(r.status, 0, "REWIND: {:02x?}", r.sense);
}

/// Write `LAYOUT` from the position.
pub(crate) fn write_layout(conn: &mut Connection) {
    for (i, object) in LAYOUT.iter().enumerate() {
        let r = match object {
            Some(len) => write6(conn, &pattern(*len, i)),
            None => weof(conn),
        };
        assert_eq!(r.status, 0, "object {i} ({object:?}): {:02x?}", r.sense);
    }
}

/// Read `LAYOUT` back from the beginning with exact lengths (what any drive, tgt's included,
/// answers GOOD), the filemarks with the FILEMARK bit, and the end of data after it.
pub(crate) fn read_layout_exact(conn: &mut Connection) {
    rewind(conn);
    for (i, object) in LAYOUT.iter().enumerate() {
        match object {
            Some(len) => {
                let r = read6(conn, *len as u32);
                assert_eq!(r.status, 0, "block {i}: {:02x?}", r.sense);
                assert!(r.data_in == pattern(*len, i), "block {i} of {len} bytes differs");
            }
            None => {
                let r = read6(conn, 512);
                assert_eq!(r.status, 0x02, "object {i} should be a filemark");
                assert_eq!(r.sense[2] & 0x80, 0x80, "FILEMARK bit at {i}: {:02x?}", r.sense);
            }
        }
    }
}

/// A session on LUN 1 with the power-on unit attention consumed (whatever the LUN's readiness).
fn session(portal: std::net::SocketAddr) -> Connection {
    let mut conn = Connection::connect(portal).unwrap();
    conn.login("iqn.2026-11.org.rtgt.test:initiator", Some(IQN), &[]).expect("login");
    for _ in 0..4 {
        let r = conn.scsi(1, &[0; 6], &[], 0).unwrap();
        if r.sense_code().0 != 0x06 {
            break;
        }
    }
    conn
}

fn rtgt_with_tape(tgtd: &Tgtd, extra: &[&str]) {
    tgtd.new_target(1, IQN);
    tgtd.add_lun_ok(1, 1, extra);
    tgtd.bind(1, "--initiator-address", "ALL");
}

#[test]
fn blocks_and_filemarks_read_back_with_a_drives_sense_and_positions() {
    let tgtd = Tgtd::start();
    let tape = new_tape(&rtgt_tgtimg(), tgtd.dir.path(), "A00000001", 8, "data");
    rtgt_with_tape(&tgtd, &["--device-type", "tape", "--backing-store", tape.to_str().unwrap()]);
    let mut conn = session(tgtd.portal());

    let inq = conn.scsi(1, &[0x12, 0, 0, 0, 36, 0], &[], 36).unwrap();
    assert_eq!((inq.data_in[0], inq.data_in[1] & 0x80), (0x01, 0x80), "sequential access, removable");
    // What st asks when it opens the drive: block limits, and the block descriptor (variable mode).
    let limits = conn.scsi(1, &[0x05, 0, 0, 0, 0, 0], &[], 6).unwrap();
    assert_eq!(limits.data_in, [0, 0xff, 0xff, 0xff, 0, 1]);
    let mode = conn.scsi(1, &[0x1a, 0, 0, 0, 12, 0], &[], 12).unwrap();
    assert_eq!((mode.status, mode.data_in[3], &mode.data_in[9..12]), (0, 8, &[0u8, 0, 0][..]));

    write_layout(&mut conn);
    read_layout_exact(&mut conn);
    let end = read6(&mut conn, 100);
    assert_eq!((end.status, end.sense_code()), (0x02, (0x08, 0x00, 0x05)), "BLANK CHECK, END-OF-DATA DETECTED");

    // Back to the 70000-byte block: asked for 1000 bytes, ILI with a negative residue.
    rewind(&mut conn);
    let space = conn.scsi(1, &[0x11, 0, 0, 0, 2, 0], &[], 0).unwrap();
    assert_eq!(space.status, 0);
    let pos = conn.scsi(1, &[0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 20).unwrap();
    assert_eq!(pos.data_in[4..8], 2u32.to_be_bytes());
    let short = read6(&mut conn, 1000);
    assert_eq!((short.status, short.sense[2]), (0x02, 0x20), "ILI: {:02x?}", short.sense);
    assert_eq!(short.information(), Some((1000i32 - 70_000) as u32));
    assert!(short.data_in == pattern(70_000, 2)[..1000]);
    // Then a long read of the filemark, and a read with more room than the 3-byte block.
    let mark = read6(&mut conn, 4096);
    assert_eq!((mark.sense[2], mark.information()), (0x80, Some(4096)));
    let long = read6(&mut conn, 4096);
    assert_eq!((long.sense[2], long.information()), (0x20, Some(4093)));
    assert_eq!(long.data_in, pattern(3, 4));
    assert!(long.residual.1, "underflow residual for the short block");
    // VERIFY(6) of the first block moves no data: GOOD with no residual of either kind.
    rewind(&mut conn);
    let first = LAYOUT[0].expect("the layout starts with a block") as u32;
    let verify = conn.scsi(1, &[0x13, 0, 0, (first >> 8) as u8, first as u8, 0], &[], 0).unwrap();
    assert_eq!((verify.status, verify.residual), (0, (false, false, 0)), "VERIFY(6): {:02x?}", verify.sense);

    let show = tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    assert!(show.contains("Type: tape") && show.contains("Backing store type: ssc"), "{show}");
    assert!(show.contains(&format!("Backing store path: {}", tape.display())), "{show}");
}

#[test]
fn an_empty_drive_and_write_protected_tapes() {
    let tgtd = Tgtd::start();
    tgtd.new_target(1, IQN);
    tgtd.add_lun_ok(1, 1, &["--device-type", "tape", "--bstype", "null"]);
    let clean = new_tape(&rtgt_tgtimg(), tgtd.dir.path(), "CLN001", 1, "clean");
    tgtd.add_lun_ok(1, 2, &["--device-type", "tape", "--backing-store", clean.to_str().unwrap()]);
    let data = new_tape(&rtgt_tgtimg(), tgtd.dir.path(), "A00000002", 1, "data");
    tgtd.add_lun_ok(
        1,
        3,
        &["--device-type", "tape", "--backing-store", data.to_str().unwrap(), "--params", "readonly=1"],
    );
    // A missing file is refused, not an empty drive.
    let missing = tgtd.add_lun(1, 4, &["--device-type", "tape", "--backing-store", "/nonexistent/tape"]);
    assert!(!missing.status.success());
    // The spelling of an empty drive.
    tgtd.add_lun_ok(1, 5, &["--device-type", "tape", "--backing-store", "NONE:5"]);
    tgtd.bind(1, "--initiator-address", "ALL");
    let mut conn = session(tgtd.portal());
    let tur = conn.scsi(1, &[0; 6], &[], 0).unwrap();
    assert_eq!(tur.sense_code(), (0x02, 0x3a, 0x00), "NOT READY, MEDIUM NOT PRESENT");
    let mut tur = conn.scsi(5, &[0; 6], &[], 0).unwrap();
    if tur.sense_code().0 == 0x06 {
        tur = conn.scsi(5, &[0; 6], &[], 0).unwrap();
    }
    assert_eq!(tur.sense_code(), (0x02, 0x3a, 0x00), "NONE: no tape");
    for lun in [2, 3] {
        for _ in 0..4 {
            if conn.scsi(lun, &[0; 6], &[], 0).unwrap().status == 0 {
                break;
            }
        }
    }
    let w = conn.scsi(2, &[0x0a, 0, 0, 0, 4, 0], b"data", 0).unwrap();
    assert_eq!(w.sense_code(), (0x07, 0x30, 0x03), "DATA PROTECT, CLEANING CARTRIDGE INSTALLED");
    let w = conn.scsi(3, &[0x0a, 0, 0, 0, 4, 0], b"data", 0).unwrap();
    assert_eq!(w.sense_code(), (0x07, 0x27, 0x00), "DATA PROTECT, WRITE PROTECTED");
    let mode = conn.scsi(3, &[0x1a, 0, 0, 0, 4, 0], &[], 4).unwrap();
    assert_eq!(mode.data_in[2] & 0x80, 0x80, "WP in the mode header");
}

#[test]
fn a_tape_lun_and_its_data_survive_a_restart_and_dump_as_a_tape() {
    let tgtd = Tgtd::start();
    let tape = new_tape(&rtgt_tgtimg(), tgtd.dir.path(), "A00000003", 4, "data");
    rtgt_with_tape(&tgtd, &["--device-type", "tape", "--backing-store", tape.to_str().unwrap()]);
    let mut conn = session(tgtd.portal());
    write_layout(&mut conn);
    drop(conn);
    let tgtd = tgtd.crash_and_restart(&[]);
    let mut conn = session(tgtd.portal());
    read_layout_exact(&mut conn);
    let dump = Command::new(common::bin_dir().join("tgt-admin"))
        .arg("--control-socket")
        .arg(&tgtd.socket)
        .arg("--dump")
        .output()
        .unwrap();
    let dump = common::text(&dump);
    assert!(
        dump.contains("device-type tape") && dump.contains(&format!("<backing-store {}>", tape.display())),
        "{dump}"
    );
}

/// Debian's tgtd on its own control port and loopback portal, killed by PID when dropped.
struct DebianTgtd {
    child: std::process::Child,
    control_port: u32,
    port: u16,
}

impl DebianTgtd {
    fn start() -> DebianTgtd {
        require_debian_tgt();
        let port = common::free_port();
        // A control port no other test uses (tgtd refuses a socket in use); up to 32767.
        let mut control_port = 10000 + std::process::id() % 9000;
        while Path::new(&format!("/var/run/tgtd/socket.{control_port}")).exists() {
            control_port += 1;
        }
        let child = Command::new(DEBIAN_TGTD)
            .args(["-f", "-C", &control_port.to_string(), "--iscsi", &format!("portal=127.0.0.1:{port}")])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start Debian's tgtd");
        let tgt = DebianTgtd { child, control_port, port };
        for _ in 0..1500 {
            if tgt.tgtadm(&["--mode", "system", "--op", "show"]).status.success() {
                return tgt;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("Debian's tgtd did not start");
    }

    fn tgtadm(&self, args: &[&str]) -> Output {
        Command::new(DEBIAN_TGTADM)
            .args(["-C", &self.control_port.to_string(), "--lld", "iscsi"])
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) {
        let out = self.tgtadm(args);
        assert!(out.status.success(), "tgtadm {args:?}: {}", common::text(&out));
    }

    /// Target 1 with the tape at LUN 1, open to any initiator.
    fn serve(&self, tape: &Path) {
        self.ok(&["--mode", "target", "--op", "new", "--tid", "1", "-T", IQN]);
        self.ok(&[
            "--mode",
            "logicalunit",
            "--op",
            "new",
            "--tid",
            "1",
            "--lun",
            "1",
            "--device-type",
            "tape",
            "-b",
            tape.to_str().unwrap(),
        ]);
        self.ok(&["--mode", "target", "--op", "bind", "--tid", "1", "-I", "ALL"]);
    }

    fn portal(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for DebianTgtd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Killed, it leaves its control socket behind; the next start would skip that port.
        for suffix in ["", ".lock"] {
            let _ = std::fs::remove_file(format!("/var/run/tgtd/socket.{}{suffix}", self.control_port));
        }
    }
}

#[test]
fn tapes_move_between_debian_tgt_and_rtgt_both_ways() {
    require_debian_tgt();
    let _heavy = common::heavy();
    let dir = tempfile::tempdir().unwrap();

    // Debian's tgtimg makes it, Debian's tgtd writes it, rtgt reads every block and filemark.
    let from_tgt = new_tape(Path::new(DEBIAN_TGTIMG), dir.path(), "D00000001", 4, "data");
    {
        let tgt = DebianTgtd::start();
        tgt.serve(&from_tgt);
        let mut conn = session(tgt.portal());
        write_layout(&mut conn);
        // Debian's tgt reads its own tape back the same way (the check is a fair one).
        read_layout_exact(&mut conn);
    }
    let tgtd = Tgtd::start();
    rtgt_with_tape(&tgtd, &["--device-type", "tape", "--backing-store", from_tgt.to_str().unwrap()]);
    let mut conn = session(tgtd.portal());
    read_layout_exact(&mut conn);
    let end = read6(&mut conn, 100);
    assert_eq!(end.sense_code(), (0x08, 0x00, 0x05), "the end of data where tgt left it");
    drop(conn);
    drop(tgtd);

    // rtgt's tgtimg makes it, rtgt writes it, Debian's tgtd reads it back and its tgtimg shows it.
    let from_rtgt = new_tape(&rtgt_tgtimg(), dir.path(), "R00000001", 4, "data");
    let tgtd = Tgtd::start();
    rtgt_with_tape(&tgtd, &["--device-type", "tape", "--backing-store", from_rtgt.to_str().unwrap()]);
    let mut conn = session(tgtd.portal());
    write_layout(&mut conn);
    drop(conn);
    drop(tgtd);
    let shown = show_tape(DEBIAN_TGTIMG, &from_rtgt);
    let text = common::text(&shown);
    assert!(shown.status.success() && !text.contains("crc error"), "{text}");
    assert_eq!(text.matches("Uncompressed data").count(), LAYOUT.iter().flatten().count(), "{text}");
    assert_eq!(text.matches("Filemark").count(), LAYOUT.iter().filter(|o| o.is_none()).count(), "{text}");
    assert!(text.contains("Media     : R00000001") && text.contains(" type     : Data"), "{text}");
    // The same text from both tgtimgs.
    assert_eq!(common::text(&show_tape(rtgt_tgtimg().to_str().unwrap(), &from_rtgt)), text);
    let tgt = DebianTgtd::start();
    tgt.serve(&from_rtgt);
    let mut conn = session(tgt.portal());
    read_layout_exact(&mut conn);
}
