//! `tgtadm --mode logicalunit --op update --params` on a LUN that logged-in sessions use: what they
//! are told. Changed INQUIRY or VPD data gives every session UNIT ATTENTION, INQUIRY DATA HAS
//! CHANGED (3Fh/03h, SPC-4 6.6.1), so that an initiator re-reads the identity and serial number it
//! keys devices on (multipath's WWID); a changed mode page or write protection gives MODE
//! PARAMETERS CHANGED (2Ah/01h). The same values again tell nobody.

use crate::common::initiator::Connection;
use crate::common::Tgtd;

const IQN: &str = "iqn.2001-04.com.example:lunupdate";

/// `--op update --params PARAMS` on LUN 1 of target 1, which must succeed.
fn update(tgtd: &Tgtd, params: &str) {
    let out = tgtd.update_lun(1, 1, params);
    assert!(out.status.success(), "update {params}: {}", crate::common::text(&out));
}

/// TEST UNIT READY on LUN 1: status and (key, ASC, ASCQ).
fn tur(conn: &mut Connection) -> (u8, (u8, u8, u8)) {
    let r = conn.scsi(1, &[0; 6], &[], 0).unwrap();
    (r.status, r.sense_code())
}

/// Each session's next command reports `code` as CHECK CONDITION, UNIT ATTENTION, once.
#[track_caller]
fn each_told(sessions: &mut [&mut Connection], code: (u8, u8)) {
    for (i, conn) in sessions.iter_mut().enumerate() {
        assert_eq!(tur(conn), (2, (0x06, code.0, code.1)), "session {i}");
        assert_eq!(tur(conn), (0, (0, 0, 0)), "session {i}: reported once");
    }
}

/// No session has anything pending.
#[track_caller]
fn none_told(sessions: &mut [&mut Connection]) {
    for (i, conn) in sessions.iter_mut().enumerate() {
        assert_eq!(tur(conn), (0, (0, 0, 0)), "session {i}");
    }
}

/// The VENDOR IDENTIFICATION (SPC-4 6.6.2: bytes 8..16) and the Unit Serial Number VPD page's
/// PRODUCT SERIAL NUMBER (7.8.16: from byte 4).
fn identity(conn: &mut Connection) -> (String, String) {
    let std = conn.scsi(1, &[0x12, 0, 0, 0, 36, 0], &[], 36).unwrap();
    assert_eq!(std.status, 0, "INQUIRY: {:02x?}", std.sense);
    let sn = conn.scsi(1, &[0x12, 1, 0x80, 0, 0xff, 0], &[], 0xff).unwrap();
    assert_eq!(sn.status, 0, "INQUIRY VPD 80h: {:02x?}", sn.sense);
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
    (text(&std.data_in[8..16]), text(&sn.data_in[4..]))
}

/// WP of MODE SENSE(6)'s header (SBC-4 6.5.1: bit 7 of the DEVICE-SPECIFIC PARAMETER).
fn wp(conn: &mut Connection) -> bool {
    let r = conn.scsi(1, &[0x1a, 0x08, 0x3f, 0, 0xff, 0], &[], 0xff).unwrap();
    assert_eq!(r.status, 0, "MODE SENSE: {:02x?}", r.sense);
    r.data_in[2] & 0x80 != 0
}

#[test]
fn updated_identity_and_mode_parameters_reach_every_session_as_unit_attentions() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = crate::common::sparse_image(dir.path(), "disk.img", 4 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let mut a = tgtd.session(IQN, 1, &[1]);
    let mut b = tgtd.session(IQN, 2, &[1]);
    assert_eq!(identity(&mut a), ("IET".into(), "beaf11".into()));

    update(&tgtd, "vendor_id=NEWCO,scsi_sn=SN0042");
    each_told(&mut [&mut a, &mut b], (0x3f, 0x03));
    assert_eq!(identity(&mut a), ("NEWCO".into(), "SN0042".into()));
    assert_eq!(identity(&mut b), ("NEWCO".into(), "SN0042".into()));
    // The values the LUN has already: nothing changed, nobody told.
    update(&tgtd, "vendor_id=NEWCO,scsi_sn=SN0042");
    none_told(&mut [&mut a, &mut b]);
    // The device identification page's SCSI ID.
    update(&tgtd, "scsi_id=NEWCO 0042");
    each_told(&mut [&mut a, &mut b], (0x3f, 0x03));

    // Write protection is the header's WP bit: a mode parameter.
    assert!(!wp(&mut a));
    update(&tgtd, "readonly=1");
    each_told(&mut [&mut a, &mut b], (0x2a, 0x01));
    assert!(wp(&mut a));
    update(&tgtd, "readonly=1");
    none_told(&mut [&mut a, &mut b]);
    // A mode page (tgt-admin's `write-cache off`: the caching page with WCE clear).
    update(&tgtd, "mode_page=8:0:18:0x10:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0");
    each_told(&mut [&mut a, &mut b], (0x2a, 0x01));
    update(&tgtd, "mode_page=8:0:18:0x10:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0");
    none_told(&mut [&mut a, &mut b]);

    // Both at once: each condition in turn.
    update(&tgtd, "product_id=OTHER,readonly=0");
    for conn in [&mut a, &mut b] {
        assert_eq!(tur(conn), (2, (0x06, 0x3f, 0x03)));
        assert_eq!(tur(conn), (2, (0x06, 0x2a, 0x01)));
        assert_eq!(tur(conn), (0, (0, 0, 0)));
    }
}
