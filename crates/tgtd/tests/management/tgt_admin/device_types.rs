//! `tgt-admin --update` on the file a cd/dvd drive, a tape drive or a media changer was made from
//! finds it up to date: the running LUN shows its type's defaults (product, removable, read-only,
//! 2048-byte blocks), which the file does not spell out, and those must not look like changes, or
//! every reload re-creates the LUN (refused as busy while a session uses it, or under the
//! initiator's feet with --force). A changed identity is still applied, in place.

use super::{ok, tgt_admin, write};
use crate::common::{self, Tgtd};

const IQN: &str = "iqn.2001-04.com.example:types";

/// A target with a cd/dvd drive on `iso` (LUN 1), an empty tape drive (LUN 2) and a small media
/// changer (LUN 3) on the placeholder file `smc`; `extra` goes into the cd/dvd drive's block.
fn conf_text(iso: &std::path::Path, smc: &std::path::Path, extra: &str) -> String {
    format!(
        "<target {IQN}>\n\
         \t<backing-store {iso}>\n\t\tdevice-type cd\n\t\tlun 1\n{extra}\t</backing-store>\n\
         \t<backing-store ->\n\t\tdevice-type tape\n\t\tbs-type null\n\t\tlun 2\n\t</backing-store>\n\
         \t<backing-store {smc}>\n\t\tdevice-type changer\n\t\tlun 3\n\
         \t\tparams element_type=2,start_address=1000,quantity=4\n\
         \t\tparams element_type=4,start_address=500,quantity=1\n\
         \t\tparams element_type=4,address=500,tid=1,lun=2\n\t</backing-store>\n\
         \tinitiator-address ALL\n</target>\n",
        iso = iso.display(),
        smc = smc.display()
    )
}

#[test]
fn update_finds_cd_tape_and_changer_luns_up_to_date() {
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let iso = common::sparse_image(dir.path(), "disc.iso", 4 << 20);
    let smc = common::sparse_image(dir.path(), "smc", 1024);
    let conf = write(dir.path(), "types.conf", &conf_text(&iso, &smc, ""));
    ok(&tgtd, &["--execute", "-c", &conf]);
    let up_to_date = format!("target {IQN} is up to date\n");
    assert_eq!(ok(&tgtd, &["--update", "ALL", "--pretend", "-c", &conf]), up_to_date);

    // With a session on the drive a reload still has nothing to do (no busy target, exit 0).
    let mut conn = tgtd.session(IQN, 1, &[1, 2, 3]);
    let out = tgt_admin(&tgtd, &["--update", "ALL", "-c", &conf]);
    assert!(out.status.success(), "{}", common::text(&out));
    assert_eq!(common::text(&out), up_to_date);
    // The dump loads back to the same configuration.
    let dumped = write(dir.path(), "dump.conf", &ok(&tgtd, &["--dump"]));
    assert_eq!(ok(&tgtd, &["--update", "ALL", "--pretend", "-c", &dumped]), up_to_date);

    // A new vendor for the drive is changed in place under the session, which is told.
    let vendor = write(dir.path(), "vendor.conf", &conf_text(&iso, &smc, "\t\tvendor_id ACME\n"));
    let pretend = ok(&tgtd, &["--update", "ALL", "--pretend", "-c", &vendor]);
    assert!(pretend.contains("--op update --tid 1 --lun 1 --params vendor_id=ACME\n"), "{pretend}");
    assert!(!pretend.contains("--op delete") && !pretend.contains("--op new"), "{pretend}");
    let out = tgt_admin(&tgtd, &["--update", "ALL", "-c", &vendor]);
    assert!(out.status.success(), "{}", common::text(&out));
    let tur = conn.scsi(1, &[0; 6], &[], 0).unwrap();
    assert_eq!((tur.status, tur.sense_code()), (2, (0x06, 0x3f, 0x03)));
    let inquiry = conn.scsi(1, &[0x12, 0, 0, 0, 36, 0], &[], 36).unwrap();
    assert_eq!(&inquiry.data_in[8..16], b"ACME    ");
    assert_eq!(ok(&tgtd, &["--update", "ALL", "--pretend", "-c", &vendor]), up_to_date);
}
