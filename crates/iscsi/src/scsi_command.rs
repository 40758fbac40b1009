//! SCSI Command (RFC 7143 11.3-11.4): the checks on a new command (CmdSN window, ITT, immediate
//! data, the transfer it announces), then either the write's data collection (`data_out`) or the
//! command runs at once, as its own task if it must wait; its result goes to the writer with
//! residuals computed from the Expected Data Transfer Length.

use crate::connection::{Conn, Flow, RejectReason};
use crate::data_out::{self, NewWrite};
use crate::pdu::{off, Bhs, Pdu, RESERVED_TAG};
use crate::write_budget::Reservation;
use crate::writer::{Outgoing, Residual, ScsiReply, RESIDUAL_OVERFLOW, RESIDUAL_UNDERFLOW};
use bytes::Bytes;
use std::future::Future;
use std::task::{Context, Waker};

/// The largest CDB carried (16 in the BHS plus an Extended CDB AHS, 11.2.2.3).
const MAX_CDB: usize = 64;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Cdb {
    bytes: [u8; MAX_CDB],
    len: usize,
}

impl Cdb {
    /// The BHS CDB plus any Extended CDB AHS (type 1). None when the AHS is malformed.
    pub fn parse(bhs: &Bhs, ahs: &[u8]) -> Option<Cdb> {
        let mut c = Cdb { bytes: [0; MAX_CDB], len: 16 };
        c.bytes[..16].copy_from_slice(bhs.cdb());
        let mut rest = ahs;
        while rest.len() >= 4 {
            let ahs_len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let ty = rest[2];
            let total = (3 + ahs_len).div_ceil(4) * 4;
            if total > rest.len() || ahs_len == 0 {
                return None;
            }
            if ty == 1 {
                // AHSLength counts the reserved byte and the CDB bytes beyond 16.
                let extra = ahs_len - 1;
                if 16 + extra > MAX_CDB {
                    return None;
                }
                c.bytes[16..16 + extra].copy_from_slice(&rest[4..4 + extra]);
                c.len = 16 + extra;
            }
            rest = &rest[total..];
        }
        Some(c)
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

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

/// Fixed-format sense data (SPC-4 4.5.3) with a key and ASC/ASCQ.
pub(crate) fn fixed_sense(key: u8, asc: u8, ascq: u8) -> Vec<u8> {
    let mut s = vec![0u8; 18];
    s[0] = 0x70;
    s[2] = key;
    s[7] = 10;
    s[12] = asc;
    s[13] = ascq;
    s
}

/// ILLEGAL REQUEST, INVALID FIELD IN CDB (ASC 24h).
fn invalid_field_sense() -> Vec<u8> {
    fixed_sense(0x05, 0x24, 0x00)
}

/// ABORTED COMMAND, WRITE ERROR - UNEXPECTED UNSOLICITED DATA (0Ch/0Ch): RFC 7143 11.4.7.2.
pub(crate) fn unexpected_unsolicited_sense() -> Vec<u8> {
    fixed_sense(0x0b, 0x0c, 0x0c)
}

/// ABORTED COMMAND, INITIATOR RESPONSE TIMEOUT (4Bh/06h, SPC-4): a write whose Data-Out did not
/// come within the Data-Out timeout.
pub(crate) fn initiator_response_timeout_sense() -> Vec<u8> {
    fixed_sense(0x0b, 0x4b, 0x06)
}

/// End a command that never ran with CHECK CONDITION and `sense`.
pub(crate) fn check_condition(conn: &Conn, itt: u32, lun: [u8; 8], sense: Vec<u8>) {
    let reply = ScsiReply {
        itt,
        lun,
        data: Vec::new(),
        send_len: 0,
        status: rtgt_scsi::ScsiStatus::CheckCondition as u8,
        sense: Some(sense),
        residual: Residual::default(),
    };
    let _ = conn.out.send(Outgoing::Scsi(reply));
}

pub(crate) fn on_command(conn: &mut Conn, pdu: Pdu) -> Flow {
    let b = &pdu.bhs;
    if !conn.session.window.lock().admit(b.cmd_sn(), b.immediate()) {
        // 3.2.2.1: outside the window, silently ignored.
        tracing::debug!(cmd_sn = b.cmd_sn(), "command outside the CmdSN window dropped");
        return Flow::Continue;
    }
    let flags = b.flags();
    let (read, write, fin) = (flags & 0x40 != 0, flags & 0x20 != 0, flags & 0x80 != 0);
    let edtl = b.u32_at(off::EDTL);
    let itt = b.itt();
    let lun_raw = b.lun();
    let Some(cdb) = Cdb::parse(b, &pdu.ahs) else {
        conn.reject(RejectReason::InvalidPduField, b);
        return Flow::Continue;
    };
    if itt == RESERVED_TAG {
        conn.reject(RejectReason::InvalidPduField, b);
        return Flow::Continue;
    }
    let dsl = pdu.data.len() as u32;
    let p = &conn.params;
    if dsl > 0 && (!write || dsl > edtl) {
        conn.reject(RejectReason::ProtocolError, b);
        return Flow::Continue;
    }
    let lun = rtgt_scsi::decode_lun(lun_raw);
    // Bidirectional commands are not supported: CHECK CONDITION, INVALID FIELD IN CDB. (A write
    // larger than any LUN takes is refused below, once its tag is known to be free.)
    if read && write {
        check_condition(conn, itt, lun_raw, invalid_field_sense());
        return Flow::Continue;
    }
    if dsl > 0 && (!p.immediate_data || dsl > p.first_burst_length) {
        // Immediate data that was not negotiated, or more of it than FirstBurstLength: the iSCSI
        // condition "unexpected unsolicited data" (RFC 7143 11.4.7.2). Nothing is written.
        check_condition(conn, itt, lun_raw, unexpected_unsolicited_sense());
        return Flow::Continue;
    }
    let Some(id) = conn.session.add_task(itt, lun, conn.id) else {
        conn.reject(RejectReason::TaskInProgress, b);
        return Flow::Continue;
    };
    if write && edtl > rtgt_scsi::MAX_TRANSFER_BYTES {
        // No logical unit takes more data-out for one command than its MAXIMUM TRANSFER LENGTH,
        // so none of this data is asked for or kept. A CDB asking for that much is INVALID FIELD
        // IN CDB (SBC-3 6.5.3, as the SCSI core answers it); a CDB asking for less with an EDTL
        // this large gets the same answer, as Linux LIO gives for a write whose EDTL disagrees
        // with its CDB. Unsolicited Data-Out still arriving for it is discarded (no task).
        tracing::info!(itt, edtl, "write past the maximum transfer length refused");
        conn.session.finish_task(itt, id);
        check_condition(conn, itt, lun_raw, invalid_field_sense());
        return Flow::Continue;
    }
    if write && edtl > dsl {
        let unsolicited = if p.initial_r2t || fin { 0 } else { p.first_burst_length.min(edtl).saturating_sub(dsl) };
        let w = NewWrite { id, lun_raw, lun, cdb, edtl, immediate: &pdu.data, unsolicited };
        data_out::start(conn, itt, w);
        return Flow::Continue;
    }
    let data = if write { pdu.data.freeze() } else { Bytes::new() };
    let budget = conn.write_budget.unasked(data.len() as u64);
    execute(conn, Exec { itt, id, lun_raw, lun, cdb, data, edtl, read, write, budget });
    Flow::Continue
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
    let (itt, id) = (e.itt, e.id);
    let s2 = session.clone();
    let mut command = Box::pin(async move {
        let mut data_in = pool.take();
        let res = target.scsi.execute(&nexus, e.lun, e.cdb.as_slice(), &e.data, &mut data_in).await;
        drop(e.data);
        if !s2.finish_task(e.itt, e.id) {
            pool.give(data_in);
            return;
        }
        let (send_len, residual) = residual(e.read, e.write, e.edtl, data_in.len(), res.data_out_expected);
        let reply = ScsiReply {
            itt: e.itt,
            lun: e.lun_raw,
            data: data_in,
            send_len,
            status: res.status as u8,
            sense: res.sense,
            residual,
        };
        let _ = out.send(Outgoing::Scsi(reply));
        // Released once the answer is queued: a write admitted with this room gets its first R2T
        // after this answer on the wire, so the initiator never sees more solicited than budgeted.
        drop(e.budget);
    });
    // A future that is not ready has registered this no-op waker at most; the task's first poll
    // registers the real one (every future re-registers on each poll).
    let mut cx = Context::from_waker(Waker::noop());
    if command.as_mut().poll(&mut cx).is_ready() {
        return;
    }
    let handle = tokio::spawn(command);
    session.set_abort_handle(itt, id, handle.abort_handle());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data_out::tests::conn_with_budget;
    use crate::pdu::Opcode;
    use crate::write_budget::WRITE_DATA_BUDGET;
    use bytes::BytesMut;

    fn write_command(itt: u32, edtl: u32) -> Pdu {
        let mut h = Bhs::new(Opcode::ScsiCommand);
        h.set_flags(0xa0); // F, W
        h.set_itt(itt);
        h.set_u32_at(off::EDTL, edtl);
        h.set_u32_at(off::CMD_SN, itt);
        Pdu { bhs: h, ahs: Vec::new(), data: BytesMut::new() }
    }

    #[test]
    fn a_write_past_the_maximum_transfer_length_is_refused_before_any_r2t() {
        let (mut conn, mut rx) = conn_with_budget(WRITE_DATA_BUDGET);
        for (itt, edtl) in [(1, rtgt_scsi::MAX_TRANSFER_BYTES + 1), (2, u32::MAX)] {
            assert_eq!(on_command(&mut conn, write_command(itt, edtl)), Flow::Continue);
            match rx.try_recv() {
                Some(Outgoing::Scsi(r)) => {
                    assert_eq!((r.itt, r.status), (itt, 0x02), "CHECK CONDITION");
                    let sense = r.sense.expect("sense data");
                    // ILLEGAL REQUEST, INVALID FIELD IN CDB.
                    assert_eq!((sense[2], sense[12], sense[13]), (0x05, 0x24, 0x00));
                }
                other => panic!("expected the CHECK CONDITION, got {other:?}"),
            }
            assert!(rx.try_recv().is_none(), "nothing else, no R2T");
            assert!(conn.pending.is_empty() && conn.session.nexus.as_ref().unwrap().tasks().is_empty());
            assert_eq!(conn.write_budget.used(), 0);
        }
        // The limit itself is asked for.
        on_command(&mut conn, write_command(3, rtgt_scsi::MAX_TRANSFER_BYTES));
        match rx.try_recv() {
            Some(Outgoing::Pdu { bhs, .. }) => assert_eq!((bhs.opcode_raw(), bhs.itt()), (Opcode::R2t as u8, 3)),
            other => panic!("expected an R2T, got {other:?}"),
        }
        assert_eq!(conn.write_budget.used(), u64::from(rtgt_scsi::MAX_TRANSFER_BYTES));
    }

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

    #[test]
    fn cdb_with_extended_ahs() {
        let mut b = Bhs::new(Opcode::ScsiCommand);
        b.0[32] = 0x7f;
        // AHSLength 17 (16 extra bytes + reserved), type 1, reserved, 16 bytes, padded to 20.
        let mut ahs = vec![0, 17, 1, 0];
        ahs.extend((0u8..16).map(|i| i + 100));
        let c = Cdb::parse(&b, &ahs).unwrap();
        assert_eq!(c.as_slice().len(), 32);
        assert_eq!(c.as_slice()[0], 0x7f);
        assert_eq!(c.as_slice()[16], 100);
        assert!(Cdb::parse(&b, &[0, 40, 1, 0]).is_none());
        assert_eq!(Cdb::parse(&b, &[]).unwrap().as_slice().len(), 16);
    }
}
