//! A gateway that loses the cluster while its process runs on: its RADOS client is blocklisted
//! and its cephx user may no longer reach the OSDs, so it cannot connect again either. The other
//! gateway reports it offline within 15 s and serves; the cut-off one refuses writes; given its
//! access back, it rejoins as standby by itself and lifts its old fence. A RESERVE(6) holder
//! through a cut-off standby, released by the owner when that standby's lease lapsed, hears of it
//! once the standby is back (I_T NEXUS LOSS OCCURRED).

use super::{gateway_opts, groups, image_id, read, wait_for, write10, ACTIVE, IQN, NON_OPTIMIZED, OFFLINE};
use crate::common::Tgtd;
use crate::{conf, image, login_at, pattern};
use std::process::Command;

const UNAVAILABLE: u8 = 0x3;

fn ceph(conf: &str, args: &[&str]) -> String {
    let out = Command::new("ceph").args(["-c", conf, "--connect-timeout", "20"]).args(args).output().unwrap();
    assert!(out.status.success(), "ceph {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A cephx user of its own for one gateway, and the blocklist entry the test makes: both gone
/// at the end, whatever happened.
struct OwnUser {
    conf: String,
    entity: String,
    blocklisted: Option<String>,
}

impl Drop for OwnUser {
    fn drop(&mut self) {
        let base = ["-c", &self.conf, "--connect-timeout", "20"];
        if let Some(addr) = &self.blocklisted {
            let _ = Command::new("ceph").args(base).args(["osd", "blocklist", "rm", addr]).output();
        }
        let _ = Command::new("ceph").args(base).args(["auth", "rm", &self.entity]).output();
    }
}

/// The client address in gateway `gw`'s registry entry.
fn registered_addr(conf: &str, image: &str, gw: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("value");
    let oid = format!("rtgt.gateways.{}", image_id(conf, image));
    let key = format!("gw.{gw}");
    let out =
        Command::new("rados").args(["-c", conf, "-p", "rbd", "getomapval", &oid, &key]).arg(&file).output().unwrap();
    assert!(out.status.success(), "rados getomapval: {}", String::from_utf8_lossy(&out.stderr));
    let value = std::fs::read_to_string(&file).unwrap();
    value.split(';').find_map(|f| f.strip_prefix("addr=")).expect("an addr field").to_string()
}

#[test]
fn a_gateway_cut_off_from_the_cluster_is_offline_within_15_s_refuses_writes_and_rejoins() {
    let conf = conf();
    let name = image(&conf, 16);
    // Gateway a runs as a cephx user of its own, with a keyring of its own.
    let dir = tempfile::tempdir().unwrap();
    let entity = format!("client.rtgt-cut-{}", std::process::id());
    let keyring = dir.path().join("keyring");
    let mut user = OwnUser { conf: conf.clone(), entity: entity.clone(), blocklisted: None };
    let keyring_s = keyring.to_str().unwrap();
    ceph(&conf, &["auth", "get-or-create", &entity, "mon", "allow *", "osd", "allow *", "-o", keyring_s]);
    let own_conf = dir.path().join("ceph.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&own_conf, format!("{text}\n[{entity}]\nkeyring = {keyring_s}\n")).unwrap();
    let a = Tgtd::start();
    let id = entity.strip_prefix("client.").unwrap();
    let opts = gateway_opts(&a, own_conf.to_str().unwrap(), id, "gw-a", 1);
    a.new_target(1, IQN);
    a.add_lun_ok(1, 1, &["--bstype", "rbd", "--backing-store", &format!("rbd/{name}"), "--bsopts", &opts]);
    a.bind(1, "-I", "ALL");
    let b = super::start_gateway(&conf, &name, "gw-b", 2);
    let mut ca = login_at(a.portal(), IQN);
    let mut cb = login_at(b.portal(), IQN);
    let old = pattern(41, 4096);
    assert_eq!(write10(&mut ca, 16, &old).status, 0);
    wait_for(3, "b sees a owning the unit", || groups(&mut cb) == [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    // Cut a off: first its user loses the OSDs (so a new client gets nowhere), then its client
    // is blocklisted (what it has open fails).
    let addr = registered_addr(&conf, &name, "gw-a");
    ceph(&conf, &["auth", "caps", &entity, "mon", "allow r"]);
    ceph(&conf, &["osd", "blocklist", "add", &addr]);
    user.blocklisted = Some(addr.clone());
    let cut = std::time::Instant::now();
    // a knows: it reports its own group unavailable, and refuses a write it cannot make durable.
    wait_for(10, "a reports itself unavailable", || groups(&mut ca).contains(&(1, UNAVAILABLE)));
    let refused = write10(&mut ca, 16, &pattern(42, 4096));
    assert_ne!(refused.status, 0, "a acknowledged a write while cut off\n{}", a.log());
    eprintln!("a refused the write with {:x?}", refused.sense_code());
    // b reports a offline and owns the unit within 15 s of the cut.
    wait_for(15, "b reports a offline and owns the unit", || groups(&mut cb) == [(1, OFFLINE), (2, ACTIVE)]);
    eprintln!("b reported a offline {:?} after the cut", cut.elapsed());
    // I/O resumes on b: what a acknowledged before the cut, not what it refused, then new data.
    assert!(read(&mut cb, 16, 8) == old, "b reads what a acknowledged");
    let fresh = pattern(43, 4096);
    assert_eq!(write10(&mut cb, 16, &fresh).status, 0);
    assert!(read(&mut cb, 16, 8) == fresh);
    assert_ne!(write10(&mut ca, 16, &pattern(44, 4096)).status, 0, "a acknowledged a write while cut off");
    assert!(read(&mut cb, 16, 8) == fresh, "a's refused write landed");
    // a's access comes back: it connects again with a new client by itself, rejoins as
    // standby, forwards to b, and lifts its old client's blocklist entry.
    ceph(&conf, &["auth", "caps", &entity, "mon", "allow *", "osd", "allow *"]);
    let took = wait_for(20, "a back as standby", || groups(&mut ca) == [(1, NON_OPTIMIZED), (2, ACTIVE)]);
    eprintln!("a back as standby {took:?} after its access came back");
    wait_for(5, "b sees a standing by", || groups(&mut cb) == [(1, NON_OPTIMIZED), (2, ACTIVE)]);
    assert!(read(&mut ca, 16, 8) == fresh, "a forwards to b");
    assert_ne!(registered_addr(&conf, &name, "gw-a"), addr, "a new client");
    wait_for(10, "a's old fence lifted", || {
        !super::registry_keys(&conf, &name).iter().any(|k| k.starts_with("fenced."))
            && !ceph(&conf, &["osd", "blocklist", "ls"]).contains(&addr)
    });
}

/// A RESERVE(6) holder through the standby b, which is then cut off from the cluster with its
/// session up: the owner takes b's lapsed lease for the loss of that nexus and releases the
/// reservation. Once b is back, the holder's initiator hears of that loss (UNIT ATTENTION, I_T
/// NEXUS LOSS OCCURRED) rather than going on as if it still held the reservation.
#[test]
fn a_reservation_through_a_cut_off_standby_released_by_the_owner_is_told_to_its_initiator() {
    const I1: &str = "iqn.2026-11.org.rtgt.test:cut-reserve-one";
    const I2: &str = "iqn.2026-11.org.rtgt.test:cut-reserve-two";
    const I3: &str = "iqn.2026-11.org.rtgt.test:cut-reserve-watch";
    let conf = conf();
    let name = image(&conf, 16);
    let a = super::start_gateway(&conf, &name, "gw-a", 1);
    // Gateway b runs as a cephx user of its own, with a keyring of its own.
    let dir = tempfile::tempdir().unwrap();
    let entity = format!("client.rtgt-cutres-{}", std::process::id());
    let keyring = dir.path().join("keyring");
    let mut user = OwnUser { conf: conf.clone(), entity: entity.clone(), blocklisted: None };
    let keyring_s = keyring.to_str().unwrap();
    ceph(&conf, &["auth", "get-or-create", &entity, "mon", "allow *", "osd", "allow *", "-o", keyring_s]);
    let own_conf = dir.path().join("ceph.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    std::fs::write(&own_conf, format!("{text}\n[{entity}]\nkeyring = {keyring_s}\n")).unwrap();
    let b = Tgtd::start();
    let id = entity.strip_prefix("client.").unwrap();
    let opts = gateway_opts(&b, own_conf.to_str().unwrap(), id, "gw-b", 2);
    b.new_target(1, IQN);
    b.add_lun_ok(1, 1, &["--bstype", "rbd", "--backing-store", &format!("rbd/{name}"), "--bsopts", &opts]);
    b.bind(1, "-I", "ALL");
    let mut one = super::session(b.portal(), I1);
    let mut watch = super::session(b.portal(), I3);
    let mut two = super::session(a.portal(), I2);
    wait_for(5, "b forwards to a", || groups(&mut watch) == [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    let tur = [0u8; 6];
    wait_for(5, "b forwards TEST UNIT READY", || one.scsi(1, &tur, &[], 0).unwrap().status == 0);
    let reserve = [0x16, 0, 0, 0, 0, 0];
    assert_eq!(one.scsi(1, &reserve, &[], 0).unwrap().status, 0, "{}", a.log());
    let write = |c: &mut crate::common::initiator::Connection| {
        let out = write10(c, 16, &pattern(51, 4096));
        if out.sense_code().0 == 0x06 {
            write10(c, 16, &pattern(51, 4096)).status
        } else {
            out.status
        }
    };
    assert_eq!(write(&mut two), super::CONFLICT);
    // Cut b off, its session with I1 up.
    let addr = registered_addr(&conf, &name, "gw-b");
    ceph(&conf, &["auth", "caps", &entity, "mon", "allow r"]);
    ceph(&conf, &["osd", "blocklist", "add", &addr]);
    user.blocklisted = Some(addr.clone());
    // The owner sees b's lease lapse and releases the holder that came through it.
    wait_for(25, "the owner releases the reservation", || write(&mut two) == 0);
    // b's access comes back; it rejoins as standby and catches up.
    ceph(&conf, &["auth", "caps", &entity, "mon", "allow *", "osd", "allow *"]);
    wait_for(30, "a sees b back", || groups(&mut two) == [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    // (b's watch of the holder may come back a moment after its state: the unit attentions
    // until then are the access state changes.)
    let mut seen = Vec::new();
    wait_for(15, "I_T NEXUS LOSS OCCURRED", || {
        seen.push(one.scsi(1, &tur, &[], 0).unwrap().sense_code());
        seen.last() == Some(&(0x06, 0x29, 0x07))
    });
    eprintln!("unit attentions through b: {seen:x?}");
    // The reservation is free for anyone.
    assert_eq!(two.scsi(1, &reserve, &[], 0).unwrap().status, 0);
}
