//! A multi-gateway LUN's life beside I/O: an `rbd resize` made outside every gateway reaches the
//! nexuses of all of them (CAPACITY DATA HAS CHANGED, the new capacity), deleting the LUN with
//! tgtadm takes the gateway out of the image's registry, and scripts/gateway-demo --check works.

use super::{groups, registry_keys, session, wait_for, TwoGateways, ACTIVE};
use crate::common::initiator::Connection;
use crate::{rbd, INITIATOR};

/// READ CAPACITY(10): the last LBA.
fn last_lba(c: &mut Connection) -> u32 {
    let out = c.scsi(1, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8).unwrap();
    assert_eq!(out.status, 0, "{:x?}", out.sense);
    u32::from_be_bytes(out.data_in[0..4].try_into().unwrap())
}

#[test]
fn an_rbd_resize_reaches_the_nexuses_of_every_gateway() {
    let gw = TwoGateways::start();
    let (mut ca, mut cb) = gw.sessions(INITIATOR, INITIATOR);
    groups(&mut ca);
    groups(&mut cb);
    assert_eq!((last_lba(&mut ca), last_lba(&mut cb)), (32767, 32767));
    rbd(&gw.conf, &["resize", "--size", "32", &format!("rbd/{}", gw.name)]);
    for (c, which) in [(&mut ca, "a"), (&mut cb, "b")] {
        let mut seen = None;
        wait_for(10, &format!("{which}'s nexus told CAPACITY DATA HAS CHANGED"), || {
            // TEST UNIT READY reports a pending unit attention on either path (standby included).
            let sense = c.scsi(1, &[0; 6], &[], 0).unwrap().sense_code();
            if sense.0 == 0x06 {
                seen = Some(sense);
            }
            seen == Some((0x06, 0x2a, 0x09))
        });
        assert_eq!(last_lba(c), 65535, "{which}");
    }
}

#[test]
fn deleting_the_lun_takes_the_gateway_out_of_the_registry() {
    let gw = TwoGateways::start();
    let mut ca = session(gw.a.portal(), INITIATOR);
    let has = |gateway: &str| registry_keys(&gw.conf, &gw.name).contains(&format!("gw.{gateway}"));
    assert!(has("gw-a") && has("gw-b"));
    gw.b.tgtadm_ok(&["--lld", "iscsi", "--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "1"]);
    assert!(!has("gw-b"), "{:?}", registry_keys(&gw.conf, &gw.name));
    wait_for(5, "a lists its own group only", || groups(&mut ca) == [(1, ACTIVE)]);
    // The owner's delete hands the unit over at once: nobody owns it, nothing is fenced.
    gw.a.tgtadm_ok(&["--lld", "iscsi", "--mode", "logicalunit", "--op", "delete", "--tid", "1", "--lun", "1"]);
    let keys = registry_keys(&gw.conf, &gw.name);
    assert!(!keys.iter().any(|k| k.starts_with("gw.") || k == "owner" || k.starts_with("fenced.")), "{keys:?}");
}

/// scripts/gateway-demo --check starts a cluster of its own and two gateways of these binaries,
/// asks each for its target port groups with a libiscsi client it builds, and stops everything.
#[test]
fn the_gateway_demo_checks_out() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/gateway-demo");
    let out = std::process::Command::new(script)
        .arg("--check")
        .env("TGTD", env!("CARGO_BIN_EXE_tgtd"))
        .env("TGTADM", crate::common::tgtadm_path())
        .env_remove("CEPH_PORT_BASE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gateway-demo --check failed:\n{err}");
    assert_eq!(err.matches("group 1 active/optimized, group 2 active/non-optimized").count(), 2, "{err}");
}
