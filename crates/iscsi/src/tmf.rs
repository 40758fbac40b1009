//! Task Management Function requests (RFC 7143 11.5-11.6). The session's in-flight tasks are aborted
//! here (an aborted task gets no response); the SCSI target's TMF methods reset its own state (ACA,
//! unit attentions). TARGET COLD RESET answers, then drops the target's connections (11.5.1).

use crate::connection::{Conn, Flow};
use crate::pdu::{off, Bhs, Opcode, Pdu};
use crate::session::Session;
use crate::writer::{Outgoing, Stat};
use bytes::Bytes;
use rtgt_scsi::ResetKind;
use std::sync::Arc;

/// TMF response codes (11.6.1).
const FUNCTION_COMPLETE: u8 = 0;
const TASK_DOES_NOT_EXIST: u8 = 1;
const LUN_DOES_NOT_EXIST: u8 = 2;
const REASSIGN_NOT_SUPPORTED: u8 = 4;
const NOT_SUPPORTED: u8 = 5;

const ABORT_TASK: u8 = 1;
const ABORT_TASK_SET: u8 = 2;
const CLEAR_TASK_SET: u8 = 4;
const LOGICAL_UNIT_RESET: u8 = 5;
const TARGET_WARM_RESET: u8 = 6;
const TARGET_COLD_RESET: u8 = 7;
const TASK_REASSIGN: u8 = 8;

/// Every session of the target this session belongs to.
fn target_sessions(s: &Session) -> Vec<Arc<Session>> {
    s.target.as_ref().map(|t| t.sessions.lock().clone()).unwrap_or_default()
}

pub(crate) fn on_tmf(conn: &mut Conn, pdu: Pdu) -> Flow {
    let b = &pdu.bhs;
    if !conn.session.window.lock().admit(b.cmd_sn(), b.immediate()) {
        return Flow::Continue;
    }
    let function = b.flags() & 0x7f;
    let lun = rtgt_scsi::decode_lun(b.lun());
    let ref_itt = b.u32_at(off::REF_TASK_TAG);
    let session = conn.session.clone();
    let (Some(target), Some(nexus)) = (session.target.clone(), session.nexus.clone()) else {
        return Flow::Continue;
    };
    let scsi = &target.scsi;
    let mut cold = false;
    let response = match function {
        ABORT_TASK => {
            if session.abort_tasks(|itt, _| itt == ref_itt) > 0 {
                FUNCTION_COMPLETE
            } else {
                TASK_DOES_NOT_EXIST
            }
        }
        ABORT_TASK_SET | CLEAR_TASK_SET | LOGICAL_UNIT_RESET if !scsi.has_lun(lun) => LUN_DOES_NOT_EXIST,
        ABORT_TASK_SET => {
            session.abort_tasks(|_, t| t.lun == lun);
            match scsi.abort_task_set(&nexus, lun) {
                Ok(()) => FUNCTION_COMPLETE,
                Err(_) => LUN_DOES_NOT_EXIST,
            }
        }
        CLEAR_TASK_SET => {
            for s in target_sessions(&session) {
                s.abort_tasks(|_, t| t.lun == lun);
            }
            match scsi.clear_task_set(&nexus, lun) {
                Ok(()) => FUNCTION_COMPLETE,
                Err(_) => LUN_DOES_NOT_EXIST,
            }
        }
        LOGICAL_UNIT_RESET => {
            for s in target_sessions(&session) {
                s.abort_tasks(|_, t| t.lun == lun);
            }
            match scsi.lun_reset(lun) {
                Ok(()) => FUNCTION_COMPLETE,
                Err(_) => LUN_DOES_NOT_EXIST,
            }
        }
        TARGET_WARM_RESET | TARGET_COLD_RESET => {
            for s in target_sessions(&session) {
                s.abort_tasks(|_, _| true);
            }
            cold = function == TARGET_COLD_RESET;
            scsi.target_reset(if cold { ResetKind::Cold } else { ResetKind::Warm });
            FUNCTION_COMPLETE
        }
        // ERL 0 has no task allegiance reassignment (11.5.1).
        TASK_REASSIGN => REASSIGN_NOT_SUPPORTED,
        _ => NOT_SUPPORTED,
    };
    // Writes of this connection that were aborted stop collecting data.
    let s = conn.session.clone();
    conn.pending.retain(|itt, p| s.has_task(*itt, p.id));
    let mut h = Bhs::new(Opcode::TaskMgmtResponse);
    h.0[2] = response;
    h.set_itt(b.itt());
    conn.send(h, Bytes::new(), Stat::Advance);
    if cold {
        // The response is queued first; then every connection to the target goes (11.5.1).
        let _ = conn.out.send(Outgoing::Close);
        for s in target_sessions(&session) {
            if !Arc::ptr_eq(&s, &session) {
                s.close_connections();
            }
        }
        return Flow::Close;
    }
    Flow::Continue
}
