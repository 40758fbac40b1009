//! Round robin over every path, as VMware's round robin path policy does: one initiator with a
//! session through each gateway alternates command by command between them, writing and reading
//! back numbered data. Every command is GOOD, every read returns the last write, and the
//! unit's owner record in the cluster (whose epoch any change of ownership bumps) and librbd's
//! exclusive lock holder are the same before and after: I/O on the non-owner's path is
//! forwarded, never a reason to move the ownership. An explicit move does bump the epoch, once,
//! and moves the lock, which shows the checks can fail.

use super::NON_OPTIMIZED;
use super::{chunk_data, groups, session_with_isid, wait_for_forwarding, TwoGateways, ACTIVE, CHUNK_BLOCKS};
use std::process::Command;
use std::time::{Duration, Instant};

const CHUNKS: u32 = 64;
/// The run stops at whichever comes first.
const COMMANDS: u32 = 4000;
const RUN_FOR: Duration = Duration::from_secs(6);

/// The registry's owner record as stored: `name=<gateway>;addr=<client>;epoch=<n>`.
pub(super) fn owner_record(conf: &str, name: &str, scratch: &std::path::Path) -> String {
    let oid = format!("rtgt.gateways.{}", super::image_id(conf, name));
    let file = scratch.join("owner-record");
    let out =
        Command::new("rados").args(["-c", conf, "-p", "rbd", "getomapval", &oid, "owner"]).arg(&file).output().unwrap();
    assert!(out.status.success(), "rados getomapval: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&file).unwrap()
}

/// librbd's lockers of the image (its exclusive lock: whoever wrote last holds it), as JSON.
fn lockers(conf: &str, name: &str) -> String {
    crate::rbd(conf, &["lock", "ls", "--format", "json", &format!("rbd/{name}")])
}

/// (owner name, epoch) from an owner record.
fn owner_and_epoch(record: &str) -> (String, u64) {
    let field = |k: &str| {
        record.split(';').find_map(|f| f.strip_prefix(k)).unwrap_or_else(|| panic!("{k} in {record:?}")).to_string()
    };
    (field("name="), field("epoch=").trim().parse().unwrap())
}

#[test]
fn round_robin_over_both_gateways_never_moves_the_ownership() {
    let gw = TwoGateways::start();
    // Each path its own session, as a multipath initiator opens them: its own ISID.
    let mut paths = [session_with_isid(gw.a.portal(), 0x61), session_with_isid(gw.b.portal(), 0x62)];
    let [through_a, through_b] = &mut paths;
    wait_for_forwarding(through_a, through_b);
    let scratch = tempfile::tempdir().unwrap();
    let before = owner_record(&gw.conf, &gw.name, scratch.path());
    assert_eq!(owner_and_epoch(&before).0, "gw-a");

    // Every chunk starts written (through both paths), so every read has a known answer.
    let mut last = vec![0u32; CHUNKS as usize];
    for chunk in 0..CHUNKS {
        let c = &mut paths[chunk as usize % 2];
        let out = c.write10(1, chunk * u32::from(CHUNK_BLOCKS), &chunk_data(chunk, 0), 512).unwrap();
        assert_eq!(out.status, 0, "first write of chunk {chunk}: {:x?}", out.sense);
    }
    let held = lockers(&gw.conf, &gw.name);
    assert!(held.contains("\"locker\""), "a holds the exclusive lock: {held}");
    // The mix: command n goes through path n % 2; a cheap generator picks the chunk and whether
    // it is a write (new data) or a read (checked against the chunk's last write).
    let started = Instant::now();
    let (mut x, mut seq, mut n, mut reads) = (0x1234_5678u32, 0u32, 0u32, 0u32);
    while n < COMMANDS && started.elapsed() < RUN_FOR {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let chunk = x % CHUNKS;
        let lba = chunk * u32::from(CHUNK_BLOCKS);
        let path = (n % 2) as usize;
        let c = &mut paths[path];
        if x & 0x100 == 0 {
            seq += 1;
            let out = c.write10(1, lba, &chunk_data(chunk, seq), 512).unwrap();
            assert_eq!(out.status, 0, "command {n}: WRITE of chunk {chunk} through path {path}: {:x?}", out.sense);
            last[chunk as usize] = seq;
        } else {
            let out = c.read10(1, lba, CHUNK_BLOCKS, 512).unwrap();
            assert_eq!(out.status, 0, "command {n}: READ of chunk {chunk} through path {path}: {:x?}", out.sense);
            let want = last[chunk as usize];
            assert!(
                out.data_in == chunk_data(chunk, want),
                "command {n}: chunk {chunk} through path {path} does not hold write {want} (holds write {:?})",
                out.data_in.get(4..8)
            );
            reads += 1;
        }
        n += 1;
    }
    eprintln!("round robin: {n} commands ({reads} reads) in {:?}", started.elapsed());
    assert!(n >= 1000, "too few commands to mean anything: {n}");

    // No ownership change: the same owner at the same epoch, nobody fenced, no handoff asked,
    // and both paths still report a active/optimized, b active/non-optimized.
    let after = owner_record(&gw.conf, &gw.name, scratch.path());
    assert_eq!(owner_and_epoch(&after), owner_and_epoch(&before), "the ownership moved under round robin");
    let keys = super::registry_keys(&gw.conf, &gw.name);
    assert!(!keys.iter().any(|k| k.starts_with("fenced.") || k == "handoff"), "{keys:?}");
    for c in &mut paths {
        assert_eq!(groups(c), [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    }
    // Nor did librbd's exclusive lock move (what ping-pongs between ceph-iscsi's gateways).
    assert_eq!(lockers(&gw.conf, &gw.name), held, "the image's exclusive lock moved under round robin");

    // The observable does see a move: an explicit one to b bumps the epoch once.
    let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", "1", "--lun", "1"];
    gw.a.tgtadm_ok(&[&update[..], &["--params", "alua_owner=2"]].concat());
    let (owner, epoch) = owner_and_epoch(&owner_record(&gw.conf, &gw.name, scratch.path()));
    assert_eq!((owner.as_str(), epoch), ("gw-b", owner_and_epoch(&before).1 + 1));
    // Past the ASYMMETRIC ACCESS STATE CHANGED the move left, b writes and so takes the lock.
    let mut out = paths[1].write10(1, 0, &chunk_data(0, seq + 1), 512).unwrap();
    if out.sense_code() == (0x06, 0x2a, 0x06) {
        out = paths[1].write10(1, 0, &chunk_data(0, seq + 1), 512).unwrap();
    }
    assert_eq!(out.status, 0, "a write through the new owner: {:x?}", out.sense);
    assert_ne!(lockers(&gw.conf, &gw.name), held, "the exclusive lock follows the ownership");
}
