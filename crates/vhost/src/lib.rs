//! rtgt's vhost-user-scsi transport: a VMM (QEMU's `vhost-user-scsi-pci`) hands a guest's
//! virtio-scsi queues to tgtd over a unix socket, and the guest's SCSI commands are answered from
//! its shared memory by the same `rtgt_scsi::Target` the iSCSI side serves.
//!
//! Layout, from the outside in: `device` (the public `VhostScsiDevice`: the socket's accept loop
//! and reconnection; `socket` creates the socket file safely), `device_state` (what the device's
//! successive connections share), `backend` (the rust-vmm `VhostUserBackend` of one connection:
//! features, configuration, dispatch of queue kicks), `connection` (one connection's memory,
//! features and nexus), and one module per virtio-scsi queue: `request_queue` (SCSI commands),
//! `control_queue` (task management and asynchronous notification: the only "control" here) and
//! `event_queue` (hotplug and capacity events, `lun_event`). `wire` holds the virtio-scsi formats,
//! `budget` the data-out and data-in a device holds at once (`read_budget` its rules for reads). Each guest connection is one I_T nexus of
//! the target, so reservations and unit attentions behave as for an iSCSI session.

mod backend;
mod budget;
mod connection;
mod control_queue;
mod device;
mod device_state;
mod event_queue;
mod lun_event;
mod read_budget;
mod request_queue;
mod socket;
pub mod wire;

pub use backend::{ScsiBackend, CONTROL_QUEUE, EVENT_QUEUE, FIRST_REQUEST_QUEUE, QUEUE_SIZE};
pub use budget::{DEFAULT_READ_BUDGET, DEFAULT_WRITE_BUDGET};
pub use device::{DeviceConfig, VhostError, VhostScsiDevice};
pub use lun_event::LunEvent;
pub use socket::{SocketAccess, SocketError};
