//! `--mode account`: CHAP accounts kept in the iSCSI registry, bound to targets or (tid 0) to
//! discovery sessions.
//!
//! Unlike tgt, deleting an account still bound as incoming is refused: tgt drops the binding with
//! the account, and a target (or discovery) whose last incoming account goes that way silently
//! stops asking for CHAP. Unbinding stays allowed: that is the operator saying so explicitly.

use super::target_ops::find;
use crate::Daemon;
use rtgt_iscsi::AccountError;
use rtgt_mgmt::{AccountEntry, AccountOp, ErrorCode, MgmtError, Reply};

pub(crate) fn apply(daemon: &Daemon, op: AccountOp) -> Result<Reply, MgmtError> {
    let registry = &daemon.registry;
    match op {
        AccountOp::New { user, password } => {
            registry.add_account(&user, &password).map_err(error)?;
            if super::advice::chap_secret_too_short(&password) {
                // The length only; never the secret.
                tracing::warn!(
                    user,
                    bytes = password.len(),
                    "CHAP secret shorter than {} bytes: RFC 7143 12.1.3 asks for at least 96 bits, and some initiators refuse shorter ones",
                    super::advice::MIN_CHAP_SECRET
                );
            }
        }
        AccountOp::Delete { user } => {
            refuse_if_bound_incoming(daemon, &user)?;
            registry.delete_account(&user).map_err(error)?
        }
        AccountOp::Bind { tid, user, outgoing } => {
            if registry.account(&user).is_none() {
                return Err(MgmtError::new(ErrorCode::NoUser));
            }
            if tid == 0 {
                registry.bind_discovery_account(&user, outgoing).map_err(error)?;
            } else {
                find(daemon, tid)?.bind_account(&user, outgoing).map_err(error)?;
            }
        }
        AccountOp::Unbind { tid, user, outgoing } => {
            if registry.account(&user).is_none() {
                return Err(MgmtError::new(ErrorCode::NoUser));
            }
            let still_chap = if tid == 0 {
                registry.unbind_discovery_account(&user, outgoing).map_err(error)?;
                registry.discovery_accounts().requires_chap()
            } else {
                let target = find(daemon, tid)?;
                target.unbind_account(&user, outgoing).map_err(error)?;
                target.accounts().requires_chap()
            };
            // Allowed (the operator asked for it by name), but not silently.
            if !outgoing && !still_chap {
                tracing::warn!(
                    tid,
                    user,
                    "last incoming account unbound: logins no longer need CHAP (tid 0: discovery)"
                );
            }
        }
        AccountOp::Show { secrets } => {
            // tgt lists the newest account first; the registry keeps accounts by name, not by age,
            // so rtgt lists them by name descending (the same for accounts created in name order).
            let discovery = registry.discovery_accounts();
            let list = registry
                .accounts()
                .into_iter()
                .rev()
                .map(|a| AccountEntry {
                    discovery: discovery.incoming.contains(&a.user),
                    discovery_outgoing: discovery.outgoing.as_deref() == Some(a.user.as_str()),
                    user: a.user,
                    password: secrets.then_some(a.password),
                })
                .collect();
            return Ok(Reply::AccountList(list));
        }
    }
    Ok(Reply::Done)
}

/// Where `user` is bound as incoming (targets by tid, and discovery), as an error naming them all so
/// the operator knows what to unbind. An outgoing binding does not stop the delete: without its
/// account the target cannot prove itself, so mutual CHAP logins fail (closed, not open).
fn refuse_if_bound_incoming(daemon: &Daemon, user: &str) -> Result<(), MgmtError> {
    let mut places: Vec<String> = daemon
        .registry
        .targets()
        .iter()
        .filter(|t| t.accounts().incoming.iter().any(|u| u == user))
        .map(|t| format!("target {} ({})", t.tid(), t.name()))
        .collect();
    if daemon.registry.discovery_accounts().incoming.iter().any(|u| u == user) {
        places.push("discovery (tid 0)".to_string());
    }
    if places.is_empty() {
        return Ok(());
    }
    Err(MgmtError::with_message(
        ErrorCode::InvalidRequest,
        format!(
            "account {user} is bound as incoming to {}; deleting it would let them in without CHAP: unbind it first",
            places.join(", ")
        ),
    ))
}

/// tgt 1.0.85's codes for account mistakes (measured), with rtgt's detail where tgt's text alone
/// would mislead.
fn error(err: AccountError) -> MgmtError {
    match err {
        AccountError::Exists => MgmtError::new(ErrorCode::UserExists),
        AccountError::NotFound => MgmtError::new(ErrorCode::NoUser),
        AccountError::OutgoingExists => MgmtError::new(ErrorCode::OutgoingAccountExists),
        // tgt says "this account already exists" for a second binding ...
        AccountError::AlreadyBound => MgmtError::with_message(ErrorCode::UserExists, "already bound to this target"),
        // ... and "can't find the account" for an account that is not bound.
        AccountError::NotBound => MgmtError::with_message(ErrorCode::NoUser, "not bound to this target"),
        AccountError::BadUser | AccountError::BadPassword => {
            MgmtError::with_message(ErrorCode::InvalidRequest, err.to_string())
        }
    }
}
