//! A deterministic sweep over every command the unit reports in REPORT SUPPORTED OPERATION CODES:
//! each bit the CDB usage data marks unused, set alone, must be refused with INVALID FIELD IN CDB and
//! a field pointer to that bit (SPC-4 4.5.2.4.2; the usage data's zero bits are the ones the device
//! server treats as reserved, SPC-4 6.35.3); LBAs at and past the end, zero and maximal transfer
//! lengths, and every allocation length up to the full data (SPC-4 4.2.5.6: truncated data, GOOD).
//! The memory store records every range asked of it: none may leave the logical unit. Swept LUNs:
//! the controller (0), a disk (1), a CD/DVD drive (2), a media changer (3) and a tape drive (4).

use rtgt_backstore::tape::{MediumType, NewTape, TapeImage};
use rtgt_backstore::{Backstore, MemoryStore};
use rtgt_scsi::{LogicalUnit, LunConfig, Nexus, ScsiStatus, Target, TaskResult};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

const STORE: u64 = 4 << 20;
const BLOCK: u64 = 512;
const BLOCKS: u64 = STORE / BLOCK;

fn now<F: Future>(f: F) -> F::Output {
    match pin!(f).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a command on a memory store waited"),
    }
}

/// SANITIZE runs on a thread of its own; its command waits for it unless IMMED is set. So do the
/// tape drive's commands (the drive's own thread) and the changer's moves, which may wait for it.
fn waiting<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return v;
        }
        std::thread::yield_now();
    }
}

const SANITIZE: u8 = 0x48;

const CHANGER: u64 = 3;
const TAPE: u64 = 4;
const LUNS: [u64; 5] = [0, 1, 2, CHANGER, TAPE];

struct Unit {
    target: Arc<Target>,
    nexus: Arc<Nexus>,
    unit: Arc<LogicalUnit>,
    /// The tape drive's tape lives here.
    _tapes: tempfile::TempDir,
}

impl Unit {
    /// A thin-provisioned disk at LUN 1 (so that every command is offered), unit attentions cleared.
    fn new() -> Self {
        let mut config = LunConfig::disk(1, 1);
        config.thin_provisioning = true;
        let target = Target::new(1, "iqn.2024-01.org.rtgt:sweep".into());
        let store = Backstore::Memory(MemoryStore::with_access_log(STORE));
        let unit = Arc::new(LogicalUnit::new(config, Some(store)));
        target.add_lun(1, unit.clone()).unwrap();
        // A CD/DVD drive at LUN 2 with a small disc, for the sweep of its own table.
        let disc = Backstore::Memory(MemoryStore::new(16 * 2048));
        target.add_lun(2, Arc::new(LogicalUnit::new(LunConfig::cd(1, 2), Some(disc)))).unwrap();
        // A media changer at LUN 3 (an empty library: its commands' fields are what is swept).
        target.add_lun(3, Arc::new(LogicalUnit::new(LunConfig::changer(1, 3), None))).unwrap();
        // A tape drive at LUN 4 with a small tape in it; the sweep's reads, writes and spaces move
        // about on it.
        let tapes = tempfile::tempdir().unwrap();
        let tape = tapes.path().join("A0001");
        let new = NewTape { barcode: "A0001".into(), capacity_mib: 4, medium: MediumType::Data, created_secs: 1 };
        TapeImage::create(&tape, &new).unwrap();
        let drive = Arc::new(LogicalUnit::new(LunConfig::tape(1, 4), None));
        assert!(drive.load_tape(&tape).unwrap());
        target.add_lun(4, drive).unwrap();
        let nexus = target.add_nexus("iqn.2024-01.org.rtgt:i".into());
        let u = Unit { target, nexus, unit, _tapes: tapes };
        for lun in LUNS {
            while u.run(lun, &[0, 0, 0, 0, 0, 0], &[]).0.status != ScsiStatus::Good {}
        }
        // Blocks of 100 bytes and a filemark on the tape, so that the reads swept meet blocks
        // longer and shorter than they ask for, the filemark and the end of data.
        for _ in 0..64 {
            assert_eq!(u.run(TAPE, &[0x0a, 0, 0, 0, 100, 0], &[0x5a; 100]).0.status, ScsiStatus::Good);
        }
        assert_eq!(u.run(TAPE, &[0x10, 0, 0, 0, 1, 0], &[]).0.status, ScsiStatus::Good);
        assert_eq!(u.run(TAPE, &[0x01, 0, 0, 0, 0, 0], &[]).0.status, ScsiStatus::Good);
        u
    }

    /// Run one command; assert that every store request stayed inside the store.
    fn run(&self, lun: u64, cdb: &[u8], data_out: &[u8]) -> (TaskResult, Vec<u8>) {
        let mut data_in = Vec::new();
        let command = self.target.execute(&self.nexus, lun, cdb, data_out, &mut data_in);
        let threaded = cdb.first() == Some(&SANITIZE) || lun == TAPE || lun == CHANGER;
        let r = if threaded { waiting(command) } else { now(command) };
        // An IMMED sanitize goes on after GOOD: wait for it, so that its store accesses are
        // checked here and the next command finds the unit ready.
        let mut in_progress = true;
        while cdb.first() == Some(&SANITIZE) && r.status == ScsiStatus::Good && in_progress {
            let mut tur_data = Vec::new();
            let tur = now(self.target.execute(&self.nexus, lun, &[0; 6], &[], &mut tur_data));
            in_progress = sense(&tur) == Some((0x02, 0x04, 0x1b));
        }
        let Some(Backstore::Memory(store)) = self.unit.store() else { unreachable!() };
        for a in store.take_accesses() {
            assert!(a.within(STORE), "CDB {cdb:02x?} asked the store for {a:?}");
        }
        if r.status == ScsiStatus::CheckCondition && !data_in.is_empty() {
            // Only a tape read stops with data: the blocks read before a filemark, the end of
            // data, the end of the tape or a block of another length, with FILEMARK, EOM or ILI
            // set in the sense (SSC-3 4.2.x); never more than the CDB asked for.
            let s = r.sense.as_deref().unwrap_or_default();
            let stream_bits = s.get(2).is_some_and(|b| b & 0xe0 != 0);
            let asked = cdb.get(2..5).map_or(0, |l| u32::from_be_bytes([0, l[0], l[1], l[2]]) as usize);
            assert!(
                lun == TAPE && cdb[0] == 0x08 && stream_bits && data_in.len() <= asked,
                "CDB {cdb:02x?}: {} bytes of data with CHECK CONDITION {s:02x?}",
                data_in.len()
            );
        }
        (r, data_in)
    }
}

/// (sense key, ASC, ASCQ) of a CHECK CONDITION with fixed-format sense, or None for another status.
fn sense(r: &TaskResult) -> Option<(u8, u8, u8)> {
    let s = r.sense.as_deref()?;
    Some((s[2] & 0x0f, s[12], s[13]))
}

/// The sense-key-specific field pointer of ILLEGAL REQUEST sense: (C/D, byte, bit if BPV).
fn field_pointer(r: &TaskResult) -> Option<(bool, u16, Option<u8>)> {
    let s = r.sense.as_deref()?;
    (s[15] & 0x80 != 0)
        .then(|| (s[15] & 0x40 != 0, u16::from_be_bytes([s[16], s[17]]), (s[15] & 0x08 != 0).then_some(s[15] & 7)))
}

const INVALID_FIELD: (u8, u8, u8) = (0x05, 0x24, 0x00);
const LBA_OUT_OF_RANGE: (u8, u8, u8) = (0x05, 0x21, 0x00);

/// One reported command: opcode, service action, CDB usage data.
struct Reported {
    opcode: u8,
    service_action: Option<u16>,
    usage: Vec<u8>,
}

/// Every command LUN `lun` reports (all_commands), with its usage data (one_command).
fn reported(u: &Unit, lun: u64) -> Vec<Reported> {
    let (r, all) = u.run(lun, &[0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], &[]);
    assert_eq!(r.status, ScsiStatus::Good);
    let len = u32::from_be_bytes(all[0..4].try_into().unwrap()) as usize;
    assert_eq!(len + 4, all.len());
    all[4..]
        .chunks(8)
        .map(|d| {
            let service_action = (d[5] & 1 != 0).then(|| u16::from_be_bytes([d[2], d[3]]));
            let [hi, lo] = service_action.unwrap_or(0).to_be_bytes();
            let option = if service_action.is_some() { 2 } else { 1 };
            let (r, one) = u.run(lun, &[0xa3, 0x0c, option, d[0], hi, lo, 0, 0, 0x10, 0, 0, 0], &[]);
            assert_eq!(r.status, ScsiStatus::Good);
            assert_eq!(one[1] & 7, 3, "opcode {:#04x} reported but not supported", d[0]);
            let cdb_len = usize::from(u16::from_be_bytes([one[2], one[3]]));
            assert_eq!(cdb_len, usize::from(u16::from_be_bytes([d[6], d[7]])));
            Reported { opcode: d[0], service_action, usage: one[4..4 + cdb_len].to_vec() }
        })
        .collect()
}

/// The CDB with only the opcode and service action set.
fn base(c: &Reported) -> Vec<u8> {
    let mut cdb = vec![0u8; c.usage.len()];
    cdb[0] = c.opcode;
    if let Some(sa) = c.service_action {
        cdb[1] = sa as u8;
    }
    cdb
}

#[test]
fn every_bit_outside_the_usage_data_is_refused_with_a_pointer_to_it() {
    let u = Unit::new();
    for lun in LUNS {
        let commands = reported(&u, lun);
        let least = [5, 40, 20, 15, 25][lun as usize];
        assert!(commands.len() > least, "LUN {lun}: {} commands", commands.len());
        for c in &commands {
            assert_eq!(c.usage[0], c.opcode);
            // A CDB cut short is refused, never read past its end.
            for n in 1..c.usage.len() {
                let (r, _) = u.run(lun, &base(c)[..n], &[]);
                assert_eq!(sense(&r), Some(INVALID_FIELD), "LUN {lun} CDB {:02x?}", &base(c)[..n]);
            }
            let control = c.usage.len() - 1;
            for byte in 1..c.usage.len() {
                for bit in 0..8u8 {
                    let mask = 1u8 << bit;
                    let sa_bit = byte == 1 && c.service_action.is_some() && mask & 0x1f != 0;
                    if c.usage[byte] & mask != 0 || sa_bit {
                        continue;
                    }
                    let mut cdb = base(c);
                    cdb[byte] |= mask;
                    let (r, _) = u.run(lun, &cdb, &[]);
                    let refused =
                        sense(&r) == Some(INVALID_FIELD) && field_pointer(&r) == Some((true, byte as u16, Some(bit)));
                    // SAM-5 5.2 CONTROL byte: NACA (bit 2) is unsupported and refused; the vendor
                    // bits (7-6) and the obsolete and reserved ones are ignored.
                    // The robot's commands take the SCSI-2 LUN field (byte 1 bits 7-5) that mtx
                    // fills in, and ignore it.
                    let scsi2_lun = lun == CHANGER
                        && byte == 1
                        && mask & 0xe0 != 0
                        && [0x07, 0x2b, 0x37, 0xa5, 0xb8].contains(&c.opcode);
                    let expected = (byte != control || bit == 2) && !scsi2_lun;
                    assert_eq!(refused, expected, "LUN {lun} CDB {cdb:02x?}: {:02x?}", r.sense);
                }
            }
        }
    }
}

/// Single bits inside the usage data that are refused on their own (on a CDB otherwise zero, with
/// no data-out), as (opcode, byte, bits) with the reason: each belongs to a field whose value is
/// checked. Any other usage bit refused with INVALID FIELD IN CDB pointing at its byte would mean
/// that the usage data claims a bit the command does not accept.
const VALUE_CHECKED: &[(u8, usize, u8, &str)] = &[
    (0x12, 2, 0xff, "INQUIRY: a PAGE CODE without EVPD (SPC-4 6.6.1)"),
    (0x15, 1, 0x01, "MODE SELECT(6): SP, saving pages is not supported"),
    (0x1a, 2, 0xff, "MODE SENSE(6): PC 11b (saved values) and pages not implemented"),
    (0x1a, 3, 0xff, "MODE SENSE(6): subpages not implemented"),
    (0x1e, 4, 0x02, "PREVENT ALLOW MEDIUM REMOVAL: PREVENT 10b is for medium changers"),
    (0x25, 2, 0xff, "READ CAPACITY(10): an LBA without PMI (SBC-4 5.20.1)"),
    (0x2e, 1, 0x04, "WRITE AND VERIFY(10): BYTCHK 10b is reserved"),
    (0x2f, 1, 0x04, "VERIFY(10): BYTCHK 10b is reserved"),
    (0x37, 2, 0x03, "READ DEFECT DATA(10): defect list formats not implemented"),
    (0x48, 7, 0xff, "SANITIZE: a parameter list for a service action that takes none"),
    (0x55, 1, 0x01, "MODE SELECT(10): SP, saving pages is not supported"),
    (0x5a, 2, 0xff, "MODE SENSE(10): PC 11b (saved values) and pages not implemented"),
    (0x5a, 3, 0xff, "MODE SENSE(10): subpages not implemented"),
    (0x5f, 2, 0xf6, "PERSISTENT RESERVE OUT: SCOPE other than LU_SCOPE, reserved TYPE values"),
    (0x84, 2, 0xff, "RECEIVE COPY RESULTS: no copy operation with that LIST IDENTIFIER"),
    (0x89, 13, 0xff, "COMPARE AND WRITE: blocks without their data-out, or past the maximum"),
    (0x8e, 1, 0x04, "WRITE AND VERIFY(16): BYTCHK 10b is reserved"),
    (0x8f, 1, 0x04, "VERIFY(16): BYTCHK 10b is reserved"),
    (0x93, 10, 0xff, "WRITE SAME(16): past the maximum WRITE SAME length"),
    (0x9c, 10, 0xff, "WRITE ATOMIC(16): past the maximum atomic boundary"),
    (0x9c, 12, 0x3f, "WRITE ATOMIC(16): past the maximum atomic transfer length"),
    (0xa0, 2, 0xfc, "REPORT LUNS: reserved SELECT REPORT values"),
    (
        0xa3,
        2,
        0x06,
        "REPORT SUPPORTED OPERATION CODES: option 2 for an opcode without service actions, reserved options",
    ),
    (0xae, 1, 0x04, "WRITE AND VERIFY(12): BYTCHK 10b is reserved"),
    (0xaf, 1, 0x04, "VERIFY(12): BYTCHK 10b is reserved"),
    (0xb7, 1, 0x03, "READ DEFECT DATA(12): defect list formats not implemented"),
];

#[test]
fn bits_inside_the_usage_data_are_evaluated_not_refused() {
    let u = Unit::new();
    let mut found: Vec<(u8, usize, u8)> = Vec::new();
    for lun in [0, 1] {
        for c in &reported(&u, lun) {
            for byte in 1..c.usage.len() - 1 {
                for bit in 0..8u8 {
                    let mask = 1u8 << bit;
                    let sa_bit = byte == 1 && c.service_action.is_some() && mask & 0x1f != 0;
                    if c.usage[byte] & mask == 0 || sa_bit {
                        continue;
                    }
                    let mut cdb = base(c);
                    cdb[byte] |= mask;
                    let (r, _) = u.run(lun, &cdb, &[]);
                    if sense(&r) == Some(INVALID_FIELD) && field_pointer(&r).is_some_and(|p| p.1 == byte as u16) {
                        match found.iter_mut().find(|f| (f.0, f.1) == (c.opcode, byte)) {
                            Some(f) => f.2 |= mask,
                            None => found.push((c.opcode, byte, mask)),
                        }
                    }
                }
            }
        }
    }
    found.sort();
    let expected: Vec<(u8, usize, u8)> = VALUE_CHECKED.iter().map(|&(o, b, m, _)| (o, b, m)).collect();
    assert_eq!(found, expected);
}

/// A media-access command: how to build its CDB for an LBA and a block count, the widest values
/// its fields hold, and the data-out it needs per block (and per command).
struct Media {
    name: &'static str,
    build: fn(u64, u32) -> Vec<u8>,
    max_lba: u64,
    max_blocks: u32,
    /// Data-out bytes per block, and a fixed number of bytes whatever the count.
    out_per_block: u64,
    out_fixed: u64,
    /// A count of 0 means "to the end of the medium" (or 256 for the 6-byte CDBs).
    zero_is_more: bool,
}

fn cdb10(op: u8, b1: u8) -> impl Fn(u64, u32) -> Vec<u8> {
    move |lba, n| {
        let mut c = vec![op, b1, 0, 0, 0, 0, 0, 0, 0, 0];
        c[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
        c[7..9].copy_from_slice(&(n as u16).to_be_bytes());
        c
    }
}

fn cdb12(op: u8, b1: u8) -> impl Fn(u64, u32) -> Vec<u8> {
    move |lba, n| {
        let mut c = vec![op, b1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        c[2..6].copy_from_slice(&(lba as u32).to_be_bytes());
        c[6..10].copy_from_slice(&n.to_be_bytes());
        c
    }
}

fn cdb16(op: u8, b1: u8) -> impl Fn(u64, u32) -> Vec<u8> {
    move |lba, n| {
        let mut c = vec![op, b1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        c[2..10].copy_from_slice(&lba.to_be_bytes());
        c[10..14].copy_from_slice(&n.to_be_bytes());
        c
    }
}

fn cdb6(op: u8) -> impl Fn(u64, u32) -> Vec<u8> {
    move |lba, n| {
        let [_, b1, b2, b3] = (lba as u32).to_be_bytes();
        vec![op, b1 & 0x1f, b2, b3, n as u8, 0]
    }
}

macro_rules! media {
    ($name:literal, $build:expr, $lba:expr, $blocks:expr, $per:expr, $fixed:expr, $zero:expr) => {
        Media {
            name: $name,
            build: |lba, n| ($build)(lba, n),
            max_lba: $lba,
            max_blocks: $blocks,
            out_per_block: $per,
            out_fixed: $fixed,
            zero_is_more: $zero,
        }
    };
}

const U32: u64 = u32::MAX as u64;

fn media_commands() -> Vec<Media> {
    vec![
        media!("READ(6)", cdb6(0x08), 0x1f_ffff, 0xff, 0, 0, true),
        media!("WRITE(6)", cdb6(0x0a), 0x1f_ffff, 0xff, BLOCK, 0, true),
        media!("READ(10)", cdb10(0x28, 0), U32, 0xffff, 0, 0, false),
        media!("WRITE(10)", cdb10(0x2a, 0), U32, 0xffff, BLOCK, 0, false),
        media!("WRITE AND VERIFY(10)", cdb10(0x2e, 0x02), U32, 0xffff, BLOCK, 0, false),
        media!("VERIFY(10)", cdb10(0x2f, 0), U32, 0xffff, 0, 0, false),
        media!("VERIFY(10) BYTCHK", cdb10(0x2f, 0x02), U32, 0xffff, BLOCK, 0, false),
        media!("PRE-FETCH(10)", cdb10(0x34, 0), U32, 0xffff, 0, 0, true),
        media!("SYNCHRONIZE CACHE(10)", cdb10(0x35, 0), U32, 0xffff, 0, 0, true),
        media!("WRITE SAME(10)", cdb10(0x41, 0), U32, 0xffff, 0, BLOCK, true),
        media!("WRITE SAME(10) UNMAP", cdb10(0x41, 0x08), U32, 0xffff, 0, BLOCK, true),
        media!("READ(12)", cdb12(0xa8, 0), U32, u32::MAX, 0, 0, false),
        media!("WRITE(12)", cdb12(0xaa, 0), U32, u32::MAX, BLOCK, 0, false),
        media!("WRITE AND VERIFY(12)", cdb12(0xae, 0x02), U32, u32::MAX, BLOCK, 0, false),
        media!("VERIFY(12)", cdb12(0xaf, 0x02), U32, u32::MAX, BLOCK, 0, false),
        media!("READ(16)", cdb16(0x88, 0), u64::MAX, u32::MAX, 0, 0, false),
        media!("WRITE(16)", cdb16(0x8a, 0), u64::MAX, u32::MAX, BLOCK, 0, false),
        media!("ORWRITE(16)", cdb16(0x8b, 0), u64::MAX, u32::MAX, BLOCK, 0, false),
        media!("WRITE AND VERIFY(16)", cdb16(0x8e, 0x02), u64::MAX, u32::MAX, BLOCK, 0, false),
        media!("VERIFY(16)", cdb16(0x8f, 0x02), u64::MAX, u32::MAX, BLOCK, 0, false),
        media!("PRE-FETCH(16)", cdb16(0x90, 0), u64::MAX, u32::MAX, 0, 0, true),
        media!("SYNCHRONIZE CACHE(16)", cdb16(0x91, 0), u64::MAX, u32::MAX, 0, 0, true),
        media!("WRITE SAME(16)", cdb16(0x93, 0), u64::MAX, u32::MAX, 0, BLOCK, true),
        media!("WRITE SAME(16) NDOB", cdb16(0x93, 0x01), u64::MAX, u32::MAX, 0, 0, true),
        media!(
            "COMPARE AND WRITE",
            |lba: u64, n: u32| {
                let mut c = cdb16(0x89, 0)(lba, 0);
                c[13] = n as u8;
                c
            },
            u64::MAX,
            0xff,
            2 * BLOCK,
            0,
            false
        ),
        media!(
            "WRITE ATOMIC(16)",
            |lba: u64, n: u32| {
                let mut c = cdb16(0x9c, 0)(lba, 0);
                c[12..14].copy_from_slice(&(n as u16).to_be_bytes());
                c
            },
            u64::MAX,
            0xffff,
            BLOCK,
            0,
            false
        ),
    ]
}

/// GOOD, or CONDITION MET for PRE-FETCH (SBC-4 5.8: the blocks fit in the cache).
fn succeeded(r: &TaskResult) -> bool {
    matches!(r.status, ScsiStatus::Good | ScsiStatus::ConditionMet)
}

#[test]
fn lbas_at_and_past_the_end_and_extreme_lengths() {
    let u = Unit::new();
    let zeros = vec![0u8; 2 * BLOCK as usize * 2];
    for m in media_commands() {
        let run = |lba: u64, n: u32| {
            let blocks = if n == 0 && m.zero_is_more { 1 } else { u64::from(n) };
            let len = (blocks * m.out_per_block + m.out_fixed).min(zeros.len() as u64) as usize;
            let cdb = (m.build)(lba, n);
            let (r, data) = u.run(1, &cdb, &zeros[..len]);
            (r, data, cdb)
        };
        // The last block is there; one past it, or two blocks from the last, are not.
        let (r, data, cdb) = run(BLOCKS - 1, 1);
        assert!(succeeded(&r), "{} {cdb:02x?}: {:02x?}", m.name, r.sense);
        if m.name.starts_with("READ") {
            assert_eq!(data.len() as u64, BLOCK);
        }
        for (lba, n) in [(BLOCKS, 1), (BLOCKS - 1, 2)] {
            let (r, _, cdb) = run(lba, n);
            assert_eq!(sense(&r), Some(LBA_OUT_OF_RANGE), "{} {cdb:02x?}", m.name);
        }
        // The widest LBA and count the fields hold: refused, whatever the overflow.
        for (lba, n) in [(m.max_lba, m.max_blocks), (m.max_lba, 1), (0, m.max_blocks)] {
            let (r, _, cdb) = run(lba, n);
            let refused = matches!(sense(&r), Some(LBA_OUT_OF_RANGE | INVALID_FIELD));
            // 255 blocks of READ(6) or COMPARE AND WRITE from LBA 0 fit (and the latter is refused
            // for want of data-out or as longer than its maximum).
            assert!(refused || (lba == 0 && m.max_blocks == 0xff && succeeded(&r)), "{} {cdb:02x?}: {r:?}", m.name);
        }
        // Zero blocks: nothing moves (or, where zero means more, up to the end).
        if !m.zero_is_more {
            let (r, data, cdb) = run(BLOCKS - 1, 0);
            assert!(succeeded(&r) && data.is_empty(), "{} {cdb:02x?}: {r:?}", m.name);
        }
        let (r, _, cdb) = run(BLOCKS + 1, 0);
        assert!(succeeded(&r) || sense(&r) == Some(LBA_OUT_OF_RANGE), "{} {cdb:02x?}: {r:?}", m.name);
    }
}

/// A command that returns data: its CDB and where its ALLOCATION LENGTH field sits.
struct DataIn {
    lun: u64,
    cdb: Vec<u8>,
    at: usize,
    width: usize,
}

fn with_alloc(d: &DataIn, len: u64) -> Vec<u8> {
    let mut cdb = d.cdb.clone();
    let bytes = len.to_be_bytes();
    cdb[d.at..d.at + d.width].copy_from_slice(&bytes[8 - d.width..]);
    cdb
}

fn data_in_commands(u: &Unit) -> Vec<DataIn> {
    let mut list = vec![
        DataIn { lun: 1, cdb: vec![0x12, 0, 0, 0, 0, 0], at: 3, width: 2 },
        DataIn { lun: 0, cdb: vec![0x12, 0, 0, 0, 0, 0], at: 3, width: 2 },
        DataIn { lun: 1, cdb: vec![0x1a, 0, 0x3f, 0, 0, 0], at: 4, width: 1 },
        DataIn { lun: 1, cdb: vec![0x1a, 0x08, 0x3f, 0, 0, 0], at: 4, width: 1 },
        DataIn { lun: 1, cdb: vec![0x5a, 0, 0x3f, 0, 0, 0, 0, 0, 0, 0], at: 7, width: 2 },
        DataIn { lun: 1, cdb: vec![0x5a, 0x10, 0x3f, 0, 0, 0, 0, 0, 0, 0], at: 7, width: 2 },
        DataIn { lun: 1, cdb: vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: 6, width: 4 },
        DataIn { lun: 1, cdb: vec![0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: 6, width: 4 },
        DataIn { lun: 1, cdb: vec![0xa3, 0x0c, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: 6, width: 4 },
        DataIn { lun: 1, cdb: vec![0xa3, 0x0c, 0x82, 0x9e, 0, 0x10, 0, 0, 0, 0, 0, 0], at: 6, width: 4 },
        DataIn { lun: 1, cdb: vec![0xa3, 0x0d, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: 6, width: 4 },
        DataIn { lun: 1, cdb: vec![0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: 10, width: 4 },
        DataIn { lun: 1, cdb: vec![0x9e, 0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: 10, width: 4 },
        DataIn { lun: 1, cdb: vec![0x03, 0, 0, 0, 0, 0], at: 4, width: 1 },
        DataIn { lun: 1, cdb: vec![0x03, 1, 0, 0, 0, 0], at: 4, width: 1 },
        DataIn { lun: 1, cdb: vec![0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: 10, width: 4 },
        DataIn { lun: 1, cdb: vec![0x37, 0, 0x04, 0, 0, 0, 0, 0, 0, 0], at: 7, width: 2 },
        DataIn { lun: 1, cdb: vec![0xb7, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], at: 6, width: 4 },
    ];
    for sa in 0..4 {
        list.push(DataIn { lun: 1, cdb: vec![0x5e, sa, 0, 0, 0, 0, 0, 0, 0, 0], at: 7, width: 2 });
    }
    // Every VPD page the unit lists in page 0x00.
    let (r, pages) = u.run(1, &[0x12, 1, 0, 0, 0xff, 0], &[]);
    assert_eq!(r.status, ScsiStatus::Good);
    for &page in &pages[4..] {
        list.push(DataIn { lun: 1, cdb: vec![0x12, 1, page, 0, 0, 0], at: 3, width: 2 });
    }
    list
}

#[test]
fn allocation_lengths_truncate_without_error() {
    let u = Unit::new();
    // A registration, so that PERSISTENT RESERVE IN has keys to list.
    let mut register = vec![0u8; 24];
    register[8..16].copy_from_slice(&0xabcdu64.to_be_bytes());
    let (r, _) = u.run(1, &[0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0], &register);
    assert_eq!(r.status, ScsiStatus::Good);
    for d in data_in_commands(&u) {
        let widest = (1u64 << (8 * d.width)) - 1;
        let (r, full) = u.run(d.lun, &with_alloc(&d, widest), &[]);
        assert_eq!(r.status, ScsiStatus::Good, "{:02x?}: {:02x?}", d.cdb, r.sense);
        assert!(!full.is_empty(), "{:02x?}", d.cdb);
        for len in 0..=full.len() as u64 + 1 {
            let cdb = with_alloc(&d, len);
            let (r, data) = u.run(d.lun, &cdb, &[]);
            // SPC-4 6.33: REPORT LUNS may refuse an allocation length under 16 (tgt does).
            if d.cdb[0] == 0xa0 && len < 16 {
                assert_eq!(sense(&r), Some(INVALID_FIELD), "{cdb:02x?}");
                assert_eq!(field_pointer(&r), Some((true, 6, Some(7))));
                continue;
            }
            assert_eq!(r.status, ScsiStatus::Good, "{cdb:02x?}: {:02x?}", r.sense);
            assert_eq!(data, full[..full.len().min(len as usize)], "{cdb:02x?}");
        }
    }
}

/// The tape drive's READ(6) at every transfer length a single bit makes (and with SILI), over
/// 100-byte blocks until the end of data: never more data than asked, data with CHECK CONDITION
/// only with ILI or FILEMARK (checked in `run`), one filemark met, then BLANK CHECK at the end.
#[test]
fn tape_reads_of_every_length_stop_with_a_drives_sense() {
    let u = Unit::new();
    assert_eq!(u.run(TAPE, &[0x01, 0, 0, 0, 0, 0], &[]).0.status, ScsiStatus::Good);
    let (mut filemarks, mut with_data_and_sense, mut reads) = (0, 0, 0);
    'tape: for sili in [0u8, 0x02].into_iter().cycle().take(16) {
        for bit in 0..24 {
            let len = 1u32 << bit;
            let l = len.to_be_bytes();
            let cdb = [0x08, sili, l[1], l[2], l[3], 0];
            let (r, data) = u.run(TAPE, &cdb, &[]);
            reads += 1;
            assert!(data.len() <= len as usize && data.iter().all(|&b| b == 0x5a), "{cdb:02x?}");
            match (r.status, sense(&r)) {
                (ScsiStatus::Good, None) => assert!(len == 100 || (sili != 0 && len > 100), "{cdb:02x?}"),
                (ScsiStatus::CheckCondition, Some((0x00, 0x00, 0x01))) => {
                    assert!(data.is_empty(), "a filemark carries no data");
                    filemarks += 1;
                }
                (ScsiStatus::CheckCondition, Some((0x08, 0x00, 0x05))) => break 'tape,
                (ScsiStatus::CheckCondition, Some((0x00, 0x00, 0x00))) => {
                    // ILI: a block of another length than asked, its bytes up to the shorter.
                    assert_eq!(r.sense.as_deref().unwrap()[2] & 0x20, 0x20, "{cdb:02x?}");
                    assert_eq!(data.len(), (len as usize).min(100), "{cdb:02x?}");
                    with_data_and_sense += usize::from(!data.is_empty());
                }
                other => panic!("{cdb:02x?}: {other:?}"),
            }
        }
    }
    assert_eq!(filemarks, 1, "after {reads} reads");
    assert!(with_data_and_sense > 0);
}
