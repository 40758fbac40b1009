//! The read data a guest can make the device hold. A READ whose transfer does not fit the guest's
//! data-in buffers is answered VIRTIO_SCSI_S_OVERRUN before anything is read; READs that do fit,
//! because their writable descriptors alias one small region of guest memory, wait for the device's
//! read budget instead of each holding its own 64 MiB; and the budget comes back when commands are
//! aborted or the guest goes away.

use super::*;
use rtgt_backstore::{BackstoreKind, BackstoreSpec, FaultRule};
use rtgt_scsi::stats::CommandKind;
use std::io::Write;

const MIB: u64 = 1 << 20;
/// A MAXIMUM TRANSFER LENGTH READ in 512-byte blocks: 64 MiB.
const BIG_READ_BLOCKS: u32 = 131072;
const BIG_READ: u64 = BIG_READ_BLOCKS as u64 * 512;
/// 64 MiB for the largest READ and 1 MiB more for READs that start further in.
const DISK_BYTES: u64 = 65 * MIB;
/// Guest memory of the aliasing tests: the rings and small buffers below 4 MiB, the aliased region
/// at 16 MiB.
const GUEST_MEMORY: usize = 32 << 20;
const ALIAS_AT: u64 = 16 << 20;
const ALIAS_LEN: u32 = 8 << 20;
/// Each READ's data-in: a private buffer for its first bytes, then 8 aliases of one 8 MiB region.
const PRIVATE_LEN: usize = 64 << 10;
const ALIASES: usize = 8;
/// virtq_desc flags (virtio 1.2 2.7.5).
const NEXT: u16 = 1;
const WRITE: u16 = 2;
const INDIRECT: u16 = 4;

/// The test disk's 512-byte block `n`: its number, then bytes that depend on it.
fn disk_block(n: u64) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[..8].copy_from_slice(&n.to_le_bytes());
    for (j, byte) in b.iter_mut().enumerate().skip(8) {
        *byte = (j as u8) ^ (n as u8) ^ ((n >> 8) as u8);
    }
    b
}

fn disk_bytes(first_block: u64, len: usize) -> Vec<u8> {
    (first_block..).take(len / 512).flat_map(disk_block).collect()
}

fn read16(lba: u64, blocks: u32) -> [u8; 16] {
    let mut c = [0u8; 16];
    c[0] = 0x88;
    c[2..10].copy_from_slice(&lba.to_be_bytes());
    c[10..14].copy_from_slice(&blocks.to_be_bytes());
    c
}

/// A device serving a 65 MiB disk with the test pattern, its reads delayed by `read_delay` (each
/// READ then holds its zero-filled buffer while it waits, as one on a slow store does).
fn big_disk(read_delay: Option<&str>) -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&disk).unwrap());
    for n in 0..DISK_BYTES / 512 {
        file.write_all(&disk_block(n)).unwrap();
    }
    file.into_inner().unwrap().sync_all().unwrap();
    let spec = BackstoreSpec {
        faults: read_delay.iter().map(|d| FaultRule::parse(&format!("read:delay={d}")).unwrap()).collect(),
        ..BackstoreSpec::new(BackstoreKind::Rdwr, Some(disk.clone()))
    };
    let store = rtgt_backstore::open(spec).unwrap();
    let target = Target::new(1, "vm".into());
    target.add_lun(1, Arc::new(LogicalUnit::new(LunConfig::disk(1, 1), Some(store)))).unwrap();
    let socket = dir.path().join("vm.sock");
    let device = VhostScsiDevice::start(target.clone(), DeviceConfig::new(&socket), runtime.handle().clone()).unwrap();
    Fixture { _runtime: runtime, _dir: dir, socket, disk, target, device }
}

/// A READ(16) of 64 MiB from `lba` posted as one ring descriptor pointing to an indirect table
/// (virtio 1.2 2.7.5.3): request header, response, a private 64 KiB buffer, then eight 8 MiB
/// descriptors all at `ALIAS_AT`. 64 MiB of room in 8 MiB of guest memory. Returns (head,
/// response buffer, private buffer).
fn post_aliased_read(vmm: &mut Vmm, id: u64, lba: u64) -> (u16, u64, u64) {
    let mut cdb = [0u8; CDB_SIZE];
    cdb[..16].copy_from_slice(&read16(lba, BIG_READ_BLOCKS));
    let header = RequestHeader { lun: LUN1, id, task_attr: 0, cdb }.encode();
    let header_at = vmm.alloc(header.len());
    vmm.mem.write_slice(&header, GuestAddress(header_at)).unwrap();
    let response_at = vmm.alloc(RESPONSE_HEADER_LEN);
    let private_at = vmm.alloc(PRIVATE_LEN);
    vmm.mem.write_slice(&[0u8; PRIVATE_LEN], GuestAddress(private_at)).unwrap();
    let mut table = vec![
        (header_at, header.len() as u32, 0),
        (response_at, RESPONSE_HEADER_LEN as u32, WRITE),
        (private_at, PRIVATE_LEN as u32, WRITE),
    ];
    table.extend(std::iter::repeat_n((ALIAS_AT, ALIAS_LEN, WRITE), ALIASES));
    let table_at = vmm.alloc(16 * table.len());
    for (i, &(addr, len, flags)) in table.iter().enumerate() {
        let d = table_at + 16 * i as u64;
        let next = if i + 1 < table.len() { NEXT } else { 0 };
        vmm.mem.write_obj(addr, GuestAddress(d)).unwrap();
        vmm.mem.write_obj(len, GuestAddress(d + 8)).unwrap();
        vmm.mem.write_obj(flags | next, GuestAddress(d + 12)).unwrap();
        vmm.mem.write_obj(i as u16 + 1, GuestAddress(d + 14)).unwrap();
    }
    let ring = &mut vmm.rings[2];
    let head = ring.next_desc;
    let d = ring.desc() + 16 * u64::from(head);
    vmm.mem.write_obj(table_at, GuestAddress(d)).unwrap();
    vmm.mem.write_obj(16 * table.len() as u32, GuestAddress(d + 8)).unwrap();
    vmm.mem.write_obj(INDIRECT, GuestAddress(d + 12)).unwrap();
    vmm.mem.write_obj(0u16, GuestAddress(d + 14)).unwrap();
    ring.next_desc = (head + 1) % QSIZE;
    let slot = ring.avail() + 4 + 2 * u64::from(ring.avail_idx % QSIZE);
    vmm.mem.write_obj(head, GuestAddress(slot)).unwrap();
    fence(Ordering::SeqCst);
    ring.avail_idx = ring.avail_idx.wrapping_add(1);
    vmm.mem.write_obj(ring.avail_idx, GuestAddress(ring.avail() + 2)).unwrap();
    fence(Ordering::SeqCst);
    ring.kick.write(1).unwrap();
    (head, response_at, private_at)
}

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

/// Samples `rss()` every millisecond until dropped; `peak` is the largest sample.
struct RssPeak {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl RssPeak {
    fn start() -> Self {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = rss();
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss());
                std::thread::sleep(Duration::from_millis(1));
            }
            peak
        });
        RssPeak { stop, thread: Some(thread) }
    }

    fn peak(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// virtio 1.2 5.6.6.1: VIRTIO_SCSI_S_OVERRUN when the CDB's transfer needs more than the buffers
/// hold. A 64 MiB READ into a 512-byte buffer is answered so without reading anything (before,
/// the device read all 64 MiB from the store and wrote the first 512 bytes); READs that fit go on
/// as before, their unused room reported as residual.
#[test]
fn a_read_larger_than_its_buffers_is_refused_before_anything_is_read() {
    let f = big_disk(None);
    let mut vmm = Vmm::connect(&f.socket);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));
    let stats = || f.target.lun(1).unwrap().stats().snapshot();
    let before = stats();

    let r = vmm.command(LUN1, &read16(0, BIG_READ_BLOCKS), &[], 512);
    let after = stats();
    assert_eq!(after.bytes_read - before.bytes_read, 0, "the refused READ read from the store");
    assert_eq!(after.commands(CommandKind::Read), before.commands(CommandKind::Read), "the READ ran");
    assert_eq!((r.status, r.response), (0, 1), "OVERRUN and no SCSI status: {r:?}");
    assert_eq!(r.resid, 512, "nothing of the data-in buffer was transferred");
    assert_eq!(r.data, [0u8; 512]);
    // One block more than the buffer: also refused; no data-in buffer at all: refused too.
    let r = vmm.command(LUN1, &read16(0, 9), &[], 4096);
    assert_eq!((r.status, r.response, r.resid), (0, 1, 4096), "{r:?}");
    let r = vmm.command(LUN1, &read16(0, 1), &[], 0);
    assert_eq!((r.status, r.response), (0, 1), "{r:?}");
    assert_eq!(stats().bytes_read, before.bytes_read);

    // A READ that fits exactly, and one with room to spare (its residual).
    let r = vmm.command(LUN1, &read16(100, 8), &[], 4096);
    assert_eq!((r.status, r.response, r.resid), (0, 0, 0), "{r:?}");
    assert_eq!(r.data, disk_bytes(100, 4096));
    let r = vmm.command(LUN1, &read16(100, 8), &[], 8192);
    assert_eq!((r.status, r.response, r.resid), (0, 0, 4096), "{r:?}");
    assert_eq!(r.data[..4096], disk_bytes(100, 4096));
    // Other commands are cut to their buffers as before: INQUIRY of 96 bytes into 36 is OVERRUN
    // with the 36 bytes that fit.
    let r = vmm.command(LUN1, &[0x12, 0, 0, 0, 96, 0], &[], 36);
    assert_eq!(r.response, 1, "{r:?}");
    assert_eq!(&r.data[8..16], b"IET     ");
}

/// Sixteen 64 MiB READs posted at once, each with 64 MiB of writable room made of descriptors that
/// alias one 8 MiB region, on a store that makes each READ wait 300 ms after its buffer is
/// allocated. Without a read budget all sixteen buffers (1 GiB) are held together; with it the
/// device holds at most its budget (and small reads, none here). Resident memory is process-wide
/// and the other tests of this binary run in the same process, so the measure runs in a child
/// process that runs only this test.
#[test]
fn aliased_64_mib_reads_wait_for_the_read_budget() {
    const CHILD: &str = "RTGT_VHOST_READ_BUDGET_CHILD";
    const READS: u64 = 16;
    const NAME: &str = "read_budget::aliased_64_mib_reads_wait_for_the_read_budget";
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", NAME, "--test-threads=1", "--nocapture"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran the test: {text}");
        return;
    }
    let f = big_disk(Some("300ms"));
    let mut vmm = Vmm::connect_with_memory(&f.socket, GUEST_MEMORY);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));

    let sampler = RssPeak::start();
    let baseline = rss();
    let started = Instant::now();
    let mut posted = std::collections::HashMap::new();
    for i in 0..READS {
        // Each READ starts 64 KiB further in, so its first bytes (in its private buffer) are its own.
        let (head, response, private) = post_aliased_read(&mut vmm, 100 + i, i * 128);
        posted.insert(u32::from(head), (i, response, private));
    }
    let mut done = Vec::new();
    for _ in 0..READS {
        let (head, len) = vmm.wait_used(2);
        done.push((head, len));
    }
    let elapsed = started.elapsed();
    let peak = sampler.peak();
    let grew = peak.saturating_sub(baseline);
    eprintln!("{READS} aliased 64 MiB READs: resident memory grew by {} MiB in {elapsed:?}", grew / MIB);
    // The budget, and slack for the 8 MiB aliased region and the runtime's threads.
    let bound = rtgt_vhost::DEFAULT_READ_BUDGET + 64 * MIB;
    assert!(grew < bound, "resident memory grew by {} MiB (bound {} MiB)", grew / MIB, bound / MIB);

    // Every READ completed with its data.
    for (head, len) in done {
        let (i, response, private) = posted.remove(&head).expect("a used entry for a posted chain");
        let (_, resid, status, resp, sense) = ResponseHeader::parse(&vmm.read(response, RESPONSE_HEADER_LEN)).unwrap();
        assert_eq!((status, resp), (0, 0), "READ {i}: {sense:?}");
        assert_eq!(resid, PRIVATE_LEN as u32, "READ {i}: the room past 64 MiB is the residual");
        assert_eq!(u64::from(len), RESPONSE_HEADER_LEN as u64 + BIG_READ, "READ {i}: bytes written");
        assert!(vmm.read(private, PRIVATE_LEN) == disk_bytes(i * 128, PRIVATE_LEN), "READ {i}: wrong data");
    }
    assert!(posted.is_empty());
    // A command's task gives its room back just after its used entry is published.
    wait_until("every READ gave its read data back", || f.device.read_data_held() == 0);
}

/// The read data of commands in flight comes back when task management aborts them and when the
/// guest goes away (the device's reset of the connection), and the next READs get it.
#[test]
fn read_data_comes_back_when_commands_are_aborted_or_the_guest_goes() {
    let f = big_disk(Some("2s"));
    let mut vmm = Vmm::connect_with_memory(&f.socket, GUEST_MEMORY);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));
    // Five READs: four fill the default budget, the fifth waits.
    let mut heads = Vec::new();
    for i in 0..5 {
        heads.push(post_aliased_read(&mut vmm, 200 + i, 0));
    }
    wait_until("the READs hold the budget", || f.device.read_data_held() == rtgt_vhost::DEFAULT_READ_BUDGET);
    // LOGICAL UNIT RESET aborts all five: each is answered VIRTIO_SCSI_S_RESET, their data is given back.
    assert_eq!(vmm.tmf(5, LUN1), 0);
    for _ in 0..5 {
        let (head, _) = vmm.wait_used(2);
        let (_, response, _) = heads.iter().find(|h| u32::from(h.0) == head).copied().unwrap();
        let (_, _, _, resp, _) = ResponseHeader::parse(&vmm.read(response, RESPONSE_HEADER_LEN)).unwrap();
        assert_eq!(resp, 4, "VIRTIO_SCSI_S_RESET");
    }
    wait_until("the aborted READs gave their data back", || f.device.read_data_held() == 0);
    let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(sense_triple(&r.sense), (0x06, 0x29, 0x03), "the reset's unit attention");

    // Two more, then the VMM goes away: the commands are dropped with the connection, and so is
    // their read data.
    post_aliased_read(&mut vmm, 300, 0);
    post_aliased_read(&mut vmm, 301, 0);
    wait_until("the READs hold their data", || f.device.read_data_held() == 2 * BIG_READ);
    drop(vmm);
    wait_until("the lost READs gave their data back", || f.device.read_data_held() == 0);
    wait_until("the guest's nexus is gone", || !f.device.connected() && f.target.nexuses().is_empty());
}
