//! Plays the VMM against a real `VhostScsiDevice`: guest memory in a shared file mapped by both
//! sides, the vrings set up through the vhost-user protocol (the `vhost` crate's frontend), and
//! virtio-scsi requests laid out in split rings by a small driver below. Checks INQUIRY, READ
//! CAPACITY, WRITE and READ against the backing file, sense for a bad CDB, residuals, data-out shorter
//! than the CDB (refused when it ends inside a block), a bad target, task management, hotplug events
//! and reconnection; `deferred_tmf` task management answers lost with their device; `read_budget` the
//! read data a guest can make the device hold;
//! `hotplug_events`, `reconnection` and `task_management` the rest of their names.

use rtgt_scsi::{LogicalUnit, LunConfig, Target};
use rtgt_vhost::wire::{ControlRequest, RequestHeader, ResponseHeader, VirtioLun, CDB_SIZE, RESPONSE_HEADER_LEN};
use rtgt_vhost::{DeviceConfig, LunEvent, ScsiBackend, VhostScsiDevice};
use std::sync::atomic::{fence, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_bindings::virtio_scsi::VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET;
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

#[path = "vmm/deferred_tmf.rs"]
mod deferred_tmf;
#[path = "vmm/hotplug_events.rs"]
mod hotplug_events;
#[path = "vmm/read_budget.rs"]
mod read_budget;
#[path = "vmm/reconnection.rs"]
mod reconnection;
#[path = "vmm/task_management.rs"]
mod task_management;

const MEM_SIZE: usize = 4 << 20;
const QSIZE: u16 = 16;
const QUEUES: usize = 3; // control, event, one request queue
const DATA: u64 = 0x10000; // buffers start here
const DISK_BLOCKS: u64 = 2048;

/// One split virtqueue driven by the test: queue `i` lives at i * 0x2000.
struct Ring {
    base: u64,
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
    kick: EventFd,
    call: EventFd,
}

impl Ring {
    fn desc(&self) -> u64 {
        self.base
    }
    fn avail(&self) -> u64 {
        self.base + 16 * u64::from(QSIZE)
    }
    fn used(&self) -> u64 {
        self.base + 0x1000
    }
}

struct Vmm {
    mem: GuestMemoryMmap,
    frontend: Frontend,
    rings: Vec<Ring>,
    next_buf: u64,
}

impl Vmm {
    fn connect(path: &std::path::Path) -> Vmm {
        Self::connect_with_memory(path, MEM_SIZE)
    }

    /// A guest of `mem_size` bytes of memory (a sparse file: only what is touched costs anything).
    fn connect_with_memory(path: &std::path::Path, mem_size: usize) -> Vmm {
        let file = tempfile::tempfile().unwrap();
        file.set_len(mem_size as u64).unwrap();
        let mem: GuestMemoryMmap =
            GuestMemoryMmap::from_ranges_with_files(&[(GuestAddress(0), mem_size, Some(FileOffset::new(file, 0)))])
                .unwrap();
        let mut frontend = Frontend::connect(path, QUEUES as u64).unwrap();
        frontend.set_owner().unwrap();
        let offered = frontend.get_features().unwrap();
        assert_eq!(offered, ScsiBackend::device_features());
        // Everything but EVENT_IDX: this driver kicks and polls plainly.
        frontend.set_features(offered & !(1 << 29)).unwrap();
        let proto = frontend.get_protocol_features().unwrap();
        frontend.set_protocol_features(proto).unwrap();
        assert!(frontend.get_queue_num().unwrap() >= QUEUES as u64);
        let region = VhostUserMemoryRegionInfo::from_guest_region(mem.find_region(GuestAddress(0)).unwrap()).unwrap();
        frontend.set_mem_table(&[region]).unwrap();
        let host = |gpa: u64| mem.get_host_address(GuestAddress(gpa)).unwrap() as u64;
        let mut rings = Vec::new();
        for q in 0..QUEUES {
            let ring = Ring {
                base: q as u64 * 0x2000,
                next_desc: 0,
                avail_idx: 0,
                used_seen: 0,
                kick: EventFd::new(0).unwrap(),
                call: EventFd::new(0).unwrap(),
            };
            frontend.set_vring_num(q, QSIZE).unwrap();
            let config = VringConfigData {
                queue_max_size: QSIZE,
                queue_size: QSIZE,
                flags: 0,
                desc_table_addr: host(ring.desc()),
                used_ring_addr: host(ring.used()),
                avail_ring_addr: host(ring.avail()),
                log_addr: None,
            };
            frontend.set_vring_addr(q, &config).unwrap();
            frontend.set_vring_base(q, 0).unwrap();
            frontend.set_vring_call(q, &ring.call).unwrap();
            frontend.set_vring_kick(q, &ring.kick).unwrap();
            frontend.set_vring_enable(q, true).unwrap();
            rings.push(ring);
        }
        Vmm { mem, frontend, rings, next_buf: DATA }
    }

    fn alloc(&mut self, len: usize) -> u64 {
        if self.next_buf + len as u64 > MEM_SIZE as u64 {
            self.next_buf = DATA;
        }
        let at = self.next_buf;
        self.next_buf += (len as u64 + 63) & !63;
        at
    }

    /// Post a chain of `out` (device-readable) then `inn` writable buffer lengths; returns the
    /// writable buffers' addresses.
    fn post(&mut self, q: usize, out: &[&[u8]], inn: &[usize]) -> Vec<u64> {
        self.post_chain(q, out, inn).1
    }

    /// As `post`, also returning the chain's head descriptor (the used ring names chains by it).
    fn post_chain(&mut self, q: usize, out: &[&[u8]], inn: &[usize]) -> (u16, Vec<u64>) {
        let mut descs: Vec<(u64, u32, bool)> = Vec::new();
        for bytes in out {
            let at = self.alloc(bytes.len());
            self.mem.write_slice(bytes, GuestAddress(at)).unwrap();
            descs.push((at, bytes.len() as u32, false));
        }
        let mut writable = Vec::new();
        for &len in inn {
            let at = self.alloc(len);
            self.mem.write_slice(&vec![0u8; len], GuestAddress(at)).unwrap();
            descs.push((at, len as u32, true));
            writable.push(at);
        }
        (self.post_descriptors(q, &descs), writable)
    }

    /// Post one chain of raw descriptors (address, length, device-writable) as a guest driver may
    /// lay it out, hostile ones included; returns its head.
    fn post_descriptors(&mut self, q: usize, descs: &[(u64, u32, bool)]) -> u16 {
        let ring = &mut self.rings[q];
        let head = ring.next_desc;
        for (i, &(addr, len, write)) in descs.iter().enumerate() {
            let index = (head + i as u16) % QSIZE;
            let last = i + 1 == descs.len();
            let flags: u16 = if last { 0 } else { 1 } | if write { 2 } else { 0 };
            let d = ring.desc() + 16 * u64::from(index);
            self.mem.write_obj(addr, GuestAddress(d)).unwrap();
            self.mem.write_obj(len, GuestAddress(d + 8)).unwrap();
            self.mem.write_obj(flags, GuestAddress(d + 12)).unwrap();
            self.mem.write_obj((index + 1) % QSIZE, GuestAddress(d + 14)).unwrap();
        }
        ring.next_desc = (head + descs.len() as u16) % QSIZE;
        let slot = ring.avail() + 4 + 2 * u64::from(ring.avail_idx % QSIZE);
        self.mem.write_obj(head, GuestAddress(slot)).unwrap();
        fence(Ordering::SeqCst);
        ring.avail_idx = ring.avail_idx.wrapping_add(1);
        self.mem.write_obj(ring.avail_idx, GuestAddress(ring.avail() + 2)).unwrap();
        fence(Ordering::SeqCst);
        ring.kick.write(1).unwrap();
        head
    }

    /// Wait for the next used entry of queue `q`: (descriptor head, bytes written).
    fn wait_used(&mut self, q: usize) -> (u32, u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let ring = &mut self.rings[q];
        loop {
            let idx: u16 = self.mem.read_obj(GuestAddress(ring.used() + 2)).unwrap();
            if idx != ring.used_seen {
                fence(Ordering::SeqCst);
                let at = ring.used() + 4 + 8 * u64::from(ring.used_seen % QSIZE);
                ring.used_seen = ring.used_seen.wrapping_add(1);
                return (
                    self.mem.read_obj(GuestAddress(at)).unwrap(),
                    self.mem.read_obj(GuestAddress(at + 4)).unwrap(),
                );
            }
            assert!(Instant::now() < deadline, "no used entry on queue {q}");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn read(&self, at: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem.read_slice(&mut v, GuestAddress(at)).unwrap();
        v
    }

    /// One SCSI command: (status, response, resid, sense, data-in).
    fn command(&mut self, lun: [u8; 8], cdb: &[u8], data_out: &[u8], data_in: usize) -> Reply {
        let mut c = [0u8; CDB_SIZE];
        c[..cdb.len()].copy_from_slice(cdb);
        let header = RequestHeader { lun, id: 7, task_attr: 0, cdb: c }.encode();
        let mut out: Vec<&[u8]> = vec![&header];
        if !data_out.is_empty() {
            out.push(data_out);
        }
        let mut inn = vec![RESPONSE_HEADER_LEN];
        if data_in > 0 {
            inn.push(data_in);
        }
        let bufs = self.post(2, &out, &inn);
        self.wait_used(2);
        let (_, resid, status, response, sense) =
            ResponseHeader::parse(&self.read(bufs[0], RESPONSE_HEADER_LEN)).unwrap();
        let data = if data_in > 0 { self.read(bufs[1], data_in) } else { Vec::new() };
        Reply { status, response, resid, sense, data }
    }

    /// Post a SCSI command without waiting: (head, response buffer, data-in buffer).
    fn submit(&mut self, cdb: &[u8], data_out: &[u8], data_in: usize) -> (u16, Vec<u64>) {
        let mut c = [0u8; CDB_SIZE];
        c[..cdb.len()].copy_from_slice(cdb);
        let header = RequestHeader { lun: LUN1, id: 1, task_attr: 0, cdb: c }.encode();
        let mut out: Vec<&[u8]> = vec![&header];
        if !data_out.is_empty() {
            out.push(data_out);
        }
        let mut inn = vec![RESPONSE_HEADER_LEN];
        if data_in > 0 {
            inn.push(data_in);
        }
        self.post_chain(2, &out, &inn)
    }

    fn tmf(&mut self, subtype: u32, lun: [u8; 8]) -> u8 {
        let bufs = self.post(0, &[&ControlRequest::encode_tmf(subtype, lun, 0)], &[1]);
        self.wait_used(0);
        self.read(bufs[0], 1)[0]
    }
}

#[derive(Debug)]
struct Reply {
    status: u8,
    response: u8,
    resid: u32,
    sense: Vec<u8>,
    data: Vec<u8>,
}

/// Sense key, ASC, ASCQ of fixed-format sense.
fn sense_triple(sense: &[u8]) -> (u8, u8, u8) {
    assert!(sense.len() >= 14, "sense too short: {sense:?}");
    (sense[2] & 0x0f, sense[12], sense[13])
}

struct Fixture {
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    disk: std::path::PathBuf,
    target: Arc<Target>,
    device: Arc<VhostScsiDevice>,
}

fn fixture() -> Fixture {
    fixture_with_faults(&[])
}

/// The fixture with fault rules (`fault=` syntax) on LUN 1's store.
fn fixture_with_faults(faults: &[&str]) -> Fixture {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; (DISK_BLOCKS * 512) as usize]).unwrap();
    let mut spec = rtgt_backstore::BackstoreSpec::new(rtgt_backstore::BackstoreKind::Rdwr, Some(disk.clone()));
    spec.faults = faults.iter().map(|r| rtgt_backstore::FaultRule::parse(r).unwrap()).collect();
    let store = rtgt_backstore::open(spec).unwrap();
    let target = Target::new(1, "vm".into());
    target.add_lun(1, Arc::new(LogicalUnit::new(LunConfig::disk(1, 1), Some(store)))).unwrap();
    let socket = dir.path().join("vm.sock");
    let device = VhostScsiDevice::start(target.clone(), DeviceConfig::new(&socket), runtime.handle().clone()).unwrap();
    Fixture { _runtime: runtime, _dir: dir, socket, disk, target, device }
}

const LUN1: [u8; 8] = [1, 0, 0x40, 1, 0, 0, 0, 0];

#[test]
fn guest_commands_over_vhost_user() {
    let f = fixture();
    let mut vmm = Vmm::connect(&f.socket);

    // INQUIRY is never held up by a unit attention; 36 bytes asked into a 96-byte buffer leave 60
    // bytes of residual.
    let r = vmm.command(LUN1, &[0x12, 0, 0, 0, 36, 0], &[], 96);
    assert_eq!((r.status, r.response), (0, 0), "{r:?}");
    assert_eq!(r.data[0], 0x00, "direct-access device");
    assert_eq!(&r.data[8..16], b"IET     ");
    assert_eq!(&r.data[16..28], b"VIRTUAL-DISK");
    assert_eq!(r.resid, 60);
    assert!(f.device.connected());
    assert_eq!(f.target.nexuses().len(), 1, "the guest is one I_T nexus");

    // The new nexus's first TEST UNIT READY reports the power-on unit attention (SAM-5 6.6).
    let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(r.status, 0x02);
    assert_eq!(sense_triple(&r.sense), (0x06, 0x29, 0x00));
    let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!((r.status, r.response), (0, 0));

    // READ CAPACITY(10): last LBA and block length.
    let r = vmm.command(LUN1, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8);
    assert_eq!(r.status, 0);
    assert_eq!(r.data, [(DISK_BLOCKS - 1).to_be_bytes()[4..].to_vec(), 512u32.to_be_bytes().to_vec()].concat());

    // WRITE(10) 4 blocks at LBA 3, then READ(10) them back; the file holds them too.
    let pattern: Vec<u8> = (0..2048u32).map(|i| (i * 7 + 1) as u8).collect();
    let r = vmm.command(LUN1, &[0x2a, 0, 0, 0, 0, 3, 0, 0, 4, 0], &pattern, 0);
    assert_eq!((r.status, r.response, r.resid), (0, 0, 0), "{r:?}");
    let r = vmm.command(LUN1, &[0x28, 0, 0, 0, 0, 3, 0, 0, 4, 0], &[], 2048);
    assert_eq!((r.status, r.response, r.resid), (0, 0, 0));
    assert_eq!(r.data, pattern);
    let r = vmm.command(LUN1, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0); // SYNCHRONIZE CACHE
    assert_eq!(r.status, 0);
    let file = std::fs::read(&f.disk).unwrap();
    assert_eq!(&file[3 * 512..7 * 512], &pattern[..]);

    // A read past the end: CHECK CONDITION, ILLEGAL REQUEST, LBA OUT OF RANGE (21h/00h).
    let r = vmm.command(LUN1, &[0x28, 0, 0, 0, 0x08, 0, 0, 0, 1, 0], &[], 512);
    assert_eq!(r.status, 0x02);
    assert_eq!(sense_triple(&r.sense), (0x05, 0x21, 0x00));

    // An unknown opcode: INVALID COMMAND OPERATION CODE (20h/00h), sense length in the header.
    let r = vmm.command(LUN1, &[0xff, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!((r.status, r.response), (0x02, 0));
    assert_eq!(sense_triple(&r.sense), (0x05, 0x20, 0x00));

    // Another target number: BAD_TARGET, no SCSI status.
    let r = vmm.command([1, 3, 0x40, 1, 0, 0, 0, 0], &[0x12, 0, 0, 0, 36, 0], &[], 36);
    assert_eq!(r.response, 3);

    // A LUN that does not exist: INQUIRY answers peripheral qualifier 3.
    let r = vmm.command(VirtioLun::encode(9), &[0x12, 0, 0, 0, 36, 0], &[], 36);
    assert_eq!((r.status, r.response), (0, 0));
    assert_eq!(r.data[0], 0x7f);

    // LOGICAL UNIT RESET succeeds and leaves a BUS DEVICE RESET unit attention (29h/03h).
    assert_eq!(vmm.tmf(5, LUN1), 0);
    let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(sense_triple(&r.sense), (0x06, 0x29, 0x03));
    // ABORT TASK of a finished task: FUNCTION COMPLETE. CLEAR ACA: rejected (no NACA support).
    assert_eq!(vmm.tmf(0, LUN1), 0);
    assert_eq!(vmm.tmf(2, LUN1), 11);
    // A TMF for a missing LUN: INCORRECT LUN.
    assert_eq!(vmm.tmf(5, VirtioLun::encode(9)), 12);
    // Every function addressed to it, including ABORT TASK, QUERY TASK and QUERY TASK SET (SAM-5
    // 7.1: INCORRECT LOGICAL UNIT NUMBER), as ABORT TASK SET already was.
    for function in [0, 1, 3, 6, 7] {
        assert_eq!(vmm.tmf(function, VirtioLun::encode(9)), 12, "TMF subtype {function}");
    }

    // Hotplug: LUN 2 appears; the guest's event buffer receives TRANSPORT_RESET / RESCAN.
    let store = rtgt_backstore::open(rtgt_backstore::BackstoreSpec {
        size: Some(1 << 20),
        ..rtgt_backstore::BackstoreSpec::new(rtgt_backstore::BackstoreKind::Memory, None)
    })
    .unwrap();
    f.target.add_lun(2, Arc::new(LogicalUnit::new(LunConfig::disk(1, 2), Some(store)))).unwrap();
    f.device.notify(LunEvent::Added(2));
    let bufs = vmm.post(1, &[], &[16]);
    let (_, len) = vmm.wait_used(1);
    assert_eq!(len, 16);
    let event = vmm.read(bufs[0], 16);
    assert_eq!(&event[0..4], &1u32.to_le_bytes(), "VIRTIO_SCSI_T_TRANSPORT_RESET");
    assert_eq!(&event[4..12], &[1, 0, 0x40, 2, 0, 0, 0, 0]);
    assert_eq!(&event[12..16], &1u32.to_le_bytes(), "VIRTIO_SCSI_EVT_RESET_RESCAN");

    // A resize: PARAM_CHANGE carrying CAPACITY DATA HAS CHANGED (ASC 2Ah, ASCQ 09h) in its reason.
    f.device.notify(LunEvent::CapacityChanged(1));
    let bufs = vmm.post(1, &[], &[16]);
    vmm.wait_used(1);
    let event = vmm.read(bufs[0], 16);
    assert_eq!(&event[0..4], &3u32.to_le_bytes(), "VIRTIO_SCSI_T_PARAM_CHANGE");
    assert_eq!(&event[4..12], &LUN1);
    assert_eq!(&event[12..16], &[0x2a, 0x09, 0, 0]);

    // LUN 2 goes away: TRANSPORT_RESET / REMOVED. The event waits for a buffer posted later.
    f.target.remove_lun(2).unwrap();
    f.device.notify(LunEvent::Removed(2));
    std::thread::sleep(Duration::from_millis(20));
    let bufs = vmm.post(1, &[], &[16]);
    vmm.wait_used(1);
    let event = vmm.read(bufs[0], 16);
    assert_eq!(&event[0..4], &1u32.to_le_bytes());
    assert_eq!(&event[4..12], &[1, 0, 0x40, 2, 0, 0, 0, 0]);
    assert_eq!(&event[12..16], &2u32.to_le_bytes(), "VIRTIO_SCSI_EVT_RESET_REMOVED");
}

#[test]
fn a_restarted_vmm_finds_its_data() {
    let f = fixture();
    let pattern = vec![0x5au8; 512];
    {
        let mut vmm = Vmm::connect(&f.socket);
        let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
        assert_eq!(sense_triple(&r.sense), (0x06, 0x29, 0x00));
        let r = vmm.command(LUN1, &[0x2a, 0, 0, 0, 0, 9, 0, 0, 1, 0], &pattern, 0);
        assert_eq!((r.status, r.response), (0, 0));
        // The VMM goes away (QEMU stops): its connection closes with the frontend.
        drop(vmm);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.device.connected() || !f.target.nexuses().is_empty() {
        assert!(Instant::now() < deadline, "the old guest's nexus was not removed");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The new connection is a new I_T nexus: it starts with its own power-on unit attention.
    let mut vmm = Vmm::connect(&f.socket);
    let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(sense_triple(&r.sense), (0x06, 0x29, 0x00));
    let r = vmm.command(LUN1, &[0x28, 0, 0, 0, 0, 9, 0, 0, 1, 0], &[], 512);
    assert_eq!((r.status, r.response), (0, 0), "{r:?}");
    assert_eq!(r.data, pattern);
    assert_eq!(f.device.connections(), 2);
    f.device.stop();
    assert!(!f.socket.exists());
    drop(vmm.frontend);
}

#[test]
fn commands_in_flight_together_all_complete() {
    let f = fixture();
    let mut vmm = Vmm::connect(&f.socket);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));
    // Five WRITEs posted before any answer (three descriptors each fill most of the 16-entry ring);
    // the device may finish them in any order, each used entry names its own chain.
    let blocks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i + 0x10; 512]).collect();
    let mut pending = std::collections::HashMap::new();
    for (i, block) in blocks.iter().enumerate() {
        let (head, bufs) = vmm.submit(&[0x2a, 0, 0, 0, 0, 20 + i as u8, 0, 0, 1, 0], block, 0);
        pending.insert(u32::from(head), bufs[0]);
    }
    for _ in 0..blocks.len() {
        let (head, _) = vmm.wait_used(2);
        let response = pending.remove(&head).expect("a used entry for a posted chain");
        let (_, _, status, resp, _) = ResponseHeader::parse(&vmm.read(response, RESPONSE_HEADER_LEN)).unwrap();
        assert_eq!((status, resp), (0, 0));
    }
    assert!(pending.is_empty());
    // And five READs of them, again all in flight at once.
    let mut reads = std::collections::HashMap::new();
    for i in 0..blocks.len() {
        let (head, bufs) = vmm.submit(&[0x28, 0, 0, 0, 0, 20 + i as u8, 0, 0, 1, 0], &[], 512);
        reads.insert(u32::from(head), (i, bufs));
    }
    for _ in 0..blocks.len() {
        let (head, _) = vmm.wait_used(2);
        let (i, bufs) = reads.remove(&head).expect("a used entry for a posted chain");
        assert_eq!(vmm.read(bufs[1], 512), blocks[i]);
    }
}

/// A guest's request whose data-out descriptors all alias one region of guest memory and add up to
/// almost 4 GiB (virtio-queue ends a chain at 2^32 bytes, virtio 1.2 2.7.5.2; an indirect table
/// repeats the trick with a small region, and each command in flight did it again): the device must
/// not size anything from that sum. It answers OVERRUN without running the WRITE, and goes on
/// serving the guest.
#[test]
fn aliased_giant_data_out_descriptors_are_refused() {
    const GUEST_MEMORY: usize = 512 << 20;
    const ALIASES: usize = 13;
    const ALIAS_LEN: u32 = 300 << 20;
    // The aliased region starts at 128 MiB, clear of the rings and the other buffers.
    const ALIAS_AT: u64 = 128 << 20;
    let f = fixture();
    let mut vmm = Vmm::connect_with_memory(&f.socket, GUEST_MEMORY);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));

    // WRITE(10) of 8 blocks at LBA 0: the header, thirteen 300 MiB descriptors at the same guest
    // address (3.8 GiB of "data-out"), then the response buffer: fifteen descriptors of sixteen.
    let mut cdb = [0u8; CDB_SIZE];
    cdb[..10].copy_from_slice(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 8, 0]);
    let header = RequestHeader { lun: LUN1, id: 9, task_attr: 0, cdb }.encode();
    let header_at = vmm.alloc(header.len());
    vmm.mem.write_slice(&header, GuestAddress(header_at)).unwrap();
    vmm.mem.write_slice(&[0xeeu8; 4096], GuestAddress(ALIAS_AT)).unwrap();
    let response_at = vmm.alloc(RESPONSE_HEADER_LEN);
    let mut descs = vec![(header_at, header.len() as u32, false)];
    descs.extend(std::iter::repeat_n((ALIAS_AT, ALIAS_LEN, false), ALIASES));
    descs.push((response_at, RESPONSE_HEADER_LEN as u32, true));
    let head = vmm.post_descriptors(2, &descs);
    let (used_head, used_len) = vmm.wait_used(2);
    assert_eq!((used_head, used_len), (u32::from(head), RESPONSE_HEADER_LEN as u32));
    let (_, _, status, response, _) = ResponseHeader::parse(&vmm.read(response_at, RESPONSE_HEADER_LEN)).unwrap();
    // virtio 1.2 5.6.6.1: VIRTIO_SCSI_S_OVERRUN, and no SCSI status: the command never ran.
    assert_eq!((status, response), (0, 1));
    let file = std::fs::read(&f.disk).unwrap();
    assert!(file[..8 * 512].iter().all(|&b| b == 0), "nothing of the refused WRITE reached the disk");

    // The device goes on serving this guest: a WRITE and a READ of the same blocks.
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i * 13 + 5) as u8).collect();
    let r = vmm.command(LUN1, &[0x2a, 0, 0, 0, 0, 0, 0, 0, 8, 0], &pattern, 0);
    assert_eq!((r.status, r.response, r.resid), (0, 0, 0), "{r:?}");
    let r = vmm.command(LUN1, &[0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], &[], 4096);
    assert_eq!((r.status, r.response), (0, 0), "{r:?}");
    assert_eq!(r.data, pattern);
}

/// A guest whose data-out descriptors hold fewer bytes than the CDB's transfer length: data that
/// ends inside a block is refused by the SCSI core (CHECK CONDITION, ILLEGAL REQUEST, INVALID FIELD
/// IN INFORMATION UNIT) and nothing is written, since a block cannot be written in part; data that
/// ends on a block boundary is written for the whole blocks that arrived.
#[test]
fn data_out_shorter_than_the_cdb_is_written_in_whole_blocks_only() {
    let f = fixture();
    let mut vmm = Vmm::connect(&f.socket);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));
    let old: Vec<u8> = (0..1024u32).map(|i| (i * 3 + 1) as u8).collect();
    let r = vmm.command(LUN1, &[0x2a, 0, 0, 0, 0, 40, 0, 0, 2, 0], &old, 0);
    assert_eq!((r.status, r.response), (0, 0), "{r:?}");

    // WRITE(10) of one block at LBA 40 with 200 bytes of data-out.
    let r = vmm.command(LUN1, &[0x2a, 0, 0, 0, 0, 40, 0, 0, 1, 0], &[0xab; 200], 0);
    assert_eq!((r.status, r.response), (0x02, 0), "{r:?}");
    assert_eq!(sense_triple(&r.sense), (0x05, 0x0e, 0x03));
    let r = vmm.command(LUN1, &[0x28, 0, 0, 0, 0, 40, 0, 0, 1, 0], &[], 512);
    assert_eq!((r.status, r.response), (0, 0), "{r:?}");
    assert_eq!(r.data, old[..512], "the refused WRITE changed the block");

    // WRITE(10) of two blocks with one block of data-out: that block is written, the next is not.
    let r = vmm.command(LUN1, &[0x2a, 0, 0, 0, 0, 40, 0, 0, 2, 0], &[0xcd; 512], 0);
    assert_eq!((r.status, r.response), (0, 0), "{r:?}");
    let r = vmm.command(LUN1, &[0x28, 0, 0, 0, 0, 40, 0, 0, 2, 0], &[], 1024);
    assert_eq!((r.status, r.response), (0, 0), "{r:?}");
    assert_eq!(r.data[..512], [0xcd; 512]);
    assert_eq!(r.data[512..], old[512..], "a block with no data-out was written");
    let file = std::fs::read(&f.disk).unwrap();
    assert_eq!(file[40 * 512..41 * 512], [0xcd; 512]);
    assert_eq!(file[41 * 512..42 * 512], old[512..]);
}
