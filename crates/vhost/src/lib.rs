//! rtgt's vhost-user-scsi transport: a VMM (QEMU's `vhost-user-scsi-pci`) hands a guest's
//! virtio-scsi queues to tgtd over a unix socket, and the guest's SCSI commands are answered from
//! its shared memory by the same `rtgt_scsi::Target` the iSCSI side serves.
//!
//! Layout: `wire` (virtio-scsi formats), `backend` (one connection's device: features, memory,
//! request queues), `write_budget` (the data-out a device holds at once), `control` (task
//! management), `events` (hotplug and capacity events), `socket` (creating the socket file safely),
//! `controller` (the accept loop and reconnection). Each guest connection is one I_T
//! nexus of the target, so reservations and unit attentions behave as for an iSCSI session.

mod backend;
mod control;
mod controller;
mod events;
mod socket;
pub mod wire;
mod write_budget;

pub use backend::{ScsiBackend, CONTROL_QUEUE, EVENT_QUEUE, FIRST_REQUEST_QUEUE, QUEUE_SIZE};
pub use controller::{ControllerConfig, VhostError, VhostScsiController};
pub use events::LunEvent;
pub use socket::{SocketAccess, SocketError};
pub use write_budget::DEFAULT_WRITE_BUDGET;
