//! `--mode session` and `--mode conn`: list a target's sessions and connections, and close them.

use super::show::nexus_view;
use super::target_ops::find;
use crate::Daemon;
use rtgt_mgmt::{ConnectionOp, ErrorCode, MgmtError, Reply, SessionOp};

/// tgt's session id is rtgt's TSIH, which is 16 bits.
fn tsih(sid: u64) -> Result<u16, MgmtError> {
    u16::try_from(sid).map_err(|_| MgmtError::new(ErrorCode::NoSession))
}

fn show(daemon: &Daemon, tid: u32, sid: Option<u64>, cid: Option<u16>) -> Result<Reply, MgmtError> {
    let target = find(daemon, tid)?;
    let mut list: Vec<_> = target.sessions().iter().map(nexus_view).collect();
    if let Some(sid) = sid {
        list.retain(|s| s.id == sid);
        if list.is_empty() {
            return Err(MgmtError::new(ErrorCode::NoSession));
        }
    }
    if let Some(cid) = cid {
        for s in &mut list {
            s.connections.retain(|c| c.cid == cid);
        }
        list.retain(|s| !s.connections.is_empty());
        if list.is_empty() {
            return Err(MgmtError::new(ErrorCode::NoConnection));
        }
    }
    Ok(Reply::Sessions(list))
}

pub(crate) fn apply_session(daemon: &Daemon, op: SessionOp) -> Result<Reply, MgmtError> {
    match op {
        SessionOp::Show { tid, sid } => show(daemon, tid, sid, None),
        SessionOp::Delete { tid, sid } => {
            if find(daemon, tid)?.close_session(tsih(sid)?) {
                Ok(Reply::Done)
            } else {
                Err(MgmtError::new(ErrorCode::NoSession))
            }
        }
    }
}

pub(crate) fn apply_connection(daemon: &Daemon, op: ConnectionOp) -> Result<Reply, MgmtError> {
    match op {
        ConnectionOp::Show { tid, sid, cid } => show(daemon, tid, sid, cid),
        ConnectionOp::Delete { tid, sid, cid } => {
            let target = find(daemon, tid)?;
            let tsih = tsih(sid)?;
            if !target.sessions().iter().any(|s| s.tsih == tsih) {
                return Err(MgmtError::new(ErrorCode::NoSession));
            }
            if target.close_connection(tsih, cid) {
                Ok(Reply::Done)
            } else {
                Err(MgmtError::new(ErrorCode::NoConnection))
            }
        }
    }
}
