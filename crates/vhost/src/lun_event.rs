//! What the management side reports about a LUN, and the virtio-scsi event record (virtio 1.2
//! 5.6.6.3) each change becomes for a guest that negotiated its feature.

use crate::wire::{Event, VirtioLun};
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
