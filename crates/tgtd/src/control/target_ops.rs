//! `--mode target`: create, delete, list, bind and unbind initiators, change parameters.

use super::show::{acl_rule, target_view};
use crate::Daemon;
use rtgt_iscsi::IscsiTarget;
use rtgt_mgmt::{AclEntry, ErrorCode, MgmtError, Param, Reply, TargetOp};
use rtgt_scsi::Target;
use std::sync::Arc;

/// RFC 7143 6.1: an iSCSI name is at most 223 bytes.
const MAX_NAME_LEN: usize = 223;

pub(crate) fn apply(daemon: &Daemon, op: TargetOp) -> Result<Reply, MgmtError> {
    match op {
        TargetOp::New { tid, name } => new(daemon, tid, name),
        TargetOp::Delete { tid, force } => delete(daemon, tid, force),
        TargetOp::Show { tid: None } => {
            Ok(Reply::TargetList(daemon.targets.iscsi_targets().iter().map(|t| target_view(daemon, t)).collect()))
        }
        // tgt prints the target's iSCSI parameters for `show --tid N`; rtgt shows that target's full
        // block (its parameters are in the view, printed by --json).
        TargetOp::Show { tid: Some(tid) } => {
            let target = find(daemon, tid)?;
            Ok(Reply::TargetList(vec![target_view(daemon, &target)]))
        }
        TargetOp::Bind { tid, rules } => {
            let target = find(daemon, tid)?;
            bind(&target, &rules)
        }
        TargetOp::Unbind { tid, rules } => {
            let target = find(daemon, tid)?;
            unbind(&target, &rules)
        }
        TargetOp::Update { tid, params } => {
            let target = find(daemon, tid)?;
            update(&target, &params)
        }
    }
}

pub(crate) fn find(daemon: &Daemon, tid: u32) -> Result<Arc<IscsiTarget>, MgmtError> {
    daemon.targets.iscsi(tid).ok_or_else(|| MgmtError::new(ErrorCode::NoTarget))
}

fn new(daemon: &Daemon, tid: u32, name: String) -> Result<Reply, MgmtError> {
    // tid 0 is where accounts are bound for discovery sessions: a target there could never be
    // made to require CHAP (tgt refuses it too).
    if tid == 0 {
        return Err(MgmtError::with_message(
            ErrorCode::InvalidRequest,
            "tid 0 is reserved for discovery sessions (account --op bind --tid 0); targets start at 1",
        ));
    }
    check_name(&name)?;
    let target = IscsiTarget::new(Target::new(tid, name));
    target.set_nop(daemon.config.nop_default());
    // tgt's plain "this target already exists", whichever LLD holds the tid or the name.
    daemon.targets.add_iscsi(target).map_err(|_| MgmtError::new(ErrorCode::TargetExists))?;
    Ok(Reply::Done)
}

/// tgt accepts any string; rtgt refuses names initiators could not send back in a login.
fn check_name(name: &str) -> Result<(), MgmtError> {
    let bad = |why: &str| Err(MgmtError::with_message(ErrorCode::InvalidRequest, format!("target name {why}")));
    if name.is_empty() {
        return bad("is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("is longer than 223 bytes");
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("contains white space or control characters");
    }
    Ok(())
}

fn delete(daemon: &Daemon, tid: u32, force: bool) -> Result<Reply, MgmtError> {
    let target = find(daemon, tid)?;
    if !target.sessions().is_empty() {
        if !force {
            return Err(MgmtError::new(ErrorCode::TargetActive));
        }
        target.close_sessions();
    }
    daemon.targets.remove_iscsi(tid).ok_or_else(|| MgmtError::new(ErrorCode::NoTarget))?;
    daemon.config.forget_target(tid);
    Ok(Reply::Done)
}

/// Add every rule or none: on a failure the rules added so far are taken back.
fn bind(target: &IscsiTarget, rules: &[AclEntry]) -> Result<Reply, MgmtError> {
    check_rules(rules)?;
    for (i, entry) in rules.iter().enumerate() {
        if target.bind(acl_rule(entry)).is_err() {
            for done in &rules[..i] {
                let _ = target.unbind(&acl_rule(done));
            }
            return Err(MgmtError::with_message(ErrorCode::AclExists, entry.to_string()));
        }
    }
    Ok(Reply::Done)
}

fn unbind(target: &IscsiTarget, rules: &[AclEntry]) -> Result<Reply, MgmtError> {
    check_rules(rules)?;
    for (i, entry) in rules.iter().enumerate() {
        if target.unbind(&acl_rule(entry)).is_err() {
            for done in &rules[..i] {
                let _ = target.bind(acl_rule(done));
            }
            return Err(MgmtError::with_message(ErrorCode::AclNotFound, entry.to_string()));
        }
    }
    Ok(Reply::Done)
}

fn check_rules(rules: &[AclEntry]) -> Result<(), MgmtError> {
    if rules.is_empty() {
        return Err(MgmtError::with_message(ErrorCode::InvalidRequest, "no initiator address or name given"));
    }
    for rule in rules {
        match rule {
            AclEntry::Network { address, prefix } if *prefix > if address.is_ipv4() { 32 } else { 128 } => {
                return Err(MgmtError::with_message(ErrorCode::InvalidRequest, format!("bad network {rule}")));
            }
            AclEntry::InitiatorName(n) if n.is_empty() => {
                return Err(MgmtError::with_message(ErrorCode::InvalidRequest, "empty initiator name"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// `--name K --value V`: iSCSI keys as tgt names them, tgt's nop_interval / nop_count, and
/// `state offline|ready`. Every pair is checked on a copy first, so a mistake changes nothing; the
/// values apply to later logins.
fn update(target: &IscsiTarget, params: &[Param]) -> Result<Reply, MgmtError> {
    if params.is_empty() {
        return Err(MgmtError::with_message(ErrorCode::InvalidRequest, "no parameter given"));
    }
    let mut trial = target.target_params();
    let mut nop = target.nop();
    let mut offline = None;
    let number = |p: &Param| {
        p.value.trim().parse::<u32>().map_err(|_| {
            MgmtError::with_message(
                ErrorCode::InvalidRequest,
                format!("{} must be a number, not '{}'", p.name, p.value),
            )
        })
    };
    for p in params {
        match p.name.to_ascii_lowercase().as_str() {
            "nop_interval" => nop.interval = number(p)?,
            "nop_count" => nop.count = number(p)?,
            // As tgt 1.0.85: offline refuses new logins to this target, sessions go on.
            "state" => {
                offline = Some(match p.value.trim() {
                    "offline" => true,
                    "ready" => false,
                    other => {
                        return Err(MgmtError::with_message(
                            ErrorCode::InvalidRequest,
                            format!("state must be offline or ready, not '{other}'"),
                        ))
                    }
                })
            }
            _ => trial.set(&p.name, &p.value).map_err(|e| MgmtError::with_message(ErrorCode::InvalidRequest, e))?,
        }
    }
    for p in params {
        if !matches!(p.name.to_ascii_lowercase().as_str(), "nop_interval" | "nop_count" | "state") {
            target.set_param(&p.name, &p.value).map_err(|e| MgmtError::with_message(ErrorCode::InvalidRequest, e))?;
        }
    }
    target.set_nop(nop);
    if let Some(offline) = offline {
        target.set_offline(offline);
        tracing::info!(tid = target.tid(), offline, "target state changed");
    }
    Ok(Reply::Done)
}
