//! Resets of a multi-gateway LUN reach every gateway: the logical unit is one, so a LOGICAL UNIT
//! RESET (or a target reset) through any gateway aborts the unit's tasks, clears its RESERVE(6)
//! reservation and gives every nexus its unit attention on all of them (SAM-5 6.6, 7.7), before
//! the function completes. The gateway that was asked announces it through the image's shared
//! object `rtgt.reset.<image id>` (a counter, bumped by compare-and-swap; the event says what
//! happened, `Event`), and `write_if` returns once every other gateway's watch has acted on it.
//! A TARGET COLD RESET also drops every connection to the target on every gateway (RFC 7143
//! 11.5.1): the gateways serve one target, under one name, through their own portals.
//! A CLEAR TASK SET travels the same way: the unit has one task set (TST 000b), so every
//! gateway aborts its nexuses' tasks on the unit and tells them COMMANDS CLEARED BY ANOTHER
//! INITIATOR (SAM-5 7.4) before the function completes.

use super::peer_event::{self, PeerEvent};
use rtgt_backstore::rbd::{SharedObject, SharedUpdate};
use rtgt_backstore::RbdStore;
use rtgt_scsi::{Asc, LogicalUnit, Target};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// What a gateway announces on the unit's reset object, as the notification's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The unit was reset, with this unit attention: two bytes, ASC and ASCQ (the form gateways
    /// have always sent).
    Reset(Asc),
    /// The unit's task set was cleared: one byte, `CLEAR_TASK_SET` (which a gateway that knows
    /// only resets ignores, as any event not two bytes long).
    TaskSetCleared,
}

/// The byte of `Event::TaskSetCleared`: CLEAR TASK SET's function code (SAM-5 7.4, RFC 7143 11.5.1).
const CLEAR_TASK_SET: u8 = 4;

impl Event {
    fn encode(self) -> Vec<u8> {
        match self {
            Event::Reset(asc) => vec![asc.0, asc.1],
            Event::TaskSetCleared => vec![CLEAR_TASK_SET],
        }
    }

    /// None for a notification that carries no event (a catch-up after a broken watch) or one
    /// this gateway does not know.
    fn decode(bytes: &[u8]) -> Option<Event> {
        match *bytes {
            [asc, ascq] => Some(Event::Reset(Asc(asc, ascq))),
            [CLEAR_TASK_SET] => Some(Event::TaskSetCleared),
            _ => None,
        }
    }
}

/// Compare-and-swap rounds before giving up (each lost round is another gateway's reset).
const ATTEMPTS: usize = 8;

/// Tell the other gateways of the unit what happened to it here. Blocks until they acknowledged
/// (or the notification timed out); off the runtime's workers when called from one. Returns the
/// object's version with the event, once written.
pub(crate) fn announce(object: &SharedObject, event: Event) -> Option<u64> {
    let bytes = event.encode();
    let tell = || {
        for _ in 0..ATTEMPTS {
            let (value, version) = match object.read() {
                Ok(read) => read,
                Err(e) => {
                    tracing::warn!("reading the shared reset counter failed: {e}");
                    return None;
                }
            };
            let count = std::str::from_utf8(&value).ok().and_then(|t| t.parse::<u64>().ok()).unwrap_or(0);
            let next = count.wrapping_add(1).to_string();
            match object.write_if(version, next.as_bytes(), &bytes) {
                Ok(Some(version)) => return Some(version),
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("telling the other gateways of {event:?} failed: {e}");
                    return None;
                }
            }
        }
        tracing::warn!("telling the other gateways of {event:?}: the shared counter kept changing");
        None
    };
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(tell),
        _ => tell(),
    }
}

/// How late this gateway acts on another's event, in milliseconds (`RTGT_PEER_EVENT_DELAY_MS`, a
/// testing aid; 0, at once, otherwise): resets, CLEAR TASK SETs and mode parameter changes.
static PEER_EVENT_DELAY_MS: AtomicU64 = AtomicU64::new(0);

/// Wait as long as the testing aid says before acting on another gateway's event.
pub(crate) fn delay_peer_event() {
    let delay = PEER_EVENT_DELAY_MS.load(Ordering::Relaxed);
    if delay > 0 {
        std::thread::sleep(Duration::from_millis(delay));
    }
}

pub fn set_peer_event_delay(delay: Duration) {
    PEER_EVENT_DELAY_MS.store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// What a cold reset elsewhere does to this gateway's connections to the target.
pub(crate) type CloseSessions = Box<dyn Fn() + Send + Sync>;

/// Another gateway's reset or CLEAR TASK SET: the same here. A catch-up after a broken watch
/// carries no event and does nothing (a reset is an event, not a state).
fn on_update(unit: &Weak<LogicalUnit>, target: &Weak<Target>, lun: u64, close: &CloseSessions, u: SharedUpdate<'_>) {
    let Some(event) = Event::decode(u.event) else { return };
    let acted = PeerEvent::Reset(u.version);
    if u.from_self {
        // Acted on before it was announced.
        if let Some(unit) = unit.upgrade() {
            super::acted_on(&unit, acted);
        }
        return;
    }
    delay_peer_event();
    let (Some(unit), Some(target)) = (unit.upgrade(), target.upgrade()) else { return };
    // Only while the unit is still this target's LUN `lun`.
    if !target.lun(lun).is_some_and(|current| Arc::ptr_eq(&unit, &current)) {
        return;
    }
    peer_event::acting_on(acted, || match event {
        Event::Reset(asc) => {
            match target.reset_by_peer(lun, asc) {
                Ok(aborted) => tracing::info!(lun, aborted, "logical unit reset by another gateway"),
                Err(e) => tracing::warn!(lun, "reset from another gateway: {e:?}"),
            }
            if asc == Asc::POWER_ON_OCCURRED {
                close();
            }
        }
        Event::TaskSetCleared => match target.task_set_cleared_by_peer(lun) {
            Ok(aborted) => tracing::info!(lun, aborted, "task set cleared by another gateway"),
            Err(e) => tracing::warn!(lun, "CLEAR TASK SET from another gateway: {e:?}"),
        },
    });
    super::acted_on(&unit, acted);
}

/// Watch the unit's reset announcements (`unit` being LUN `lun` of `target`), and hand the object
/// to the unit's port groups, which announce this gateway's resets. `close` drops this gateway's
/// connections to the target (a cold reset elsewhere).
pub(crate) fn attach(
    store: &RbdStore,
    unit: &Arc<LogicalUnit>,
    target: &Arc<Target>,
    lun: u64,
    close: CloseSessions,
) -> Result<(), String> {
    let (weak_unit, weak_target) = (Arc::downgrade(unit), Arc::downgrade(target));
    let listener = Arc::new(move |u: SharedUpdate<'_>| on_update(&weak_unit, &weak_target, lun, &close, u));
    let Some(object) = store.share("reset", listener) else { return Ok(()) };
    let object = object.map_err(|e| format!("opening the shared reset counter: {e}"))?;
    let groups = unit.port_groups().map(|g| -> &dyn std::any::Any { g.as_ref() });
    if let Some(groups) = groups.and_then(|g| g.downcast_ref::<super::GatewayPortGroups>()) {
        groups.set_resets(object);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_resets_keep_their_two_bytes() {
        let reset = Event::Reset(Asc::BUS_DEVICE_RESET_FUNCTION_OCCURRED);
        assert_eq!(reset.encode(), [0x29, 0x03]);
        assert_eq!(Event::TaskSetCleared.encode(), [4]);
        for e in [reset, Event::Reset(Asc::POWER_ON_OCCURRED), Event::TaskSetCleared] {
            assert_eq!(Event::decode(&e.encode()), Some(e));
        }
        assert_eq!(Event::decode(&[]), None);
        assert_eq!(Event::decode(&[9]), None);
        assert_eq!(Event::decode(&[1, 2, 3]), None);
    }
}
