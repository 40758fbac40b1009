//! What the connections of one vhost-user-scsi device share, one after another: the target, the
//! runtime its commands run on, the write and read budgets and the LUN events waiting for the guest.

use crate::budget::ByteBudget;
use crate::lun_event::PendingEvents;
use crate::read_budget::ReadBudget;
use parking_lot::Mutex;
use rtgt_scsi::{Nexus, Target};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use vmm_sys_util::event::{EventConsumer, EventNotifier};

/// What the connections of one device share.
pub(crate) struct DeviceState {
    pub target: Arc<Target>,
    pub runtime: tokio::runtime::Handle,
    pub request_queues: usize,
    pub socket: PathBuf,
    /// The socket file's (device, inode): stop removes that file only.
    pub socket_file: (u64, u64),
    pub write_budget: ByteBudget,
    pub read_budget: ReadBudget,
    pub events: Mutex<PendingEvents>,
    pub events_ready: EventConsumer,
    pub events_notify: EventNotifier,
    pub connected: AtomicBool,
    pub connections: AtomicU64,
    pub stopping: AtomicBool,
}

impl DeviceState {
    /// A VMM sent its memory map: register the guest's I_T nexus.
    pub(crate) fn guest_connected(&self) -> Arc<Nexus> {
        let n = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
        self.connected.store(true, Ordering::Relaxed);
        // A new guest scans every LUN itself; earlier hotplug events mean nothing to it.
        self.events.lock().clear();
        tracing::info!(socket = %self.socket.display(), connection = n, "vhost-user-scsi guest connected");
        self.target.add_nexus(format!("vhost-user:{},c,{n}", self.socket.display()))
    }

    pub(crate) fn events_consumed(&self) {
        let _ = self.events_ready.consume();
    }
}
