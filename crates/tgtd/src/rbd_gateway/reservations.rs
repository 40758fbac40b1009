//! Persistent reservations of a multi-gateway LUN, kept in the cluster: the image's shared object
//! `rtgt.pr.<image id>` holds the state as JSON; a PERSISTENT RESERVE OUT commits its change there
//! by compare-and-swap and the notification that follows carries the new state and its unit
//! attentions and aborts to every other gateway, which installs the state in its own copy (what
//! each command's conflict check reads: no cluster round trip on READ or WRITE) and acts on its
//! own nexuses, before acknowledging. The state outlives every gateway's restart; without APTPL
//! it is cleared when a gateway starts with no other gateway alive: the logical unit as a whole
//! was off (SPC-4 5.12.4).

use super::peer_event::{self, PeerEvent};
use rtgt_backstore::rbd::{MemberState, SharedObject, SharedUpdate};
use rtgt_backstore::RbdStore;
use rtgt_scsi::{Asc, LogicalUnit, PrEvents, PrRegistration, PrReservation, PrSnapshot, PrType, SharedPr, Target};
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::{Arc, Weak};

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Stored {
    generation: u32,
    aptpl: bool,
    registrations: Vec<StoredRegistration>,
    reservation: Option<StoredReservation>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct StoredRegistration {
    port: String,
    key: u64,
    all_tg_pt: bool,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct StoredReservation {
    holder: String,
    /// SPC-4 TYPE code.
    pr_type: u8,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct StoredEvents {
    /// (initiator port, ASC, ASCQ).
    notices: Vec<(String, u8, u8)>,
    aborted: Vec<String>,
}

fn invalid(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("shared persistent reservations: {what}"))
}

fn encode_state(s: &PrSnapshot) -> Vec<u8> {
    let stored = Stored {
        generation: s.generation,
        aptpl: s.aptpl,
        registrations: s
            .registrations
            .iter()
            .map(|r| StoredRegistration { port: r.initiator_port.clone(), key: r.key, all_tg_pt: r.all_tg_pt })
            .collect(),
        reservation: s
            .reservation
            .as_ref()
            .map(|r| StoredReservation { holder: r.holder.clone(), pr_type: r.pr_type.code() }),
    };
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// The stored state; an object never written is the empty state.
fn decode_state(bytes: &[u8]) -> io::Result<PrSnapshot> {
    if bytes.is_empty() {
        return Ok(PrSnapshot::default());
    }
    let s: Stored = serde_json::from_slice(bytes).map_err(invalid)?;
    let reservation = match s.reservation {
        None => None,
        Some(r) => Some(PrReservation {
            holder: r.holder,
            pr_type: PrType::from_code(r.pr_type).ok_or_else(|| invalid(format!("type {}", r.pr_type)))?,
        }),
    };
    Ok(PrSnapshot {
        generation: s.generation,
        aptpl: s.aptpl,
        registrations: s
            .registrations
            .into_iter()
            .map(|r| PrRegistration { initiator_port: r.port, key: r.key, all_tg_pt: r.all_tg_pt })
            .collect(),
        reservation,
    })
}

fn encode_events(e: &PrEvents) -> Vec<u8> {
    if e.is_empty() {
        return Vec::new();
    }
    let stored = StoredEvents {
        notices: e.notices.iter().map(|(p, asc)| (p.clone(), asc.0, asc.1)).collect(),
        aborted: e.aborted.clone(),
    };
    serde_json::to_vec(&stored).unwrap_or_default()
}

fn decode_events(bytes: &[u8]) -> io::Result<PrEvents> {
    let s: StoredEvents = serde_json::from_slice(bytes).map_err(invalid)?;
    Ok(PrEvents { notices: s.notices.into_iter().map(|(p, a, q)| (p, Asc(a, q))).collect(), aborted: s.aborted })
}

/// The SCSI core's view of the cluster's copy.
#[derive(Debug)]
struct ClusterReservations(Arc<SharedObject>);

impl SharedPr for ClusterReservations {
    fn latest(&self) -> io::Result<(PrSnapshot, u64)> {
        let (bytes, version) = self.0.read()?;
        Ok((decode_state(&bytes)?, version))
    }

    fn commit(&self, version: u64, state: &PrSnapshot, events: &PrEvents) -> io::Result<Option<u64>> {
        self.0.write_if(version, &encode_state(state), &encode_events(events))
    }

    /// The runtime's pool of blocking threads (reused, bounded) when called from the runtime, as
    /// every command is; a thread of its own otherwise.
    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) -> io::Result<()> {
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                drop(runtime.spawn_blocking(job));
                Ok(())
            }
            Err(_) => std::thread::Builder::new().name("pr-shared".into()).spawn(job).map(|_| ()),
        }
    }
}

/// What a gateway does with another's change (or with the stored state, catching up): install the
/// state, and give its own nexuses of `lun` the unit attentions and aborts the change caused.
fn on_update(unit: &Weak<LogicalUnit>, target: &Weak<Target>, lun: u64, u: SharedUpdate<'_>) {
    let Some(unit) = unit.upgrade() else { return };
    match decode_state(u.value) {
        Ok(state) => {
            unit.persistent_reservations().install_shared(state, u.version);
        }
        Err(e) => tracing::warn!(lun, "{e}"),
    }
    let acted = PeerEvent::Reservation(u.version);
    if u.from_self || u.event.is_empty() {
        super::acted_on(&unit, acted);
        return;
    }
    match (decode_events(u.event), target.upgrade()) {
        (Ok(events), Some(target)) => {
            let aborted = peer_event::acting_on(acted, || target.reservation_events(lun, &events));
            tracing::debug!(lun, aborted, "persistent reservation change from another gateway");
        }
        (Err(e), _) => tracing::warn!(lun, "{e}"),
        (Ok(_), None) => {}
    }
    super::acted_on(&unit, acted);
}

/// Keep `unit`'s persistent reservations in the cluster, `unit` being LUN `lun` of `target`, on
/// the multi-gateway image `store`.
pub(crate) fn attach(store: &RbdStore, unit: &Arc<LogicalUnit>, target: &Arc<Target>, lun: u64) -> Result<(), String> {
    let (weak_unit, weak_target) = (Arc::downgrade(unit), Arc::downgrade(target));
    let listener = Arc::new(move |u: SharedUpdate<'_>| on_update(&weak_unit, &weak_target, lun, u));
    let Some(object) = store.share("pr", listener) else { return Ok(()) };
    let shared = ClusterReservations(object.map_err(|e| format!("opening the shared reservations: {e}"))?);
    let alone = store.gateway().is_some_and(|g| g.others().iter().all(|m| m.state == MemberState::Lost));
    if alone {
        // The first gateway up: the unit was off, and without APTPL nothing survives that.
        let (state, version) = shared.latest().map_err(|e| format!("reading the shared reservations: {e}"))?;
        if !state.aptpl && state != PrSnapshot::default() {
            let _ = shared.commit(version, &PrSnapshot::default(), &PrEvents::default());
            tracing::info!(lun, "persistent reservations without APTPL cleared: no other gateway was up");
        }
    }
    unit.persistent_reservations()
        .attach_shared(Arc::new(shared))
        .map_err(|e| format!("reading the shared reservations: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_events_round_trip() {
        let state = PrSnapshot {
            generation: 9,
            aptpl: true,
            registrations: vec![PrRegistration {
                initiator_port: "iqn.x,i,0x1".into(),
                key: u64::MAX,
                all_tg_pt: true,
            }],
            reservation: Some(PrReservation {
                holder: "iqn.x,i,0x1".into(),
                pr_type: PrType::ExclusiveAccessAllRegistrants,
            }),
        };
        assert_eq!(decode_state(&encode_state(&state)).unwrap(), state);
        assert_eq!(decode_state(b"").unwrap(), PrSnapshot::default());
        assert!(decode_state(b"{").is_err());
        assert!(decode_state(
            br#"{"generation":0,"aptpl":false,"registrations":[],"reservation":{"holder":"x","pr_type":2}}"#
        )
        .is_err());
        let events = PrEvents { notices: vec![("iqn.y".into(), Asc(0x2a, 0x05))], aborted: vec!["iqn.y".into()] };
        assert_eq!(decode_events(&encode_events(&events)).unwrap(), events);
        assert!(encode_events(&PrEvents::default()).is_empty());
    }
}
