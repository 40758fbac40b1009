//! The `VhostUserBackend` the rust-vmm daemon drives for one guest connection: the features and
//! configuration the device offers, and the dispatch of each queue's kicks to its module. One epoll
//! thread (the daemon's) pops descriptor chains from every queue: the request queues start
//! commands (`request_queue`), the control queue (task management, `control_queue`) and the event
//! queue (`event_queue`) are answered on that thread.

use crate::connection::{Connection, Memory, DRAIN_TIMEOUT};
use crate::control_queue::DeferredTmfs;
use crate::device_state::DeviceState;
use crate::wire::{CONFIG_CDB_SIZE_AT, CONFIG_LEN, CONFIG_SENSE_SIZE_AT};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use vhost::vhost_user::message::{VhostUserProtocolFeatures, VhostUserVirtioFeatures};
use vhost_user_backend::{VhostUserBackend, VringRwLock};
use virtio_bindings::virtio_config::{VIRTIO_F_ANY_LAYOUT, VIRTIO_F_NOTIFY_ON_EMPTY, VIRTIO_F_VERSION_1};
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use virtio_bindings::virtio_scsi::{VIRTIO_SCSI_F_CHANGE, VIRTIO_SCSI_F_HOTPLUG, VIRTIO_SCSI_F_INOUT};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{EventConsumer, EventNotifier};

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
/// The epoll event id of the connection's "stop" notifier, which ends its epoll threads.
pub(crate) fn stop_id(num_queues: usize) -> u64 {
    num_queues as u64 + 2
}

/// The backend handed to `VhostUserDaemon`: a handle on one connection's state.
#[derive(Clone)]
pub struct ScsiBackend {
    pub(crate) conn: Arc<Connection>,
    /// The control queue's answers that wait for aborted commands (`control_queue`).
    pub(crate) deferred_tmfs: Arc<DeferredTmfs>,
}

impl ScsiBackend {
    pub(crate) fn new(device: Arc<DeviceState>) -> Self {
        ScsiBackend { conn: Arc::new(Connection::new(device)), deferred_tmfs: Arc::default() }
    }

    /// The device configuration space (virtio 1.2 5.6.4).
    fn config_space(&self) -> [u8; CONFIG_LEN] {
        crate::wire::Config {
            num_queues: self.conn.device.request_queues as u32,
            seg_max: QUEUE_SIZE as u32 - 2,
            max_sectors: 0xffff,
            cmd_per_lun: 128,
        }
        .encode()
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

impl VhostUserBackend for ScsiBackend {
    type Bitmap = ();
    type Vring = VringRwLock;

    fn num_queues(&self) -> usize {
        usize::from(FIRST_REQUEST_QUEUE) + self.conn.device.request_queues
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
        let config = self.config_space();
        let start = (offset as usize).min(config.len());
        let end = start.saturating_add(size as usize).min(config.len());
        config[start..end].to_vec()
    }

    /// virtio 1.2 5.6.4: the driver may write sense_size and cdb_size. Requests and responses are
    /// laid out with the defaults only (`wire`), and going on with another size would misread every
    /// request (a 16-byte cdb_size: each data-out's first 16 bytes taken for the CDB's tail and the
    /// written data shifted). A change is refused with an error, which ends the connection, as QEMU
    /// stops a VM whose guest tries it. Writing the values in force, or to the read-only fields
    /// (which a driver must not write), changes nothing.
    fn set_config(&self, offset: u32, buf: &[u8]) -> std::io::Result<()> {
        let config = self.config_space();
        let writable = CONFIG_SENSE_SIZE_AT..CONFIG_CDB_SIZE_AT + 4;
        let changed = buf.iter().enumerate().any(|(i, &byte)| {
            let at = (offset as usize).saturating_add(i);
            writable.contains(&at) && config[at] != byte
        });
        if changed {
            tracing::warn!(offset, len = buf.len(), "the guest changed sense_size or cdb_size: connection ended");
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "virtio-scsi sense_size and cdb_size cannot be changed",
            ));
        }
        Ok(())
    }

    fn update_memory(&self, mem: Memory) -> std::io::Result<()> {
        *self.conn.mem.lock() = Some(mem);
        // The guest's memory map is the first thing QEMU sends once a VM owns the socket: from here
        // on the guest is an initiator, its own I_T nexus.
        let mut nexus = self.conn.nexus.lock();
        if nexus.is_none() {
            *nexus = Some(self.conn.device.guest_connected());
        }
        Ok(())
    }

    /// Nothing lost with the device is answered: neither its commands nor its task management
    /// functions.
    fn reset_device(&self) {
        self.deferred_tmfs.discard();
        self.conn.discard_all();
    }

    /// GET_VRING_BASE: the queue's answers are written before its index is reported (see
    /// `Connection::wait_queue_idle`); on the control queue those are the deferred task management
    /// answers.
    fn stop_vring(&self, queue_index: u32) -> std::io::Result<()> {
        if queue_index == u32::from(CONTROL_QUEUE) {
            self.deferred_tmfs.wait_answered(Instant::now() + DRAIN_TIMEOUT);
        } else {
            self.conn.wait_queue_idle(queue_index as u16);
        }
        Ok(())
    }

    /// None: vhost-user-backend 0.24 registers the consumer of this pair in its epoll with
    /// `into_raw_fd` and never closes it, one eventfd lost per connection. The connection's own stop
    /// notifier (`device::serve` owns and closes it) ends the epoll threads instead, through
    /// `handle_event`.
    fn exit_event(&self, _thread_index: usize) -> Option<(EventConsumer, EventNotifier)> {
        None
    }

    fn handle_event(
        &self,
        device_event: u16,
        evset: EventSet,
        vrings: &[VringRwLock],
        _thread: usize,
    ) -> std::io::Result<()> {
        if u64::from(device_event) == stop_id(self.num_queues()) {
            // The library's epoll loop ends at the first error its backend returns.
            return Err(std::io::Error::other("the vhost-user connection ended"));
        }
        if evset != EventSet::IN {
            return Ok(());
        }
        let conn = &self.conn;
        if u64::from(device_event) == events_pending_id(self.num_queues()) {
            conn.device.events_consumed();
            if let Some(vring) = vrings.get(usize::from(EVENT_QUEUE)) {
                crate::event_queue::deliver(conn, vring);
            }
            return Ok(());
        }
        let Some(vring) = vrings.get(usize::from(device_event)) else { return Ok(()) };
        match device_event {
            CONTROL_QUEUE => crate::control_queue::process(conn, &self.deferred_tmfs, vring),
            EVENT_QUEUE => crate::event_queue::deliver(conn, vring),
            queue => crate::request_queue::process(conn, queue, vring),
        }
        Ok(())
    }
}
