//! What the management side reports about a LUN, the list of those waiting for the guest's event
//! buffers, and the virtio-scsi event record (virtio 1.2 5.6.6.3) each change becomes for a guest
//! that negotiated its feature.

use crate::wire::{Event, VirtioLun};
use std::collections::VecDeque;
use virtio_bindings::virtio_scsi::*;

/// What happened to a LUN, as the management side reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LunEvent {
    Added(u64),
    Removed(u64),
    CapacityChanged(u64),
}

impl LunEvent {
    /// The event record, or None when the guest did not negotiate the feature it needs.
    pub(crate) fn record(self, hotplug: bool, change: bool) -> Option<Event> {
        match self {
            // virtio 1.2 5.6.6.3.1: a rescan for a new LUN, "removed" for a gone one.
            LunEvent::Added(lun) if hotplug => Some(Event {
                event: VIRTIO_SCSI_T_TRANSPORT_RESET,
                lun: VirtioLun::encode(lun),
                reason: VIRTIO_SCSI_EVT_RESET_RESCAN,
            }),
            LunEvent::Removed(lun) if hotplug => Some(Event {
                event: VIRTIO_SCSI_T_TRANSPORT_RESET,
                lun: VirtioLun::encode(lun),
                reason: VIRTIO_SCSI_EVT_RESET_REMOVED,
            }),
            // virtio 1.2 5.6.6.3.3: the reason carries ASC and ASCQ of the unit attention the guest
            // will see (CAPACITY DATA HAS CHANGED, 2Ah/09h), so it rereads the capacity.
            LunEvent::CapacityChanged(lun) if change => Some(Event {
                event: VIRTIO_SCSI_T_PARAM_CHANGE,
                lun: VirtioLun::encode(lun),
                reason: 0x2a | (0x09 << 8),
            }),
            _ => None,
        }
    }
}

/// Events kept for a guest that has not posted event buffers; older ones are dropped past this
/// and the guest is told it missed some (it then rescans all LUNs; unit attentions tell the rest).
const MAX_PENDING_EVENTS: usize = 64;

/// The LUN events waiting for the guest's event buffers.
#[derive(Debug, Default)]
pub(crate) struct PendingEvents {
    pub(crate) queue: VecDeque<LunEvent>,
    /// Some were dropped since the guest last received one: virtio 1.2 5.6.6.3 says the device
    /// sets VIRTIO_SCSI_T_EVENTS_MISSED in the next event it reports.
    pub(crate) missed: bool,
}

impl PendingEvents {
    pub(crate) fn push(&mut self, event: LunEvent) {
        if self.queue.len() >= MAX_PENDING_EVENTS {
            self.queue.pop_front();
            self.missed = true;
        }
        self.queue.push_back(event);
    }

    /// A new guest scans every LUN itself: nothing before it concerns it.
    pub(crate) fn clear(&mut self) {
        self.queue.clear();
        self.missed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_need_their_feature() {
        // virtio 1.2 5.6.6.3: hotplug reports only with VIRTIO_SCSI_F_HOTPLUG, parameter changes only
        // with VIRTIO_SCSI_F_CHANGE.
        assert_eq!(LunEvent::Added(3).record(false, true), None);
        assert_eq!(LunEvent::CapacityChanged(3).record(true, false), None);
        let added = LunEvent::Added(3).record(true, false).unwrap();
        assert_eq!(added.encode(), [1, 0, 0, 0, 1, 0, 0x40, 3, 0, 0, 0, 0, 1, 0, 0, 0]);
        let removed = LunEvent::Removed(0x105).record(true, false).unwrap();
        assert_eq!(removed.encode(), [1, 0, 0, 0, 1, 0, 0x41, 5, 0, 0, 0, 0, 2, 0, 0, 0]);
        let resized = LunEvent::CapacityChanged(1).record(false, true).unwrap();
        assert_eq!(resized.encode(), [3, 0, 0, 0, 1, 0, 0x40, 1, 0, 0, 0, 0, 0x2a, 0x09, 0, 0]);
    }
}
