//! One guest connection's device: the `VhostUserBackend` the rust-vmm daemon drives. It owns the
//! negotiated features, the guest memory map and the guest's I_T nexus, whose task set (in the SCSI
//! core) holds the commands in flight: each enters it with its `InFlight` as abort handle.
//!
//! One epoll thread (the daemon's) pops descriptor chains from every queue; each SCSI command then
//! runs as its own task on the tokio runtime, so a slow read never holds up the commands queued
//! behind it, on the same queue or another. The task waits for room in the device's write budget,
//! copies the data-out (at most MAXIMUM TRANSFER LENGTH: larger chains are refused on the epoll
//! thread), then writes the response into the chain and adds it to the used ring itself. The control queue (task management) and the event queue are handled
//! on the epoll thread (`control`, `events`).

use crate::controller::Shared;
use crate::wire::{RequestHeader, Response, ResponseHeader, VirtioLun, REQUEST_HEADER_LEN, RESPONSE_HEADER_LEN};
use parking_lot::Mutex;
use rtgt_scsi::{AbortCause, AbortTask, Nexus};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock, VringT};
use virtio_bindings::virtio_config::{VIRTIO_F_ANY_LAYOUT, VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_VERSION_1};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_bindings::virtio_scsi::{VIRTIO_SCSI_F_CHANGE, VIRTIO_SCSI_F_HOTPLUG, VIRTIO_SCSI_F_INOUT};
use virtio_queue::{DescriptorChain, QueueT};
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryLoadGuard, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier};

pub(crate) type Memory = GuestMemoryAtomic<GuestMemoryMmap>;
pub(crate) type Chain = DescriptorChain<GuestMemoryLoadGuard<GuestMemoryMmap>>;

/// virtio 1.2 5.6.2: queue 0 is the control queue, 1 the event queue, 2.. the request queues.
pub const CONTROL_QUEUE: u16 = 0;
pub const EVENT_QUEUE: u16 = 1;
pub const FIRST_REQUEST_QUEUE: u16 = 2;
/// Descriptors per queue; Linux sizes its requests from seg_max = this - 2.
pub const QUEUE_SIZE: usize = 1024;
/// The epoll event id of the "events pending" notifier (ids up to num_queues are the library's).
pub(crate) fn events_pending_id(num_queues: usize) -> u64 {
    num_queues as u64 + 1
}

/// The most data-out one request may carry: the MAXIMUM TRANSFER LENGTH every logical unit
/// advertises (VPD Block Limits) and the iSCSI side's per-command bound.
const MAX_DATA_OUT: usize = rtgt_scsi::MAX_TRANSFER_BYTES as usize;

/// How long GET_VRING_BASE waits for a queue's commands before giving up on them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A command whose response has not been written yet. Whoever takes `completion` first (the task
/// when the command ends, or a task management function aborting it) answers the guest.
pub(crate) struct InFlight {
    pub completion: Mutex<Option<(Chain, VringRwLock)>>,
    pub task: Mutex<Option<tokio::task::AbortHandle>>,
}

/// The task set aborts a command: it is answered at once, on the thread of the task management
/// function (before the function's own answer, the order Linux's virtio_scsi relies on), and its
/// task stops. A command lost with its device is not answered: guest memory may already belong to
/// something else.
impl AbortTask for InFlight {
    fn abort(&self, cause: AbortCause) {
        let answer = self.completion.lock().take();
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        let response = match cause {
            AbortCause::Aborted => Response::Aborted,
            AbortCause::Reset => Response::Reset,
            AbortCause::Lost => return,
        };
        if let Some((chain, vring)) = answer {
            complete(chain, &vring, &ResponseHeader::only(response), &[]);
        }
    }
}

impl InFlight {
    /// The command's data-out, at most `len` bytes (the guest may have rewritten its descriptors
    /// since they were measured). None when the command was already answered (aborted, or the
    /// device reset) or its buffers cannot be read; the guest then has its answer.
    fn copy_data_out(&self, len: usize) -> Option<Vec<u8>> {
        // Held while copying, so an abort or reset never answers a chain still being read.
        let mut completion = self.completion.lock();
        let (chain, _) = completion.as_ref()?;
        if len == 0 {
            return Some(Vec::new());
        }
        let mut data = Vec::with_capacity(len);
        let copied = chain.clone().reader(chain.memory()).ok().and_then(|mut reader| {
            let mut body = reader.split_at(REQUEST_HEADER_LEN).ok()?;
            body.by_ref().take(len as u64).read_to_end(&mut data).ok()
        });
        if copied.is_some() {
            return Some(data);
        }
        if let Some((chain, vring)) = completion.take() {
            complete(chain, &vring, &ResponseHeader::only(Response::Failure), &[]);
        }
        None
    }
}

pub(crate) struct Connection {
    pub shared: Arc<Shared>,
    pub mem: Mutex<Option<Memory>>,
    pub acked_features: AtomicU64,
    pub event_idx: AtomicBool,
    pub nexus: Mutex<Option<Arc<Nexus>>>,
}

/// The backend handed to `VhostUserDaemon`: a handle on one connection's state.
#[derive(Clone)]
pub struct ScsiBackend {
    pub(crate) conn: Arc<Connection>,
}

impl ScsiBackend {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ScsiBackend {
            conn: Arc::new(Connection {
                shared,
                mem: Mutex::new(None),
                acked_features: AtomicU64::new(0),
                event_idx: AtomicBool::new(false),
                nexus: Mutex::new(None),
            }),
        }
    }

    /// The features this device offers. QEMU 7.2 passes on whatever the guest accepted, and the
    /// library refuses a feature not offered here, so everything virtio-scsi guests commonly accept
    /// is listed (INOUT and ANY_LAYOUT cost nothing: requests are parsed as byte streams).
    pub fn device_features() -> u64 {
        (1 << VIRTIO_F_VERSION_1)
            | (1 << VIRTIO_F_NOTIFY_ON_EMPTY)
            | (1 << VIRTIO_F_ANY_LAYOUT)
            | (1 << VIRTIO_RING_F_INDIRECT_DESC)
            | (1 << VIRTIO_RING_F_EVENT_IDX)
            | (1 << VIRTIO_SCSI_F_INOUT)
            | (1 << VIRTIO_SCSI_F_HOTPLUG)
            | (1 << VIRTIO_SCSI_F_CHANGE)
            | VhostUserVirtioFeatures::PROTOCOL_FEATURES.bits()
    }
}

impl Connection {
    pub(crate) fn has_feature(&self, bit: u32) -> bool {
        self.acked_features.load(Ordering::Relaxed) & (1 << bit) != 0
    }

    pub(crate) fn memory(&self) -> Option<Memory> {
        self.mem.lock().clone()
    }

    /// Pop every available chain of `vring`, re-checking after re-enabling notifications so a
    /// request that arrives in between is not left waiting (virtio 1.2 2.7.10).
    pub(crate) fn drain_queue(&self, vring: &VringRwLock, mut each: impl FnMut(Chain)) {
        let Some(mem) = self.memory() else { return };
        let event_idx = self.event_idx.load(Ordering::Relaxed);
        loop {
            if event_idx {
                let _ = vring.disable_notification();
            }
            loop {
                let chain = vring.get_mut().get_queue_mut().pop_descriptor_chain(mem.memory());
                match chain {
                    Some(chain) => each(chain),
                    None => break,
                }
            }
            if !event_idx {
                break;
            }
            match vring.enable_notification() {
                Ok(true) => continue,
                _ => break,
            }
        }
    }

    /// One request queue kick: start every new command.
    fn process_requests(self: &Arc<Self>, queue: u16, vring: &VringRwLock) {
        self.drain_queue(vring, |chain| self.start_command(queue, vring, chain));
    }

    fn start_command(self: &Arc<Self>, queue: u16, vring: &VringRwLock, chain: Chain) {
        let mut reader = match chain.clone().reader(chain.memory()) {
            Ok(reader) => reader,
            Err(err) => {
                tracing::warn!(%err, "malformed request chain");
                return complete(chain, vring, &ResponseHeader::only(Response::Failure), &[]);
            }
        };
        let mut head = [0u8; REQUEST_HEADER_LEN];
        let header = match reader.read_exact(&mut head) {
            Ok(()) => RequestHeader::parse(&head),
            Err(_) => None,
        };
        let Some(header) = header else {
            // Too short to be a request: nothing can be answered but a failure.
            return complete(chain, vring, &ResponseHeader::only(Response::Failure), &[]);
        };
        let lun = match VirtioLun::decode(header.lun) {
            VirtioLun::Lun(lun) => lun,
            VirtioLun::BadTarget => {
                return complete(chain, vring, &ResponseHeader::only(Response::BadTarget), &[]);
            }
        };
        let Some(nexus) = self.nexus.lock().clone() else {
            return complete(chain, vring, &ResponseHeader::only(Response::TransportFailure), &[]);
        };
        // What the guest's descriptors add up to is its own say: they may all alias one region.
        // No logical unit takes more data-out for one command than MAXIMUM TRANSFER LENGTH (and
        // Linux never sends more than max_sectors), so a larger chain is refused before anything
        // is sized from it, without running the command: VIRTIO_SCSI_S_OVERRUN (virtio 1.2
        // 5.6.6.1: the CDB's transfer does not match the buffers).
        let data_out_len = reader.available_bytes();
        if data_out_len > MAX_DATA_OUT {
            tracing::info!(data_out_len, "request with more data-out than any command takes refused");
            return complete(chain, vring, &ResponseHeader::only(Response::Overrun), &[]);
        }
        let entry = Arc::new(InFlight { completion: Mutex::new(Some((chain, vring.clone()))), task: Mutex::new(None) });
        // The virtio request id is the task's tag; the queue is its channel (GET_VRING_BASE waits
        // for a queue's tasks).
        let task_id = nexus.tasks().start(header.id, lun, u64::from(queue), entry.clone());
        let target = self.shared.target.clone();
        let shared = self.shared.clone();
        let task_entry = entry.clone();
        let handle = self.shared.runtime.spawn(async move {
            // The data-out is copied only once the device's write budget has room for it; the
            // room comes back when this task ends (answered or aborted).
            let _budget = shared.write_budget.reserve(data_out_len).await;
            let Some(data_out) = task_entry.copy_data_out(data_out_len) else {
                nexus.tasks().end(task_id);
                return;
            };
            let mut data_in = Vec::new();
            let result = target.execute(&nexus, lun, &header.cdb, &data_out, &mut data_in).await;
            if let Some((chain, vring)) = task_entry.completion.lock().take() {
                let resid_out = (data_out.len() as u64).saturating_sub(u64::from(result.data_out_expected));
                let response = ResponseHeader {
                    resid: resid_out.min(u64::from(u32::MAX)) as u32,
                    status: result.status as u8,
                    response: Response::Ok,
                    sense: result.sense.unwrap_or_default(),
                };
                complete(chain, &vring, &response, &data_in);
            }
            nexus.tasks().end(task_id);
        });
        *entry.task.lock() = Some(handle.abort_handle());
    }

    /// The device was reset or the VMM is gone: stop every command without touching guest memory,
    /// which may already belong to something else.
    pub(crate) fn discard_all(&self) {
        if let Some(nexus) = self.nexus.lock().clone() {
            nexus.tasks().abort_all(AbortCause::Lost);
        }
    }

    /// GET_VRING_BASE: the queue stops; its commands must be answered first so the frontend reads a
    /// used index that covers them (a QEMU restart then loses nothing it was told was done).
    fn wait_queue_idle(&self, queue: u16) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let Some(nexus) = self.nexus.lock().clone() else { return };
        while nexus.tasks().on_channel(u64::from(queue)) {
            if Instant::now() > deadline {
                tracing::warn!(queue, "commands still running when the queue stopped");
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Write `header` and as much of `data_in` as the guest gave room for, then return the chain.
pub(crate) fn complete(chain: Chain, vring: &VringRwLock, header: &ResponseHeader, data_in: &[u8]) {
    let head = chain.head_index();
    let used = match chain.clone().writer(chain.memory()) {
        Ok(mut writer) => {
            let room = writer.available_bytes().saturating_sub(RESPONSE_HEADER_LEN);
            let mut header = header.clone();
            let sent = data_in.len().min(room);
            if header.response == Response::Ok && sent < data_in.len() {
                // virtio 1.2 5.6.6.1: the CDB asked for more than the buffers hold.
                header.response = Response::Overrun;
            }
            if header.response == Response::Ok && data_in.len() < room {
                // The guest sizes `room`; a residual past u32 says "all of it", not a wrapped value.
                let unused = u32::try_from(room - data_in.len()).unwrap_or(u32::MAX);
                header.resid = header.resid.saturating_add(unused);
            }
            let written = writer.write_all(&header.encode()).and_then(|()| writer.write_all(&data_in[..sent]));
            if let Err(err) = written {
                tracing::warn!(%err, "cannot write a response to guest memory");
            }
            writer.bytes_written() as u32
        }
        Err(err) => {
            tracing::warn!(%err, "malformed response buffers");
            0
        }
    };
    if let Err(err) = vring.add_used(head, used) {
        tracing::warn!(%err, "cannot return a descriptor chain");
        return;
    }
    if vring.needs_notification().unwrap_or(true) {
        if let Err(err) = vring.signal_used_queue() {
            tracing::debug!(%err, "cannot signal the guest");
        }
    }
}

impl VhostUserBackend for ScsiBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        usize::from(FIRST_REQUEST_QUEUE) + self.conn.shared.request_queues
    }

    fn max_queue_size(&self) -> usize {
        QUEUE_SIZE
    }

    fn features(&self) -> u64 {
        Self::device_features()
    }

    fn acked_features(&self, features: u64) {
        self.conn.acked_features.store(features, Ordering::Relaxed);
    }

    fn protocol_features(&self) -> VhostUserProtocolFeatures {
        VhostUserProtocolFeatures::MQ | VhostUserProtocolFeatures::CONFIG
    }

    fn set_event_idx(&self, enabled: bool) {
        self.conn.event_idx.store(enabled, Ordering::Relaxed);
    }

    fn get_config(&self, offset: u32, size: u32) -> Vec<u8> {
        let config = crate::wire::Config {
            num_queues: self.conn.shared.request_queues as u32,
            seg_max: QUEUE_SIZE as u32 - 2,
            max_sectors: 0xffff,
            cmd_per_lun: 128,
        }
        .encode();
        let start = (offset as usize).min(config.len());
        let end = start.saturating_add(size as usize).min(config.len());
        config[start..end].to_vec()
    }

    fn update_memory(&self, mem: Memory) -> std::io::Result<()> {
        *self.conn.mem.lock() = Some(mem);
        // The guest's memory map is the first thing QEMU sends once a VM owns the socket: from here
        // on the guest is an initiator, its own I_T nexus.
        let mut nexus = self.conn.nexus.lock();
        if nexus.is_none() {
            *nexus = Some(self.conn.shared.guest_connected());
        }
        Ok(())
    }

    fn reset_device(&self) {
        self.conn.discard_all();
    }

    fn stop_vring(&self, queue_index: u32) -> std::io::Result<()> {
        self.conn.wait_queue_idle(queue_index as u16);
        Ok(())
    }

    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        new_event_consumer_and_notifier(EventFlag::NONBLOCK).ok()
    }

    fn handle_event(
        &self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread: usize,
    ) -> std::io::Result<()> {
        if evset != EventSet::IN {
            return Ok(());
        }
        let conn = &self.conn;
        if u64::from(device_event) == events_pending_id(self.num_queues()) {
            conn.shared.events_consumed();
            if let Some(vring) = vrings.get(usize::from(EVENT_QUEUE)) {
                crate::events::deliver(conn, vring);
            }
            return Ok(());
        }
        let Some(vring) = vrings.get(usize::from(device_event)) else { return Ok(()) };
        match device_event {
            CONTROL_QUEUE => crate::control::process(conn, vring),
            EVENT_QUEUE => crate::events::deliver(conn, vring),
            queue => conn.process_requests(queue, vring),
        }
        Ok(())
    }
}
