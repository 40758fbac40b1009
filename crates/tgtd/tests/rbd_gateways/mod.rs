//! Several tgtd gateways serving one RBD image as one logical unit (`--bsopts gateway=;tpg=`):
//! two daemons on loopback ports and the shared cluster. One identity on both, both groups
//! reported with one owner, failover after kill -9 within 15 s with the old owner fenced, a
//! restarted gateway back as standby, a clean stop leaving the registry empty, no stale write
//! from a gateway stopped in the middle of a write, that fenced gateway back by itself,
//! kill -9 of the owner under a load that retries on the other path (`failover_load`), round
//! robin over both paths without an ownership change (`round_robin`), and COMPARE AND WRITE,
//! WRITE SAME and UNMAP across gateways (`atomicity`), CLEAR TASK SET through either gateway
//! ending the other's tasks, and with three gateways a task forwarded by the third
//! (`clear_task_set`), LOGICAL UNIT RESET through the owner ending, unanswered, a task the
//! standby forwarded to it (`lun_reset`), a gateway cut off from the cluster while
//! it runs (`cut_off`), RESERVE(6) across failover and handoff (`reserve6`), and Linux
//! dm-multipath in a QEMU guest over both gateways, through kill -9 of the owner (`dm_multipath`),
//! and `tgtadm`'s sense_format= through either gateway holding for both (`sense_format`).

mod alua;
mod atomicity;
mod clear_task_set;
mod cut_off;
mod dm_multipath;
mod failover_load;
mod forwarding;
mod lifecycle;
mod lun_reset;
mod mode_select;
mod reservations;
mod reserve6;
mod round_robin;
mod sense_format;

use super::{add_rbd_target, conf, image, login_at, pattern, rbd, write_fua, INITIATOR};
use crate::common::initiator::{Connection, ScsiOutcome};
use crate::common::Tgtd;
use std::process::Command;
use std::time::{Duration, Instant};

pub(super) const IQN: &str = "iqn.2026-11.org.rtgt.test:rbd-gateways";

/// Target 1 on `tgtd` with LUN 1 on the image as gateway `name` in group `tpg`.
fn gateway(tgtd: &Tgtd, conf: &str, image: &str, name: &str, tpg: u16) {
    gateway_with(tgtd, conf, image, name, tpg, "");
}

/// [`gateway`] with the `--bsopts` `extra` besides (`;key=value`...).
fn gateway_with(tgtd: &Tgtd, conf: &str, image: &str, name: &str, tpg: u16, extra: &str) {
    add_rbd_target(tgtd, 1, IQN, conf, image, &format!(";gateway={name};tpg={tpg};portal={}{extra}", tgtd.portal()));
}

/// The `--bsopts` of gateway `name` in group `tpg` on `tgtd`, as cephx user `id` of `conf`.
fn gateway_opts(tgtd: &Tgtd, conf: &str, id: &str, name: &str, tpg: u16) -> String {
    format!("conf={conf};id={id};gateway={name};tpg={tpg};portal={}", tgtd.portal())
}

pub(super) fn start_gateway(conf: &str, image: &str, name: &str, tpg: u16) -> Tgtd {
    start_gateway_with(conf, image, name, tpg, "")
}

/// [`start_gateway`] with the `--bsopts` `extra` besides (`;fault=...`).
pub(super) fn start_gateway_with(conf: &str, image: &str, name: &str, tpg: u16, extra: &str) -> Tgtd {
    let tgtd = Tgtd::start();
    gateway_with(&tgtd, conf, image, name, tpg, extra);
    tgtd
}

/// The setup most tests share: a fresh image and two gateways of it, gateway `gw-a` in group 1
/// started before `gw-b` in group 2. The first gateway up owns the unit, so `a` is the owner and
/// `b` the standby that forwards to it. No `Drop`: a test may move a gateway out (`gw.a.crash()`)
/// and go on with the rest.
pub(super) struct TwoGateways {
    pub conf: String,
    pub name: String,
    // Fields drop in this order: b before a, as two locals `a` then `b` did, so that the standby
    // goes first and the owner's end leaves nobody to fail over to.
    pub b: Tgtd,
    pub a: Tgtd,
}

impl TwoGateways {
    /// Both gateways of a fresh 16 MiB image.
    pub fn start() -> Self {
        Self::on_image_of(16)
    }

    /// Both gateways of a fresh image of `mib` MiB.
    pub fn on_image_of(mib: u32) -> Self {
        Self::on_image_with_owner_opts(mib, "")
    }

    /// Both gateways of a fresh image of `mib` MiB, the owner a with the `--bsopts` `a_extra`
    /// besides (`;fault=...`: the owner alone touches the image, so its faults are the unit's).
    pub fn on_image_with_owner_opts(mib: u32, a_extra: &str) -> Self {
        Self::with_owner(mib, a_extra, &[])
    }

    /// [`TwoGateways::on_image_with_owner_opts`], a's daemon with the environment `a_env` besides.
    pub fn with_owner(mib: u32, a_extra: &str, a_env: &[(&str, &str)]) -> Self {
        let conf = conf();
        let name = image(&conf, mib);
        let a = Tgtd::start_in_env(tempfile::tempdir().unwrap(), &[], a_env);
        gateway_with(&a, &conf, &name, "gw-a", 1, a_extra);
        let b = start_gateway(&conf, &name, "gw-b", 2);
        TwoGateways { conf, name, b, a }
    }

    /// A session of `one` through a, then (in that order) a session of `two` through b.
    pub fn sessions(&self, one: &str, two: &str) -> (Connection, Connection) {
        let first = session(self.a.portal(), one);
        (first, session(self.b.portal(), two))
    }
}

/// [`TwoGateways`] and a third gateway `gw-c` in group 3, started last: another standby forwarding
/// to a. Derefs to the two, so `gw.a` and `gw.b` read as with two.
pub(super) struct ThreeGateways {
    // c drops first, then b, then a (see TwoGateways).
    pub c: Tgtd,
    pub two: TwoGateways,
}

impl ThreeGateways {
    /// Three gateways of a fresh 16 MiB image, the owner a with the `--bsopts` `a_extra` besides,
    /// c's daemon with the environment `c_env` besides.
    pub fn start(a_extra: &str, c_env: &[(&str, &str)]) -> Self {
        let two = TwoGateways::on_image_with_owner_opts(16, a_extra);
        let c = Tgtd::start_in_env(tempfile::tempdir().unwrap(), &[], c_env);
        gateway(&c, &two.conf, &two.name, "gw-c", 3);
        ThreeGateways { c, two }
    }
}

impl std::ops::Deref for ThreeGateways {
    type Target = TwoGateways;

    fn deref(&self) -> &TwoGateways {
        &self.two
    }
}

/// Wait until `through_a` sees a own the unit and b stand by, and b forwards TEST UNIT READY
/// through `through_b` (b learns a's forwarding address with a's registry entry, a heartbeat at
/// most): from then on, I/O through either path reaches the owner.
pub(super) fn wait_for_forwarding(through_a: &mut Connection, through_b: &mut Connection) {
    wait_for(5, "a owns, b forwards", || groups(through_a) == [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    wait_for(5, "b forwards TEST UNIT READY", || through_b.scsi(1, &[0; 6], &[], 0).unwrap().status == 0);
}

/// A session of `initiator` with the gateways' target at `portal`, its power-on unit attention taken.
pub(super) fn session(portal: std::net::SocketAddr, initiator: &str) -> Connection {
    let mut c = Connection::connect(portal).unwrap();
    c.login(initiator, Some(IQN), &[]).unwrap();
    let _ = c.scsi(1, &[0; 6], &[], 0).unwrap();
    c
}

/// A session of the tests' INITIATOR at `portal` with its own ISID ending in `isid_tail`: another
/// initiator port of the same initiator, as a multipath initiator opens one per path.
pub(super) fn session_with_isid(portal: std::net::SocketAddr, isid_tail: u8) -> Connection {
    let mut c = Connection::connect(portal).unwrap();
    c.isid[5] = isid_tail;
    c.login(INITIATOR, Some(IQN), &[]).unwrap();
    let _ = c.scsi(1, &[0; 6], &[], 0).unwrap();
    c
}

/// A session of `initiator` at `portal` that negotiated ImmediateData=No and InitialR2T=Yes, so
/// that a WRITE waits for its data ([`write_waiting_for_data`]).
pub(super) fn session_without_immediate_data(portal: std::net::SocketAddr, initiator: &str) -> Connection {
    let mut c = Connection::connect(portal).unwrap();
    c.login(initiator, Some(IQN), &[("ImmediateData", "No"), ("InitialR2T", "Yes")]).unwrap();
    let _ = c.scsi(1, &[0; 6], &[], 0).unwrap();
    assert!(!c.immediate_data);
    c
}

pub(super) const GOOD: u8 = 0;
pub(super) const CONFLICT: u8 = 0x18;
/// PERSISTENT RESERVE OUT types (SPC-4 6.15.2).
pub(super) const WRITE_EXCLUSIVE: u8 = 1;
pub(super) const EXCLUSIVE_ACCESS: u8 = 3;

/// PERSISTENT RESERVE OUT service action `sa` with a basic parameter list (reservation key `key`,
/// service action reservation key `sark`, the APTPL bit in `flags`): (status, sense key/ASC/ASCQ).
pub(super) fn prout(c: &mut Connection, sa: u8, pr_type: u8, key: u64, sark: u64, flags: u8) -> (u8, (u8, u8, u8)) {
    let mut p = Vec::new();
    p.extend_from_slice(&key.to_be_bytes());
    p.extend_from_slice(&sark.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0, flags, 0, 0, 0]);
    let out = c.scsi(1, &[0x5f, sa, pr_type, 0, 0, 0, 0, 0, 24, 0], &p, 0).unwrap();
    (out.status, out.sense_code())
}

/// Blocks per chunk of the numbered-data loads: one command covers one chunk.
pub(super) const CHUNK_BLOCKS: u16 = 8;

/// What write `seq` puts in `chunk`: every 512-byte block names its chunk, the write and its own
/// place, then bytes derived from all three, so a block from another write or another place, or a
/// write half done, cannot pass for this one.
pub(super) fn chunk_data(chunk: u32, seq: u32) -> Vec<u8> {
    let mut data = vec![0u8; usize::from(CHUNK_BLOCKS) * 512];
    for (i, block) in data.chunks_mut(512).enumerate() {
        block[0..4].copy_from_slice(&chunk.to_be_bytes());
        block[4..8].copy_from_slice(&seq.to_be_bytes());
        block[8..12].copy_from_slice(&(i as u32).to_be_bytes());
        let mut x = chunk.wrapping_mul(0x9e37_79b9) ^ seq.wrapping_mul(0x85eb_ca6b) ^ (i as u32);
        // A linear congruential step: unlike a xorshift it has no all-zero state to stay in, so
        // no block (chunk 0's first write included) can come out as zeros, what an unwritten
        // chunk reads as.
        for b in &mut block[12..] {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            *b = (x >> 16) as u8;
        }
    }
    data
}

fn vpd(c: &mut Connection, page: u8) -> Vec<u8> {
    let out = c.scsi(1, &[0x12, 0x01, page, 0x01, 0x00, 0], &[], 256).unwrap();
    assert_eq!(out.status, 0, "VPD {page:#x}: {:x?}", out.sense);
    out.data_in
}

/// REPORT TARGET PORT GROUPS as (group, state) pairs, with each group's one port checked. An
/// ASYMMETRIC ACCESS STATE CHANGED unit attention first is what an initiator expects after a
/// change: taken, and asked again.
pub(super) fn groups(c: &mut Connection) -> Vec<(u16, u8)> {
    let rtpg = [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0];
    let mut out = c.scsi(1, &rtpg, &[], 1024).unwrap();
    while out.sense_code() == (0x06, 0x2a, 0x06) {
        out = c.scsi(1, &rtpg, &[], 1024).unwrap();
    }
    assert_eq!(out.status, 0, "REPORT TARGET PORT GROUPS: {:x?}", out.sense);
    let d = out.data_in;
    let len = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize;
    assert_eq!(len + 4, d.len());
    let mut at = 4;
    let mut found = Vec::new();
    while at < d.len() {
        let id = u16::from_be_bytes([d[at + 2], d[at + 3]]);
        assert_eq!(d[at + 7], 1, "one port per group");
        assert_eq!(u16::from_be_bytes([d[at + 10], d[at + 11]]), id, "the port is numbered as its group");
        found.push((id, d[at] & 0x0f));
        at += 12;
    }
    found
}

pub(super) const ACTIVE: u8 = 0x0;
pub(super) const NON_OPTIMIZED: u8 = 0x1;
pub(super) const OFFLINE: u8 = 0xe;

pub(super) fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(secs), "not within {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
    started.elapsed()
}

pub(super) fn image_id(conf: &str, name: &str) -> String {
    let info = rbd(conf, &["info", "--format", "json", &format!("rbd/{name}")]);
    let at = info.find("\"id\":\"").expect("an id in rbd info") + 6;
    info[at..].split('"').next().unwrap().to_string()
}

/// The registry object's omap keys.
pub(super) fn registry_keys(conf: &str, name: &str) -> Vec<String> {
    let oid = format!("rtgt.gateways.{}", image_id(conf, name));
    let out = Command::new("rados").args(["-c", conf, "-p", "rbd", "listomapkeys", &oid]).output().unwrap();
    assert!(out.status.success(), "rados listomapkeys: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// READ(10) of `blocks` at `lba`, past the unit attentions an access state change leaves.
pub(super) fn read(c: &mut Connection, lba: u32, blocks: u16) -> Vec<u8> {
    let mut out = c.read10(1, lba, blocks, 512).unwrap();
    for _ in 0..4 {
        if out.sense_code().0 != 0x06 {
            break;
        }
        out = c.read10(1, lba, blocks, 512).unwrap();
    }
    assert_eq!(out.status, 0, "READ at {lba}: {:x?}", out.sense);
    out.data_in
}

pub(super) fn write10(c: &mut Connection, lba: u32, data: &[u8]) -> ScsiOutcome {
    c.write10(1, lba, data, 512).unwrap()
}

/// A WRITE of `data` at `lba` sent without its data (the session negotiated ImmediateData=No):
/// returns its ITT and the R2T's Target Transfer Tag, the task waiting for the Data-Out.
pub(super) fn write_waiting_for_data(c: &mut Connection, lba: u32, len: usize) -> (u32, u32) {
    use crate::common::initiator::{lun_field, write_u32, OP_R2T, OP_SCSI_CMD};
    let itt = c.itt();
    let mut bhs = [0u8; 48];
    bhs[0] = OP_SCSI_CMD;
    bhs[1] = 0x80 | 0x20 | 0x01; // final, write, simple
    bhs[8..16].copy_from_slice(&lun_field(1));
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, len as u32);
    write_u32(&mut bhs, 24, c.cmd_sn);
    write_u32(&mut bhs, 28, c.exp_stat_sn);
    c.cmd_sn = c.cmd_sn.wrapping_add(1);
    let blocks = (len / 512) as u16;
    bhs[32] = 0x2a;
    bhs[34..38].copy_from_slice(&lba.to_be_bytes());
    bhs[39..41].copy_from_slice(&blocks.to_be_bytes());
    c.send(&bhs, &[]).unwrap();
    let r2t = c.recv().expect("an R2T");
    assert_eq!((r2t.opcode(), r2t.itt()), (OP_R2T, itt), "{r2t:?}");
    (itt, r2t.u32_at(20))
}

/// How long a test listens for the answer a forwarded command the owner aborted must never get:
/// past the forwarding gateway's wait for its own abort (`ABORTED_GRACE`, 10 s), after which a
/// gateway that did not abort its task fails the command with NOT READY.
pub(super) const PAST_ABORTED_GRACE: Duration = Duration::from_secs(12);

/// Task management function codes and the response code (RFC 7143 11.5.1, 11.6.1).
pub(super) const CLEAR_TASK_SET: u8 = 4;
pub(super) const LOGICAL_UNIT_RESET: u8 = 5;
pub(super) const FUNCTION_COMPLETE: u8 = 0;

/// An immediate Task Management Function Request on LUN 1; its response code (RFC 7143 11.6.1).
pub(super) fn tmf(c: &mut Connection, function: u8) -> u8 {
    use crate::common::initiator::{lun_field, write_u32};
    const OP_TMF: u8 = 0x02;
    const OP_TMF_RSP: u8 = 0x22;
    let itt = c.itt();
    let mut bhs = [0u8; 48];
    bhs[0] = 0x40 | OP_TMF;
    bhs[1] = 0x80 | function;
    bhs[8..16].copy_from_slice(&lun_field(1));
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, 0xffff_ffff);
    write_u32(&mut bhs, 24, c.cmd_sn);
    write_u32(&mut bhs, 28, c.exp_stat_sn);
    c.send(&bhs, &[]).unwrap();
    let rsp = c.recv().expect("a Task Management Function Response");
    assert_eq!((rsp.opcode(), rsp.itt()), (OP_TMF_RSP, itt), "{rsp:?}");
    rsp.bhs[2]
}

/// The commands LUN 1 of `tgtd` has in flight (`tgtadm --op stats`).
pub(super) fn in_flight(tgtd: &crate::common::Tgtd) -> u64 {
    let text = tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "stats", "--tid", "1", "--lun", "1"]);
    let line = text.lines().find_map(|l| l.trim().strip_prefix("Commands in flight: "));
    line.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no commands in flight in:\n{text}"))
}

/// A WRITE(10) of `data` at `lba` with all its data immediate (the session's default), sent
/// without waiting for its answer: returns its ITT.
pub(super) fn send_write(c: &mut Connection, lba: u32, data: &[u8]) -> u32 {
    use crate::common::initiator::{lun_field, write_u32, OP_SCSI_CMD};
    assert!(c.immediate_data && data.len() <= c.first_burst as usize && data.len() <= c.target_mrdsl as usize);
    let itt = c.itt();
    let mut bhs = [0u8; 48];
    bhs[0] = OP_SCSI_CMD;
    bhs[1] = 0x80 | 0x20 | 0x01; // final, write, simple
    bhs[8..16].copy_from_slice(&lun_field(1));
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, data.len() as u32);
    write_u32(&mut bhs, 24, c.cmd_sn);
    write_u32(&mut bhs, 28, c.exp_stat_sn);
    c.cmd_sn = c.cmd_sn.wrapping_add(1);
    bhs[32] = 0x2a;
    bhs[34..38].copy_from_slice(&lba.to_be_bytes());
    bhs[39..41].copy_from_slice(&((data.len() / 512) as u16).to_be_bytes());
    c.send(&bhs, data).unwrap();
    itt
}

#[test]
fn two_gateways_are_one_unit_with_one_owner() {
    let gw = TwoGateways::start();
    let (mut ca, mut cb) = gw.sessions(INITIATOR, INITIATOR);
    // INQUIRY: TPGS 01b on both.
    for c in [&mut ca, &mut cb] {
        let out = c.scsi(1, &[0x12, 0, 0, 0, 36, 0], &[], 36).unwrap();
        assert_eq!(out.data_in[5] & 0x30, 0x30, "TPGS 11b: implicit and explicit");
    }
    // One identity: the unit's designators and serial number are equal, the port and group differ.
    let (ia, ib) = (vpd(&mut ca, 0x83), vpd(&mut cb, 0x83));
    let unit_part = |d: &[u8]| d[..d.len() - 16].to_vec();
    assert_eq!(unit_part(&ia), unit_part(&ib), "device identification");
    assert_eq!(ia[ia.len() - 16..], [0x01, 0x14, 0, 4, 0, 0, 0, 1, 0x01, 0x15, 0, 4, 0, 0, 0, 1]);
    assert_eq!(ib[ib.len() - 16..], [0x01, 0x14, 0, 4, 0, 0, 0, 2, 0x01, 0x15, 0, 4, 0, 0, 0, 2]);
    assert_eq!(vpd(&mut ca, 0x80), vpd(&mut cb, 0x80), "serial number");
    // Both list both groups: a (first up) owns the unit, b forwards to it (active/non-optimized).
    assert_eq!(groups(&mut cb), [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    wait_for(3, "a sees b", || groups(&mut ca) == [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    // I/O through the owner, and through the other path, which forwards it to the owner.
    let data = pattern(5, 4096);
    assert_eq!(write10(&mut ca, 64, &data).status, 0);
    assert_eq!(ca.read10(1, 64, 8, 512).unwrap().data_in, data);
    wait_for(5, "b forwards to a", || cb.scsi(1, &[0; 6], &[], 0).unwrap().status == 0);
    assert_eq!(cb.read10(1, 64, 8, 512).unwrap().data_in, data);
    // READ CAPACITY answers on both (a multipath layer compares the paths' sizes).
    let cap = |c: &mut Connection| c.scsi(1, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8).unwrap().data_in;
    assert_eq!(cap(&mut ca), cap(&mut cb));
}

#[test]
fn kill_9_of_the_owner_fails_over_within_15_s_and_a_restart_rejoins_as_standby() {
    let mut gw = TwoGateways::start();
    let (mut ca, mut cb) = gw.sessions(INITIATOR, INITIATOR);
    let data = pattern(9, 8192);
    assert_eq!(write_fua(&mut ca, 128, &data).status, 0);
    assert_eq!(groups(&mut cb), [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    let dir = gw.a.crash();
    let took = wait_for(15, "b reports a offline and owns the unit", || groups(&mut cb) == [(1, OFFLINE), (2, ACTIVE)]);
    eprintln!("failover took {took:?}");
    // I/O on the remaining path, starting with what a acknowledged.
    assert_eq!(cb.read10(1, 128, 16, 512).unwrap().data_in, data);
    let more = pattern(10, 4096);
    assert_eq!(write10(&mut cb, 512, &more).status, 0);
    let keys = registry_keys(&gw.conf, &gw.name);
    assert!(keys.iter().any(|k| k.starts_with("fenced.")), "a's client fenced: {keys:?}");
    // a comes back (a new process, a new client; its saved configuration brings the LUN back
    // with its gateway options): standby, and its old fence is lifted.
    let a2 = Tgtd::start_in(dir, &[]);
    let mut ca2 = login_at(a2.portal(), IQN);
    assert_eq!(groups(&mut ca2), [(1, NON_OPTIMIZED), (2, ACTIVE)]);
    wait_for(5, "b sees a standing by", || groups(&mut cb) == [(1, NON_OPTIMIZED), (2, ACTIVE)]);
    wait_for(5, "a's old fence lifted", || !registry_keys(&gw.conf, &gw.name).iter().any(|k| k.starts_with("fenced.")));
    // A clean stop of the owner hands over at once; once both stopped, the registry is empty.
    drop(ca2);
    drop(cb);
    assert!(gw.b.terminate().success(), "{}", gw.b.log());
    let mut a2 = a2;
    let mut ca3 = login_at(a2.portal(), IQN);
    wait_for(3, "a owns the unit after b's clean stop", || groups(&mut ca3) == [(1, ACTIVE)]);
    assert_eq!(ca3.read10(1, 512, 8, 512).unwrap().data_in, more);
    drop(ca3);
    assert!(a2.terminate().success(), "{}", a2.log());
    assert_eq!(registry_keys(&gw.conf, &gw.name), Vec::<String>::new());
}

#[test]
fn a_write_held_by_a_stopped_owner_never_lands_after_the_retry_and_the_owner_comes_back() {
    let gw = TwoGateways::start();
    let (mut ca, mut cb) = gw.sessions(INITIATOR, INITIATOR);
    let old = pattern(1, 4096);
    assert_eq!(write10(&mut ca, 8, &old).status, 0);
    // A stops with a write on its way: the write sits in its socket, unanswered.
    // SAFETY: kill(2) on the PID of the tgtd this test started.
    assert_eq!(unsafe { libc::kill(gw.a.pid(), libc::SIGSTOP) }, 0);
    let stale = pattern(2, 4096);
    let (tx, rx) = std::sync::mpsc::channel();
    let held = stale.clone();
    std::thread::spawn(move || {
        let _ = tx.send(ca.write10(1, 8, &held, 512).map(|o| o.status));
    });
    // The initiator retries through b until b answers GOOD (after taking over, fencing a).
    let fresh = pattern(3, 4096);
    wait_for(20, "the retry through b is GOOD", || write10(&mut cb, 8, &fresh).status == 0);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(gw.a.pid(), libc::SIGCONT) }, 0);
    // a must fail the held write, not hold it (it could land any time later) nor acknowledge it.
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(status)) => assert_ne!(status, 0, "a acknowledged a write after b took over"),
        other => panic!("a neither failed nor answered the held write: {other:?}\n{}", gw.a.log()),
    }
    // What a still had cannot land later either: the image holds b's data.
    std::thread::sleep(Duration::from_secs(2));
    assert!(read(&mut cb, 8, 8) == fresh, "the image holds b's data");
    let exported = super::export(&gw.conf, &gw.name, gw.b.dir.path());
    assert_eq!(exported[8 * 512..8 * 512 + 4096], fresh[..]);
    // a knows it was fenced: it connects again with a new client and rejoins as standby, on its
    // own (no LUN re-added, no restart).
    let mut ca2 = Connection::connect(gw.a.portal()).unwrap();
    ca2.login(INITIATOR, Some(IQN), &[]).unwrap();
    let _ = ca2.scsi(1, &[0; 6], &[], 0);
    let took = wait_for(15, "a back as standby", || groups(&mut ca2) == [(1, NON_OPTIMIZED), (2, ACTIVE)]);
    eprintln!("a seen back as standby {took:?} after logging in again");
    wait_for(5, "b sees a standing by", || groups(&mut cb) == [(1, NON_OPTIMIZED), (2, ACTIVE)]);
    // Asked to, it owns the unit again and serves, with what b acknowledged.
    let update = ["--lld", "iscsi", "--mode", "logicalunit", "--op", "update", "--tid", "1", "--lun", "1"];
    gw.b.tgtadm_ok(&[&update[..], &["--params", "alua_owner=1"]].concat());
    wait_for(5, "a owns the unit again", || groups(&mut ca2) == [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    assert!(read(&mut ca2, 8, 8) == fresh, "a reads what b acknowledged");
    let last = pattern(4, 4096);
    assert_eq!(write10(&mut ca2, 8, &last).status, 0, "{}", gw.a.log());
    assert!(read(&mut ca2, 8, 8) == last);
    // Its old client's blocklist entry is lifted once its old image closed.
    wait_for(10, "a's old fence lifted", || {
        !registry_keys(&gw.conf, &gw.name).iter().any(|k| k.starts_with("fenced."))
    });
}
