//! Running a command that has all its data: the SCSI core executes it, and its result goes to the
//! writer with residuals computed from the Expected Data Transfer Length (RFC 7143 11.4.5); or a
//! command that never ran ends with CHECK CONDITION.

use crate::full_feature::cdb::Cdb;
use crate::full_feature::connection::Conn;
use crate::read_budget::needs_budget;
use crate::splice::SPLICE_MIN;
use crate::write_budget::Reservation;
use crate::writer::{Outgoing, Residual, ScsiReply, RESIDUAL_OVERFLOW, RESIDUAL_UNDERFLOW};
use bytes::Bytes;

/// How much read data to send and which residual to report (RFC 7143 11.4.5).
pub(crate) fn residual(read: bool, write: bool, edtl: u32, produced: usize, out_expected: u32) -> (usize, Residual) {
    let edtl64 = edtl as u64;
    let (moved, send) = if read {
        (produced as u64, produced.min(edtl as usize))
    } else if write {
        (out_expected as u64, 0)
    } else {
        // Neither flag: no transfer was expected, whatever the command wanted is overflow.
        return match (produced, out_expected) {
            (0, 0) => (0, Residual::default()),
            (0, n) => (0, Residual { flags: RESIDUAL_OVERFLOW, count: n }),
            (n, _) => (0, Residual { flags: RESIDUAL_OVERFLOW, count: n.min(u32::MAX as usize) as u32 }),
        };
    };
    let r = if moved > edtl64 {
        Residual { flags: RESIDUAL_OVERFLOW, count: (moved - edtl64).min(u32::MAX as u64) as u32 }
    } else if moved < edtl64 {
        Residual { flags: RESIDUAL_UNDERFLOW, count: (edtl64 - moved) as u32 }
    } else {
        Residual::default()
    };
    (send, r)
}

/// End a command that never ran with CHECK CONDITION and `sense`.
pub(crate) fn check_condition(conn: &Conn, itt: u32, lun: [u8; 8], sense: Vec<u8>) {
    let reply = ScsiReply {
        itt,
        lun,
        data: Vec::new(),
        pipe: None,
        send_len: 0,
        status: rtgt_scsi::ScsiStatus::CheckCondition as u8,
        sense: Some(sense),
        residual: Residual::default(),
        held: None,
    };
    let _ = conn.out.send(Outgoing::Scsi(reply));
}

/// A command ready to run, with its data-out.
pub(crate) struct Exec {
    pub itt: u32,
    pub id: u64,
    pub lun_raw: [u8; 8],
    pub lun: u64,
    pub cdb: Cdb,
    pub data: Bytes,
    pub edtl: u32,
    pub read: bool,
    pub write: bool,
    /// The write budget the data holds, released once the command has answered.
    pub budget: Reservation,
}

/// Run the command. Stores that answer at once (page-cache files, memory, null) complete within the
/// first poll, right here in the reader: no task to spawn, and the reply joins the writer's batch of
/// everything this read produced. A command that has to wait becomes its own task.
pub(crate) fn execute(conn: &Conn, e: Exec) {
    let session = conn.session.clone();
    let (Some(target), Some(nexus)) = (session.target.clone(), session.nexus.clone()) else {
        return;
    };
    let out = conn.out.clone();
    let pool = conn.pool.clone();
    // A pipe is offered to reads large enough to be worth splicing (see `splice`).
    let pipes = if e.read && e.edtl as usize >= SPLICE_MIN { conn.pipes.clone() } else { None };
    let (itt, id) = (e.itt, e.id);
    let s2 = session.clone();
    // A command whose data-in may be large waits for room in the read budget before the core
    // allocates and fills its buffer (see `read_budget`); the bound is the CDB's, whatever the
    // Expected Data Transfer Length, since the core reads what the CDB asks for.
    let bound = target.scsi.data_in_bound(e.lun, e.cdb.as_slice(), crate::read_budget::SMALL_READ);
    let read_budget = needs_budget(bound).then(|| conn.read_budget.clone());
    let command = Box::pin(async move {
        let held = match &read_budget {
            Some(budget) => Some(budget.admit(bound).await),
            None => None,
        };
        let mut data_in = pool.take();
        let mut pipe = pipes.as_ref().and_then(|p| p.take());
        let res = target
            .scsi
            .execute_piped(&nexus, e.lun, e.cdb.as_slice(), &e.data, &mut data_in, pipe.as_deref_mut())
            .await;
        drop(e.data);
        // Kept only when the data is in it.
        let pipe = match (pipe, &pipes) {
            (Some(p), _) if !p.is_empty() => Some(p),
            (Some(p), Some(pool)) => {
                pool.give(p);
                None
            }
            _ => None,
        };
        if !s2.finish_task(e.itt, e.id) {
            pool.give(data_in);
            if let (Some(p), Some(pool)) = (pipe, &pipes) {
                pool.give(p);
            }
            return;
        }
        let produced = pipe.as_ref().map_or(data_in.len(), |p| p.len());
        let (send_len, residual) = residual(e.read, e.write, e.edtl, produced, res.data_out_expected);
        let reply = ScsiReply {
            itt: e.itt,
            lun: e.lun_raw,
            data: data_in,
            pipe,
            send_len,
            status: res.status as u8,
            sense: res.sense,
            residual,
            held,
        };
        let _ = out.send(Outgoing::Scsi(reply));
        // Released once the answer is queued: a write admitted with this room gets its first R2T
        // after this answer on the wire, so the initiator never sees more solicited than budgeted.
        drop(e.budget);
    });
    // A future that is not ready has registered the first poll's no-op waker at most; the task's
    // first poll registers the real one (every future re-registers on each poll).
    session.first_poll(itt, id, command);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_residuals() {
        assert_eq!(residual(true, false, 4096, 4096, 0), (4096, Residual::default()));
        assert_eq!(residual(true, false, 4096, 512, 0), (512, Residual { flags: RESIDUAL_UNDERFLOW, count: 3584 }));
        assert_eq!(residual(true, false, 512, 4096, 0), (512, Residual { flags: RESIDUAL_OVERFLOW, count: 3584 }));
    }

    #[test]
    fn write_residuals() {
        assert_eq!(residual(false, true, 4096, 0, 4096), (0, Residual::default()));
        assert_eq!(residual(false, true, 8192, 0, 4096), (0, Residual { flags: RESIDUAL_UNDERFLOW, count: 4096 }));
        assert_eq!(residual(false, true, 512, 0, 4096), (0, Residual { flags: RESIDUAL_OVERFLOW, count: 3584 }));
    }

    #[test]
    fn no_transfer_expected() {
        assert_eq!(residual(false, false, 0, 0, 0), (0, Residual::default()));
        assert_eq!(residual(false, false, 0, 512, 0), (0, Residual { flags: RESIDUAL_OVERFLOW, count: 512 }));
        assert_eq!(residual(false, false, 0, 0, 1024), (0, Residual { flags: RESIDUAL_OVERFLOW, count: 1024 }));
    }
}
