//! `tgt-admin --update` (what `systemctl reload rtgt` runs) changing only a LUN's parameters while
//! an initiator is logged in: the LUN is updated in place (`logicalunit --op update --params`),
//! not deleted and made again, so the reload needs no --force and the initiator keeps its LUN,
//! its data and its session, and is told what changed (unit attentions).

use super::{ok, tgt_admin, write};
use crate::common::{self, Tgtd};

const IQN: &str = "iqn.2001-04.com.example:inplace";

fn conf_text(image: &std::path::Path, lun_lines: &str) -> String {
    format!(
        "<target {IQN}>\n\t<backing-store {}>\n{lun_lines}\t</backing-store>\n\tinitiator-address ALL\n</target>\n",
        image.display()
    )
}

/// The VENDOR IDENTIFICATION of the standard INQUIRY data (SPC-4 6.6.2: bytes 8..16).
fn vendor(conn: &mut common::initiator::Connection) -> String {
    let r = conn.scsi(1, &[0x12, 0, 0, 0, 36, 0], &[], 36).unwrap();
    assert_eq!(r.status, 0, "INQUIRY: {:02x?}", r.sense);
    String::from_utf8_lossy(&r.data_in[8..16]).trim_end().to_string()
}

/// TEST UNIT READY on LUN 1: status and (key, ASC, ASCQ).
fn tur(conn: &mut common::initiator::Connection) -> (u8, (u8, u8, u8)) {
    let r = conn.scsi(1, &[0; 6], &[], 0).unwrap();
    (r.status, r.sense_code())
}

/// The caching mode page's WCE bit (SBC-4 6.5.5: byte 2 bit 2 of the page), MODE SENSE(6) with
/// DBD so the page starts after the 4-byte header.
fn wce(conn: &mut common::initiator::Connection) -> bool {
    let r = conn.scsi(1, &[0x1a, 0x08, 0x08, 0, 0xff, 0], &[], 0xff).unwrap();
    assert_eq!(r.status, 0, "MODE SENSE: {:02x?}", r.sense);
    assert_eq!(r.data_in[4], 0x08, "{:02x?}", r.data_in);
    r.data_in[6] & 0x04 != 0
}

#[test]
fn update_changes_lun_parameters_in_place_under_a_logged_in_session() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "disk.img", 4 << 20);
    let first = write(dir.path(), "first.conf", &conf_text(&image, "\t\tvendor_id OLDCO\n"));
    ok(&tgtd, &["--execute", "-c", &first]);
    let mut conn = tgtd.session(IQN, 1, &[1]);
    let block: Vec<u8> = (0..512u32).map(|i| (i * 7 % 256) as u8).collect();
    let w = conn.write10(1, 3, &block, 512).unwrap();
    assert_eq!(w.status, 0, "WRITE(10): {:02x?}", w.sense);
    assert_eq!(vendor(&mut conn), "OLDCO");
    assert!(wce(&mut conn), "the write cache starts on");

    // Another vendor and the write cache off: LUN parameters only.
    let second = write(dir.path(), "second.conf", &conf_text(&image, "\t\tvendor_id NEWCO\n\t\twrite-cache off\n"));
    let pretend = ok(&tgtd, &["--update", "ALL", "--pretend", "-c", &second]);
    assert!(
        pretend.contains(" --lld iscsi --mode logicalunit --op update --tid 1 --lun 1 --params ")
            && pretend.contains("vendor_id=NEWCO")
            && pretend.contains("mode_page=8:0:18:16:0:255:255:0:0:255:255:255:255:128:20:0:0:0:0:0:0"),
        "{pretend}"
    );
    assert!(!pretend.contains("--op delete") && !pretend.contains("--op new"), "{pretend}");
    assert_eq!(pretend.matches("--mode logicalunit").count(), 1, "one call for the LUN: {pretend}");
    assert!(!pretend.contains("active session"), "{pretend}");
    assert_eq!(vendor(&mut conn), "OLDCO", "--pretend changed the LUN");

    // No --force: the session stays, the LUN is changed under it.
    let out = tgt_admin(&tgtd, &["--update", "ALL", "-c", &second]);
    assert!(out.status.success(), "{}", common::text(&out));
    // The LUN was not made again: no REPORTED LUNS DATA HAS CHANGED on the next command, but
    // what changed under the session (INQUIRY DATA HAS CHANGED, then MODE PARAMETERS CHANGED for
    // the caching page); the block written before is still there.
    assert_eq!(tur(&mut conn), (2, (0x06, 0x3f, 0x03)), "TEST UNIT READY after the update");
    assert_eq!(tur(&mut conn), (2, (0x06, 0x2a, 0x01)));
    assert_eq!(tur(&mut conn), (0, (0, 0, 0)));
    assert_eq!(vendor(&mut conn), "NEWCO");
    assert!(!wce(&mut conn), "write-cache off did not turn the write cache off");
    let r = conn.read10(1, 3, 1, 512).unwrap();
    assert_eq!((r.status, &r.data_in), (0, &block), "the data written before the update");
    let show = tgtd.tgtadm_ok(&["--mode", "target", "--op", "show"]);
    assert!(show.contains("Initiator: iqn.2026-11.org.rtgt.test:initiator"), "{show}");
    assert_eq!(ok(&tgtd, &["--update", "ALL", "--pretend", "-c", &second]), format!("target {IQN} is up to date\n"));

    // vendor_id taken out of the file: back to the default (as a LUN made from the file would
    // have it), in place too.
    let third = write(dir.path(), "third.conf", &conf_text(&image, "\t\twrite-cache off\n"));
    let pretend = ok(&tgtd, &["--update", "ALL", "--pretend", "-c", &third]);
    assert!(pretend.contains("--op update --tid 1 --lun 1 --params vendor_id=IET\n"), "{pretend}");
    ok(&tgtd, &["--update", "ALL", "-c", &third]);
    assert_eq!(tur(&mut conn), (2, (0x06, 0x3f, 0x03)), "the identity changed again");
    assert_eq!(tur(&mut conn), (0, (0, 0, 0)));
    assert_eq!(vendor(&mut conn), "IET");
    assert_eq!(ok(&tgtd, &["--update", "ALL", "--pretend", "-c", &third]), format!("target {IQN} is up to date\n"));

    // A new backing store is a new LUN: that still needs the LUN deleted, so the busy target is
    // left alone without --force.
    let other = common::sparse_image(dir.path(), "other.img", 4 << 20);
    let fourth = write(dir.path(), "fourth.conf", &conf_text(&other, "\t\twrite-cache off\n"));
    let out = tgt_admin(&tgtd, &["--update", "ALL", "-c", &fourth]);
    assert_eq!(out.status.code(), Some(16), "{}", common::text(&out));
    let r = conn.read10(1, 3, 1, 512).unwrap();
    assert_eq!((r.status, &r.data_in), (0, &block));
}
