//! EXTENDED COPY and RECEIVE COPY RESULTS against units on memory stores.

use crate::test_util::*;
use crate::{LogicalUnit, LunConfig, Target};
use rtgt_backstore::{Backstore, MemoryStore};
use std::sync::Arc;

/// Parameter list: header, one identification descriptor per NAA, then block-to-block segments
/// (source index, destination index, blocks, source LBA, destination LBA).
fn xcopy_list(list_id: u8, naas: &[u64], segments: &[(u16, u16, u16, u64, u64)]) -> Vec<u8> {
    let ids: Vec<(u8, Vec<u8>)> = naas.iter().map(|naa| (3, naa.to_be_bytes().to_vec())).collect();
    xcopy_list_by(list_id, &ids, segments)
}

/// The same with designators of any type: (designator type, designator).
fn xcopy_list_by(list_id: u8, ids: &[(u8, Vec<u8>)], segments: &[(u16, u16, u16, u64, u64)]) -> Vec<u8> {
    let mut l = vec![0u8; 16];
    l[0] = list_id;
    l[2..4].copy_from_slice(&((ids.len() * 32) as u16).to_be_bytes());
    l[8..12].copy_from_slice(&((segments.len() * 28) as u32).to_be_bytes());
    for (designator_type, designator) in ids {
        let mut d = [0u8; 32];
        d[0] = 0xe4;
        d[4] = 0x01;
        d[5] = *designator_type;
        d[7] = designator.len() as u8;
        d[8..8 + designator.len()].copy_from_slice(designator);
        d[30] = 0x02; // block length 512
        l.extend_from_slice(&d);
    }
    for &(src, dst, blocks, src_lba, dst_lba) in segments {
        let mut d = [0u8; 28];
        d[0] = 0x02;
        d[3] = 0x18;
        d[4..6].copy_from_slice(&src.to_be_bytes());
        d[6..8].copy_from_slice(&dst.to_be_bytes());
        d[10..12].copy_from_slice(&blocks.to_be_bytes());
        d[12..20].copy_from_slice(&src_lba.to_be_bytes());
        d[20..28].copy_from_slice(&dst_lba.to_be_bytes());
        l.extend_from_slice(&d);
    }
    l
}

fn xcopy_cdb(len: usize) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x83;
    c[10..14].copy_from_slice(&(len as u32).to_be_bytes());
    c
}

fn rcr_cdb(sa: u8, list_id: u8) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x84;
    c[1] = sa;
    c[2] = list_id;
    c[10..14].copy_from_slice(&1024u32.to_be_bytes());
    c
}

fn memory_disk(tid: u32, lun: u64) -> Arc<LogicalUnit> {
    Arc::new(LogicalUnit::new(LunConfig::disk(tid, lun), Some(Backstore::Memory(MemoryStore::new(1 << 20)))))
}

/// Target 1 with disks at LUN 1 (`t` drives it) and LUN 2, and beside it target 2 with a disk
/// at LUN 1 that target 1's initiator cannot address.
struct Disks {
    t: TestLun,
    lun2: Arc<LogicalUnit>,
    other: Arc<Target>,
    foreign: Arc<LogicalUnit>,
}

fn disks() -> Disks {
    let target = Target::new(1, "iqn.2024-01.test:a".into());
    let lu = memory_disk(1, 1);
    target.add_lun(1, lu.clone()).unwrap();
    let lun2 = memory_disk(1, 2);
    target.add_lun(2, lun2.clone()).unwrap();
    let other = Target::new(2, "iqn.2024-01.test:b".into());
    let foreign = memory_disk(2, 1);
    other.add_lun(1, foreign.clone()).unwrap();
    let nexus = target.add_nexus("iqn.2024-01.test:i".into());
    let t = TestLun { target, nexus, lu, lun: 1 };
    t.clear_ua(&t.nexus);
    Disks { t, lun2, other, foreign }
}

fn read_store(lu: &LogicalUnit, lba: u64, len: usize) -> Vec<u8> {
    let mut back = vec![0u8; len];
    block_on(rtgt_backstore::BlockStore::read_at(lu.store().unwrap(), lba * 512, &mut back)).unwrap();
    back
}

fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len as u32).map(|i| ((i + seed) % 251) as u8 | 1).collect()
}

#[test]
fn copies_between_units_of_one_target_and_reports_status() {
    let Disks { t, lun2, .. } = disks();
    let data = data(2048, 0);
    assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 4, 0, 0, 4, 0], &data).0);
    let mut list = xcopy_list(7, &[t.lu.naa(), lun2.naa()], &[(0, 1, 4, 4, 100)]);
    // LU ID TYPE is obsolete in SPC-4 and ignored.
    list[16 + 32 + 1] = 0xc0;
    assert_good(&t.run_out(&xcopy_cdb(list.len()), &list).0);
    assert_eq!(read_store(&lun2, 100, 2048), data);
    let (r, d) = t.run(&rcr_cdb(0, 7));
    assert_good(&r);
    assert_eq!(d, [0, 0, 0, 8, 0x01, 0, 1, 0x01, 0, 0, 0, 2]);
    // Another list identifier has no results.
    assert_sense(&t.run(&rcr_cdb(0, 8)).0, 0x05, 0x24, 0x00);
    // The T10 vendor ID designator (the SCSI ID) names the unit too.
    let list = xcopy_list_by(
        8,
        &[(3, t.lu.naa().to_be_bytes().to_vec()), (1, b"IET     00010002".to_vec())],
        &[(0, 1, 4, 4, 200)],
    );
    assert_good(&t.run_out(&xcopy_cdb(list.len()), &list).0);
    assert_eq!(read_store(&lun2, 200, 2048), data);
}

/// A copy names only units its nexus can address: another target's disk, by its NAA or by its
/// predictable default SCSI ID, is unreachable as source and as destination, and neither disk
/// changes (CVE-2020-28374 was this hole in LIO).
#[test]
fn units_of_other_targets_are_unreachable() {
    let Disks { t, other, foreign, .. } = disks();
    let secret = data(2048, 7);
    block_on(rtgt_backstore::BlockStore::write_at(foreign.store().unwrap(), 100 * 512, &secret, false)).unwrap();
    let mine = data(2048, 3);
    assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 4, 0], &mine).0);
    let own = (3, t.lu.naa().to_be_bytes().to_vec());
    for theirs in [(3, foreign.naa().to_be_bytes().to_vec()), (1, b"IET     00020001".to_vec())] {
        let list = xcopy_list_by(1, &[theirs.clone(), own.clone()], &[(0, 1, 4, 100, 200)]);
        assert_sense(&t.run_out(&xcopy_cdb(list.len()), &list).0, 0x0a, 0x0d, 0x02);
        assert_eq!(read_store(&t.lu, 200, 2048), vec![0; 2048], "nothing read from target 2");
        let list = xcopy_list_by(2, &[own.clone(), theirs], &[(0, 1, 4, 0, 100)]);
        assert_sense(&t.run_out(&xcopy_cdb(list.len()), &list).0, 0x0a, 0x0d, 0x02);
        assert_eq!(read_store(&foreign, 100, 2048), secret, "nothing written to target 2");
    }
    let (r, d) = t.run(&rcr_cdb(0, 2));
    assert_good(&r);
    assert_eq!((d[4], d[6]), (0x02, 0), "completed with errors, no segment processed");
    // Target 2's own initiators still copy on target 2.
    let nexus = other.add_nexus("iqn.2024-01.test:j".into());
    let theirs = TestLun { target: other.clone(), nexus, lu: foreign.clone(), lun: 1 };
    theirs.clear_ua(&theirs.nexus);
    let list = xcopy_list(1, &[foreign.naa()], &[(0, 0, 4, 100, 300)]);
    assert_good(&theirs.run_out(&xcopy_cdb(list.len()), &list).0);
    assert_eq!(read_store(&foreign, 300, 2048), secret);
}

/// The lookup is over the target's own units: a designator two of them share names neither, one
/// that another target's unit shares is not ambiguous, and a removed unit is gone.
#[test]
fn designators_name_one_present_unit_of_the_target() {
    let Disks { t, lun2, other, .. } = disks();
    let mine = data(2048, 5);
    assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 4, 0], &mine).0);
    // Target 2 gets a disk with LUN 2's SCSI ID: target 1's copies still find LUN 2.
    let mut config = LunConfig::disk(2, 2);
    config.scsi_id = lun2.config().scsi_id.clone();
    let twin = Arc::new(LogicalUnit::new(config.clone(), Some(Backstore::Memory(MemoryStore::new(1 << 20)))));
    other.add_lun(2, twin.clone()).unwrap();
    let list = xcopy_list(1, &[t.lu.naa(), lun2.naa()], &[(0, 1, 4, 0, 100)]);
    assert_good(&t.run_out(&xcopy_cdb(list.len()), &list).0);
    assert_eq!(read_store(&lun2, 100, 2048), mine);
    assert_eq!(read_store(&twin, 100, 2048), vec![0; 2048]);
    // The same SCSI ID twice in target 1: the copy must not guess.
    let dup = Arc::new(LogicalUnit::new(config, Some(Backstore::Memory(MemoryStore::new(1 << 20)))));
    t.target.add_lun(3, dup.clone()).unwrap();
    t.clear_ua(&t.nexus);
    let list = xcopy_list(2, &[t.lu.naa(), lun2.naa()], &[(0, 1, 4, 0, 200)]);
    assert_sense(&t.run_out(&xcopy_cdb(list.len()), &list).0, 0x0a, 0x0d, 0x02);
    assert_eq!(read_store(&lun2, 200, 2048), vec![0; 2048]);
    assert_eq!(read_store(&dup, 200, 2048), vec![0; 2048]);
    // A removed unit is unreachable.
    t.target.remove_lun(3).unwrap();
    t.target.remove_lun(2).unwrap();
    t.clear_ua(&t.nexus);
    assert_sense(&t.run_out(&xcopy_cdb(list.len()), &list).0, 0x0a, 0x0d, 0x02);
    assert_eq!(read_store(&lun2, 200, 2048), vec![0; 2048]);
}

/// The copy ends with COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE.
#[track_caller]
fn refused(t: &TestLun, list: &[u8]) {
    assert_sense(&t.run_out(&xcopy_cdb(list.len()), list).0, 0x0a, 0x0d, 0x02);
}

/// Reservations another nexus holds apply to a copy's reads and writes as to the copying
/// nexus's own READ and WRITE; the holder copies as it likes.
#[test]
fn reservations_of_other_nexuses_apply_to_copies() {
    let Disks { t, lun2, .. } = disks();
    let mine = data(2048, 9);
    assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 4, 0], &mine).0);
    let nexus = t.target.add_nexus("iqn.2024-01.test:holder".into());
    let holder = TestLun { target: t.target.clone(), nexus, lu: lun2.clone(), lun: 2 };
    holder.clear_ua(&holder.nexus);
    let into_lun2 = |list_id, lba| xcopy_list(list_id, &[t.lu.naa(), lun2.naa()], &[(0, 1, 4, 0, lba)]);
    let out_of_lun2 = |list_id, lba| xcopy_list(list_id, &[lun2.naa(), t.lu.naa()], &[(0, 1, 4, 0, lba)]);
    assert_good(&holder.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 4, 0], &data(2048, 1)).0);

    // RESERVE(6): neither reads nor writes of another nexus pass.
    assert_good(&holder.run(&[0x16, 0, 0, 0, 0, 0]).0);
    refused(&t, &into_lun2(1, 100));
    assert_eq!(read_store(&lun2, 100, 2048), vec![0; 2048]);
    refused(&t, &out_of_lun2(2, 100));
    assert_eq!(read_store(&t.lu, 100, 2048), vec![0; 2048]);
    // The holder's own copy, sent to the reserved unit, goes through.
    let list = into_lun2(3, 100);
    assert_good(&holder.run_out(&xcopy_cdb(list.len()), &list).0);
    assert_eq!(read_store(&lun2, 100, 2048), mine);
    assert_good(&holder.run(&[0x17, 0, 0, 0, 0, 0]).0);

    // Persistent reservations: Write Exclusive lets the copy read but not write, Exclusive
    // Access neither.
    let prout = |sa: u8, pr_type: u8| [0x5f, sa, pr_type, 0, 0, 0, 0, 0, 24, 0];
    let mut register = [0u8; 24];
    register[8..16].copy_from_slice(&0xabcdu64.to_be_bytes());
    assert_good(&holder.run_out(&prout(0x00, 0), &register).0);
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&0xabcdu64.to_be_bytes());
    assert_good(&holder.run_out(&prout(0x01, 0x01), &key).0);
    refused(&t, &into_lun2(4, 200));
    assert_eq!(read_store(&lun2, 200, 2048), vec![0; 2048]);
    let list = out_of_lun2(5, 200);
    assert_good(&t.run_out(&xcopy_cdb(list.len()), &list).0);
    assert_eq!(read_store(&t.lu, 200, 2048), data(2048, 1));
    assert_good(&holder.run_out(&prout(0x02, 0x01), &key).0); // RELEASE
    t.clear_ua(&t.nexus);
    assert_good(&holder.run_out(&prout(0x01, 0x03), &key).0);
    refused(&t, &into_lun2(6, 300));
    assert_eq!(read_store(&lun2, 300, 2048), vec![0; 2048]);
    refused(&t, &out_of_lun2(7, 300));
    assert_eq!(read_store(&t.lu, 300, 2048), vec![0; 2048]);
    let list = into_lun2(8, 300);
    assert_good(&holder.run_out(&xcopy_cdb(list.len()), &list).0);
    assert_eq!(read_store(&lun2, 300, 2048), mine);
}

#[test]
fn descriptor_errors() {
    let Disks { t, lun2: dst, .. } = disks();
    let naa = t.lu.naa();
    // Zero length: nothing to do.
    assert_good(&t.run(&xcopy_cdb(0)).0);
    // Truncated list.
    let list = xcopy_list(1, &[naa], &[(0, 0, 1, 0, 8)]);
    assert_sense(&t.run_out(&xcopy_cdb(list.len() - 1), &list).0, 0x05, 0x1a, 0x00);
    // Too many target descriptors.
    let many = xcopy_list(1, &[naa; 9], &[(0, 0, 1, 0, 8)]);
    assert_sense(&t.run_out(&xcopy_cdb(many.len()), &many).0, 0x05, 0x26, 0x06);
    // Unsupported target descriptor type.
    let mut bad = list.clone();
    bad[16] = 0xe0;
    assert_sense(&t.run_out(&xcopy_cdb(bad.len()), &bad).0, 0x05, 0x26, 0x07);
    // Unsupported segment type.
    let mut bad = list.clone();
    bad[48] = 0x03;
    assert_sense(&t.run_out(&xcopy_cdb(bad.len()), &bad).0, 0x05, 0x26, 0x09);
    // Unknown designator, index past the list, NUL: COPY ABORTED.
    let list = xcopy_list(1, &[0x3000_0000_0000_0001], &[(0, 0, 1, 0, 8)]);
    assert_sense(&t.run_out(&xcopy_cdb(list.len()), &list).0, 0x0a, 0x0d, 0x02);
    let list = xcopy_list(1, &[naa], &[(0, 1, 1, 0, 8)]);
    assert_sense(&t.run_out(&xcopy_cdb(list.len()), &list).0, 0x0a, 0x0d, 0x02);
    let mut nul = xcopy_list(1, &[naa], &[(0, 0, 1, 0, 8)]);
    nul[17] = 0x20;
    assert_sense(&t.run_out(&xcopy_cdb(nul.len()), &nul).0, 0x0a, 0x0d, 0x02);
    // Beyond the destination's end.
    let list = xcopy_list(1, &[naa, dst.naa()], &[(0, 1, 2, 0, 2047)]);
    assert_sense(&t.run_out(&xcopy_cdb(list.len()), &list).0, 0x0a, 0x00, 0x00);
    let (r, d) = t.run(&rcr_cdb(0, 1));
    assert_good(&r);
    assert_eq!(d[4], 0x02, "completed with errors");
    let (r, d) = t.run(&rcr_cdb(4, 1));
    assert_good(&r);
    assert_eq!(d[56], 0x02);
}

#[test]
fn operating_parameters_and_vpd() {
    let t = TestLun::disk(1 << 20);
    let (r, d) = t.run(&rcr_cdb(3, 0));
    assert_good(&r);
    assert_eq!(u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize + 4, d.len());
    assert_eq!(&d[8..10], &8u16.to_be_bytes());
    assert_eq!(&d[10..12], &64u16.to_be_bytes(), "MAXIMUM SEGMENT DESCRIPTOR COUNT");
    // MAXIMUM DESCRIPTOR LIST LENGTH holds 8 CSCD and 64 segment descriptors of the longest type.
    assert_eq!(&d[12..16], &(8u32 * 32 + 64 * 32).to_be_bytes());
    assert_eq!(&d[16..20], &(64u32 << 20).to_be_bytes(), "MAXIMUM SEGMENT LENGTH");
    // IMPLEMENTED DESCRIPTOR LIST: block to block, block to block with offsets, identification.
    assert_eq!(&d[43..47], &[3, 0x02, 0x0a, 0xe4]);
    let (r, d) = t.run(&[0x12, 0x01, 0x8f, 0x04, 0x00, 0]);
    assert_good(&r);
    assert_eq!(d[1], 0x8f);
    assert_eq!(&d[4..6], &[0, 1], "supported commands first");
    assert_eq!(usize::from(u16::from_be_bytes([d[2], d[3]])) + 4, d.len());
    // The Supported Descriptors descriptor (0004h) lists the same descriptor types.
    let mut at = 4;
    let mut supported = None;
    while at + 4 <= d.len() {
        let len = usize::from(u16::from_be_bytes([d[at + 2], d[at + 3]]));
        if d[at..at + 2] == [0, 4] {
            supported = Some(d[at + 4..at + 4 + len].to_vec());
        }
        at += 4 + len;
    }
    assert_eq!(supported.as_deref(), Some(&[3, 0x02, 0x0a, 0xe4][..]));
}

#[path = "xcopy_offset_tests.rs"]
mod offset;
