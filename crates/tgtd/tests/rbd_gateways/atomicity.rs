//! Atomic and provisioning commands across gateways. COMPARE AND WRITE through both gateways at
//! once, as counters incremented by two initiators, loses no increment and gives none twice
//! (the non-owner forwards it, the owner compares and writes under one lock); both gateways
//! advertise the same nonzero MAXIMUM COMPARE AND WRITE LENGTH. WRITE SAME(16) and UNMAP through
//! the non-owner are what the owner then reads: the pattern, and zeros where LBPRZ says so.

use super::{session, vpd, wait_for_forwarding, TwoGateways};
use crate::common::initiator::Connection;
use crate::pattern;
use std::time::{Duration, Instant};

const I1: &str = "iqn.2026-11.org.rtgt.test:caw-one";
const I2: &str = "iqn.2026-11.org.rtgt.test:caw-two";

/// The counter's block: the count, then bytes derived from it, so a torn or stale block cannot
/// pass for a count.
fn counter_block(count: u64) -> Vec<u8> {
    let mut block = vec![0u8; 512];
    block[..8].copy_from_slice(&count.to_be_bytes());
    let mut x = count.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in &mut block[8..] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    block
}

fn count_of(block: &[u8]) -> u64 {
    let count = u64::from_be_bytes(block[..8].try_into().unwrap());
    assert!(block == counter_block(count), "the counter block is torn: {:x?}", &block[..16]);
    count
}

const COUNTER_LBA: u64 = 4100;

/// COMPARE AND WRITE of one block at `lba`: (status, sense key/ASC/ASCQ).
fn compare_and_write(c: &mut Connection, lba: u64, compare: &[u8], write: &[u8]) -> (u8, (u8, u8, u8)) {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x89;
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[13] = 1;
    let out = c.scsi(1, &cdb, &[compare, write].concat(), 0).unwrap();
    (out.status, out.sense_code())
}

const MISCOMPARE: (u8, u8, u8) = (0x0e, 0x1d, 0x00);

/// Increment the counter by COMPARE AND WRITE until `until`: the counts this initiator's GOOD
/// COMPARE AND WRITEs wrote, and how many miscompared.
fn increment(mut c: Connection, until: Instant, most: usize) -> (Vec<u64>, u32) {
    let (mut wrote, mut miscompares) = (Vec::new(), 0);
    while Instant::now() < until && wrote.len() < most {
        let out = c.read10(1, COUNTER_LBA as u32, 1, 512).unwrap();
        assert_eq!(out.status, 0, "READ of the counter: {:x?}", out.sense);
        let seen = count_of(&out.data_in);
        match compare_and_write(&mut c, COUNTER_LBA, &counter_block(seen), &counter_block(seen + 1)) {
            (0, _) => wrote.push(seen + 1),
            (0x02, MISCOMPARE) => miscompares += 1,
            other => panic!("COMPARE AND WRITE {seen} -> {}: {other:x?}", seen + 1),
        }
    }
    (wrote, miscompares)
}

#[test]
fn compare_and_write_through_both_gateways_is_atomic() {
    let gw = TwoGateways::start();
    let (mut one, mut two) = gw.sessions(I1, I2);
    wait_for_forwarding(&mut one, &mut two);
    // Block limits: the same MAXIMUM COMPARE AND WRITE LENGTH on both, and not zero (zero would
    // say COMPARE AND WRITE is not supported).
    let (la, lb) = (vpd(&mut one, 0xb0), vpd(&mut two, 0xb0));
    assert_ne!(la[5], 0, "MAXIMUM COMPARE AND WRITE LENGTH");
    assert_eq!(la[5], lb[5], "MAXIMUM COMPARE AND WRITE LENGTH on both gateways");

    assert_eq!(one.write10(1, COUNTER_LBA as u32, &counter_block(0), 512).unwrap().status, 0);
    // A stale compare through the non-owner miscompares, and writes nothing.
    assert_eq!(compare_and_write(&mut two, COUNTER_LBA, &counter_block(7), &counter_block(8)), (0x02, MISCOMPARE));
    let until = Instant::now() + Duration::from_secs(5);
    let through_b = std::thread::spawn(move || increment(two, until, 1500));
    let (mut wrote, miscompares_a) = increment(one, until, 1500);
    let (wrote_b, miscompares_b) = through_b.join().unwrap();
    eprintln!(
        "compare and write: {} GOOD through a ({miscompares_a} miscompares), {} through b ({miscompares_b})",
        wrote.len(),
        wrote_b.len()
    );
    assert!(!wrote.is_empty() && !wrote_b.is_empty(), "both initiators incremented");
    assert!(miscompares_a + miscompares_b > 0, "the two initiators never raced: the test proves nothing");
    // Each GOOD COMPARE AND WRITE wrote its own count: together 1..=n, none twice, none lost.
    let total = (wrote.len() + wrote_b.len()) as u64;
    wrote.extend(wrote_b);
    wrote.sort_unstable();
    assert!(wrote.iter().copied().eq(1..=total), "counts written twice or skipped");
    let mut check = session(gw.b.portal(), I1);
    let out = check.read10(1, COUNTER_LBA as u32, 1, 512).unwrap();
    assert_eq!(count_of(&out.data_in), total, "the counter holds the number of GOOD COMPARE AND WRITEs");
}

/// WRITE SAME(16) of one block over `blocks` at `lba`, with the UNMAP bit if asked; GOOD.
fn write_same16(c: &mut Connection, lba: u64, blocks: u32, block: &[u8], unmap: bool) {
    let mut cdb = [0u8; 16];
    cdb[0] = 0x93;
    cdb[1] = if unmap { 0x08 } else { 0 };
    cdb[2..10].copy_from_slice(&lba.to_be_bytes());
    cdb[10..14].copy_from_slice(&blocks.to_be_bytes());
    let out = c.scsi(1, &cdb, block, 0).unwrap();
    assert_eq!(out.status, 0, "WRITE SAME(16) at {lba}: {:x?}", out.sense);
}

/// UNMAP of one range; GOOD.
fn unmap(c: &mut Connection, lba: u64, blocks: u32) {
    let mut list = vec![0, 22, 0, 16, 0, 0, 0, 0];
    list.extend_from_slice(&lba.to_be_bytes());
    list.extend_from_slice(&blocks.to_be_bytes());
    list.extend_from_slice(&[0; 4]);
    let out = c.scsi(1, &[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], &list, 0).unwrap();
    assert_eq!(out.status, 0, "UNMAP at {lba}: {:x?}", out.sense);
}

/// `blocks` read at `lba` in pieces of at most 1024 blocks.
fn read_range(c: &mut Connection, lba: u64, blocks: u32) -> Vec<u8> {
    let mut data = Vec::new();
    let mut at = 0;
    while at < blocks {
        let n = (blocks - at).min(1024);
        let out = c.read10(1, (lba + u64::from(at)) as u32, n as u16, 512).unwrap();
        assert_eq!(out.status, 0, "READ at {}: {:x?}", lba + u64::from(at), out.sense);
        data.extend_from_slice(&out.data_in);
        at += n;
    }
    data
}

/// Whether every block of `data` is `block`.
fn all_blocks(data: &[u8], block: &[u8]) -> bool {
    data.chunks(512).all(|b| b == block)
}

#[test]
fn write_same_and_unmap_through_the_non_owner_are_what_the_owner_reads() {
    let gw = TwoGateways::start();
    let (mut owner, mut other) = gw.sessions(I1, I1);
    wait_for_forwarding(&mut owner, &mut other);
    // Both gateways describe provisioning and block limits alike.
    let (pa, pb) = (vpd(&mut owner, 0xb2), vpd(&mut other, 0xb2));
    assert_eq!(pa, pb, "logical block provisioning VPD on both gateways");
    // An RBD LUN is thin and promises zeros from unmapped blocks (librbd's write-zeroes behind
    // UNMAP, which also zeroes the pieces of partial objects a discard may skip).
    assert_eq!(pa[5] & 0xc4, 0xc4, "LBPU, LBPWS and LBPRZ");
    assert_eq!(vpd(&mut owner, 0xb0), vpd(&mut other, 0xb0), "block limits VPD on both gateways");

    // A range over a whole 4 MiB object (blocks 8192-16383) and parts of its neighbours.
    let (lba, blocks) = (8000u64, 8600u32);
    let old = pattern(51, 512 * 256);
    for piece in 0..blocks / 256 {
        let at = (lba + u64::from(piece * 256)) as u32;
        assert_eq!(owner.write10(1, at, &old, 512).unwrap().status, 0);
    }
    let tail = (lba + u64::from(blocks / 256 * 256)) as u32;
    assert_eq!(owner.write10(1, tail, &old[..(blocks % 256) as usize * 512], 512).unwrap().status, 0);
    // WRITE SAME(16) through the non-owner: the owner reads the pattern in every block.
    let block = pattern(52, 512);
    write_same16(&mut other, lba, blocks, &block, false);
    assert!(all_blocks(&read_range(&mut owner, lba, blocks), &block), "WRITE SAME through b, read through a");
    // UNMAP through the non-owner of all but 100 blocks at each end.
    let (cut, cut_blocks) = (lba + 100, blocks - 200);
    unmap(&mut other, cut, cut_blocks);
    let seen = read_range(&mut owner, lba, blocks);
    let (head, rest) = seen.split_at(100 * 512);
    let (middle, end) = rest.split_at(cut_blocks as usize * 512);
    assert!(all_blocks(head, &block) && all_blocks(end, &block), "UNMAP changed blocks outside its range");
    assert!(all_blocks(middle, &[0; 512]), "LBPRZ: unmapped blocks read as zeros through the owner");
    // WRITE SAME(16) with UNMAP of a zero block through the non-owner: zeros, whatever LBPRZ says.
    write_same16(&mut other, lba, 100, &[0; 512], true);
    assert!(all_blocks(&read_range(&mut owner, lba, 100), &[0; 512]), "WRITE SAME(16) UNMAP of zeros");
    assert!(all_blocks(&read_range(&mut owner, cut + u64::from(cut_blocks), 100), &block));
}
