//! `--mode system`: the daemon's state, and stopping it.

use super::Outcome;
use crate::Daemon;
use rtgt_backstore::BackstoreKind;
use rtgt_mgmt::{
    BackingStoreView, DeviceType, ErrorCode, LldView, MgmtError, Param, Reply, SystemOp, SystemState, SystemView,
};

pub(crate) fn apply(daemon: &Daemon, op: SystemOp) -> Outcome {
    match op {
        SystemOp::Show => Outcome::from(Ok(Reply::System(view(daemon)))),
        // As tgt: no stop while targets are configured, so a stray command cannot take storage away
        // from initiators. rtgt adds `--force`, which stops anyway (sessions are logged out first).
        SystemOp::Delete { force: false } if !daemon.registry.targets().is_empty() => Outcome::from(Err(
            MgmtError::with_message(ErrorCode::InvalidRequest, "targets are configured; delete them or use --force"),
        )),
        SystemOp::Delete { .. } => Outcome { result: Ok(Reply::Done), stop: true },
        SystemOp::Update { params } => Outcome::from(update(daemon, &params)),
    }
}

fn view(daemon: &Daemon) -> SystemView {
    SystemView {
        state: if daemon.registry.is_offline() { SystemState::Offline } else { SystemState::Ready },
        debug: false,
        llds: vec![
            LldView { name: "iscsi".to_string(), state: "ready".to_string(), targets: Vec::new() },
            LldView { name: "vhost".to_string(), state: "ready".to_string(), targets: Vec::new() },
        ],
        backing_stores: BackstoreKind::all()
            .iter()
            .map(|kind| BackingStoreView {
                name: kind.name().to_string(),
                oflags: (*kind == BackstoreKind::Rdwr).then(|| "sync:direct".to_string()),
            })
            .collect(),
        device_types: vec![DeviceType::Disk, DeviceType::Controller],
        limits: limits(daemon),
    }
}

/// The daemon-wide bounds in the spelling of their options, each with what is in use of it.
fn limits(daemon: &Daemon) -> Vec<(String, String)> {
    let registry = &daemon.registry;
    [
        ("max_sessions", registry.max_sessions().to_string()),
        ("sessions", registry.session_count().to_string()),
        ("write_budget", size(registry.write_budget())),
        ("write_data_held", size(registry.write_data_held())),
        ("login_timeout", format!("{}s", registry.login_timeout().as_secs())),
        ("data_out_timeout", format!("{}s", registry.data_out_timeout().as_secs())),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// A value for `--iscsi write_budget=` or the system parameter `write_budget`: a size (`1G`, `512M`,
/// bytes) of at least 1 MiB.
pub fn parse_write_budget(text: &str) -> Option<u64> {
    rtgt_backstore::parse_size(text).ok().filter(|b| *b >= 1 << 20)
}

/// A value for `--iscsi data_out_timeout=` or the system parameter `data_out_timeout`: whole
/// seconds, 1 to 3600 (an hour is already far past any live initiator), with or without an `s`.
pub fn parse_data_out_timeout(text: &str) -> Option<std::time::Duration> {
    let secs = text.trim().strip_suffix('s').unwrap_or(text.trim());
    secs.parse::<u64>().ok().filter(|s| (1..=3600).contains(s)).map(std::time::Duration::from_secs)
}

/// Bytes as `--iscsi write_budget=` takes them: `1G`, `512M`, `64k`, or bytes.
fn size(bytes: u64) -> String {
    match bytes {
        0 => "0".to_string(),
        b if b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}k", b >> 10),
        b => b.to_string(),
    }
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
    let mut data_out_timeout = None;
    for p in params {
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
            // tgtd's --iscsi data_out_timeout=; connections apply it at their next check.
            "data_out_timeout" => data_out_timeout = Some(parse_data_out_timeout(&p.value).ok_or_else(|| invalid(p))?),
            "debug" => match p.value.as_str() {
                "off" => {}
                "on" => {
                    return Err(MgmtError::with_message(
                        ErrorCode::Unsupported,
                        "debug logging is chosen at start (tgtd -d)",
                    ))
                }
                _ => return Err(invalid(p)),
            },
            _ => {
                return Err(MgmtError::with_message(ErrorCode::InvalidRequest, format!("unknown parameter {}", p.name)))
            }
        }
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
    if let Some(limit) = data_out_timeout {
        daemon.registry.set_data_out_timeout(limit);
        tracing::info!(secs = limit.as_secs(), "Data-Out timeout changed");
    }
    Ok(Reply::Done)
}
