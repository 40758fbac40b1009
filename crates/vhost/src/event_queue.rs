//! The event queue (virtio 1.2 5.6.6.3): the guest posts empty buffers; the device fills one per
//! event. Events wait in the device's list (they survive a guest that has posted no buffer yet)
//! and go out whenever a buffer or a new event arrives.

use crate::connection::Connection;
use std::io::Write;
use vhost_user_backend::{VringRwLock, VringT};
use virtio_bindings::virtio_scsi::{VIRTIO_SCSI_F_CHANGE, VIRTIO_SCSI_F_HOTPLUG};
use virtio_queue::QueueT;
use vm_memory::GuestAddressSpace;

/// Put every pending event the guest negotiated into the event queue's buffers.
pub(crate) fn deliver(conn: &Connection, vring: &VringRwLock) {
    let hotplug = conn.has_feature(VIRTIO_SCSI_F_HOTPLUG);
    let change = conn.has_feature(VIRTIO_SCSI_F_CHANGE);
    let Some(mem) = conn.memory() else { return };
    let mut returned = false;
    let mut pending = conn.device.events.lock();
    while let Some(next) = pending.pop_front() {
        // An event the guest did not ask for is dropped; unit attentions still tell it.
        let Some(record) = next.record(hotplug, change) else { continue };
        let chain = vring.get_mut().get_queue_mut().pop_descriptor_chain(mem.memory());
        let Some(chain) = chain else {
            // No buffer: keep the event for the next one the guest posts.
            pending.push_front(next);
            break;
        };
        let head = chain.head_index();
        let used = match chain.clone().writer(chain.memory()) {
            Ok(mut writer) => {
                let _ = writer.write_all(&record.encode());
                writer.bytes_written() as u32
            }
            Err(_) => 0,
        };
        returned |= vring.add_used(head, used).is_ok();
    }
    drop(pending);
    if returned && vring.needs_notification().unwrap_or(true) {
        let _ = vring.signal_used_queue();
    }
}
