//! EXTENDED COPY and RECEIVE COPY RESULTS against units on memory stores.

use crate::test_util::*;
use crate::{LogicalUnit, LunConfig, LunDirectory, Target};
use rtgt_backstore::{Backstore, MemoryStore};
use std::sync::Arc;

/// Parameter list: header, one identification descriptor per NAA, then block-to-block segments
/// (source index, destination index, blocks, source LBA, destination LBA).
fn xcopy_list(list_id: u8, naas: &[u64], segments: &[(u16, u16, u16, u64, u64)]) -> Vec<u8> {
    let mut l = vec![0u8; 16];
    l[0] = list_id;
    l[2..4].copy_from_slice(&((naas.len() * 32) as u16).to_be_bytes());
    l[8..12].copy_from_slice(&((segments.len() * 28) as u32).to_be_bytes());
    for naa in naas {
        let mut d = [0u8; 32];
        d[0] = 0xe4;
        d[4] = 0x01;
        d[5] = 0x03;
        d[7] = 8;
        d[8..16].copy_from_slice(&naa.to_be_bytes());
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

/// Two targets sharing a private directory, a disk on each; `t` drives the first.
fn two_disks() -> (TestLun, Arc<LogicalUnit>) {
    let dir = LunDirectory::new();
    let target = Target::with_directory(1, "iqn.2024-01.test:a".into(), dir.clone());
    let lu = Arc::new(LogicalUnit::new(LunConfig::disk(1, 1), Some(Backstore::Memory(MemoryStore::new(1 << 20)))));
    target.add_lun(1, lu.clone()).unwrap();
    let other = Target::with_directory(2, "iqn.2024-01.test:b".into(), dir);
    let dst = Arc::new(LogicalUnit::new(LunConfig::disk(2, 1), Some(Backstore::Memory(MemoryStore::new(1 << 20)))));
    other.add_lun(1, dst.clone()).unwrap();
    let nexus = target.add_nexus("iqn.2024-01.test:i".into());
    let t = TestLun { target, nexus, lu, lun: 1 };
    t.clear_ua(&t.nexus);
    (t, dst)
}

#[test]
fn copies_between_targets_and_reports_status() {
    let (t, dst) = two_disks();
    let data: Vec<u8> = (0..2048u32).map(|i| (i % 251) as u8).collect();
    assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 4, 0, 0, 4, 0], &data).0);
    let mut list = xcopy_list(7, &[t.lu.naa(), dst.naa()], &[(0, 1, 4, 4, 100)]);
    // LU ID TYPE is obsolete in SPC-4 and ignored.
    list[16 + 32 + 1] = 0xc0;
    assert_good(&t.run_out(&xcopy_cdb(list.len()), &list).0);
    let mut back = vec![0u8; 2048];
    block_on(rtgt_backstore::BlockStore::read_at(dst.store().unwrap(), 100 * 512, &mut back)).unwrap();
    assert_eq!(back, data);
    let (r, d) = t.run(&rcr_cdb(0, 7));
    assert_good(&r);
    assert_eq!(d, [0, 0, 0, 8, 0x01, 0, 1, 0x01, 0, 0, 0, 2]);
    // Another list identifier has no results.
    assert_sense(&t.run(&rcr_cdb(0, 8)).0, 0x05, 0x24, 0x00);
}

#[test]
fn descriptor_errors() {
    let (t, dst) = two_disks();
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
    assert_eq!(&d[44..46], &[0x02, 0xe4]);
    let (r, d) = t.run(&[0x12, 0x01, 0x8f, 0x04, 0x00, 0]);
    assert_good(&r);
    assert_eq!(d[1], 0x8f);
    assert_eq!(&d[4..6], &[0, 1], "supported commands first");
    assert_eq!(usize::from(u16::from_be_bytes([d[2], d[3]])) + 4, d.len());
}
