//! Several gateways serving one image as one logical unit: each gateway's membership in the
//! image's registry (`registry`), kept by a thread of its own (`member`), and the status the
//! daemon reads on every command (`GatewayStatus`).
//!
//! The model: one owner at a time serves I/O; the others stand by. Ownership moves only when the
//! owner's lease in the registry has expired (it died, or lost the cluster) or it left cleanly;
//! before the next owner serves, it blocklists the old owner's RADOS client, so no write the old
//! owner still had in flight can land afterwards. A gateway that cannot renew its lease stops
//! serving before the lease runs out.

mod member;
pub(crate) mod registry;
mod shared;

use crate::BackstoreError;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub(crate) use member::Gateway;
pub use shared::{Listener, SharedObject, SharedUpdate, NOTIFY_TIMEOUT as SHARED_NOTIFY_TIMEOUT};

/// How long a lease lasts without renewal. A dead owner is replaced within `LEASE + HEARTBEAT`.
pub(crate) const LEASE: Duration = Duration::from_secs(10);
/// How often a gateway renews its lease and re-reads the registry (a notification wakes it sooner).
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(2);
/// A gateway that could not renew for `LEASE - SAFETY` stops serving: the others may take over
/// once the lease is out, and it must not still be serving then.
pub(crate) const SAFETY: Duration = Duration::from_secs(3);

/// `gateway=NAME;tpg=N[;portal=TEXT]` of the `--bsopts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayOptions {
    /// Unique among the gateways of one image: `[A-Za-z0-9._-]`, at most 64 characters.
    pub name: String,
    /// Target port group (and relative target port) of this gateway: unique per image, nonzero.
    pub tpg: u16,
    /// Where initiators reach this gateway, for the registry's readers (informational).
    pub portal: String,
}

impl GatewayOptions {
    pub(crate) fn check_name(name: &str) -> Result<(), BackstoreError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(())
        } else {
            Err(BackstoreError::BadOption(format!(
                "gateway '{name}': a name of at most 64 letters, digits, '.', '_' or '-'"
            )))
        }
    }
}

/// This gateway's part for the logical unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalState {
    /// It owns the unit and serves I/O.
    Active,
    /// Registered, another owns the unit.
    Standby,
    /// Not (or no longer) registered: the cluster is unreachable, or this client was fenced.
    Unavailable,
}

/// Another gateway's part, as this one sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Owner,
    Standby,
    /// Its lease expired: dead, or cut off from the cluster.
    Lost,
}

/// One gateway of the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub tpg: u16,
    pub state: MemberState,
    /// Where it takes forwarded commands, `host:port/token`, as its registry entry says (empty:
    /// nowhere).
    pub forward: String,
}

/// Called when any gateway's access state changes, as this one sees it.
pub type ChangeListener = Box<dyn Fn() + Send + Sync>;

/// Called when this gateway is about to own the unit, with the other gateways as it will report
/// them, on the membership thread (it may block for a few cluster round trips).
pub type TakeOverListener = Box<dyn Fn(&[Member]) + Send + Sync>;

/// What the daemon reads: this gateway's state (on every command: an atomic) and every member's
/// (for REPORT TARGET PORT GROUPS).
pub struct GatewayStatus {
    name: String,
    tpg: u16,
    portal: String,
    local: AtomicU8,
    members: Mutex<Vec<Member>>,
    /// Called on every change of access state, in the order they were added.
    listeners: Mutex<Vec<Arc<ChangeListener>>>,
    /// Called after every heartbeat, on the membership thread, in the order they were added.
    beat_listeners: Mutex<Vec<Arc<ChangeListener>>>,
    /// Called before this gateway serves as owner, in the order they were added (one per kind
    /// of unit state to load: a RESERVE(6) holder, mode parameters).
    take_over_listeners: Mutex<Vec<Arc<TakeOverListener>>>,
    /// Ownership asked for on purpose (a target port group), for the membership thread.
    pub(crate) handoff_request: Mutex<Option<u16>>,
    /// Wakes the membership thread.
    wake: Arc<crate::rbd::rados::Wake>,
    /// Where this gateway takes forwarded commands (`host:port/token`), for its registry entry.
    pub(crate) forward: Mutex<String>,
}

impl std::fmt::Debug for GatewayStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayStatus")
            .field("name", &self.name)
            .field("tpg", &self.tpg)
            .field("local", &self.local_state())
            .field("members", &*self.members.lock())
            .finish_non_exhaustive()
    }
}

impl GatewayStatus {
    fn new(options: &GatewayOptions, wake: Arc<crate::rbd::rados::Wake>) -> Self {
        GatewayStatus {
            name: options.name.clone(),
            tpg: options.tpg,
            portal: options.portal.clone(),
            local: AtomicU8::new(LocalState::Unavailable as u8),
            members: Mutex::new(Vec::new()),
            listeners: Mutex::new(Vec::new()),
            beat_listeners: Mutex::new(Vec::new()),
            take_over_listeners: Mutex::new(Vec::new()),
            handoff_request: Mutex::new(None),
            wake,
            forward: Mutex::new(String::new()),
        }
    }

    /// Ask for gateway group `tpg` to own the unit (explicit ALUA, tgtadm): the owner flushes,
    /// steps down and names it. Waits until this gateway sees `tpg` own the unit, at most
    /// `timeout`. Blocking.
    pub fn move_ownership(&self, tpg: u16, timeout: Duration) -> std::io::Result<()> {
        use std::io;
        use std::time::Instant;
        let known = tpg == self.tpg || self.others().iter().any(|m| m.tpg == tpg);
        if !known {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("no gateway has target port group {tpg}")));
        }
        let started = Instant::now();
        let mut asked: Option<Instant> = None;
        while !self.is_owner(tpg) {
            if started.elapsed() >= timeout {
                return Err(io::Error::new(io::ErrorKind::TimedOut, format!("group {tpg} did not take ownership")));
            }
            // Asked again every second: a request the owner dropped (or a lost write) is renewed.
            if asked.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                *self.handoff_request.lock() = Some(tpg);
                self.wake.wake();
                asked = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Publish where this gateway takes the commands other gateways forward to it while it owns
    /// the unit (`host:port/token`), in its registry entry from the next heartbeat on (which this
    /// hastens). The registry is readable only by the cluster's authenticated clients, which is
    /// what keeps the token from anyone else.
    pub fn set_forward(&self, forward: String) {
        *self.forward.lock() = forward;
        self.wake.wake();
    }

    /// The owner's forwarding address (`host:port/token`), when another live gateway owns the
    /// unit and published one.
    pub fn owner_forward(&self) -> Option<String> {
        self.members
            .lock()
            .iter()
            .find(|m| m.state == MemberState::Owner && !m.forward.is_empty())
            .map(|m| m.forward.clone())
    }

    /// Call `listener` whenever this gateway's or another's access state changes (the daemon
    /// gives every nexus ASYMMETRIC ACCESS STATE CHANGED; the owner drops a RESERVE(6) holder
    /// whose gateway is gone). Each call adds one; every one is called, on the thread that saw
    /// the change (the membership thread, or one dropping the gateway).
    pub fn on_change(&self, listener: ChangeListener) {
        self.listeners.lock().push(Arc::new(listener));
    }

    /// Call `listener` after every heartbeat, on the membership thread (it may block briefly):
    /// the daemon re-reads the image's size there, so that an `rbd resize` made anywhere reaches
    /// every gateway's nexuses (librbd refreshes the header it watches; reading the size is local
    /// until it changed), and the owner checks that a RESERVE(6) holder's gateway still lives.
    /// Each call adds one; every one is called.
    pub fn on_beat(&self, listener: ChangeListener) {
        self.beat_listeners.lock().push(Arc::new(listener));
    }

    /// Call `listener` each time this gateway is about to own the unit (a takeover, a handoff to
    /// it), before its state says so: no command is served as owner before `listener` returns.
    /// Each call adds one; every one is called.
    pub fn on_take_over(&self, listener: TakeOverListener) {
        self.take_over_listeners.lock().push(Arc::new(listener));
    }

    pub(crate) fn taking_over(&self, others: &[Member]) {
        let listeners = self.take_over_listeners.lock().clone();
        for l in listeners {
            l(others);
        }
    }

    pub(crate) fn beaten(&self) {
        let listeners = self.beat_listeners.lock().clone();
        for l in listeners {
            l();
        }
    }

    fn changed(&self) {
        let listeners = self.listeners.lock().clone();
        for l in listeners {
            l();
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tpg(&self) -> u16 {
        self.tpg
    }

    /// The `portal=` option: where initiators (and the other gateways) reach this one.
    pub fn portal(&self) -> &str {
        &self.portal
    }

    pub fn local_state(&self) -> LocalState {
        match self.local.load(Ordering::Acquire) {
            0 => LocalState::Active,
            1 => LocalState::Standby,
            _ => LocalState::Unavailable,
        }
    }

    pub(crate) fn set_local(&self, state: LocalState) -> bool {
        let changed = self.local.swap(state as u8, Ordering::AcqRel) != state as u8;
        if changed {
            self.changed();
        }
        changed
    }

    /// The other gateways of the image (not this one), by target port group.
    pub fn others(&self) -> Vec<Member> {
        self.members.lock().clone()
    }

    pub(crate) fn set_others(&self, members: Vec<Member>) {
        let changed = {
            let mut current = self.members.lock();
            let same = current.len() == members.len()
                && current.iter().zip(&members).all(|(a, b)| a.tpg == b.tpg && a.state == b.state);
            *current = members;
            !same
        };
        if changed {
            self.changed();
        }
    }

    /// Whether gateway group `tpg` owns the unit, as this gateway sees it.
    pub fn is_owner(&self, tpg: u16) -> bool {
        if tpg == self.tpg {
            return self.local_state() == LocalState::Active;
        }
        self.members.lock().iter().any(|m| m.tpg == tpg && m.state == MemberState::Owner)
    }
}

#[cfg(test)]
mod cluster_tests;

#[cfg(test)]
mod tests {
    #[test]
    fn every_beat_listener_is_called() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let options = super::GatewayOptions { name: "gw1".into(), tpg: 1, portal: String::new() };
        let status = super::GatewayStatus::new(&options, Default::default());
        let calls = Arc::new(AtomicUsize::new(0));
        for _ in 0..2 {
            let calls = calls.clone();
            status.on_beat(Box::new(move || {
                calls.fetch_add(1, Ordering::Relaxed);
            }));
        }
        status.beaten();
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn gateway_names() {
        for ok in ["gw1", "a.b_c-d", &"x".repeat(64)] {
            assert!(super::GatewayOptions::check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a;b", "a=b", "é", &"x".repeat(65)] {
            assert!(super::GatewayOptions::check_name(bad).is_err(), "{bad}");
        }
    }
}
