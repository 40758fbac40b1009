//! `--mode system`: the daemon's state, and stopping it.

use super::Outcome;
use crate::Daemon;
use rtgt_backstore::BackstoreKind;
use rtgt_mgmt::{
    BackingStoreView, DeviceType, ErrorCode, LldView, MgmtError, Param, Reply, SystemOp, SystemState, SystemView,
};

pub(crate) fn apply(daemon: &Daemon, op: SystemOp) -> Outcome {
    match op {
        SystemOp::Show => Outcome::from(Ok(Reply::System(view()))),
        // As tgt: no stop while targets are configured, so a stray command cannot take storage away
        // from initiators. rtgt adds `--force`, which stops anyway (sessions are logged out first).
        SystemOp::Delete { force: false } if !daemon.registry.targets().is_empty() => Outcome::from(Err(
            MgmtError::with_message(ErrorCode::InvalidRequest, "targets are configured; delete them or use --force"),
        )),
        SystemOp::Delete { .. } => Outcome { result: Ok(Reply::Done), stop: true },
        SystemOp::Update { params } => Outcome::from(update(&params)),
    }
}

fn view() -> SystemView {
    SystemView {
        state: SystemState::Ready,
        debug: false,
        llds: vec![LldView { name: "iscsi".to_string(), state: "ready".to_string() }],
        backing_stores: BackstoreKind::all()
            .iter()
            .map(|kind| BackingStoreView {
                name: kind.name().to_string(),
                oflags: (*kind == BackstoreKind::Rdwr).then(|| "sync:direct".to_string()),
            })
            .collect(),
        device_types: vec![DeviceType::Disk, DeviceType::Controller],
    }
}

/// The names tgt accepts are recognised and their values checked. The daemon is always ready with
/// logging fixed at start-up, so asking for exactly that succeeds; anything else (taking the daemon
/// offline, switching debug logging) is not implemented yet.
fn update(params: &[Param]) -> Result<Reply, MgmtError> {
    if params.is_empty() {
        return Err(MgmtError::with_message(ErrorCode::InvalidRequest, "no parameter given"));
    }
    for p in params {
        let (valid, current) = match p.name.to_ascii_lowercase().as_str() {
            "state" => (matches!(p.value.as_str(), "offline" | "ready"), "ready"),
            "debug" => (matches!(p.value.as_str(), "on" | "off"), "off"),
            _ => {
                return Err(MgmtError::with_message(ErrorCode::InvalidRequest, format!("unknown parameter {}", p.name)))
            }
        };
        if !valid {
            return Err(MgmtError::with_message(
                ErrorCode::InvalidRequest,
                format!("'{}' is not a valid value for {}", p.value, p.name),
            ));
        }
        if p.value != current {
            return Err(MgmtError::with_message(
                ErrorCode::Unsupported,
                format!("setting {} to {} is not implemented yet", p.name, p.value),
            ));
        }
    }
    Ok(Reply::Done)
}
