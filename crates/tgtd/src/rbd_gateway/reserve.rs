//! The RESERVE(6/10) reservation of a multi-gateway LUN follows the unit from owner to owner. The
//! owner runs RESERVE and RELEASE (a non-owner forwards them) and keeps the holder, the I_T nexus
//! as every gateway names it (initiator port and the relative target port of the gateway it came
//! through) and the reservation's token, in the image's shared object `rtgt.reserve.<image id>`
//! before answering GOOD; a reset or the holder's nexus loss clears it (compare-and-swap on the
//! holder and its token: a late clear never removes a newer reservation, the same nexus's
//! included).
//!
//! A gateway about to own the unit (failover, handoff) reads the holder before serving: held
//! through itself, it is its own nexus of that initiator port; through another live gateway, the
//! proxy nexus whose commands that gateway forwards; through a gateway that is gone (lease lapsed,
//! or left), or a nexus no longer here, the nexus is lost and so is the reservation (SPC-2 5.5.1),
//! which it clears. The owner does the same as soon as it sees a gateway go (its lease lapse, or
//! it leave) while the holder came through it. A non-owner keeps a copy from the notifications,
//! so the commands it answers itself (PERSISTENT RESERVE IN/OUT) conflict as on the owner, and
//! the loss of its own holding nexus clears the holder for every gateway.

use rtgt_backstore::rbd::{GatewayStatus, LocalState, Member, MemberState, SharedObject, SharedUpdate};
use rtgt_backstore::RbdStore;
use rtgt_scsi::{not_written, Asc, LogicalUnit, Nexus, ReserveHolder, SharedReserve, Target};
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::{Arc, Weak};

/// Compare-and-swap rounds before giving up (each lost round is another gateway's change).
const ATTEMPTS: usize = 8;

/// The stored holder: JSON, `null` for none. `token` (the reservation's, see `ReserveHolder`) came
/// later: a record without one reads as token 0, and a gateway that knows none ignores it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Stored {
    port: String,
    relative_port: u16,
    #[serde(default)]
    token: u64,
}

fn encode(holder: Option<&ReserveHolder>) -> Vec<u8> {
    let stored =
        holder.map(|h| Stored { port: h.initiator_port.clone(), relative_port: h.relative_port, token: h.token });
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// The stored holder; an object never written holds none.
fn decode(bytes: &[u8]) -> io::Result<Option<ReserveHolder>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let stored: Option<Stored> = serde_json::from_slice(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("shared RESERVE holder: {e}")))?;
    Ok(stored.map(|s| ReserveHolder { initiator_port: s.port, relative_port: s.relative_port, token: s.token }))
}

/// The event of a change: what was released (empty for a new holder). A catch-up after a broken
/// watch has no event at all, which is how the owner tells it from a change.
const TAKEN: &[u8] = b"taken";

#[derive(Debug)]
struct ClusterReserve(Arc<SharedObject>);

impl ClusterReserve {
    /// Write `next` if `wanted` says so of the stored value, by compare-and-swap.
    fn update(
        &self,
        next: Option<&ReserveHolder>,
        event: &[u8],
        wanted: impl Fn(&[u8]) -> io::Result<bool>,
    ) -> io::Result<()> {
        // Only a compare-and-swap answered with an error may have written: every other failure
        // (a read, a value unreadable, every round lost to another gateway) wrote nothing.
        for _ in 0..ATTEMPTS {
            let (bytes, version) = self.0.read().map_err(not_written)?;
            if !wanted(&bytes).map_err(not_written)? {
                return Ok(());
            }
            if self.0.write_if(version, &encode(next), event)?.is_some() {
                return Ok(());
            }
        }
        Err(not_written(io::Error::from_raw_os_error(libc::EBUSY)))
    }
}

impl SharedReserve for ClusterReserve {
    fn record(&self, holder: &ReserveHolder) -> io::Result<()> {
        // Whatever was stored, readable or not: a RESERVE replaces an unreadable value too.
        self.update(Some(holder), TAKEN, |_| Ok(true))
    }

    fn release(&self, holder: &ReserveHolder) -> io::Result<()> {
        // An unreadable value: InvalidData, which the clearing worker gives up on.
        self.update(None, &encode(Some(holder)), |stored| Ok(decode(stored)?.as_ref() == Some(holder)))
    }

    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) -> io::Result<()> {
        super::run_blocking(job, "reserve-shared")
    }
}

/// What this gateway's copy says of `holder` while another gateway owns the unit: its own nexus
/// when the holder came through it, else held elsewhere. A holder that came through this gateway
/// by a nexus no longer here lost it (the nexus went while the owner was storing its RESERVE, or
/// went with this gateway's restart), and only this gateway can tell: released, for every gateway.
///
/// `catch_up`: the stored value read after a broken watch (this gateway was cut off from the
/// cluster). If the holder through this gateway's live nexus is gone from it, the owner took that
/// nexus for lost with this gateway's lapsed lease and released its reservation: the nexus gets
/// the unit attention of that loss (I_T NEXUS LOSS OCCURRED), so that its initiator learns what
/// the owner assumed rather than go on believing it holds the reservation.
fn install_copy(
    unit: &LogicalUnit,
    target: &Target,
    tpg: u16,
    lun: u64,
    holder: Option<ReserveHolder>,
    catch_up: bool,
) {
    let before = unit.reserve_holder().filter(|p| p.relative_port == tpg);
    if let Some(p) = before.filter(|p| catch_up && holder.as_ref() != Some(p)) {
        if let Some(n) = target.local_nexus(&p.initiator_port) {
            let port = &p.initiator_port;
            tracing::info!(%port, "RESERVE holder through this gateway released while it was cut off");
            n.add_unit_attention(lun, Asc::I_T_NEXUS_LOSS_OCCURRED);
        }
    }
    // (A holder this gateway is clearing is not installed: see `install_reservation`.)
    match holder {
        None => {
            unit.install_reservation(None);
        }
        Some(h) if h.relative_port == tpg => match target.local_nexus(&h.initiator_port) {
            Some(n) => {
                install_local(unit, target, h, &n);
            }
            None => {
                tracing::info!(port = %h.initiator_port, "RESERVE holder's nexus through this gateway lost: released");
                unit.install_reservation(None);
                unit.release_lost_reservation(h);
            }
        },
        Some(h) => {
            unit.install_reservation(Some((h, None)));
        }
    }
}

/// Install `h` as held through `n`, this gateway's nexus of its initiator port. That nexus may
/// have gone between looking it up and now (its removal, finding nothing held yet, released
/// nothing): then the reservation is lost with it, for every gateway. Returns whether it holds.
fn install_local(unit: &LogicalUnit, target: &Target, h: ReserveHolder, n: &Nexus) -> bool {
    if !unit.install_reservation(Some((h.clone(), Some(n.id)))) {
        return false;
    }
    if target.local_nexus(&h.initiator_port).is_some_and(|now| now.id == n.id) {
        return true;
    }
    let port = &h.initiator_port;
    tracing::info!(%port, "RESERVE holder's nexus through this gateway lost while installed: released");
    unit.release_lost_reservation(h);
    false
}

/// The relative port of the holder installed when the stored one could not be read: no gateway's.
const UNKNOWN_PORT: u16 = 0;

/// Whether `holder` came through another gateway than this one (group `me`) that is gone: its
/// lease lapsed (dead, or cut off from the cluster) or it left, and with it the holder's nexus.
fn gone_with_its_gateway(holder: &ReserveHolder, me: u16, others: &[Member]) -> bool {
    holder.relative_port != me
        && holder.relative_port != UNKNOWN_PORT
        && !others.iter().any(|m| m.tpg == holder.relative_port && m.state != MemberState::Lost)
}

/// A gateway's state changed, as this one sees it, or a heartbeat went by. The owner drops a
/// holder whose nexus went with its gateway, as a single target does on an I_T nexus loss
/// (SPC-2 5.5.1: released, no unit attention), and clears it from the cluster (retried until it
/// lands). Only a failover would drop it otherwise, and the owner may stay the owner for as long
/// as it lives.
fn on_gateways_changed(unit: &LogicalUnit, status: &GatewayStatus) {
    if status.local_state() != LocalState::Active {
        return;
    }
    let Some(h) = unit.reserve_holder() else { return };
    if gone_with_its_gateway(&h, status.tpg(), &status.others()) {
        tracing::info!(port = %h.initiator_port, through = h.relative_port, "RESERVE holder's gateway gone: released");
        unit.release_lost_reservation(h);
    }
}

/// Load the stored holder as the owner about to serve, `others` being the other gateways.
fn load_as_owner(
    unit: &LogicalUnit,
    target: &Target,
    status: &GatewayStatus,
    shared: &ClusterReserve,
    others: &[Member],
) {
    let stored = shared.0.read().and_then(|(bytes, _)| decode(&bytes));
    let holder = match stored {
        Ok(h) => h,
        Err(e) => {
            // Unknown: everyone conflicts until a RESERVE/RELEASE or reset sorts it out, rather
            // than letting a holder's exclusion lapse.
            tracing::warn!("reading the shared RESERVE holder failed: {e}");
            let unknown = ReserveHolder { initiator_port: String::new(), relative_port: UNKNOWN_PORT, token: 0 };
            unit.install_reservation(Some((unknown, None)));
            return;
        }
    };
    let Some(h) = holder else {
        unit.install_reservation(None);
        return;
    };
    let nexus = if h.relative_port == status.tpg() {
        target.local_nexus(&h.initiator_port)
    } else {
        (!gone_with_its_gateway(&h, status.tpg(), others))
            .then(|| target.proxy_nexus(&h.initiator_port, h.relative_port))
    };
    match nexus {
        Some(n) => {
            let (port, through) = (h.initiator_port.clone(), h.relative_port);
            // Not a holder this gateway is clearing (a stale record): that is cleared again.
            let installed = if through == status.tpg() {
                install_local(unit, target, h, &n)
            } else {
                unit.install_reservation(Some((h, Some(n.id))))
            };
            if installed {
                tracing::info!(%port, through, "RESERVE reservation taken over");
            }
        }
        None => {
            // Its nexus is gone with the gateway (or the session): so is the reservation.
            let (port, through) = (&h.initiator_port, h.relative_port);
            tracing::info!(%port, through, "RESERVE holder's nexus lost: released");
            unit.install_reservation(None);
            if let Err(e) = shared.release(&h) {
                // Tried again until it lands: a next owner must not find it.
                tracing::warn!("clearing the shared RESERVE holder failed: {e}");
                unit.release_lost_reservation(h);
            }
        }
    }
}

/// Another gateway's change (or the stored value, catching up).
fn on_update(unit: &Weak<LogicalUnit>, target: &Weak<Target>, status: &GatewayStatus, lun: u64, u: SharedUpdate<'_>) {
    if u.from_self {
        return;
    }
    let (Some(unit), Some(target)) = (unit.upgrade(), target.upgrade()) else { return };
    let holder = match decode(u.value) {
        Ok(h) => h,
        Err(e) => return tracing::warn!("{e}"),
    };
    if status.local_state() != LocalState::Active {
        return install_copy(&unit, &target, status.tpg(), lun, holder, u.event.is_empty());
    }
    // The owner's own memory is the reservation; another gateway only ever clears a holder whose
    // nexus it lost, which the owner then drops if it is still the one held.
    if holder.is_none() && clears(unit.reserve_holder().as_ref(), u.event) {
        unit.install_reservation(None);
    }
}

/// Whether the event of a change that left no holder stored released `held`. A gateway from
/// before tokens sends its clear without one (token 0): the same nexus is the best it can say.
fn clears(held: Option<&ReserveHolder>, event: &[u8]) -> bool {
    let (Some(held), false) = (held, event.is_empty()) else { return false };
    match decode(event) {
        Ok(Some(released)) if released.token == 0 => released.same_nexus(held),
        Ok(Some(released)) => released == *held,
        _ => false,
    }
}

/// Keep `unit`'s RESERVE(6/10) holder in the cluster (`unit` being a LUN of `target` on the
/// multi-gateway image `store`).
pub(crate) fn attach(store: &RbdStore, unit: &Arc<LogicalUnit>, target: &Arc<Target>, lun: u64) -> Result<(), String> {
    let Some(status) = store.gateway().cloned() else { return Ok(()) };
    let (weak_unit, weak_target) = (Arc::downgrade(unit), Arc::downgrade(target));
    let listening = status.clone();
    let listener = Arc::new(move |u: SharedUpdate<'_>| on_update(&weak_unit, &weak_target, &listening, lun, u));
    let Some(object) = store.share("reserve", listener) else { return Ok(()) };
    let shared = Arc::new(ClusterReserve(object.map_err(|e| format!("opening the shared RESERVE holder: {e}"))?));
    unit.attach_shared_reserve(shared.clone());
    let others = status.others();
    if others.iter().all(|m| m.state == MemberState::Lost) {
        // The first gateway up: the unit was off, and a power on releases the reservation.
        let stored = shared.0.read().and_then(|(bytes, _)| decode(&bytes));
        if let Ok(Some(h)) = stored {
            let _ = shared.release(&h);
        }
    }
    let (weak_unit, weak_target, weak_shared) = (Arc::downgrade(unit), Arc::downgrade(target), Arc::downgrade(&shared));
    let taking = status.clone();
    status.on_take_over(Box::new(move |others| {
        if let (Some(u), Some(t), Some(s)) = (weak_unit.upgrade(), weak_target.upgrade(), weak_shared.upgrade()) {
            load_as_owner(&u, &t, &taking, &s, others);
        }
    }));
    // On every change, and on every heartbeat too: a holder claimed through a gateway already
    // seen gone (a command it forwarded before it went, run after) changes nothing.
    for hook in [GatewayStatus::on_change, GatewayStatus::on_beat] {
        let (weak_unit, watching) = (Arc::downgrade(unit), status.clone());
        hook(
            &status,
            Box::new(move || {
                if let Some(u) = weak_unit.upgrade() {
                    on_gateways_changed(&u, &watching);
                }
            }),
        );
    }
    if status.local_state() == LocalState::Active {
        load_as_owner(unit, target, &status, &shared, &others);
    } else {
        let stored = shared.0.read().and_then(|(bytes, _)| decode(&bytes));
        let stored = stored.map_err(|e| format!("reading the shared RESERVE holder: {e}"))?;
        install_copy(unit, target, status.tpg(), lun, stored, false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_round_trip_and_garbage_is_refused() {
        let h = ReserveHolder { initiator_port: "iqn.x,i,0x1".into(), relative_port: 2, token: u64::MAX - 1 };
        assert_eq!(decode(&encode(Some(&h))).unwrap(), Some(h.clone()));
        // A record stored before tokens: token 0. What a gateway that knows no token reads (it
        // ignores the field).
        let old = br#"{"port":"iqn.x,i,0x1","relative_port":2}"#;
        assert_eq!(decode(old).unwrap(), Some(ReserveHolder { token: 0, ..h.clone() }));
        let json: serde_json::Value = serde_json::from_slice(&encode(Some(&h))).unwrap();
        assert_eq!((&json["port"], &json["relative_port"]), (&"iqn.x,i,0x1".into(), &2.into()));
        assert_eq!(decode(&encode(None)).unwrap(), None);
        assert_eq!(decode(b"").unwrap(), None);
        assert!(decode(b"{").is_err());
        assert!(decode(br#"{"port":"x","relative_port":70000}"#).is_err());
    }

    #[test]
    fn a_clear_event_releases_its_own_holder_and_a_tokenless_one_its_nexus() {
        let held = ReserveHolder { initiator_port: "iqn.x,i,0x1".into(), relative_port: 2, token: 9 };
        let event = |h: &ReserveHolder| encode(Some(h));
        assert!(clears(Some(&held), &event(&held)));
        assert!(!clears(Some(&held), &event(&ReserveHolder { token: 8, ..held.clone() })), "another reservation");
        // An older gateway's clear: no token.
        assert!(clears(Some(&held), br#"{"port":"iqn.x,i,0x1","relative_port":2}"#));
        assert!(!clears(Some(&held), br#"{"port":"iqn.x,i,0x1","relative_port":3}"#), "another nexus");
        assert!(!clears(None, &event(&held)));
        assert!(!clears(Some(&held), b""), "a catch-up");
        assert!(!clears(Some(&held), TAKEN));
    }

    #[test]
    fn a_holder_installed_through_a_nexus_removed_meanwhile_is_released() {
        let target = Target::new(1, "iqn.2024-01.test:t1".into());
        let unit = Arc::new(LogicalUnit::new(rtgt_scsi::LunConfig::disk(1, 1), None));
        target.add_lun(1, unit.clone()).unwrap();
        let h = ReserveHolder { initiator_port: "iqn.x,i,0x1".into(), relative_port: 1, token: 3 };
        let nexus = target.add_nexus(h.initiator_port.clone());
        assert!(install_local(&unit, &target, h.clone(), &nexus));
        assert_eq!(unit.reserve_holder(), Some(h.clone()));
        // Looked up, then removed before the install (its removal found nothing to release).
        unit.install_reservation(None);
        target.remove_nexus(&nexus);
        assert!(!install_local(&unit, &target, h.clone(), &nexus));
        assert_eq!(unit.reserve_holder(), None);
        // A newer session of the same initiator port is another nexus: released too.
        let newer = target.add_nexus(h.initiator_port.clone());
        assert!(!install_local(&unit, &target, h, &nexus));
        assert_eq!(unit.reserve_holder(), None);
        target.remove_nexus(&newer);
    }

    #[test]
    fn a_holder_through_this_gateway_released_while_it_was_cut_off_gives_its_nexus_a_unit_attention() {
        let target = Target::new(1, "iqn.2024-01.test:t1".into());
        let unit = Arc::new(LogicalUnit::new(rtgt_scsi::LunConfig::disk(1, 1), None));
        target.add_lun(1, unit.clone()).unwrap();
        let h = ReserveHolder { initiator_port: "iqn.x,i,0x1".into(), relative_port: 2, token: 3 };
        let nexus = target.add_nexus(h.initiator_port.clone());
        let other = target.add_nexus("iqn.y,i,0x1".into());
        for n in [&nexus, &other] {
            while n.take_unit_attention(1).is_some() {}
        }
        install_copy(&unit, &target, 2, 1, Some(h.clone()), false);
        assert_eq!(unit.reserve_holder(), Some(h.clone()));
        // Caught up after a broken watch: the owner released it meanwhile.
        install_copy(&unit, &target, 2, 1, None, true);
        assert_eq!(unit.reserve_holder(), None);
        assert_eq!(nexus.take_unit_attention(1), Some(Asc::I_T_NEXUS_LOSS_OCCURRED));
        assert_eq!(other.take_unit_attention(1), None);
        // A release notified as it happened (RELEASE, a reset: told their own way): none.
        install_copy(&unit, &target, 2, 1, Some(h.clone()), false);
        install_copy(&unit, &target, 2, 1, None, false);
        assert_eq!(nexus.take_unit_attention(1), None);
        // A catch-up that finds it still stored: none.
        install_copy(&unit, &target, 2, 1, Some(h.clone()), false);
        install_copy(&unit, &target, 2, 1, Some(h), true);
        assert_eq!(nexus.take_unit_attention(1), None);
    }

    #[test]
    fn a_holder_is_gone_with_a_gateway_lost_or_left_only() {
        let member = |tpg, state| Member { name: format!("gw{tpg}"), tpg, state, forward: String::new() };
        let through = |relative_port| ReserveHolder { initiator_port: "iqn.x,i,0x1".into(), relative_port, token: 1 };
        let others = [member(2, MemberState::Standby), member(3, MemberState::Lost)];
        assert!(!gone_with_its_gateway(&through(1), 1, &others), "through this gateway");
        assert!(!gone_with_its_gateway(&through(2), 1, &others), "through a live one");
        assert!(gone_with_its_gateway(&through(3), 1, &others), "its lease lapsed");
        assert!(gone_with_its_gateway(&through(4), 1, &others), "it left");
        assert!(!gone_with_its_gateway(&through(UNKNOWN_PORT), 1, &others), "unknown: kept until sorted out");
    }
}
