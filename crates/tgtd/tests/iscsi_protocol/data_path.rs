//! Data written through one session reads back through another and equals the backing file's bytes;
//! writes large enough to need R2T and Data-Out, and reads split over several Data-In PDUs.

use crate::common;

use common::initiator::Connection;
use common::{sparse_image, Tgtd};

const IQN: &str = "iqn.2026-11.org.rtgt.test:data";
const INITIATOR: &str = "iqn.2026-11.org.rtgt.test:initiator";

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_be_bytes()[i % 4] ^ seed).collect()
}

#[test]
fn writes_through_one_session_read_back_through_another_and_land_in_the_file() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "data.img", 16 << 20);
    tgtd.add_disk_target(1, IQN, &image);

    let mut writer = Connection::connect(tgtd.portal()).unwrap();
    writer.login(INITIATOR, Some(IQN), &[]).expect("login");
    // Clear the power-on unit attention.
    let _ = writer.scsi(1, &[0; 6], &[], 0).unwrap();

    // 1 MiB at LBA 2048: immediate data up to FirstBurstLength, the rest through R2Ts.
    let big = pattern(1 << 20, 0x5a);
    let out = writer.write10(1, 2048, &big, 512).unwrap();
    assert_eq!(out.status, 0, "WRITE(10) failed: sense {:02x?}", out.sense);
    // A small write at the very last block.
    let last_lba = (16u32 << 20) / 512 - 1;
    let small = pattern(512, 0xa5);
    let out = writer.write10(1, last_lba, &small, 512).unwrap();
    assert_eq!(out.status, 0);
    // SYNCHRONIZE CACHE(10) before checking the file.
    let out = writer.scsi(1, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).unwrap();
    assert_eq!(out.status, 0);

    let mut reader = Connection::connect(tgtd.portal()).unwrap();
    reader.isid = [0x80, 0, 0, 0x65, 0x43, 0x21];
    reader.login(INITIATOR, Some(IQN), &[]).expect("second login");
    let _ = reader.scsi(1, &[0; 6], &[], 0).unwrap();
    let back = reader.read10(1, 2048, (big.len() / 512) as u16, 512).unwrap();
    assert_eq!(back.status, 0);
    assert_eq!(back.residual, (false, false, 0));
    assert!(back.data_in == big, "data read through the second session differs");
    let back = reader.read10(1, last_lba, 1, 512).unwrap();
    assert_eq!(back.data_in, small);

    let file = std::fs::read(&image).unwrap();
    assert!(file[2048 * 512..2048 * 512 + big.len()] == big[..], "backing file differs from what was written");
    assert_eq!(&file[file.len() - 512..], &small[..]);

    assert_eq!(writer.logout().unwrap().opcode(), common::initiator::OP_LOGOUT_RSP);
    assert_eq!(reader.logout().unwrap().opcode(), common::initiator::OP_LOGOUT_RSP);
}

#[test]
fn reading_past_the_end_is_refused_with_lba_out_of_range() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "edge.img", 1 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(INITIATOR, Some(IQN), &[]).expect("login");
    let _ = conn.scsi(1, &[0; 6], &[], 0).unwrap();
    let blocks = (1u32 << 20) / 512;
    let out = conn.read10(1, blocks - 1, 2, 512).unwrap();
    assert_eq!(out.status, 0x02, "CHECK CONDITION expected");
    // Fixed format: key ILLEGAL REQUEST (5), ASC/ASCQ 0x21/0x00.
    assert_eq!(out.sense[0] & 0x7f, 0x70);
    assert_eq!(out.sense[2] & 0x0f, 0x05);
    assert_eq!((out.sense[12], out.sense[13]), (0x21, 0x00));
}

#[test]
fn many_sessions_at_once_each_see_their_own_data() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "multi.img", 8 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let port = tgtd.portal();
    let workers: Vec<_> = (0..8u8)
        .map(|n| {
            std::thread::spawn(move || {
                let mut conn = Connection::connect(port).unwrap();
                conn.isid = [0x80, 0, 0, 0, 1, n];
                conn.login(INITIATOR, Some(IQN), &[]).expect("login");
                let _ = conn.scsi(1, &[0; 6], &[], 0).unwrap();
                let data = pattern(64 << 10, n);
                let lba = n as u32 * 256;
                for _ in 0..10 {
                    assert_eq!(conn.write10(1, lba, &data, 512).unwrap().status, 0);
                    let back = conn.read10(1, lba, 128, 512).unwrap();
                    assert_eq!(back.status, 0);
                    assert!(back.data_in == data, "session {n} read back other data");
                }
                conn.logout().unwrap();
            })
        })
        .collect();
    for w in workers {
        w.join().expect("session thread");
    }
}

/// Issue 14: a WRITE whose Expected Data Transfer Length ends inside a logical block is refused
/// with CHECK CONDITION, ILLEGAL REQUEST, INVALID FIELD IN INFORMATION UNIT and writes nothing (it
/// used to answer GOOD with nothing written); writes whose data ends on a block boundary, or goes
/// past the CDB's length, are processed as before, with the residual reported either way.
#[test]
fn a_write_whose_edtl_ends_inside_a_block_is_refused_and_writes_nothing() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "partial.img", 1 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(INITIATOR, Some(IQN), &[]).expect("login");
    let _ = conn.scsi(1, &[0; 6], &[], 0).unwrap();
    let write10 = |blocks: u8| [0x2a, 0, 0, 0, 0, 0, 0, 0, blocks, 0];
    let before = pattern(1024, 0x11);
    assert_eq!(conn.write10(1, 0, &before, 512).unwrap().status, 0);
    let read_back = |conn: &mut Connection| conn.read10(1, 0, 2, 512).unwrap().data_in;

    // TRANSFER LENGTH 1 with EDTL 200 and the 200 bytes; and 2 blocks with 700 bytes.
    for (blocks, sent, overflow) in [(1u8, 200usize, 312u32), (2, 700, 324)] {
        let out = conn.scsi(1, &write10(blocks), &vec![0xee; sent], 0).unwrap();
        assert_eq!(out.status, 0x02, "CHECK CONDITION expected for {sent} bytes");
        assert_eq!(out.sense_code(), (0x05, 0x0e, 0x03), "INVALID FIELD IN INFORMATION UNIT");
        assert_eq!(out.residual, (true, false, overflow), "residual overflow still reported");
        assert_eq!(read_back(&mut conn), before, "{sent} bytes of a {blocks}-block write changed the medium");
    }

    // EDTL 0: nothing to write, GOOD with the whole transfer as overflow, the medium unchanged.
    let out = conn.scsi(1, &write10(1), &[], 0).unwrap();
    assert_eq!((out.status, out.residual), (0, (true, false, 512)));
    assert_eq!(read_back(&mut conn), before);
    // EDTL of one block for a two-block CDB: that block is written, overflow 512.
    let out = conn.scsi(1, &write10(2), &[0x22; 512], 0).unwrap();
    assert_eq!((out.status, out.residual), (0, (true, false, 512)));
    let back = read_back(&mut conn);
    assert!(back[..512].iter().all(|&b| b == 0x22) && back[512..] == before[512..]);
    // EDTL of two blocks, or 10000 bytes, for a one-block CDB: the block is written, underflow.
    for (sent, seed) in [(1024usize, 0x33u8), (10000, 0x44)] {
        let out = conn.scsi(1, &write10(1), &vec![seed; sent], 0).unwrap();
        assert_eq!((out.status, out.residual), (0, (false, true, sent as u32 - 512)), "EDTL {sent}");
        let back = read_back(&mut conn);
        assert!(back[..512].iter().all(|&b| b == seed) && back[512..] == before[512..], "EDTL {sent}");
    }
    conn.logout().unwrap();
}

/// Without immediate data each write's data comes in Data-Out after an R2T. A transfer that fits in
/// one Data-Out PDU is taken as it came off the socket (no copy into a buffer of its own); one that
/// spans several PDUs is gathered. Both must land intact, next to each other, whatever the order.
#[test]
fn writes_whose_data_comes_in_one_data_out_or_several_land_intact() {
    let tgtd = Tgtd::start();
    let image = sparse_image(tgtd.dir.path(), "dataout.img", 16 << 20);
    tgtd.add_disk_target(1, IQN, &image);

    let mut c = Connection::connect(tgtd.portal()).unwrap();
    let keys = [("ImmediateData", "No"), ("MaxBurstLength", "16384"), ("FirstBurstLength", "16384")];
    c.login(INITIATOR, Some(IQN), &keys).expect("login");
    let _ = c.scsi(1, &[0; 6], &[], 0).unwrap();
    // 4 KiB: one R2T answered by one Data-Out PDU; 64 KiB: four R2Ts of MaxBurstLength each.
    let one = pattern(4096, 0x11);
    let several = pattern(64 << 10, 0x22);
    let after = pattern(4096, 0x33);
    for (lba, data) in [(100u32, &one), (108, &several), (236, &after)] {
        let out = c.write10(1, lba, data, 512).unwrap();
        assert_eq!(out.status, 0, "WRITE(10) at {lba} failed: sense {:02x?}", out.sense);
    }
    let mut want = one.clone();
    want.extend_from_slice(&several);
    want.extend_from_slice(&after);
    let back = c.read10(1, 100, (want.len() / 512) as u16, 512).unwrap();
    assert_eq!(back.status, 0);
    let first_diff = back.data_in.iter().zip(&want).position(|(a, b)| a != b);
    assert!(
        back.data_in == want,
        "data read back differs from what was written: lengths {} {}, first difference at {first_diff:?}",
        back.data_in.len(),
        want.len()
    );
    let out = c.scsi(1, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).unwrap();
    assert_eq!(out.status, 0);
    let file = std::fs::read(&image).unwrap();
    assert!(file[100 * 512..100 * 512 + want.len()] == want[..], "backing file differs from what was written");
}
