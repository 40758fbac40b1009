//! EXTENDED COPY as a way around access control (the class of CVE-2020-28374): a copy names its
//! source and destination by designator, and an initiator must not reach through it a unit it
//! could not address itself. Target 1 admits initiators A and C, target 2 only B; A asks target
//! 1's copy manager to copy from and to target 2's disk, named by its default T10 vendor ID
//! designator and by the NAA designator B reads from the Device Identification page. Both are
//! refused and neither disk changes. Within target 1 copies work, and a persistent reservation C
//! holds on a unit applies to A's copies from and to it as to A's own READ and WRITE.
//! Copies are not limited to small ones: the largest segment rtgt advertises (64 MiB) moves
//! in one command, with byte offsets, and arrives intact.

use crate::common::initiator::{Connection, ScsiOutcome};
use crate::common::Tgtd;
use crate::hostile::wire::pattern;

const A: &str = "iqn.2024-01.test:xcopy-initiator-a";
const B: &str = "iqn.2024-01.test:xcopy-initiator-b";
const C: &str = "iqn.2024-01.test:xcopy-initiator-c";
const TARGET_1: &str = "iqn.2024-01.test:xcopy-target-1";
const TARGET_2: &str = "iqn.2024-01.test:xcopy-target-2";
const BLOCK: usize = 512;
/// The blocks each copy moves.
const BLOCKS: u16 = 8;
/// COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE (SPC-4 6.4.3.5 and table 49).
const NOT_REACHABLE: (u8, u8, u8) = (0x0a, 0x0d, 0x02);

/// A target with memory-backed disks on `luns` that admits only the initiators named.
fn target(tgtd: &Tgtd, tid: u32, iqn: &str, luns: &[u64], allowed: &[&str]) {
    sized_target(tgtd, tid, iqn, luns, "1M", allowed);
}

/// The same with disks of `size` (a memory store's `size=`).
fn sized_target(tgtd: &Tgtd, tid: u32, iqn: &str, luns: &[u64], size: &str, allowed: &[&str]) {
    tgtd.new_target(tid, iqn);
    for &lun in luns {
        tgtd.add_lun_ok(tid, lun, &["--bstype", "memory", "--bsopts", &format!("size={size}")]);
    }
    for name in allowed {
        tgtd.bind(tid, "--initiator-name", name);
    }
}

/// A session of `initiator` to `iqn` with the power-on unit attentions of `luns` consumed.
fn session(tgtd: &Tgtd, initiator: &str, iqn: &str, luns: &[u64]) -> Connection {
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(initiator, Some(iqn), &[]).unwrap_or_else(|e| panic!("{initiator} logs in to {iqn}: {e}"));
    for &lun in luns {
        while conn.scsi(lun, &[0; 6], &[], 0).unwrap().status != 0 {}
    }
    conn
}

/// The (designator type, designator) pairs of the logical unit's Device Identification page.
fn designators(conn: &mut Connection, lun: u64) -> Vec<(u8, Vec<u8>)> {
    let r = conn.scsi(lun, &[0x12, 0x01, 0x83, 0x01, 0x00, 0], &[], 256).unwrap();
    assert_eq!(r.status, 0, "INQUIRY VPD 83h");
    let page = &r.data_in;
    let end = (4 + usize::from(u16::from_be_bytes([page[2], page[3]]))).min(page.len());
    let mut found = Vec::new();
    let mut at = 4;
    while at + 4 <= end {
        let len = usize::from(page[at + 3]);
        let association = (page[at + 1] >> 4) & 0x03;
        if association == 0 && at + 4 + len <= end {
            found.push((page[at + 1] & 0x0f, page[at + 4..at + 4 + len].to_vec()));
        }
        at += 4 + len;
    }
    found
}

fn naa(conn: &mut Connection, lun: u64) -> Vec<u8> {
    designators(conn, lun).into_iter().find(|(t, _)| *t == 3).expect("an NAA designator").1
}

/// An identification CSCD descriptor for a disk of 512-byte blocks.
fn cscd((designator_type, designator): (u8, &[u8])) -> [u8; 32] {
    let mut d = [0u8; 32];
    d[0] = 0xe4;
    d[4] = 0x01; // code set binary (ASCII for T10 vendor ID is accepted alike)
    d[5] = designator_type;
    d[7] = designator.len() as u8;
    d[8..8 + designator.len()].copy_from_slice(designator);
    d[29..32].copy_from_slice(&[0, 0x02, 0x00]); // disk block length 512
    d
}

/// EXTENDED COPY(LID1), list identifier 11h, with identification CSCD descriptors for `src`
/// (index 0) and `dst` (index 1) and these segment descriptors.
fn xcopy_segments(conn: &mut Connection, lun: u64, src: (u8, &[u8]), dst: (u8, &[u8]), segments: &[u8]) -> ScsiOutcome {
    let mut list = vec![0u8; 16];
    list[0] = 0x11;
    list[2..4].copy_from_slice(&64u16.to_be_bytes());
    list[8..12].copy_from_slice(&(segments.len() as u32).to_be_bytes());
    list.extend_from_slice(&cscd(src));
    list.extend_from_slice(&cscd(dst));
    list.extend_from_slice(segments);
    let mut cdb = [0u8; 16];
    cdb[0] = 0x83;
    cdb[10..14].copy_from_slice(&(list.len() as u32).to_be_bytes());
    conn.scsi(lun, &cdb, &list, 0).unwrap()
}

/// EXTENDED COPY(LID1) with one block-to-block segment of `BLOCKS` blocks.
fn xcopy(
    conn: &mut Connection,
    lun: u64,
    src: (u8, &[u8]),
    dst: (u8, &[u8]),
    src_lba: u64,
    dst_lba: u64,
) -> ScsiOutcome {
    let mut seg = [0u8; 28];
    seg[0] = 0x02;
    seg[3] = 0x18;
    seg[4..6].copy_from_slice(&0u16.to_be_bytes());
    seg[6..8].copy_from_slice(&1u16.to_be_bytes());
    seg[10..12].copy_from_slice(&BLOCKS.to_be_bytes());
    seg[12..20].copy_from_slice(&src_lba.to_be_bytes());
    seg[20..28].copy_from_slice(&dst_lba.to_be_bytes());
    xcopy_segments(conn, lun, src, dst, &seg)
}

fn read(conn: &mut Connection, lun: u64, lba: u32) -> Vec<u8> {
    let r = conn.read10(lun, lba, BLOCKS, BLOCK as u32).unwrap();
    assert_eq!(r.status, 0, "READ LUN {lun} LBA {lba}");
    r.data_in
}

fn write(conn: &mut Connection, lun: u64, lba: u32, data: &[u8]) {
    assert_eq!(conn.write10(lun, lba, data, BLOCK as u32).unwrap().status, 0, "WRITE LUN {lun} LBA {lba}");
}

#[test]
fn extended_copy_reaches_only_the_issuing_nexus_own_target() {
    let tgtd = Tgtd::start();
    target(&tgtd, 1, TARGET_1, &[1, 2], &[A, C]);
    target(&tgtd, 2, TARGET_2, &[1], &[B]);
    // The ACL holds: A may not log in to target 2.
    let mut refused = Connection::connect(tgtd.portal()).unwrap();
    assert!(refused.login(A, Some(TARGET_2), &[]).is_err(), "A logs in to target 2");

    let mut b = session(&tgtd, B, TARGET_2, &[1]);
    let secret = pattern(usize::from(BLOCKS) * BLOCK, 0x5a);
    write(&mut b, 1, 100, &secret);
    let mut a = session(&tgtd, A, TARGET_1, &[1, 2]);
    let mine = pattern(usize::from(BLOCKS) * BLOCK, 0x11);
    write(&mut a, 1, 0, &mine);
    let own = naa(&mut a, 1);

    // Target 2's disk by its predictable default SCSI ID and by the NAA designator B can see.
    let t10 = format!("IET     {:04x}{:04x}", 2, 1).into_bytes();
    let naa2 = naa(&mut b, 1);
    assert!(designators(&mut b, 1).contains(&(1, t10.clone())), "the default T10 vendor ID designator");
    for (what, foreign) in [("T10 vendor ID", (1u8, t10.as_slice())), ("NAA", (3u8, naa2.as_slice()))] {
        // Target 2 as the source: its data must not land in A's disk.
        let r = xcopy(&mut a, 1, foreign, (3, &own), 100, 200);
        assert_eq!((r.status, r.sense_code()), (2, NOT_REACHABLE), "a copy from target 2 by {what}");
        assert_ne!(read(&mut a, 1, 200), secret, "target 2's data was copied into target 1 by {what}");
        assert_eq!(read(&mut a, 1, 200), vec![0; secret.len()], "the destination was written by {what}");
        // Target 2 as the destination: its blocks stay as B wrote them.
        let r = xcopy(&mut a, 1, (3, &own), foreign, 0, 100);
        assert_eq!((r.status, r.sense_code()), (2, NOT_REACHABLE), "a copy to target 2 by {what}");
        assert_eq!(read(&mut b, 1, 100), secret, "target 2 was overwritten by {what}");
    }

    // Between the units of its own target the copy works, by either designator.
    let lun2 = naa(&mut a, 2);
    let r = xcopy(&mut a, 1, (3, &own), (3, &lun2), 0, 300);
    assert_eq!(r.status, 0, "a copy within target 1: {:?}", r.sense_code());
    assert_eq!(read(&mut a, 2, 300), mine);
    let t10_lun2 = format!("IET     {:04x}{:04x}", 1, 2).into_bytes();
    let r = xcopy(&mut a, 1, (3, &own), (1, &t10_lun2), 0, 400);
    assert_eq!(r.status, 0, "a copy within target 1 by T10 vendor ID: {:?}", r.sense_code());
    assert_eq!(read(&mut a, 2, 400), mine);

    // C registers and takes an Exclusive Access reservation of LUN 2: A may neither read nor
    // write it, directly or through a copy addressed to LUN 1.
    let mut c = session(&tgtd, C, TARGET_1, &[1, 2]);
    let mut register = [0u8; 24];
    register[8..16].copy_from_slice(&0xc0c0u64.to_be_bytes());
    let prout = |sa: u8, pr_type: u8| [0x5f, sa, pr_type, 0, 0, 0, 0, 0, 24, 0];
    assert_eq!(c.scsi(2, &prout(0x00, 0), &register, 0).unwrap().status, 0, "REGISTER");
    let mut reserve = [0u8; 24];
    reserve[0..8].copy_from_slice(&0xc0c0u64.to_be_bytes());
    assert_eq!(c.scsi(2, &prout(0x01, 0x03), &reserve, 0).unwrap().status, 0, "RESERVE exclusive access");
    assert_eq!(a.read10(2, 300, BLOCKS, BLOCK as u32).unwrap().status, 0x18, "A's own READ conflicts");
    let r = xcopy(&mut a, 1, (3, &own), (3, &lun2), 0, 500);
    assert_eq!(r.status, 2, "a copy into C's reserved unit");
    assert_eq!(r.sense_code().0, 0x0a, "COPY ABORTED");
    let r = xcopy(&mut a, 1, (3, &lun2), (3, &own), 300, 600);
    assert_eq!(r.status, 2, "a copy out of C's reserved unit");
    assert_eq!(r.sense_code().0, 0x0a, "COPY ABORTED");
    assert_eq!(read(&mut c, 2, 500), vec![0; mine.len()], "C's reserved unit was written");
    assert_eq!(read(&mut a, 1, 600), vec![0; mine.len()], "C's reserved unit was read");
    // The holder itself may copy within its reservation.
    let r = xcopy(&mut c, 2, (3, &own), (3, &lun2), 0, 500);
    assert_eq!(r.status, 0, "the holder's copy: {:?}", r.sense_code());
    assert_eq!(read(&mut c, 2, 500), mine);
}

/// The largest segment rtgt advertises (MAXIMUM SEGMENT LENGTH, 64 MiB), as one block device
/// with offset to block device with offset segment (0Ah) between two disks of one target: the
/// source from the start of its block 0, the destination from byte 100 of its block 16, so every
/// destination block is written whole except the first and the last, which keep their other
/// bytes. Both disks are read back through the session and compared.
#[test]
fn a_64_mib_offset_copy_between_two_luns_matches_its_source() {
    const SEGMENT: usize = 64 << 20;
    const PIECE: usize = 1 << 20;
    let tgtd = Tgtd::start();
    sized_target(&tgtd, 1, TARGET_1, &[1, 2], "80M", &[A]);
    let mut a = session(&tgtd, A, TARGET_1, &[1, 2]);
    // Each block carries its number, so a copy shifted by whole blocks shows.
    let mut source = pattern(SEGMENT, 0x3c);
    for (n, block) in source.chunks_mut(BLOCK).enumerate() {
        block[..8].copy_from_slice(&(n as u64).to_be_bytes());
    }
    let per_piece = (PIECE / BLOCK) as u32;
    for (i, piece) in source.chunks(PIECE).enumerate() {
        write(&mut a, 1, i as u32 * per_piece, piece);
    }
    let background = pattern(BLOCK, 0x77);
    write(&mut a, 2, 16, &background);
    write(&mut a, 2, 16 + (SEGMENT / BLOCK) as u32, &background);

    let (src, dst) = (naa(&mut a, 1), naa(&mut a, 2));
    let mut seg = [0u8; 32];
    seg[0] = 0x0a;
    seg[3] = 0x1c;
    seg[6..8].copy_from_slice(&1u16.to_be_bytes());
    seg[8..12].copy_from_slice(&(SEGMENT as u32).to_be_bytes());
    seg[20..28].copy_from_slice(&16u64.to_be_bytes());
    seg[30..32].copy_from_slice(&100u16.to_be_bytes());
    let r = xcopy_segments(&mut a, 1, (3, &src), (3, &dst), &seg);
    assert_eq!(r.status, 0, "the 64 MiB copy: {:?}", r.sense_code());
    // RECEIVE COPY RESULTS (COPY STATUS): completed, one segment, 65536 KiB.
    let r = a.scsi(1, &[0x84, 0, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], &[], 4096).unwrap();
    assert_eq!(r.status, 0, "RECEIVE COPY RESULTS");
    assert_eq!(&r.data_in[4..12], &[0x01, 0, 1, 0x01, 0, 1, 0, 0]);

    let read_all = |conn: &mut Connection, lun: u64, first: u32, len: usize| {
        let mut all = Vec::with_capacity(len);
        for at in (0..len).step_by(PIECE) {
            let blocks = ((len - at).min(PIECE) / BLOCK) as u16;
            let r = conn.read10(lun, first + (at / BLOCK) as u32, blocks, BLOCK as u32).unwrap();
            assert_eq!(r.status, 0, "READ LUN {lun} at byte {at}");
            all.extend_from_slice(&r.data_in);
        }
        all
    };
    assert!(read_all(&mut a, 1, 0, SEGMENT) == source, "the source changed");
    let copied = read_all(&mut a, 2, 16, SEGMENT + BLOCK);
    assert_eq!(&copied[..100], &background[..100], "the first block's bytes before the offset");
    assert_eq!(&copied[SEGMENT + 100..], &background[100..], "the last block's bytes after the copy");
    let first_bad = copied[100..SEGMENT + 100].iter().zip(&source).position(|(a, b)| a != b);
    assert_eq!(first_bad, None, "the copy differs from its source at this byte");
}
