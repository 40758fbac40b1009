//! The event queue (virtio 1.2 5.6.6.3): the guest posts empty buffers; the device fills one per
//! event. Events wait in the device's list (they survive a guest that has posted no buffer yet)
//! and go out whenever a buffer or a new event arrives. The list is bounded; when events had to be
//! dropped, the next one delivered carries VIRTIO_SCSI_T_EVENTS_MISSED so the guest rescans.

use crate::connection::Connection;
use crate::wire::EVENT_LEN;
use std::io::Write;
use vhost_user_backend::{VringRwLock, VringT};
use virtio_bindings::virtio_scsi::{VIRTIO_SCSI_F_CHANGE, VIRTIO_SCSI_F_HOTPLUG, VIRTIO_SCSI_T_EVENTS_MISSED};
use virtio_queue::QueueT;
use vm_memory::GuestAddressSpace;

/// Put every pending event the guest negotiated into the event queue's buffers.
pub(crate) fn deliver(conn: &Connection, vring: &VringRwLock) {
    let hotplug = conn.has_feature(VIRTIO_SCSI_F_HOTPLUG);
    let change = conn.has_feature(VIRTIO_SCSI_F_CHANGE);
    let Some(mem) = conn.memory() else { return };
    let mut returned = false;
    let mut pending = conn.device.events.lock();
    while let Some(next) = pending.queue.pop_front() {
        // An event the guest did not ask for is dropped; unit attentions still tell it.
        let Some(mut record) = next.record(hotplug, change) else { continue };
        if pending.missed {
            record.event |= VIRTIO_SCSI_T_EVENTS_MISSED;
        }
        let chain = vring.get_mut().get_queue_mut().pop_descriptor_chain(mem.memory());
        let Some(chain) = chain else {
            // No buffer: keep the event for the next one the guest posts.
            pending.queue.push_front(next);
            break;
        };
        let head = chain.head_index();
        let used = match chain.clone().writer(chain.memory()) {
            Ok(mut writer) if writer.available_bytes() >= EVENT_LEN => {
                let _ = writer.write_all(&record.encode());
                writer.bytes_written() as u32
            }
            _ => 0,
        };
        if used as usize == EVENT_LEN {
            pending.missed = false;
        } else {
            // A buffer too small for a record (or not writable) is returned as it is; the event
            // waits for the next one rather than being lost in a truncated record.
            pending.queue.push_front(next);
        }
        returned |= vring.add_used(head, used).is_ok();
    }
    drop(pending);
    if returned && vring.needs_notification().unwrap_or(true) {
        let _ = vring.signal_used_queue();
    }
}
