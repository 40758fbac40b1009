//! One guest connection's state: the negotiated features, the guest memory map and the guest's I_T
//! nexus, whose task set (in the SCSI core) holds the commands in flight. The queues
//! (`request_queue`, `control_queue`, `event_queue`) work on it; `backend` hands it to the
//! rust-vmm daemon.

use crate::device_state::DeviceState;
use parking_lot::Mutex;
use rtgt_scsi::{AbortCause, Nexus};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhost_user_backend::{VringRwLock, VringT};
use virtio_queue::{DescriptorChain, QueueT};
use vm_memory::{GuestAddressSpace, GuestMemoryAtomic, GuestMemoryLoadGuard, GuestMemoryMmap};

pub(crate) type Memory = GuestMemoryAtomic<GuestMemoryMmap>;
pub(crate) type Chain = DescriptorChain<GuestMemoryLoadGuard<GuestMemoryMmap>>;

/// How long GET_VRING_BASE waits for a queue's commands before giving up on them.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) struct Connection {
    pub device: Arc<DeviceState>,
    pub mem: Mutex<Option<Memory>>,
    pub acked_features: AtomicU64,
    pub event_idx: AtomicBool,
    pub nexus: Mutex<Option<Arc<Nexus>>>,
}

impl Connection {
    pub(crate) fn new(device: Arc<DeviceState>) -> Self {
        Connection {
            device,
            mem: Mutex::new(None),
            acked_features: AtomicU64::new(0),
            event_idx: AtomicBool::new(false),
            nexus: Mutex::new(None),
        }
    }

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

    /// The device was reset or the VMM is gone: stop every command without touching guest memory,
    /// which may already belong to something else.
    pub(crate) fn discard_all(&self) {
        if let Some(nexus) = self.nexus.lock().clone() {
            nexus.tasks().abort_all(AbortCause::Lost);
        }
    }

    /// GET_VRING_BASE: the queue stops; its commands must be answered first so the frontend reads a
    /// used index that covers them (a QEMU restart then loses nothing it was told was done).
    pub(crate) fn wait_queue_idle(&self, queue: u16) {
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
