//! The mode parameters a MODE SELECT changed on a multi-gateway LUN follow the unit from owner to
//! owner. The owner runs MODE SELECT (a non-owner forwards it) and stores the unit's current
//! values (the caching page's WCE, the control page's D_SENSE and SWP) in the image's shared
//! object `rtgt.mode.<image id>` before answering GOOD (`rtgt_scsi::SharedModePages`); the
//! notification carries who made the change. An administrator's change (`sense_format=`, see
//! `mode_change`) is made by the owner the same way, and made by no nexus.
//!
//! Every other gateway takes the values from the notification, before the owner's write returns,
//! and gives its own nexuses MODE PARAMETERS CHANGED (all but the nexus whose MODE SELECT came
//! through it): what they read through it is the owner's, which just changed. A gateway about to
//! own the unit (failover, handoff) reads the stored values again before serving; that tells no
//! nexus anything, since every nexus read the same values through the owner before the move.
//! The first gateway up (every other one gone) finds a unit that was off: its current values are
//! the defaults again (no saved values), and it stores those, whatever the object still holds.
//! An administrator's change is also saved in every gateway's configuration (`--state-dir`),
//! whose values are the defaults a power on brings back.

use super::SaveConfig;
use rtgt_backstore::rbd::{GatewayStatus, LocalState, MemberState, SharedObject, SharedUpdate};
use rtgt_backstore::RbdStore;
use rtgt_scsi::{LogicalUnit, ModeParams, ModeSelectedBy, SharedModePages, Target};
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::{Arc, Weak};

/// Compare-and-swap rounds before giving up (each lost round is another gateway's write).
const ATTEMPTS: usize = 8;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Stored {
    wce: bool,
    d_sense: bool,
    swp: bool,
}

fn encode(values: &ModeParams) -> Vec<u8> {
    let stored = Stored { wce: values.wce, d_sense: values.d_sense, swp: values.swp };
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// The stored values; an object never written holds none (the unit's defaults stand).
fn decode(bytes: &[u8]) -> io::Result<Option<ModeParams>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let s: Stored = serde_json::from_slice(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("shared mode parameters: {e}")))?;
    Ok(Some(ModeParams { wce: s.wce, d_sense: s.d_sense, swp: s.swp }))
}

/// The event of a change: the nexus whose MODE SELECT made it.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Event {
    port: String,
    relative_port: u16,
}

/// The event of the first gateway up storing the defaults: no nexus made that change.
const POWER_ON: &[u8] = b"power-on";
/// The event of an administrator's change: no nexus made it either, so every nexus is told.
const ADMINISTRATOR: &[u8] = b"administrator";

fn encode_event(by: &ModeSelectedBy) -> Vec<u8> {
    let event = Event { port: by.initiator_port.clone(), relative_port: by.relative_port };
    serde_json::to_vec(&event).unwrap_or_default()
}

/// The object's newest version this gateway wrote or took values from. A value handed over
/// older than that (the stored value read when the watch was made, delivered after this
/// gateway's own write) is stale, and is not taken.
type Newest = Arc<parking_lot::Mutex<u64>>;

#[derive(Debug)]
struct ClusterModeParams(Arc<SharedObject>, Newest);

impl ClusterModeParams {
    fn write(&self, values: &ModeParams, event: &[u8]) -> io::Result<()> {
        for _ in 0..ATTEMPTS {
            let (_, version) = self.0.read()?;
            if let Some(written) = self.0.write_if(version, &encode(values), event)? {
                let mut newest = self.1.lock();
                *newest = (*newest).max(written);
                return Ok(());
            }
        }
        Err(io::Error::from_raw_os_error(libc::EBUSY))
    }

    fn read(&self) -> io::Result<Option<ModeParams>> {
        self.0.read().and_then(|(bytes, _)| decode(&bytes))
    }
}

impl SharedModePages for ClusterModeParams {
    fn record(&self, values: &ModeParams, by: Option<&ModeSelectedBy>) -> io::Result<()> {
        match by {
            Some(by) => self.write(values, &encode_event(by)),
            None => self.write(values, ADMINISTRATOR),
        }
    }

    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) -> io::Result<()> {
        super::run_blocking(job, "mode-shared")
    }
}

/// Take the stored values as the owner about to serve. Unreadable, the values kept from the
/// notifications stand (every change reached this gateway before its GOOD).
fn load_as_owner(unit: &LogicalUnit, shared: &ClusterModeParams) {
    match shared.read() {
        Ok(Some(values)) => {
            if unit.install_mode_params(values) {
                tracing::info!(?values, "mode parameters taken over");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("reading the shared mode parameters failed, keeping this gateway's copy: {e}"),
    }
}

/// Another gateway's change (or the stored values, catching up after a broken watch). An
/// administrator's change is saved here too, before it is acknowledged: what the administrator
/// was told is done is in every gateway's saved configuration.
fn on_update(
    unit: &Weak<LogicalUnit>,
    target: &Weak<Target>,
    lun: u64,
    status: &GatewayStatus,
    (newest, save): (&Newest, &SaveConfig),
    u: SharedUpdate<'_>,
) {
    if u.from_self {
        return;
    }
    let (Some(unit), Some(target)) = (unit.upgrade(), target.upgrade()) else { return };
    let values = match decode(u.value) {
        Ok(Some(values)) => values,
        Ok(None) => return,
        Err(e) => return tracing::warn!("{e}"),
    };
    let changed = {
        let mut newest = newest.lock();
        if u.version < *newest {
            return;
        }
        *newest = u.version;
        unit.install_mode_params(values)
    };
    if !changed || !target.lun(lun).is_some_and(|current| Arc::ptr_eq(&unit, &current)) {
        return;
    }
    // The nexus that made the change through this gateway was answered GOOD: it is not told.
    let by: Option<Event> = serde_json::from_slice(u.event).ok();
    let except = by.filter(|e| e.relative_port == status.tpg()).map(|e| e.port);
    target.mode_parameters_changed(lun, except.as_deref());
    if u.event == ADMINISTRATOR {
        save();
    }
}

/// Keep `unit`'s changed mode parameters in the cluster (`unit` being LUN `lun` of `target` on
/// the multi-gateway image `store`).
pub(crate) fn attach(
    store: &RbdStore,
    unit: &Arc<LogicalUnit>,
    target: &Arc<Target>,
    lun: u64,
    save: SaveConfig,
) -> Result<(), String> {
    let Some(status) = store.gateway().cloned() else { return Ok(()) };
    let (weak_unit, weak_target) = (Arc::downgrade(unit), Arc::downgrade(target));
    let listening = status.clone();
    let newest = Newest::default();
    let seen = newest.clone();
    let listener =
        Arc::new(move |u: SharedUpdate<'_>| on_update(&weak_unit, &weak_target, lun, &listening, (&seen, &save), u));
    let Some(object) = store.share("mode", listener) else { return Ok(()) };
    let object = object.map_err(|e| format!("opening the shared mode parameters: {e}"))?;
    let shared = Arc::new(ClusterModeParams(object, newest));
    unit.attach_shared_mode_pages(shared.clone());
    let weak_unit = Arc::downgrade(unit);
    let weak_shared = Arc::downgrade(&shared);
    status.on_take_over(Box::new(move |_others| {
        if let (Some(u), Some(s)) = (weak_unit.upgrade(), weak_shared.upgrade()) {
            load_as_owner(&u, &s);
        }
    }));
    if status.others().iter().all(|m| m.state == MemberState::Lost) {
        // The first gateway up: the unit was off, and a power on brings the default values back
        // (this unit's configuration's, not the values the watch handed over from before the
        // power on), which it serves even if they could not be stored.
        let defaults = unit.default_mode_params();
        unit.install_mode_params(defaults);
        if let Err(e) = shared.write(&defaults, POWER_ON) {
            tracing::warn!("storing the mode parameters of a unit powered on failed: {e}");
        }
    } else if status.local_state() == LocalState::Active {
        load_as_owner(unit, &shared);
    } else if let Some(values) = shared.read().map_err(|e| format!("reading the shared mode parameters: {e}"))? {
        unit.install_mode_params(values);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_events_round_trip_and_garbage_is_refused() {
        let v = ModeParams { wce: false, d_sense: true, swp: true };
        assert_eq!(decode(&encode(&v)).unwrap(), Some(v));
        assert_eq!(decode(b"").unwrap(), None);
        assert!(decode(b"{").is_err());
        assert!(decode(br#"{"wce":true}"#).is_err());
        let by = ModeSelectedBy { initiator_port: "iqn.x,i,0x1".into(), relative_port: 2 };
        let event: Event = serde_json::from_slice(&encode_event(&by)).unwrap();
        assert_eq!(event, Event { port: by.initiator_port, relative_port: 2 });
        assert!(serde_json::from_slice::<Event>(POWER_ON).is_err());
        assert!(serde_json::from_slice::<Event>(ADMINISTRATOR).is_err(), "no nexus is left out");
    }
}
