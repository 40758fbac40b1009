//! `--mode system`: the daemon's state, and stopping it.

use super::Outcome;
use crate::Daemon;
use rtgt_backstore::BackstoreKind;
use rtgt_mgmt::{
    BackingStoreView, DeviceType, ErrorCode, IsnsView, Limits, LldView, MgmtError, Param, Reply, SystemOp, SystemState,
    SystemView,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Turns debug logging on or off in the running process (tgt's `system update debug on|off`).
pub type DebugSwitch = Box<dyn Fn(bool) -> Result<(), String> + Send + Sync>;

/// The log level belongs to the process-wide subscriber, which tgtd's main installs; the library
/// only holds the switch main hands it. Without one (unit tests), `debug on` is refused.
static DEBUG_SWITCH: OnceLock<DebugSwitch> = OnceLock::new();
static DEBUG_ON: AtomicBool = AtomicBool::new(false);

/// Called once by tgtd's main with the logging switch and whether `-d` turned debugging on.
pub fn install_debug_switch(switch: DebugSwitch, on: bool) {
    DEBUG_ON.store(on, Ordering::Relaxed);
    let _ = DEBUG_SWITCH.set(switch);
}

pub(crate) fn apply(daemon: &Daemon, op: SystemOp) -> Outcome {
    match op {
        SystemOp::Show => Outcome::from(Ok(Reply::System(view(daemon)))),
        // As tgt: no stop while targets are configured, so a stray command cannot take storage away
        // from initiators. rtgt adds `--force`, which stops anyway (sessions are logged out first).
        SystemOp::Delete { force: false } if !daemon.targets.iscsi_targets().is_empty() => Outcome::from(Err(
            MgmtError::with_message(ErrorCode::InvalidRequest, "targets are configured; delete them or use --force"),
        )),
        SystemOp::Delete { .. } => Outcome { result: Ok(Reply::Done), stop: true },
        SystemOp::Update { params } => Outcome::from(update(daemon, &params)),
    }
}

fn view(daemon: &Daemon) -> SystemView {
    SystemView {
        state: if daemon.registry.is_offline() { SystemState::Offline } else { SystemState::Ready },
        debug: DEBUG_ON.load(Ordering::Relaxed),
        llds: vec![
            LldView { name: "iscsi".to_string(), state: "ready".to_string(), targets: Vec::new() },
            LldView { name: "vhost".to_string(), state: "ready".to_string(), targets: Vec::new() },
        ],
        backing_stores: BackstoreKind::all()
            .iter()
            .map(|kind| BackingStoreView {
                name: kind.name().to_string(),
                oflags: matches!(kind, BackstoreKind::Rdwr | BackstoreKind::Aio).then(|| "sync:direct".to_string()),
            })
            .collect(),
        // In tgt's order (it also lists osd and passthrough, which rtgt does not emulate).
        device_types: vec![
            DeviceType::Disk,
            DeviceType::Cd,
            DeviceType::Controller,
            DeviceType::Changer,
            DeviceType::Tape,
        ],
        limits: Some(limits(daemon)),
        isns: Some(isns_view(daemon)),
    }
}

fn isns_view(daemon: &Daemon) -> IsnsView {
    let s = daemon.isns.settings();
    IsnsView {
        enabled: s.enabled,
        server_ip: s.server_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        server_port: s.server_port,
        access_control: s.access_control,
    }
}

/// tgt's iSNS keys, as given: `iSNS On|Off`, `iSNSServerIP`, `iSNSServerPort`,
/// `iSNSAccessControl`. Parsed here, applied by `update` once every parameter is valid.
#[derive(Default)]
struct IsnsChange {
    enabled: Option<bool>,
    server_ip: Option<std::net::IpAddr>,
    server_port: Option<u16>,
    access_control: Option<bool>,
}

impl IsnsChange {
    fn is_empty(&self) -> bool {
        self.enabled.is_none()
            && self.server_ip.is_none()
            && self.server_port.is_none()
            && self.access_control.is_none()
    }

    /// Takes `p` if it is an iSNS key; Ok(false) if it is not one.
    fn take(&mut self, p: &Param) -> Result<bool, MgmtError> {
        let invalid = || {
            MgmtError::with_message(
                ErrorCode::InvalidRequest,
                format!("'{}' is not a valid value for {}", p.value, p.name),
            )
        };
        let on_off = || match p.value.to_ascii_lowercase().as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(invalid()),
        };
        match p.name.to_ascii_lowercase().as_str() {
            "isns" => self.enabled = Some(on_off()?),
            // An address, not a host name: resolving one would make management wait on DNS.
            "isnsserverip" => self.server_ip = Some(p.value.trim().parse().map_err(|_| invalid())?),
            "isnsserverport" => {
                self.server_port = Some(p.value.trim().parse::<u16>().ok().filter(|n| *n != 0).ok_or_else(invalid)?)
            }
            // With iSNS on, the server's discovery domains decide who sees a target (isns::access).
            "isnsaccesscontrol" => self.access_control = Some(on_off()?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The daemon-wide bounds, each with what is in use of it.
fn limits(daemon: &Daemon) -> Limits {
    let registry = &daemon.registry;
    Limits {
        max_sessions: registry.max_sessions(),
        sessions: registry.session_count(),
        write_budget: registry.write_budget(),
        write_data_held: registry.write_data_held(),
        read_budget: registry.read_budget(),
        read_data_held: registry.read_data_held(),
        login_timeout_secs: registry.login_timeout().as_secs(),
        data_out_timeout_secs: registry.data_out_timeout().as_secs(),
        send_timeout_secs: registry.send_timeout().as_secs(),
    }
}

/// A value for `--iscsi write_budget=` or `read_budget=`, or the system parameter of that name: a size (`1G`, `512M`,
/// bytes) of at least 1 MiB.
pub fn parse_write_budget(text: &str) -> Option<u64> {
    rtgt_mgmt::parse_size(text).ok().filter(|b| *b >= 1 << 20)
}

/// A value for `--iscsi data_out_timeout=` or `send_timeout=`, or the system parameter of that name: whole
/// seconds, 1 to 3600 (an hour is already far past any live initiator), with or without an `s`.
pub fn parse_data_out_timeout(text: &str) -> Option<std::time::Duration> {
    let secs = text.trim().strip_suffix('s').unwrap_or(text.trim());
    secs.parse::<u64>().ok().filter(|s| (1..=3600).contains(s)).map(std::time::Duration::from_secs)
}

/// `State offline|ready`: offline refuses new logins while existing sessions go on. Logging is
/// fixed at start-up (`tgtd -d`), so `debug` accepts only its current value. Everything is checked
/// before anything changes.
fn update(daemon: &Daemon, params: &[Param]) -> Result<Reply, MgmtError> {
    if params.is_empty() {
        return Err(MgmtError::with_message(ErrorCode::InvalidRequest, "no parameter given"));
    }
    let invalid = |p: &Param| {
        MgmtError::with_message(ErrorCode::InvalidRequest, format!("'{}' is not a valid value for {}", p.value, p.name))
    };
    let mut offline = None;
    let mut max_sessions = None;
    let mut write_budget = None;
    let mut read_budget = None;
    let mut data_out_timeout = None;
    let mut send_timeout = None;
    let mut debug = None;
    let mut isns = IsnsChange::default();
    for p in params {
        if isns.take(p)? {
            continue;
        }
        match p.name.to_ascii_lowercase().as_str() {
            "state" => match p.value.as_str() {
                "offline" => offline = Some(true),
                "ready" => offline = Some(false),
                _ => return Err(invalid(p)),
            },
            // tgtd's --iscsi max_sessions=, changed at run time; sessions above a lowered bound go on.
            "max_sessions" => {
                max_sessions = Some(
                    p.value.trim().parse::<u32>().ok().filter(|n| (1..=65535).contains(n)).ok_or_else(|| invalid(p))?,
                )
            }
            // tgtd's --iscsi write_budget=; data held above a lowered bound is not taken back.
            "write_budget" => write_budget = Some(parse_write_budget(&p.value).ok_or_else(|| invalid(p))?),
            // tgtd's --iscsi read_budget=; data held above a lowered bound is not taken back, and
            // READs waiting for room look again at once.
            "read_budget" => read_budget = Some(parse_write_budget(&p.value).ok_or_else(|| invalid(p))?),
            // tgtd's --iscsi data_out_timeout=; connections apply it at their next check.
            "data_out_timeout" => data_out_timeout = Some(parse_data_out_timeout(&p.value).ok_or_else(|| invalid(p))?),
            // tgtd's --iscsi send_timeout=; each connection's writer applies it from its next batch.
            "send_timeout" => send_timeout = Some(parse_data_out_timeout(&p.value).ok_or_else(|| invalid(p))?),
            // As tgt: on or off, nothing else.
            "debug" => match p.value.as_str() {
                "on" => debug = Some(true),
                "off" => debug = Some(false),
                _ => return Err(invalid(p)),
            },
            _ => {
                return Err(MgmtError::with_message(ErrorCode::InvalidRequest, format!("unknown parameter {}", p.name)))
            }
        }
    }
    if isns.enabled == Some(true) && isns.server_ip.is_none() && daemon.isns.settings().server_ip.is_none() {
        return Err(MgmtError::with_message(ErrorCode::InvalidRequest, "set iSNSServerIP before turning iSNS on"));
    }
    if let Some(on) = debug.filter(|on| *on != DEBUG_ON.load(Ordering::Relaxed)) {
        let Some(switch) = DEBUG_SWITCH.get() else {
            return Err(MgmtError::with_message(ErrorCode::Unsupported, "this daemon's logging cannot be changed"));
        };
        switch(on).map_err(|e| MgmtError::with_message(ErrorCode::Unknown, e))?;
        DEBUG_ON.store(on, Ordering::Relaxed);
        tracing::info!(on, "debug logging changed");
    }
    if let Some(offline) = offline {
        daemon.registry.set_offline(offline);
        tracing::info!(offline, "system state changed");
    }
    if let Some(max) = max_sessions {
        daemon.registry.set_max_sessions(max);
        tracing::info!(max, "daemon session limit changed");
    }
    if let Some(bytes) = write_budget {
        daemon.registry.set_write_budget(bytes);
        tracing::info!(bytes, "daemon write budget changed");
    }
    if let Some(bytes) = read_budget {
        daemon.registry.set_read_budget(bytes);
        tracing::info!(bytes, "daemon read budget changed");
    }
    if let Some(limit) = data_out_timeout {
        daemon.registry.set_data_out_timeout(limit);
        tracing::info!(secs = limit.as_secs(), "Data-Out timeout changed");
    }
    if let Some(limit) = send_timeout {
        daemon.registry.set_send_timeout(limit);
        tracing::info!(secs = limit.as_secs(), "send timeout changed");
    }
    if !isns.is_empty() {
        let apply = |s: &mut crate::isns::IsnsSettings| {
            s.enabled = isns.enabled.unwrap_or(s.enabled);
            s.server_ip = isns.server_ip.or(s.server_ip);
            s.server_port = isns.server_port.unwrap_or(s.server_port);
            s.access_control = isns.access_control.unwrap_or(s.access_control);
        };
        daemon
            .isns
            .configure(apply, &daemon.registry, &daemon.iscsi)
            .map_err(|e| MgmtError::with_message(ErrorCode::Unsupported, e))?;
        tracing::info!(settings = ?daemon.isns.settings(), "iSNS settings changed");
    }
    Ok(Reply::Done)
}
