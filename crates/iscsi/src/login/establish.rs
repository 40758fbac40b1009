//! The end of a login: the session is created, reinstated or joined (RFC 7143 6.3.5, MaxConnections,
//! the daemon's and the target's session bounds). A session's end is the session's own (`session`).

use super::state::{ConnCtx, Login, LoginStatus};
use crate::registry::IscsiTarget;
use crate::session::info::ConnectionInfo;
use crate::session::window::CmdWindow;
use crate::session::{initiator_port, ConnHandle, Session, SessionType};
use parking_lot::Mutex;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Whether a new session of this initiator port replaces one it already has on the target (6.3.5).
pub(super) fn reinstates(target: &IscsiTarget, isid: &[u8; 6], initiator: &str) -> bool {
    target.find_session(|s| s.isid == *isid && s.initiator_name == initiator).is_some()
}

/// Refusals for lack of room are worth a line at the default level: they mean a bound is too low
/// or an initiator misbehaves.
pub(super) fn out_of_sessions(ctx: &ConnCtx, initiator: &str, which: &str, max: u32) -> LoginStatus {
    tracing::warn!(initiator, peer = %ctx.peer, max, "login refused: {which} session limit reached");
    LoginStatus::OUT_OF_RESOURCES
}

/// The final login response is about to go out: create, reinstate or join the session.
pub(super) fn finish(st: &mut Login, ctx: &ConnCtx) -> Result<Arc<Session>, LoginStatus> {
    let initiator = st.initiator_name.clone().unwrap_or_default();
    let info = ConnectionInfo { cid: st.cid, initiator_address: ctx.peer, target_address: ctx.local };
    let handle = ConnHandle { id: ctx.conn_id, info, control: ctx.control.clone() };
    if let Some(session) = st.joining.take() {
        if session.ended.load(std::sync::atomic::Ordering::Acquire) {
            return Err(LoginStatus::SESSION_DOES_NOT_EXIST);
        }
        let mut conns = session.conns.lock();
        // Connection reinstatement (6.3.4): the old connection with this CID goes.
        let replaced = conns.iter().position(|c| c.info.cid == st.cid).map(|i| conns.remove(i));
        conns.push(handle);
        drop(conns);
        if let Some(old) = replaced {
            old.control.close();
            // Its tasks are aborted now, not when its reader gets round to ending, so that the
            // login's wait for aborted commands sees them.
            session.abort_connection_tasks(old.id);
        }
        return Ok(session);
    }
    let params = st.neg.finish();
    let depth = st.neg.offer().max_queue_cmd;
    if let (Some(t), SessionType::Normal) = (&st.target, st.kind) {
        // Session reinstatement (6.3.5): same initiator name and ISID on this target. The old
        // session goes first, so its slots are free for the new one.
        let isid = st.isid;
        while let Some(old) = t.find_session(|s| s.isid == isid && s.initiator_name == initiator) {
            tracing::info!(tsih = old.tsih, "session reinstatement");
            old.end();
        }
    }
    let registry = &ctx.registry;
    let slot = registry
        .session_limit
        .reserve()
        .ok_or_else(|| out_of_sessions(ctx, &initiator, "daemon", registry.session_limit.max()))?;
    let tsih = registry.allocate_tsih();
    // The target's bound is checked, and the session added, under the lock of its session list, so
    // two logins racing for the last place cannot both have it.
    let mut target_sessions = match (&st.target, st.kind) {
        (Some(t), SessionType::Normal) => Some((t, t.sessions.lock())),
        _ => None,
    };
    let (target, nexus) = match &target_sessions {
        Some((t, sessions)) => {
            let max = t.max_sessions();
            if max != 0 && sessions.len() as u32 >= max {
                return Err(out_of_sessions(ctx, &initiator, "target", max));
            }
            let nexus = t.scsi.add_nexus(initiator_port(&initiator, &st.isid));
            (Some(t.sessions.clone()), Some(nexus))
        }
        None => (None, None),
    };
    let session = Arc::new_cyclic(|me| Session {
        not_spawned: Session::not_spawned_handle(me),
        first_polls: Default::default(),
        tsih,
        isid: st.isid,
        initiator_name: initiator,
        kind: st.kind,
        target,
        nexus,
        params,
        chap_user: st.security.user().map(str::to_string),
        window: Mutex::new(CmdWindow::new(st.cmd_sn, depth)),
        conns: Mutex::new(vec![handle]),
        ended: AtomicBool::new(false),
        slot: Mutex::new(Some(slot)),
    });
    if let Some((_, sessions)) = &mut target_sessions {
        sessions.push(session.clone());
    }
    Ok(session)
}
