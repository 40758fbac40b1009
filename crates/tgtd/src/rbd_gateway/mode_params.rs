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
//! whose values are the defaults a power on brings back, and kept in the object beside the
//! current values: a gateway stopped when it was made powers the unit on with it.

use super::SaveConfig;
use rtgt_backstore::rbd::{Listener, LocalState, MemberState, SharedObject, SharedUpdate};
use rtgt_backstore::RbdStore;
use rtgt_scsi::{LogicalUnit, ModeParams, ModeSelectedBy, SharedModePages, Target};
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::{Arc, Weak};

/// Compare-and-swap rounds before giving up (each lost round is another gateway's write).
const ATTEMPTS: usize = 8;

/// The object's record: the unit's current values, and the D_SENSE the administrator's last
/// change (`sense_format=`) gave it. A catch-up after a missed notification carries no event, so
/// the record itself says whether an administrator's change is among what was missed (to be
/// saved), and a power on brings back the administrator's last value even on a gateway that was
/// stopped when it was made. Records from before it was kept have none.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Stored {
    wce: bool,
    d_sense: bool,
    swp: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    administrator: Option<bool>,
}

impl Stored {
    fn values(&self) -> ModeParams {
        ModeParams { wce: self.wce, d_sense: self.d_sense, swp: self.swp }
    }
}

fn encode(values: &ModeParams, administrator: Option<bool>) -> Vec<u8> {
    let stored = Stored { wce: values.wce, d_sense: values.d_sense, swp: values.swp, administrator };
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// The stored record; an object never written holds none (the unit's defaults stand).
fn decode(bytes: &[u8]) -> io::Result<Option<Stored>> {
    if bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("shared mode parameters: {e}")))
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

/// What this gateway knows of the object, behind one lock.
#[derive(Debug, Default)]
struct Known {
    /// The object's newest version this gateway wrote or took values from. A value handed over
    /// older than that (the stored value read when the watch was made, delivered after this
    /// gateway's own write) is stale, and is not taken.
    newest: u64,
    /// The administrator's D_SENSE this gateway's saved configuration holds, as far as it knows
    /// (what it was started or created with, then each administrator's change it saved).
    saved: Option<bool>,
}

type Seen = Arc<parking_lot::Mutex<Known>>;

struct ClusterModeParams {
    object: Arc<SharedObject>,
    seen: Seen,
    /// The watch's listener, handed what is stored to catch up (`catch_up`).
    listener: Listener,
}

impl std::fmt::Debug for ClusterModeParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterModeParams").field("object", &self.object).field("seen", &self.seen).finish()
    }
}

impl ClusterModeParams {
    /// Store `values` with `event`; `administrator` is the D_SENSE of an administrator's change,
    /// None keeping the one stored.
    fn write(&self, values: &ModeParams, event: &[u8], administrator: Option<bool>) -> io::Result<()> {
        for _ in 0..ATTEMPTS {
            let (bytes, version) = self.object.read()?;
            let kept = decode(&bytes).ok().flatten().and_then(|s| s.administrator);
            let record = encode(values, administrator.or(kept));
            if let Some(written) = self.object.write_if(version, &record, event)? {
                let mut seen = self.seen.lock();
                seen.newest = seen.newest.max(written);
                return Ok(());
            }
        }
        Err(io::Error::from_raw_os_error(libc::EBUSY))
    }

    fn read(&self) -> io::Result<Option<Stored>> {
        self.object.read().and_then(|(bytes, _)| decode(&bytes))
    }
}

impl SharedModePages for ClusterModeParams {
    fn record(&self, values: &ModeParams, by: Option<&ModeSelectedBy>) -> io::Result<()> {
        match by {
            Some(by) => self.write(values, &encode_event(by), None),
            None => {
                self.write(values, ADMINISTRATOR, Some(values.d_sense))?;
                // The caller (the owner's management request or forwarding listener) saves it.
                self.seen.lock().saved = Some(values.d_sense);
                Ok(())
            }
        }
    }

    fn run_blocking(&self, job: Box<dyn FnOnce() + Send>) -> io::Result<()> {
        super::run_blocking(job, "mode-shared")
    }

    fn catch_up(&self) -> io::Result<()> {
        let (value, version) = self.object.read()?;
        (self.listener)(SharedUpdate { version, value: &value, event: &[], from_self: false });
        Ok(())
    }
}

/// Take the stored values as the owner about to serve. Unreadable, the values kept from the
/// notifications stand (every change reached this gateway before its GOOD).
fn load_as_owner(unit: &LogicalUnit, shared: &ClusterModeParams) {
    match shared.read() {
        Ok(Some(stored)) => {
            let values = stored.values();
            if unit.install_mode_params(values) {
                tracing::info!(?values, "mode parameters taken over");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!("reading the shared mode parameters failed, keeping this gateway's copy: {e}"),
    }
}

/// Where an update is taken: LUN `lun` of `target` (while it is `unit`), this gateway's target
/// port group `tpg`.
struct Taker<'a> {
    unit: &'a Weak<LogicalUnit>,
    target: &'a Weak<Target>,
    lun: u64,
    tpg: u16,
    seen: &'a Seen,
    save: &'a SaveConfig,
}

/// Another gateway's change (or the stored values, catching up after a broken watch or after
/// asking the owner for a change). An administrator's change is saved here too, before it is
/// acknowledged: what the administrator was told is done is in every gateway's saved
/// configuration. A catch-up cannot tell who made what it brings, so it saves when the stored
/// administrator's value is not the one this gateway saved: an initiator's MODE SELECT alone
/// never makes a save.
fn on_update(at: &Taker<'_>, u: SharedUpdate<'_>) {
    if u.from_self {
        return;
    }
    let (Some(unit), Some(target)) = (at.unit.upgrade(), at.target.upgrade()) else { return };
    let stored = match decode(u.value) {
        Ok(Some(stored)) => stored,
        Ok(None) => return,
        Err(e) => return tracing::warn!("{e}"),
    };
    let catch_up = u.event.is_empty();
    if !catch_up {
        super::resets::delay_peer_event();
    }
    let (changed, unsaved) = {
        let mut seen = at.seen.lock();
        if u.version < seen.newest {
            return;
        }
        seen.newest = u.version;
        let changed = unit.install_mode_params(stored.values());
        let by_administrator = u.event == ADMINISTRATOR || catch_up;
        let unsaved = by_administrator && stored.administrator.is_some_and(|d| seen.saved != Some(d));
        (changed, unsaved || (changed && u.event == ADMINISTRATOR))
    };
    if !target.lun(at.lun).is_some_and(|current| Arc::ptr_eq(&unit, &current)) {
        return;
    }
    if changed {
        // The nexus that made the change through this gateway was answered GOOD: it is not told.
        let by: Option<Event> = serde_json::from_slice(u.event).ok();
        let except = by.filter(|e| e.relative_port == at.tpg).map(|e| e.port);
        target.mode_parameters_changed(at.lun, except.as_deref());
    }
    if unsaved {
        at.seen.lock().saved = stored.administrator;
        (at.save)();
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
    let seen = Seen::new(parking_lot::Mutex::new(Known { newest: 0, saved: Some(unit.default_mode_params().d_sense) }));
    let tpg = status.tpg();
    let (taken, saving) = (seen.clone(), save.clone());
    let listener: Listener = Arc::new(move |u: SharedUpdate<'_>| {
        let at = Taker { unit: &weak_unit, target: &weak_target, lun, tpg, seen: &taken, save: &saving };
        on_update(&at, u)
    });
    let Some(object) = store.share("mode", listener.clone()) else { return Ok(()) };
    let object = object.map_err(|e| format!("opening the shared mode parameters: {e}"))?;
    let shared = Arc::new(ClusterModeParams { object, seen: seen.clone(), listener });
    unit.attach_shared_mode_pages(shared.clone());
    let weak_unit = Arc::downgrade(unit);
    let weak_shared = Arc::downgrade(&shared);
    status.on_take_over(Box::new(move |_others| {
        if let (Some(u), Some(s)) = (weak_unit.upgrade(), weak_shared.upgrade()) {
            load_as_owner(&u, &s);
        }
    }));
    if status.others().iter().all(|m| m.state == MemberState::Lost) {
        power_on(unit, &shared);
    } else if status.local_state() == LocalState::Active {
        load_as_owner(unit, &shared);
    } else if let Some(stored) = shared.read().map_err(|e| format!("reading the shared mode parameters: {e}"))? {
        unit.install_mode_params(stored.values());
    }
    Ok(())
}

/// The first gateway up: the unit was off, and a power on brings the default values back (not
/// the values the watch handed over from before the power on), which it serves even if they
/// could not be stored. The default sense format is the administrator's last one, stored in the
/// object, when there is one: a gateway stopped while the administrator changed it through
/// another saved the value from before, and takes the newer one here as its configuration's
/// (saved with the configuration's next save: a unit powers on while it is restored or created,
/// whose own save comes after).
fn power_on(unit: &LogicalUnit, shared: &ClusterModeParams) {
    let administrator = match shared.read() {
        Ok(stored) => stored.and_then(|s| s.administrator),
        Err(e) => {
            tracing::warn!(
                "reading the shared mode parameters failed, powering on with this gateway's saved values: {e}"
            );
            None
        }
    };
    let mut defaults = unit.default_mode_params();
    let newer = administrator.filter(|&d| d != defaults.d_sense);
    if let Some(d_sense) = newer {
        tracing::info!(d_sense, "powering on with the sense format an administrator set through another gateway");
        let mut config = rtgt_scsi::LunConfig::clone(&unit.config());
        config.descriptor_sense = d_sense;
        unit.reconfigure(config);
        defaults.d_sense = d_sense;
    }
    unit.install_mode_params(defaults);
    if let Err(e) = shared.write(&defaults, POWER_ON, None) {
        tracing::warn!("storing the mode parameters of a unit powered on failed: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_events_round_trip_and_garbage_is_refused() {
        let v = ModeParams { wce: false, d_sense: true, swp: true };
        let stored = decode(&encode(&v, Some(false))).unwrap().unwrap();
        assert_eq!((stored.values(), stored.administrator), (v, Some(false)));
        // A record from before the administrator's value was kept: none.
        let old = decode(br#"{"wce":false,"d_sense":true,"swp":true}"#).unwrap().unwrap();
        assert_eq!((old.values(), old.administrator), (v, None));
        assert_eq!(encode(&v, None), br#"{"wce":false,"d_sense":true,"swp":true}"#);
        assert_eq!(decode(b"").unwrap(), None);
        assert!(decode(b"{").is_err());
        assert!(decode(br#"{"wce":true}"#).is_err());
        let by = ModeSelectedBy { initiator_port: "iqn.x,i,0x1".into(), relative_port: 2 };
        let event: Event = serde_json::from_slice(&encode_event(&by)).unwrap();
        assert_eq!(event, Event { port: by.initiator_port, relative_port: 2 });
        assert!(serde_json::from_slice::<Event>(POWER_ON).is_err());
        assert!(serde_json::from_slice::<Event>(ADMINISTRATOR).is_err(), "no nexus is left out");
    }

    /// LUN 1 of a target, with D_SENSE off by configuration, and the saves its updates made.
    struct Gateway {
        target: Arc<Target>,
        unit: Arc<LogicalUnit>,
        seen: Seen,
        save: SaveConfig,
        saves: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Gateway {
        fn new() -> Self {
            let target = Target::new(1, "iqn.2026-12.org.rtgt.test:mode".into());
            let unit = Arc::new(LogicalUnit::new(rtgt_scsi::LunConfig::disk(1, 1), None));
            target.add_lun(1, unit.clone()).unwrap();
            let seen = Seen::new(parking_lot::Mutex::new(Known { newest: 0, saved: Some(false) }));
            let saves = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counting = saves.clone();
            let save: SaveConfig = Arc::new(move || {
                counting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
            Gateway { target, unit, seen, save, saves }
        }

        /// Hand over version `version` of a record of D_SENSE `d_sense` (the administrator's
        /// last being `administrator`) with `event`; returns D_SENSE then and the saves so far.
        fn update(&self, version: u64, d_sense: bool, administrator: Option<bool>, event: &[u8]) -> (bool, usize) {
            let values = ModeParams { wce: true, d_sense, swp: false };
            let value = encode(&values, administrator);
            let (unit, target) = (Arc::downgrade(&self.unit), Arc::downgrade(&self.target));
            let at = Taker { unit: &unit, target: &target, lun: 1, tpg: 1, seen: &self.seen, save: &self.save };
            on_update(&at, SharedUpdate { version, value: &value, event, from_self: false });
            (self.unit.mode_params().d_sense, self.saves.load(std::sync::atomic::Ordering::Relaxed))
        }
    }

    #[test]
    fn a_catch_up_saves_an_administrators_change_it_brings_but_not_an_initiators() {
        let gw = Gateway::new();
        let by = encode_event(&ModeSelectedBy { initiator_port: "iqn.x,i,0x1".into(), relative_port: 2 });
        // An initiator's MODE SELECT, notified: taken, not saved.
        assert_eq!(gw.update(2, true, None, &by), (true, 0));
        // Caught up (no event): an initiator's change again, the administrator's value being
        // the one saved here: taken, not saved.
        assert_eq!(gw.update(3, false, Some(false), b""), (false, 0));
        assert_eq!(gw.update(4, true, Some(false), b""), (true, 0));
        // The administrator's change that was missed: saved, though the values here are the
        // same already (an initiator set them).
        assert_eq!(gw.update(5, true, Some(true), b""), (true, 1));
        // Caught up again with nothing new: not saved again.
        assert_eq!(gw.update(5, true, Some(true), b""), (true, 1));
        // Older than what was taken: neither taken nor saved.
        assert_eq!(gw.update(4, false, Some(false), b""), (true, 1));
        // An administrator's change, notified: taken and saved.
        assert_eq!(gw.update(6, false, Some(false), ADMINISTRATOR), (false, 2));
        // A record from before the administrator's value was kept: taken, nothing to save.
        assert_eq!(gw.update(7, true, None, b""), (true, 2));
    }

    #[test]
    fn an_update_for_a_unit_no_longer_served_is_not_saved() {
        let gw = Gateway::new();
        gw.target.remove_lun(1).unwrap();
        assert_eq!(gw.update(2, true, Some(true), b"").1, 0);
    }
}
