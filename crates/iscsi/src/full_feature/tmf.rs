//! Task Management Function requests (RFC 7143 11.5-11.6): each function is the SCSI core's (its
//! task set aborts the tasks, an aborted task gets no response, and resets the units' state); here
//! only the iSCSI framing, the response codes and the connections a TARGET COLD RESET drops after
//! answering (11.5.1). The answer waits, without holding up the reader, for the aborted commands'
//! backing-store I/O to end (`session::aborted_io`).

use crate::full_feature::connection::{Conn, Flow};
use crate::pdu::{off, Bhs, Opcode, Pdu};
use crate::session::aborted_io::{aborted_io_ended, ABORTED_IO_WAIT};
use crate::session::Session;
use crate::writer::{Outgoing, Stat};
use bytes::Bytes;
use rtgt_scsi::{ResetKind, TmfError};
use std::sync::Arc;

/// TMF response codes (11.6.1).
const FUNCTION_COMPLETE: u8 = 0;
const TASK_DOES_NOT_EXIST: u8 = 1;
const LUN_DOES_NOT_EXIST: u8 = 2;
const REASSIGN_NOT_SUPPORTED: u8 = 4;
const NOT_SUPPORTED: u8 = 5;
const FUNCTION_REJECTED: u8 = 255;

const ABORT_TASK: u8 = 1;
const ABORT_TASK_SET: u8 = 2;
const CLEAR_TASK_SET: u8 = 4;
const LOGICAL_UNIT_RESET: u8 = 5;
const TARGET_WARM_RESET: u8 = 6;
const TARGET_COLD_RESET: u8 = 7;
const TASK_REASSIGN: u8 = 8;

/// Every session of the target this session belongs to.
fn target_sessions(s: &Session) -> Vec<Arc<Session>> {
    s.target.as_ref().map(|t| t.all()).unwrap_or_default()
}

/// The response code of a function addressed to a logical unit.
fn respond(result: Result<usize, TmfError>) -> u8 {
    match result {
        Ok(_) => FUNCTION_COMPLETE,
        Err(TmfError::NoSuchLun) => LUN_DOES_NOT_EXIST,
    }
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
    // The LUN whose aborted commands the answer waits for; every LUN after a target reset. ABORT
    // TASK finds its task by the ITT alone, on whatever LUN it runs (not the LUN field's).
    let mut scope = if matches!(function, TARGET_WARM_RESET | TARGET_COLD_RESET) { None } else { Some(lun) };
    let response = match function {
        ABORT_TASK => {
            scope = nexus.tasks().lun_of(u64::from(ref_itt)).or(scope);
            if scsi.abort_task(&nexus, u64::from(ref_itt), None) > 0 {
                FUNCTION_COMPLETE
            } else {
                TASK_DOES_NOT_EXIST
            }
        }
        ABORT_TASK_SET => respond(scsi.abort_task_set(&nexus, lun)),
        CLEAR_TASK_SET => respond(scsi.clear_task_set(&nexus, lun)),
        LOGICAL_UNIT_RESET => respond(scsi.lun_reset(lun)),
        TARGET_WARM_RESET | TARGET_COLD_RESET => {
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
    conn.data_out.pending.retain(|itt, p| s.has_task(*itt, p.id));
    let mut h = Bhs::new(Opcode::TaskMgmtResponse);
    h.set_itt(b.itt());
    if target.scsi.aborted_tasks_running(scope) {
        // Some aborted command is still inside its store: the answer goes once it is out (SAM-5
        // 7.1), meanwhile the reader goes on with the other requests.
        let out = conn.out.clone();
        tokio::spawn(async move {
            let ended = aborted_io_ended(&target.scsi, scope, ABORTED_IO_WAIT).await;
            h.0[2] = if ended { response } else { FUNCTION_REJECTED };
            let _ = out.send(Outgoing::Pdu { bhs: h, data: Bytes::new(), stat: Stat::Advance });
            if cold && ended {
                // After the response, every connection to the target goes, this one too.
                for s in target_sessions(&session) {
                    s.close_connections();
                }
            }
        });
        return Flow::Continue;
    }
    h.0[2] = response;
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
