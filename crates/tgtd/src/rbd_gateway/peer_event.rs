//! Which event of the unit's gateways made an owner abort a forwarded command, and which ones a
//! forwarding gateway has acted on (`forward`): an event is named by the shared object it came on
//! and the object's version once written, so that "acted on" is one comparison.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// An event of another gateway's, as the shared object it came on and that object's version once
/// written: what an owner acted on when it aborted a forwarded command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PeerEvent {
    /// On the reset object (a reset or CLEAR TASK SET, `resets`).
    Reset(u64),
    /// On the persistent reservations' object (PREEMPT AND ABORT, `reservations`).
    Reservation(u64),
}

/// `PeerEvent`'s length in an `ABORTED` reply's sense field.
pub(super) const PEER_EVENT_LEN: usize = 9;

impl PeerEvent {
    pub(super) fn encode(self) -> [u8; PEER_EVENT_LEN] {
        let (object, version) = match self {
            PeerEvent::Reset(v) => (1u8, v),
            PeerEvent::Reservation(v) => (2, v),
        };
        let mut out = [0u8; PEER_EVENT_LEN];
        out[0] = object;
        out[1..].copy_from_slice(&version.to_be_bytes());
        out
    }

    pub(super) fn decode(bytes: &[u8]) -> Option<PeerEvent> {
        let (&object, version) = bytes.split_first()?;
        let version = u64::from_be_bytes(version.try_into().ok()?);
        match object {
            1 => Some(PeerEvent::Reset(version)),
            2 => Some(PeerEvent::Reservation(version)),
            _ => None,
        }
    }
}

thread_local! {
    /// The other gateway's event this thread (a watch callback) is acting on, if any.
    static ACTING_ON: Cell<Option<PeerEvent>> = const { Cell::new(None) };
}

/// Run `act`, this gateway's action on another's `event`: a forwarded command it aborts is
/// answered `ABORTED` naming the event. The aborts run on the calling thread (`TaskSet`).
pub(super) fn acting_on<R>(event: PeerEvent, act: impl FnOnce() -> R) -> R {
    let before = ACTING_ON.replace(Some(event));
    let result = act();
    ACTING_ON.set(before);
    result
}

/// The event the calling thread is acting on (`acting_on`), if any.
pub(super) fn acting_now() -> Option<PeerEvent> {
    ACTING_ON.get()
}

/// The last version of the reset object, and of the reservations' object, whose event this
/// gateway acted on (its own or another's).
#[derive(Debug, Default)]
pub(super) struct Acted {
    reset: AtomicU64,
    reservation: AtomicU64,
}

impl Acted {
    fn of(&self, event: PeerEvent) -> (&AtomicU64, u64) {
        match event {
            PeerEvent::Reset(v) => (&self.reset, v),
            PeerEvent::Reservation(v) => (&self.reservation, v),
        }
    }

    pub(super) fn note(&self, event: PeerEvent) {
        let (last, version) = self.of(event);
        last.fetch_max(version, Ordering::AcqRel);
    }

    /// Whether `event`, or a later one of the same object, was acted on.
    pub(super) fn covers(&self, event: PeerEvent) -> bool {
        let (last, version) = self.of(event);
        last.load(Ordering::Acquire) >= version
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_events_round_trip_and_anything_else_names_none() {
        for e in [PeerEvent::Reset(7), PeerEvent::Reservation(u64::MAX), PeerEvent::Reset(0)] {
            assert_eq!(PeerEvent::decode(&e.encode()), Some(e));
        }
        assert_eq!(PeerEvent::Reset(0x0102).encode(), [1, 0, 0, 0, 0, 0, 0, 1, 2]);
        // An owner that names no event (its own, or an owner from before events were named).
        assert_eq!(PeerEvent::decode(&[]), None);
        assert_eq!(PeerEvent::decode(&[3, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(PeerEvent::decode(&[1, 0, 0, 0, 0, 0, 0, 1]), None);
    }

    #[test]
    fn an_event_acted_on_covers_the_earlier_ones_of_its_object_only() {
        let acted = Acted::default();
        assert!(!acted.covers(PeerEvent::Reset(1)));
        acted.note(PeerEvent::Reset(5));
        acted.note(PeerEvent::Reset(3)); // a late notification does not go back
        assert!(acted.covers(PeerEvent::Reset(4)) && acted.covers(PeerEvent::Reset(5)));
        assert!(!acted.covers(PeerEvent::Reset(6)));
        assert!(!acted.covers(PeerEvent::Reservation(2)));
        acted.note(PeerEvent::Reservation(2));
        assert!(acted.covers(PeerEvent::Reservation(2)) && !acted.covers(PeerEvent::Reset(6)));
    }
}
