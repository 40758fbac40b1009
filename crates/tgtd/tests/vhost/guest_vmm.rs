//! A minimal VMM for tests that talk SCSI to tgtd over vhost-user: guest memory in a shared file,
//! three split virtqueues (control, event, one request queue) set up through the vhost-user
//! protocol, and one virtio-scsi command at a time on the request queue. The guest's commands then
//! reach the daemon's SCSI core exactly as a VM's do. (crates/vhost/tests/vmm.rs has the fuller
//! driver for the transport's own tests.)

use rtgt_vhost::wire::{RequestHeader, ResponseHeader, CDB_SIZE, RESPONSE_HEADER_LEN};
use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

const MEM_SIZE: usize = 4 << 20;
const QSIZE: u16 = 16;
const QUEUES: usize = 3;
/// Queue `q`'s rings live at q * RING_SPAN; buffers start above them.
const RING_SPAN: u64 = 0x2000;
const DATA: u64 = 0x10000;
const REQUEST_QUEUE: usize = 2;
/// VIRTIO_RING_F_EVENT_IDX: left out, this driver kicks and polls plainly.
const EVENT_IDX: u64 = 1 << 29;

pub struct Vmm {
    mem: GuestMemoryMmap,
    _frontend: Frontend,
    kicks: Vec<EventFd>,
    _calls: Vec<EventFd>,
    avail_idx: u16,
    used_seen: u16,
}

/// What came back for one command.
#[derive(Debug)]
pub struct Reply {
    pub status: u8,
    pub sense: Vec<u8>,
    pub data: Vec<u8>,
}

impl Reply {
    /// Sense key, ASC and ASCQ (fixed format), or zeros without sense.
    pub fn sense_code(&self) -> (u8, u8, u8) {
        match self.sense.len() {
            14.. => (self.sense[2] & 0x0f, self.sense[12], self.sense[13]),
            _ => (0, 0, 0),
        }
    }
}

fn desc(q: usize) -> u64 {
    q as u64 * RING_SPAN
}
fn avail(q: usize) -> u64 {
    desc(q) + 16 * u64::from(QSIZE)
}
fn used(q: usize) -> u64 {
    desc(q) + 0x1000
}

impl Vmm {
    pub fn connect(socket: &std::path::Path) -> Vmm {
        let file = tempfile::tempfile().unwrap();
        file.set_len(MEM_SIZE as u64).unwrap();
        let mem: GuestMemoryMmap =
            GuestMemoryMmap::from_ranges_with_files(&[(GuestAddress(0), MEM_SIZE, Some(FileOffset::new(file, 0)))])
                .unwrap();
        let mut frontend = Frontend::connect(socket, QUEUES as u64).unwrap();
        frontend.set_owner().unwrap();
        let offered = frontend.get_features().unwrap();
        frontend.set_features(offered & !EVENT_IDX).unwrap();
        let proto = frontend.get_protocol_features().unwrap();
        frontend.set_protocol_features(proto).unwrap();
        let region = VhostUserMemoryRegionInfo::from_guest_region(mem.find_region(GuestAddress(0)).unwrap()).unwrap();
        frontend.set_mem_table(&[region]).unwrap();
        let host = |gpa: u64| mem.get_host_address(GuestAddress(gpa)).unwrap() as u64;
        let (mut kicks, mut calls) = (Vec::new(), Vec::new());
        for q in 0..QUEUES {
            let (kick, call) = (EventFd::new(0).unwrap(), EventFd::new(0).unwrap());
            frontend.set_vring_num(q, QSIZE).unwrap();
            let config = VringConfigData {
                queue_max_size: QSIZE,
                queue_size: QSIZE,
                flags: 0,
                desc_table_addr: host(desc(q)),
                used_ring_addr: host(used(q)),
                avail_ring_addr: host(avail(q)),
                log_addr: None,
            };
            frontend.set_vring_addr(q, &config).unwrap();
            frontend.set_vring_base(q, 0).unwrap();
            frontend.set_vring_call(q, &call).unwrap();
            frontend.set_vring_kick(q, &kick).unwrap();
            frontend.set_vring_enable(q, true).unwrap();
            kicks.push(kick);
            calls.push(call);
        }
        Vmm { mem, _frontend: frontend, kicks, _calls: calls, avail_idx: 0, used_seen: 0 }
    }

    /// One SCSI command to `lun` (target 0) with up to `data_in` bytes back; waits for its answer.
    pub fn command(&mut self, lun: u64, cdb: &[u8], data_in: usize) -> Reply {
        assert!(DATA as usize + 512 + RESPONSE_HEADER_LEN + data_in <= MEM_SIZE, "data-in too large");
        let mut c = [0u8; CDB_SIZE];
        c[..cdb.len()].copy_from_slice(cdb);
        let header = RequestHeader { lun: rtgt_vhost::wire::VirtioLun::encode(lun), id: 1, task_attr: 0, cdb: c };
        let header = header.encode();
        // One command at a time: the same three buffers and descriptors every time.
        let (request_at, response_at, data_at) = (DATA, DATA + 256, DATA + 512);
        self.mem.write_slice(&header, GuestAddress(request_at)).unwrap();
        self.mem.write_slice(&vec![0u8; RESPONSE_HEADER_LEN + data_in], GuestAddress(response_at)).unwrap();
        let mut descs = vec![(request_at, header.len() as u32, false), (response_at, RESPONSE_HEADER_LEN as u32, true)];
        if data_in > 0 {
            descs.push((data_at, data_in as u32, true));
        }
        let q = REQUEST_QUEUE;
        for (i, &(addr, len, write)) in descs.iter().enumerate() {
            let flags: u16 = if i + 1 < descs.len() { 1 } else { 0 } | if write { 2 } else { 0 };
            let d = desc(q) + 16 * i as u64;
            self.mem.write_obj(addr, GuestAddress(d)).unwrap();
            self.mem.write_obj(len, GuestAddress(d + 8)).unwrap();
            self.mem.write_obj(flags, GuestAddress(d + 12)).unwrap();
            self.mem.write_obj(i as u16 + 1, GuestAddress(d + 14)).unwrap();
        }
        let slot = avail(q) + 4 + 2 * u64::from(self.avail_idx % QSIZE);
        self.mem.write_obj(0u16, GuestAddress(slot)).unwrap();
        fence(Ordering::SeqCst);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.mem.write_obj(self.avail_idx, GuestAddress(avail(q) + 2)).unwrap();
        fence(Ordering::SeqCst);
        self.kicks[q].write(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let idx: u16 = self.mem.read_obj(GuestAddress(used(q) + 2)).unwrap();
            if idx != self.used_seen {
                self.used_seen = idx;
                break;
            }
            assert!(Instant::now() < deadline, "no answer from the device");
            std::thread::sleep(Duration::from_millis(1));
        }
        fence(Ordering::SeqCst);
        let mut response = vec![0u8; RESPONSE_HEADER_LEN];
        self.mem.read_slice(&mut response, GuestAddress(response_at)).unwrap();
        let (_, resid, status, _, sense) = ResponseHeader::parse(&response).unwrap();
        let mut data = vec![0u8; data_in];
        self.mem.read_slice(&mut data, GuestAddress(data_at)).unwrap();
        data.truncate(data_in - (resid as usize).min(data_in));
        Reply { status, sense, data }
    }
}
