//! Tests of the target as a whole: the LUN inventory, nexuses, unit attentions and task management.

use crate::test_util::*;
use crate::{LogicalUnit, LunConfig, ResetKind, ScsiStatus, Target, TmfError};
use rtgt_backstore::{Backstore, FileStore, MemoryStore, OpenFlags};
use std::sync::Arc;

const TUR: [u8; 6] = [0, 0, 0, 0, 0, 0];
const INQUIRY: [u8; 6] = [0x12, 0, 0, 0, 36, 0];
const REPORT_LUNS: [u8; 12] = [0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];

fn disk(size: u64, lun: u64) -> Arc<LogicalUnit> {
    Arc::new(LogicalUnit::new(LunConfig::disk(1, lun), Some(Backstore::Memory(MemoryStore::new(size)))))
}

fn exec(t: &Target, n: &crate::Nexus, lun: u64, cdb: &[u8]) -> (crate::TaskResult, Vec<u8>) {
    let mut d = Vec::new();
    let r = block_on(t.execute(n, lun, cdb, &[], &mut d));
    (r, d)
}

#[test]
fn new_nexus_sees_power_on_once_and_inquiry_does_not_consume_it() {
    let t = Target::new(1, "t".into());
    t.add_lun(1, disk(1 << 20, 1)).unwrap();
    let n = t.add_nexus("i".into());
    assert_good(&exec(&t, &n, 1, &INQUIRY).0);
    assert_good(&exec(&t, &n, 1, &REPORT_LUNS).0);
    let (r, _) = exec(&t, &n, 1, &TUR);
    assert_eq!(r.sense.as_deref(), Some(&[0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0][..]));
    assert_good(&exec(&t, &n, 1, &TUR).0);
    // LUN 0 has its own condition.
    assert_sense(&exec(&t, &n, 0, &TUR).0, 0x06, 0x29, 0x00);
    assert_good(&exec(&t, &n, 0, &TUR).0);
}

#[test]
fn unit_attention_comes_before_invalid_opcode() {
    let t = Target::new(1, "t".into());
    t.add_lun(1, disk(1 << 20, 1)).unwrap();
    let n = t.add_nexus("i".into());
    assert_sense(&exec(&t, &n, 1, &[0xff, 0, 0, 0, 0, 0]).0, 0x06, 0x29, 0x00);
    assert_sense(&exec(&t, &n, 1, &[0xff, 0, 0, 0, 0, 0]).0, 0x05, 0x20, 0x00);
}

#[test]
fn lun0_controller_is_replaced_and_restored() {
    let t = Target::new(3, "t".into());
    let luns = t.luns();
    assert_eq!(luns.len(), 1);
    let info = luns[0].1.info();
    assert_eq!(info.config.device_type.name(), "controller");
    assert_eq!(info.config.scsi_id, "IET     00030000");
    assert_eq!(info.config.scsi_sn, "beaf30");
    assert_eq!(info.backing_store_type, "null");
    assert_eq!(info.size, 0);
    assert!(t.remove_lun(0).is_err());
    t.add_lun(0, disk(1 << 20, 0)).unwrap();
    assert_eq!(t.lun(0).unwrap().info().config.device_type.name(), "disk");
    assert!(t.add_lun(0, disk(1 << 20, 0)).is_err());
    t.remove_lun(0).unwrap();
    assert_eq!(t.lun(0).unwrap().info().config.device_type.name(), "controller");
    assert!(t.remove_lun(5).is_err());
}

#[test]
fn inventory_changes_reach_every_nexus() {
    let t = Target::new(1, "t".into());
    t.add_lun(1, disk(1 << 20, 1)).unwrap();
    let n = t.add_nexus("i".into());
    for lun in [0, 1] {
        while n.unit_attentions.take(lun).is_some() {}
    }
    t.add_lun(2, disk(1 << 20, 2)).unwrap();
    assert_sense(&exec(&t, &n, 1, &TUR).0, 0x06, 0x3f, 0x0e);
    assert_sense(&exec(&t, &n, 0, &TUR).0, 0x06, 0x3f, 0x0e);
    assert_sense(&exec(&t, &n, 2, &TUR).0, 0x06, 0x29, 0x00);
    t.remove_lun(2).unwrap();
    assert_sense(&exec(&t, &n, 1, &TUR).0, 0x06, 0x3f, 0x0e);
    let (_, d) = exec(&t, &n, 1, &REPORT_LUNS);
    assert_eq!(&d[..4], [0, 0, 0, 16]);
}

#[test]
fn missing_lun() {
    let t = Target::new(1, "t".into());
    let n = t.add_nexus("i".into());
    let (r, d) = exec(&t, &n, 9, &INQUIRY);
    assert_good(&r);
    assert_eq!(d[0], 0x7f);
    assert_eq!(d.len(), 36);
    assert_sense(&exec(&t, &n, 9, &TUR).0, 0x05, 0x25, 0x00);
    let (r, d) = exec(&t, &n, 9, &[0x03, 0, 0, 0, 18, 0]);
    assert_good(&r);
    assert_eq!(d, [0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x25, 0x00, 0, 0, 0, 0]);
    let (r, _) = exec(&t, &n, 9, &[0x12, 0x01, 0x00, 0, 36, 0]);
    assert_sense(&r, 0x05, 0x25, 0x00);
}

#[test]
fn lun_reset_and_target_reset() {
    let t = TestLun::disk(1 << 20);
    t.target.lun_reset(1).unwrap();
    assert_sense(&t.run(&TUR).0, 0x06, 0x29, 0x03);
    assert_good(&t.run(&TUR).0);
    assert_eq!(t.target.lun_reset(7), Err(TmfError::NoSuchLun));
    t.target.target_reset(ResetKind::Warm);
    assert_sense(&t.run(&TUR).0, 0x06, 0x29, 0x00);
    t.target.target_reset(ResetKind::Cold);
    assert_sense(&t.run(&TUR).0, 0x06, 0x29, 0x01);
    assert_good(&t.run(&TUR).0);
}

#[test]
fn clear_task_set_tells_the_others() {
    let t = TestLun::disk(1 << 20);
    let other = t.target.add_nexus("o".into());
    t.clear_ua(&other);
    t.target.clear_task_set(&t.nexus, 1).unwrap();
    assert_good(&t.run(&TUR).0);
    assert_sense(&t.run_on(&other, &TUR, &[]).0, 0x06, 0x2f, 0x00);
    assert!(t.target.abort_task_set(&t.nexus, 1).is_ok());
    assert_eq!(t.target.clear_task_set(&t.nexus, 4), Err(TmfError::NoSuchLun));
}

#[test]
fn removed_nexus_releases_its_reservation() {
    let t = TestLun::disk(1 << 20);
    let other = t.target.add_nexus("o".into());
    t.clear_ua(&other);
    assert_good(&t.run_on(&other, &[0x16, 0, 0, 0, 0, 0], &[]).0);
    assert_eq!(t.run(&TUR).0.status, ScsiStatus::ReservationConflict);
    t.target.remove_nexus(&other);
    assert_good(&t.run(&TUR).0);
}

#[test]
fn online_resize_raises_capacity_changed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.img");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(1 << 20).unwrap();
    let store = Backstore::File(FileStore::open(&path, OpenFlags::default()).unwrap());
    let t = TestLun::with_store(LunConfig::disk(1, 1), Some(store), 1);
    assert_eq!(t.target.reload_lun_size(1).unwrap(), 1 << 20);
    assert_good(&t.run(&TUR).0);
    file.set_len(2 << 20).unwrap();
    assert_eq!(t.target.reload_lun_size(1).unwrap(), 2 << 20);
    assert_sense(&t.run(&TUR).0, 0x06, 0x2a, 0x09);
    let (_, d) = t.run(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(&d[..4], [0, 0, 0x0f, 0xff]);
}

#[test]
fn offline_unit_is_not_ready_but_answers_inquiry() {
    let t = TestLun::disk(1 << 20);
    t.lu.set_online(false);
    assert_sense(&t.run(&TUR).0, 0x02, 0x3a, 0x00);
    assert_sense(&t.run(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]).0, 0x02, 0x3a, 0x00);
    assert_good(&t.run(&INQUIRY).0);
    assert_good(&t.run(&[0x1a, 0, 0x3f, 0, 0xff, 0]).0);
    assert!(!t.lu.info().config.online);
}

#[test]
fn garbage_cdbs_never_panic() {
    let t = TestLun::thin(1 << 20);
    let c = TestLun::controller();
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20000 {
        let len = (next() % 18) as usize;
        let mut cdb: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(first) = cdb.first_mut() {
            // Bias towards opcodes we implement.
            let known = [
                0x00, 0x03, 0x08, 0x0a, 0x12, 0x15, 0x1a, 0x25, 0x28, 0x2a, 0x2f, 0x41, 0x42, 0x55, 0x5a, 0x88, 0x9e,
                0xa0, 0xa3,
            ];
            if next() % 4 != 0 {
                *first = known[(next() % known.len() as u64) as usize];
            }
        }
        let data_out: Vec<u8> = (0..(next() % 600) as usize).map(|_| next() as u8).collect();
        let _ = t.run_out(&cdb, &data_out);
        let _ = c.run_out(&cdb, &data_out);
    }
}

#[test]
fn descriptor_sense_from_config_and_unknown_service_action() {
    let t = TestLun::with_config(1 << 20, |c| c.descriptor_sense = true);
    let (r, _) = t.run(&[0x28, 0, 0, 0, 0x08, 0x00, 0, 0, 1, 0]);
    assert_eq!(r.sense.as_deref(), Some(&[0x72, 0x05, 0x21, 0x00, 0, 0, 0, 0][..]));
    // SERVICE ACTION IN(16) with an unknown service action: INVALID FIELD IN CDB at byte 1.
    let (r, _) = t.run(&[0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]);
    assert_eq!(
        r.sense.as_deref(),
        Some(&[0x72, 0x05, 0x24, 0x00, 0, 0, 0, 0x08, 0x02, 0x06, 0x00, 0x00, 0xcc, 0x00, 0x01, 0x00][..])
    );
    // Unknown opcode.
    let (r, _) = t.run(&[0xc0, 0, 0, 0, 0, 0]);
    assert_eq!(r.sense.as_deref(), Some(&[0x72, 0x05, 0x20, 0x00, 0, 0, 0, 0][..]));
    // Empty and truncated CDBs.
    let (r, _) = t.run(&[]);
    assert_eq!(r.status, ScsiStatus::CheckCondition);
    let (r, _) = t.run(&[0x28, 0, 0, 0]);
    assert_eq!(r.sense.as_deref().map(|s| (s[1], s[2])), Some((0x05, 0x24)));
    assert!(block_on(t.lu.flush()).is_ok());
}

#[test]
fn deleting_a_unit_ends_the_commands_waiting_on_its_store() {
    let rule = rtgt_backstore::FaultRule::parse("read:delay=5s").unwrap();
    let inner = Backstore::Memory(MemoryStore::new(1 << 20));
    let store = Backstore::Faulty(Box::new(rtgt_backstore::FaultStore::new(inner, vec![rule], 512)));
    let t = TestLun::with_store(LunConfig::disk(1, 2), Some(store), 2);
    let other = t.target.clone();
    t.target.add_lun(1, disk(1 << 20, 1)).unwrap();
    t.clear_ua(&t.nexus);
    let (target, nexus) = (t.target.clone(), t.nexus.clone());
    let started = std::time::Instant::now();
    let waiting = std::thread::spawn(move || {
        let mut d = Vec::new();
        block_on(target.execute(&nexus, 2, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[], &mut d))
    });
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert!(!waiting.is_finished());
    other.remove_lun(2).unwrap();
    let r = waiting.join().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    assert_sense(&r, 0x05, 0x25, 0x00);
    // The next command finds no unit; the other unit is untouched (after its inventory change UA).
    assert_sense(&exec(&t.target, &t.nexus, 2, &TUR).0, 0x05, 0x25, 0x00);
    assert_sense(&exec(&t.target, &t.nexus, 1, &TUR).0, 0x06, 0x3f, 0x0e);
    assert_good(&exec(&t.target, &t.nexus, 1, &TUR).0);
}
