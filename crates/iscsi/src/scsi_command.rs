//! SCSI Command dataflow (RFC 7143 4.2.2.4-4.2.2.5, 11.3-11.8): immediate data, unsolicited Data-Out up
//! to FirstBurstLength, R2Ts for the rest (MaxBurstLength each, at most MaxOutstandingR2T at once),
//! Data-Out checks (DataSN, BufferOffset), then the command runs as its own task and its result goes
//! to the writer with residuals computed from the Expected Data Transfer Length.

use crate::connection::{Conn, Flow, RejectReason};
use crate::pdu::{off, Bhs, Opcode, Pdu, RESERVED_TAG};
use crate::session::{next_id, TaskEntry};
use crate::writer::{Outgoing, Residual, ScsiReply, Stat, RESIDUAL_OVERFLOW, RESIDUAL_UNDERFLOW};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::future::Future;
use std::task::{Context, Waker};

/// The largest CDB carried (16 in the BHS plus an Extended CDB AHS, 11.2.2.3).
const MAX_CDB: usize = 64;
/// Initial capacity bound for a write buffer; it grows as data arrives, never from EDTL alone.
const WRITE_BUF_START: usize = 1024 * 1024;

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

#[derive(Debug)]
struct R2tState {
    ttt: u32,
    offset: u32,
    len: u32,
    received: u32,
    data_sn: u32,
}

/// A write command still receiving its data.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    pub id: u64,
    lun_raw: [u8; 8],
    lun: u64,
    cdb: Cdb,
    edtl: u32,
    buf: BytesMut,
    unsolicited_left: u32,
    unsol_data_sn: u32,
    r2ts: VecDeque<R2tState>,
    next_r2t_offset: u32,
    r2t_sn: u32,
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
fn fixed_sense(key: u8, asc: u8, ascq: u8) -> Vec<u8> {
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
fn unexpected_unsolicited_sense() -> Vec<u8> {
    fixed_sense(0x0b, 0x0c, 0x0c)
}

/// End a command that never ran with CHECK CONDITION and `sense`.
fn check_condition(conn: &Conn, itt: u32, lun: [u8; 8], sense: Vec<u8>) {
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
    // Bidirectional commands are not supported; and no command takes more Data-Out than the
    // largest transfer a LUN accepts, so a larger one is refused before a byte of it is solicited
    // (buffering what an initiator claims would let one command hold gigabytes). Both: CHECK
    // CONDITION, INVALID FIELD IN CDB.
    if write && (read || edtl > rtgt_scsi::lun::MAX_TRANSFER_BYTES) {
        check_condition(conn, itt, lun_raw, invalid_field_sense());
        return Flow::Continue;
    }
    if dsl > 0 && (!p.immediate_data || dsl > p.first_burst_length) {
        // Immediate data that was not negotiated, or more of it than FirstBurstLength: the iSCSI
        // condition "unexpected unsolicited data" (RFC 7143 11.4.7.2). Nothing is written.
        check_condition(conn, itt, lun_raw, unexpected_unsolicited_sense());
        return Flow::Continue;
    }
    let id = next_id();
    let entry = TaskEntry { id, lun, conn: conn.id, abort: None };
    if !conn.session.add_task(itt, entry) {
        conn.reject(RejectReason::TaskInProgress, b);
        return Flow::Continue;
    }
    if write && edtl > dsl {
        let unsolicited = if p.initial_r2t || fin { 0 } else { p.first_burst_length.min(edtl).saturating_sub(dsl) };
        let mut buf = BytesMut::with_capacity((edtl as usize).min(WRITE_BUF_START));
        buf.extend_from_slice(&pdu.data);
        let mut pw = PendingWrite {
            id,
            lun_raw,
            lun,
            cdb,
            edtl,
            buf,
            unsolicited_left: unsolicited,
            unsol_data_sn: 0,
            r2ts: VecDeque::new(),
            next_r2t_offset: dsl + unsolicited,
            r2t_sn: 0,
        };
        if unsolicited == 0 {
            issue_r2ts(conn, itt, &mut pw);
        }
        conn.pending.insert(itt, pw);
        return Flow::Continue;
    }
    let data = if write { pdu.data.freeze() } else { Bytes::new() };
    execute(conn, Exec { itt, id, lun_raw, lun, cdb, data, edtl, read, write });
    Flow::Continue
}

/// Send R2Ts until MaxOutstandingR2T are out or the whole transfer is asked for (10.8).
fn issue_r2ts(conn: &mut Conn, itt: u32, pw: &mut PendingWrite) {
    let max_out = conn.params.max_outstanding_r2t.max(1) as usize;
    let burst = conn.params.max_burst_length.max(512);
    while pw.r2ts.len() < max_out && pw.next_r2t_offset < pw.edtl {
        let len = burst.min(pw.edtl - pw.next_r2t_offset);
        let ttt = conn.new_ttt();
        let mut h = Bhs::new(Opcode::R2t);
        h.set_lun(pw.lun_raw);
        h.set_itt(itt);
        h.set_ttt(ttt);
        h.set_u32_at(off::DATA_SN, pw.r2t_sn);
        h.set_u32_at(off::BUFFER_OFFSET, pw.next_r2t_offset);
        h.set_u32_at(off::DESIRED_LENGTH, len);
        conn.send(h, Bytes::new(), Stat::Current);
        pw.r2ts.push_back(R2tState { ttt, offset: pw.next_r2t_offset, len, received: 0, data_sn: 0 });
        pw.next_r2t_offset += len;
        pw.r2t_sn = pw.r2t_sn.wrapping_add(1);
    }
}

pub(crate) fn on_data_out(conn: &mut Conn, pdu: Pdu) -> Flow {
    let b = &pdu.bhs;
    let itt = b.itt();
    let Some(mut pw) = conn.pending.remove(&itt) else {
        // Data for an aborted or unknown task is discarded (4.2.3.3 / 11.7).
        tracing::debug!(itt, "Data-Out for no pending write discarded");
        return Flow::Continue;
    };
    let (ttt, data_sn, offset, fin) = (b.ttt(), b.data_sn(), b.buffer_offset(), b.final_bit());
    if let Err(sense) = check_data_out(&mut pw, ttt, data_sn, offset, pdu.data.len() as u32, fin) {
        // There is no recovery within the command at ERL 0 (RFC 7143 7.1.4.1, 7.2): the task ends
        // with CHECK CONDITION, ABORTED COMMAND, and its remaining Data-Out is discarded. Closing
        // the connection would take every other task of the session with it.
        tracing::info!(itt, ttt, data_sn, offset, "bad Data-Out ends the task");
        if conn.session.finish_task(itt, pw.id) {
            check_condition(conn, itt, pw.lun_raw, sense);
        }
        return Flow::Continue;
    }
    pw.buf.extend_from_slice(&pdu.data);
    if fin {
        if ttt == RESERVED_TAG {
            // The unsolicited burst ended (possibly short of FirstBurstLength): R2Ts take over.
            pw.unsolicited_left = 0;
            pw.next_r2t_offset = pw.buf.len() as u32;
        } else {
            pw.r2ts.retain(|r| r.ttt != ttt);
        }
        if pw.unsolicited_left == 0 {
            issue_r2ts(conn, itt, &mut pw);
        }
    }
    if pw.buf.len() as u32 == pw.edtl {
        if !conn.session.has_task(itt, pw.id) {
            return Flow::Continue; // aborted meanwhile
        }
        let data = pw.buf.freeze();
        let exec = Exec {
            itt,
            id: pw.id,
            lun_raw: pw.lun_raw,
            lun: pw.lun,
            cdb: pw.cdb,
            data,
            edtl: pw.edtl,
            read: false,
            write: true,
        };
        execute(conn, exec);
    } else {
        conn.pending.insert(itt, pw);
    }
    Flow::Continue
}

/// Check one Data-Out PDU against what the write expects and account for it; Err carries the
/// sense data that ends the task.
fn check_data_out(
    pw: &mut PendingWrite,
    ttt: u32,
    data_sn: u32,
    offset: u32,
    len: u32,
    fin: bool,
) -> Result<(), Vec<u8>> {
    // Data PDUs arrive in order (DataPDUInOrder and DataSequenceInOrder are Yes), so every PDU
    // continues where the buffer ends, and none goes past the Expected Data Transfer Length.
    if offset as usize != pw.buf.len() {
        return Err(fixed_sense(0x0b, 0x4b, 0x05)); // DATA OFFSET ERROR
    }
    if offset.checked_add(len).is_none_or(|end| end > pw.edtl) {
        return Err(fixed_sense(0x0b, 0x4b, 0x00)); // DATA PHASE ERROR
    }
    if ttt == RESERVED_TAG {
        // Unsolicited data: not negotiated, or past FirstBurstLength.
        if len > pw.unsolicited_left {
            return Err(unexpected_unsolicited_sense());
        }
        if data_sn != pw.unsol_data_sn {
            return Err(fixed_sense(0x0b, 0x4b, 0x00));
        }
        pw.unsolicited_left -= len;
        pw.unsol_data_sn = pw.unsol_data_sn.wrapping_add(1);
        return Ok(());
    }
    match pw.r2ts.iter_mut().find(|r| r.ttt == ttt) {
        Some(r) if data_sn == r.data_sn && offset == r.offset + r.received && r.received + len <= r.len => {
            r.received += len;
            r.data_sn = r.data_sn.wrapping_add(1);
            if fin && r.received != r.len {
                return Err(fixed_sense(0x0b, 0x4b, 0x00));
            }
            Ok(())
        }
        _ => Err(fixed_sense(0x0b, 0x4b, 0x00)),
    }
}

struct Exec {
    itt: u32,
    id: u64,
    lun_raw: [u8; 8],
    lun: u64,
    cdb: Cdb,
    data: Bytes,
    edtl: u32,
    read: bool,
    write: bool,
}

/// Run the command. Stores that answer at once (page-cache files, memory, null) complete within the
/// first poll, right here in the reader: no task to spawn, and the reply joins the writer's batch of
/// everything this read produced. A command that has to wait becomes its own task.
fn execute(conn: &Conn, e: Exec) {
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

    fn pending(edtl: u32, unsolicited: u32) -> PendingWrite {
        let b = Bhs::new(Opcode::ScsiCommand);
        PendingWrite {
            id: 1,
            lun_raw: [0; 8],
            lun: 0,
            cdb: Cdb::parse(&b, &[]).unwrap(),
            edtl,
            buf: BytesMut::new(),
            unsolicited_left: unsolicited,
            unsol_data_sn: 0,
            r2ts: VecDeque::new(),
            next_r2t_offset: unsolicited,
            r2t_sn: 0,
        }
    }

    fn asc(sense: Vec<u8>) -> (u8, u8, u8) {
        (sense[2], sense[12], sense[13])
    }

    #[test]
    fn unsolicited_data_past_first_burst_is_unexpected_unsolicited_data() {
        let mut pw = pending(16384, 8192);
        assert_eq!(check_data_out(&mut pw, RESERVED_TAG, 0, 0, 8192, false), Ok(()));
        pw.buf.extend_from_slice(&[0; 8192]);
        // FirstBurstLength used up: one more unsolicited byte is too many.
        let e = check_data_out(&mut pw, RESERVED_TAG, 1, 8192, 512, true).unwrap_err();
        assert_eq!(asc(e), (0x0b, 0x0c, 0x0c));
        // InitialR2T=Yes: no unsolicited data at all.
        let e = check_data_out(&mut pending(4096, 0), RESERVED_TAG, 0, 0, 512, true).unwrap_err();
        assert_eq!(asc(e), (0x0b, 0x0c, 0x0c));
    }

    #[test]
    fn data_out_outside_the_transfer_or_the_r2t_ends_the_task() {
        let mut pw = pending(8192, 0);
        pw.r2ts.push_back(R2tState { ttt: 7, offset: 0, len: 4096, received: 0, data_sn: 0 });
        // Past the Expected Data Transfer Length.
        assert_eq!(asc(check_data_out(&mut pw, 7, 0, 0, 8193, true).unwrap_err()), (0x0b, 0x4b, 0x00));
        // Not where the data so far ends.
        assert_eq!(asc(check_data_out(&mut pw, 7, 0, 512, 512, true).unwrap_err()), (0x0b, 0x4b, 0x05));
        // A TTT we never sent, and more than the R2T asked for.
        assert_eq!(asc(check_data_out(&mut pw, 8, 0, 0, 512, true).unwrap_err()), (0x0b, 0x4b, 0x00));
        assert_eq!(asc(check_data_out(&mut pw, 7, 0, 0, 8192, true).unwrap_err()), (0x0b, 0x4b, 0x00));
        assert_eq!(check_data_out(&mut pw, 7, 0, 0, 4096, true), Ok(()));
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
