//! The iSNS client (RFC 4171): with `iSNS=On`, the daemon registers its network entity, its iSCSI
//! portals and its iSCSI targets with an iSNS server so initiators can discover them, keeps that
//! registration current as targets and portals come and go, refreshes it before the server's
//! registration period runs out, and deregisters at a clean stop. With `iSNSAccessControl=On` the
//! server's discovery domains also decide which initiators see and log in to each target
//! (`access`), kept current by State Change Notifications (`scn`).
//!
//! Management never waits for the server: settings go to one background task through a watch
//! channel, and that task compares what is registered with what the daemon serves. A server that
//! is down or slow is retried with capped exponential back-off while logins and tgtadm go on.

pub mod access;
mod client;
pub mod pdu;
mod scn;

use parking_lot::Mutex;
use rtgt_iscsi::{IscsiServer, Registry};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// RFC 4171 6: the IANA port of iSNS.
pub const DEFAULT_PORT: u16 = 3205;

/// What `tgtadm --mode system --op update --name iSNS*` set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsnsSettings {
    pub enabled: bool,
    pub server_ip: Option<IpAddr>,
    pub server_port: u16,
    /// `iSNSAccessControl`: discovery domains decide who sees a target (while iSNS is on).
    pub access_control: bool,
    /// Set once, at daemon stop: the task deregisters and ends.
    stopping: bool,
}

impl Default for IsnsSettings {
    fn default() -> Self {
        IsnsSettings {
            enabled: false,
            server_ip: None,
            server_port: DEFAULT_PORT,
            access_control: false,
            stopping: false,
        }
    }
}

impl IsnsSettings {
    /// The server to register with, when registration is on.
    fn server(&self) -> Option<SocketAddr> {
        match (self.enabled && !self.stopping, self.server_ip) {
            (true, Some(ip)) => Some(SocketAddr::new(ip, self.server_port)),
            _ => None,
        }
    }
}

/// The daemon's iSNS client: its settings, and the task that acts on them (started the first time
/// iSNS is configured inside the runtime).
#[derive(Debug)]
pub struct Isns {
    settings: watch::Sender<IsnsSettings>,
    /// The network entity's identifier: stable for one daemon instance across restarts, so a
    /// restarted daemon replaces its own registration instead of adding a second entity.
    entity_id: Mutex<String>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The discovery-domain answers logins and SendTargets consult.
    access: Arc<access::AccessControl>,
}

impl Default for Isns {
    fn default() -> Self {
        let host = host_name();
        Isns {
            settings: watch::channel(IsnsSettings::default()).0,
            entity_id: Mutex::new(format!("rtgt:{host}:{}", std::process::id())),
            task: Mutex::new(None),
            access: Arc::default(),
        }
    }
}

impl Isns {
    pub fn settings(&self) -> IsnsSettings {
        self.settings.borrow().clone()
    }

    /// Set before iSNS is first turned on (tgtd's main derives it from the host and the control
    /// socket); later changes apply to the next start of the task only.
    pub fn set_entity_id(&self, id: String) {
        *self.entity_id.lock() = id;
    }

    /// Applies new settings; starts the background task on first use. Never waits for the server.
    pub fn configure(
        &self,
        change: impl FnOnce(&mut IsnsSettings),
        registry: &Arc<Registry>,
        iscsi: &Arc<IscsiServer>,
    ) -> Result<(), &'static str> {
        let mut task = self.task.lock();
        let mut next = self.settings();
        change(&mut next);
        let handle = tokio::runtime::Handle::try_current();
        if task.is_none() && next.enabled && handle.is_err() {
            return Err("no runtime to run the iSNS client in");
        }
        self.settings.send_replace(next.clone());
        // Installed once, before access control can first be on: it answers "visible" while off.
        if next.access_control {
            registry.set_visibility(self.access.clone());
        }
        self.access.set_active(next.enabled && next.access_control);
        if let (None, true, Ok(handle)) = (task.as_ref(), next.enabled, handle) {
            let source = client::Source { registry: registry.clone(), iscsi: iscsi.clone() };
            let worker = client::Worker::new(
                self.settings.subscribe(),
                source,
                self.entity_id.lock().clone(),
                self.access.clone(),
            );
            *task = Some(handle.spawn(worker.run()));
        }
        Ok(())
    }

    /// At daemon stop: deregister (bounded: a dead server delays the stop by a few seconds at most).
    pub async fn shutdown(&self) {
        self.settings.send_modify(|s| s.stopping = true);
        let task = self.task.lock().take();
        if let Some(task) = task {
            if tokio::time::timeout(client::STOP_TIMEOUT, task).await.is_err() {
                tracing::warn!("iSNS: deregistration did not finish before stop");
            }
        }
    }
}

/// tgt's names of the iSNS settings (`tgtadm --mode system --op update --name ...`), matched
/// case-insensitively as tgt does.
pub const SETTING_NAMES: [&str; 4] = ["iSNSServerIP", "iSNSServerPort", "iSNSAccessControl", "iSNS"];

pub fn is_setting(name: &str) -> bool {
    SETTING_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

impl IsnsSettings {
    /// The settings as tgt's `--name`/`--value` pairs, in an order one update can apply: the
    /// server and access control before iSNS is turned on. None for the defaults.
    pub fn as_params(&self) -> Option<Vec<(&'static str, String)>> {
        if *self == IsnsSettings::default() {
            return None;
        }
        let on_off = |on: bool| if on { "On" } else { "Off" }.to_string();
        let mut params = Vec::new();
        if let Some(ip) = self.server_ip {
            params.push(("iSNSServerIP", ip.to_string()));
        }
        params.push(("iSNSServerPort", self.server_port.to_string()));
        params.push(("iSNSAccessControl", on_off(self.access_control)));
        params.push(("iSNS", on_off(self.enabled)));
        Some(params)
    }
}

/// The host's name, for entity identifiers; empty if the kernel does not say.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// How long one exchange with the server may take before the connection is given up.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
