//! Data-Out for writes (RFC 7143 10.7-10.8, 11.7-11.8): the writes of one connection still
//! receiving their data, the R2Ts that ask for it (MaxBurstLength each, at most MaxOutstandingR2T
//! at once), the checks on every Data-Out PDU (TTT, DataSN, BufferOffset), and the pacing that
//! keeps the data one connection buffers within its write budget: a write gets its first R2T only
//! once its whole transfer fits in the budget, oldest first (see `write_budget`). A write that
//! holds budget and hears nothing from the initiator for the Data-Out timeout is ended (`expire`),
//! so a silent initiator cannot keep the budget, and other writers' R2Ts, forever.

pub(crate) mod state;

use crate::full_feature::cdb::Cdb;
use crate::full_feature::connection::{Conn, Flow};
use crate::full_feature::execute::{check_condition, execute, Exec};
use crate::full_feature::sense;
use crate::pdu::{off, Bhs, Opcode, Pdu, RESERVED_TAG};
use crate::writer::Stat;
use bytes::{Bytes, BytesMut};
use state::{PendingWrite, R2tState};
use std::collections::VecDeque;
use tokio::time::Instant;

/// What a new write brings: its command fields, the immediate data, and how much unsolicited
/// data may follow (0 when the initial R2T is up to the target).
pub(crate) struct NewWrite<'a> {
    pub id: u64,
    pub lun_raw: [u8; 8],
    pub lun: u64,
    pub cdb: Cdb,
    pub edtl: u32,
    pub immediate: &'a [u8],
    pub unsolicited: u32,
}

/// Take a write whose data has not all come with the command: keep it until its Data-Out arrives,
/// and queue it for R2Ts unless unsolicited data comes first.
pub(crate) fn start(conn: &mut Conn, itt: u32, w: NewWrite<'_>) {
    let dsl = w.immediate.len() as u32;
    let unasked = dsl + w.unsolicited;
    let mut budget = conn.write_budget.unasked(u64::from(unasked));
    let wants_r2t = w.unsolicited == 0;
    // A write that wants R2Ts at once and finds no older one waiting is admitted here, before its
    // buffer exists, so the buffer is made at its full size once: growing it on admission would
    // copy the immediate data a second time. Otherwise only what can come before the first R2T is
    // allocated now, the rest once the write is admitted, so EDTL alone never makes the target
    // allocate.
    let admitted =
        wants_r2t && conn.data_out.awaiting_r2t.is_empty() && conn.write_budget.admit(&mut budget, u64::from(w.edtl));
    let mut buf = BytesMut::with_capacity(if admitted { w.edtl } else { unasked } as usize);
    buf.extend_from_slice(w.immediate);
    let mut pw = PendingWrite {
        id: w.id,
        lun_raw: w.lun_raw,
        lun: w.lun,
        cdb: w.cdb,
        edtl: w.edtl,
        buf,
        unsolicited_left: w.unsolicited,
        unsol_data_sn: 0,
        r2ts: VecDeque::new(),
        next_r2t_offset: unasked,
        r2t_sn: 0,
        queued: false,
        budget,
        // Unsolicited data is the initiator's to send now, as are the R2Ts' data once admitted;
        // otherwise enqueue decides.
        last_heard: (w.unsolicited > 0 || admitted).then(Instant::now),
    };
    if admitted {
        issue_r2ts(conn, itt, &mut pw);
    }
    conn.data_out.pending.insert(itt, pw);
    if wants_r2t && !admitted {
        enqueue(conn, itt);
    }
}

/// Queue the pending write `itt` for R2Ts and admit what fits.
fn enqueue(conn: &mut Conn, itt: u32) {
    let Some(pw) = conn.data_out.pending.get_mut(&itt) else { return };
    if pw.queued || pw.budget.is_admitted() {
        return;
    }
    pw.queued = true;
    pw.last_heard = None;
    let id = pw.id;
    conn.data_out.awaiting_r2t.push_back((itt, id));
    admit_waiting(conn);
}

/// Give R2Ts to the writes waiting for the budget, oldest first, for as long as they fit. Called
/// when a write is queued and whenever budget is released.
pub(crate) fn admit_waiting(conn: &mut Conn) {
    while let Some(&(itt, id)) = conn.data_out.awaiting_r2t.front() {
        let Some(mut pw) = conn.data_out.pending.remove(&itt) else {
            // Ended meanwhile (aborted, or a bad Data-Out).
            conn.data_out.awaiting_r2t.pop_front();
            continue;
        };
        if pw.id != id {
            conn.data_out.pending.insert(itt, pw);
            conn.data_out.awaiting_r2t.pop_front();
            continue;
        }
        if !conn.write_budget.admit(&mut pw.budget, u64::from(pw.edtl)) {
            tracing::trace!(itt, edtl = pw.edtl, held = conn.write_budget.used(), "write waits for budget");
            conn.data_out.pending.insert(itt, pw);
            break;
        }
        conn.data_out.awaiting_r2t.pop_front();
        pw.queued = false;
        pw.last_heard = Some(Instant::now());
        // Admitted: the whole transfer is accounted for, so its buffer may be sized for it. Pages
        // are only touched (resident) as data arrives.
        pw.buf.reserve(pw.edtl as usize - pw.buf.len());
        issue_r2ts(conn, itt, &mut pw);
        conn.data_out.pending.insert(itt, pw);
    }
}

/// Send R2Ts until MaxOutstandingR2T are out or the whole transfer is asked for (10.8). Only an
/// admitted write gets any.
fn issue_r2ts(conn: &mut Conn, itt: u32, pw: &mut PendingWrite) {
    if !pw.budget.is_admitted() {
        return;
    }
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
    let Some(mut pw) = conn.data_out.pending.remove(&itt) else {
        // Data for an aborted, refused or unknown task is read and discarded (4.2.3.3 / 11.7).
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
    if pw.buf.is_empty() && pdu.data.len() as u32 == pw.edtl {
        // The whole transfer in one Data-Out: its segment, already split off the socket buffer,
        // becomes the write's data as immediate data does, without a copy.
        pw.buf = pdu.data;
    } else {
        pw.buf.extend_from_slice(&pdu.data);
    }
    pw.last_heard = Some(Instant::now());
    let mut wants_r2t = false;
    if fin {
        if ttt == RESERVED_TAG {
            // The unsolicited burst ended (possibly short of FirstBurstLength): R2Ts take over.
            pw.unsolicited_left = 0;
            pw.next_r2t_offset = pw.buf.len() as u32;
            wants_r2t = pw.next_r2t_offset < pw.edtl;
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
        let exec = Exec {
            itt,
            id: pw.id,
            lun_raw: pw.lun_raw,
            lun: pw.lun,
            cdb: pw.cdb,
            data: pw.buf.freeze(),
            edtl: pw.edtl,
            read: false,
            write: true,
            budget: pw.budget,
        };
        execute(conn, exec);
        return Flow::Continue;
    }
    conn.data_out.pending.insert(itt, pw);
    if wants_r2t {
        enqueue(conn, itt);
    }
    Flow::Continue
}

/// End the writes that have waited on the initiator for the Data-Out timeout by `now`: each is
/// answered CHECK CONDITION, ABORTED COMMAND, INITIATOR RESPONSE TIMEOUT, and its buffer and write
/// budget are given back, so writes waiting for budget here and on other connections go on. Data-Out
/// still arriving for it is discarded like any for an unknown task. Writes waiting for budget do
/// not expire: they wait on the target. Returns when the next write could expire, at the latest one
/// timeout from `now`; the connection checks again then (one timer per connection, none per write).
pub(crate) fn expire(conn: &mut Conn, now: Instant) -> Instant {
    let timeout = conn.registry.data_out_timeout();
    let mut next = now + timeout;
    let mut expired = Vec::new();
    for (itt, pw) in &conn.data_out.pending {
        let Some(deadline) = pw.last_heard.map(|t| t + timeout) else { continue };
        if deadline <= now {
            expired.push(*itt);
        } else {
            next = next.min(deadline);
        }
    }
    for itt in &expired {
        let Some(pw) = conn.data_out.pending.remove(itt) else { continue };
        tracing::info!(
            peer = %conn.peer,
            itt,
            edtl = pw.edtl,
            received = pw.buf.len(),
            "no Data-Out within the timeout: the write ends"
        );
        // Not there when task management removed it first: an aborted task gets no answer.
        if conn.session.finish_task(*itt, pw.id) {
            check_condition(conn, *itt, pw.lun_raw, sense::initiator_response_timeout());
        }
        // Dropping the write frees its buffer and releases its reservation (waking other
        // connections waiting for the daemon's budget).
        drop(pw);
    }
    if !expired.is_empty() {
        admit_waiting(conn);
    }
    next
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
        return Err(sense::data_offset_error());
    }
    if offset.checked_add(len).is_none_or(|end| end > pw.edtl) {
        return Err(sense::data_phase_error());
    }
    if ttt == RESERVED_TAG {
        // Unsolicited data: not negotiated, or past FirstBurstLength.
        if len > pw.unsolicited_left {
            return Err(sense::unexpected_unsolicited_data());
        }
        if data_sn != pw.unsol_data_sn {
            return Err(sense::data_phase_error());
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
                return Err(sense::data_phase_error());
            }
            Ok(())
        }
        _ => Err(sense::data_phase_error()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::params::SessionParams;
    use crate::registry::Registry;
    use crate::session::window::CmdWindow;
    use crate::session::{Session, SessionType};
    use crate::write_budget::WriteBudget;
    use crate::writer::{out_queue, OutReceiver, Outgoing};
    use parking_lot::Mutex;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    /// A connection of a session without a target (its commands end without running) and a
    /// write budget of `budget` bytes; the receiver sees what it would send.
    pub(crate) fn conn_with_budget(budget: u64) -> (Conn, OutReceiver) {
        let session = Arc::new_cyclic(|me| Session {
            not_spawned: Session::not_spawned_handle(me),
            first_polls: Default::default(),
            tsih: 1,
            isid: [0; 6],
            initiator_name: "iqn.2026-11.org.rtgt.test:unit".into(),
            kind: SessionType::Normal,
            target: None,
            // A nexus of a target of its own: the session's tasks live in its task set.
            nexus: Some(rtgt_scsi::Target::new(1, "iqn.2026-11.org.rtgt.test:t".into()).add_nexus("i".into())),
            params: SessionParams::default(),
            chap_user: None,
            window: Mutex::new(CmdWindow::new(1, 128)),
            conns: Default::default(),
            ended: AtomicBool::new(false),
            slot: Mutex::new(None),
        });
        let (tx, rx) = out_queue();
        let addr = "127.0.0.1:3260".parse().unwrap();
        let params = SessionParams::default();
        let mut conn = Conn::new(1, 0, session, None, params, tx, Default::default(), Registry::new(), addr, addr);
        conn.write_budget = WriteBudget::new(budget, Default::default());
        (conn, rx)
    }

    /// A write of `edtl` bytes under `itt` that waits for R2Ts.
    fn new_write(conn: &mut Conn, itt: u32, edtl: u32) -> u64 {
        let id = conn.session.add_task(itt, 0, conn.id).expect("a free ITT");
        let cdb = Cdb::parse(&Bhs::new(Opcode::ScsiCommand), &[]).unwrap();
        start(conn, itt, NewWrite { id, lun_raw: [0; 8], lun: 0, cdb, edtl, immediate: &[], unsolicited: 0 });
        id
    }

    /// The R2Ts sent so far: (ITT, TTT, offset, length).
    fn r2ts(rx: &mut OutReceiver) -> Vec<(u32, u32, u32, u32)> {
        let mut got = Vec::new();
        while let Some(item) = rx.try_recv() {
            match item {
                Outgoing::Pdu { bhs, .. } if bhs.opcode_raw() == Opcode::R2t as u8 => {
                    got.push((bhs.itt(), bhs.ttt(), bhs.u32_at(off::BUFFER_OFFSET), bhs.u32_at(off::DESIRED_LENGTH)))
                }
                other => panic!("expected only R2Ts, got {other:?}"),
            }
        }
        got
    }

    #[test]
    fn writes_wait_for_r2ts_until_their_transfer_fits_in_the_budget() {
        let (mut conn, mut rx) = conn_with_budget(64 * 1024);
        new_write(&mut conn, 1, 48 * 1024);
        new_write(&mut conn, 2, 48 * 1024);
        let c = new_write(&mut conn, 3, 8 * 1024);
        // The first fits; the second does not, and the third, which would, waits behind it.
        let first = r2ts(&mut rx);
        assert_eq!(first.iter().map(|r| (r.0, r.2, r.3)).collect::<Vec<_>>(), [(1, 0, 48 * 1024)]);
        assert_eq!(conn.write_budget.used(), 48 * 1024);
        // The first write's data arrives; it ends (no target here) and frees its budget.
        let mut h = Bhs::new(Opcode::DataOut);
        h.set_flags(0x80);
        h.set_itt(1);
        h.set_ttt(first[0].1);
        let data = BytesMut::from(&[7u8; 48 * 1024][..]);
        assert_eq!(on_data_out(&mut conn, Pdu { bhs: h, ahs: Vec::new(), data }), Flow::Continue);
        assert_eq!(conn.write_budget.used(), 0);
        admit_waiting(&mut conn);
        assert_eq!(r2ts(&mut rx).iter().map(|r| r.0).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(conn.write_budget.used(), 56 * 1024);
        // An aborted write gives its budget back too.
        conn.session.nexus.as_ref().unwrap().tasks().abort_task(3, None);
        let s = conn.session.clone();
        conn.data_out.pending.retain(|itt, p| s.has_task(*itt, p.id));
        assert!(!conn.data_out.pending.values().any(|p| p.id == c));
        assert_eq!(conn.write_budget.used(), 48 * 1024);
    }

    #[test]
    fn a_write_larger_than_the_budget_goes_alone() {
        let (mut conn, mut rx) = conn_with_budget(16 * 1024);
        new_write(&mut conn, 1, 32 * 1024);
        new_write(&mut conn, 2, 512);
        // Nothing else is admitted, so the large write proceeds (bursts of MaxBurstLength); the
        // small one waits for it.
        assert_eq!(r2ts(&mut rx).iter().map(|r| (r.0, r.3)).collect::<Vec<_>>(), [(1, 32 * 1024)]);
        conn.data_out.pending.remove(&1);
        admit_waiting(&mut conn);
        assert_eq!(r2ts(&mut rx).iter().map(|r| r.0).collect::<Vec<_>>(), [2]);
    }

    #[test]
    fn a_write_that_never_sends_its_data_out_gives_its_budget_back_after_the_timeout() {
        let (mut conn, mut rx) = conn_with_budget(64 * 1024);
        let timeout = conn.registry.data_out_timeout();
        let start = Instant::now();
        // The first write takes the whole budget; the second waits for it.
        let silent = new_write(&mut conn, 1, 64 * 1024);
        let waiting = new_write(&mut conn, 2, 32 * 1024);
        assert_eq!(r2ts(&mut rx).iter().map(|r| r.0).collect::<Vec<_>>(), [1]);
        // Not before the timeout: nothing ends, and the next check is due when the first could expire.
        let next = expire(&mut conn, start + timeout / 2);
        assert!(next >= start + timeout && next <= Instant::now() + timeout, "{next:?}");
        assert!(rx.try_recv().is_none() && conn.write_budget.used() == 64 * 1024);
        // After it the silent write ends: CHECK CONDITION, ABORTED COMMAND, INITIATOR RESPONSE TIMEOUT.
        let later = Instant::now() + timeout + std::time::Duration::from_secs(1);
        expire(&mut conn, later);
        match rx.try_recv() {
            Some(Outgoing::Scsi(r)) => {
                assert_eq!((r.itt, r.status), (1, 0x02), "CHECK CONDITION");
                let sense = r.sense.expect("sense data");
                assert_eq!((sense[2], sense[12], sense[13]), (0x0b, 0x4b, 0x06));
            }
            other => panic!("expected the CHECK CONDITION, got {other:?}"),
        }
        assert!(!conn.session.has_task(1, silent) && !conn.data_out.pending.contains_key(&1));
        // Its budget is free, so the write that waited for budget (which did not expire: it was
        // waiting on the target) gets its R2T.
        assert_eq!(r2ts(&mut rx).iter().map(|r| r.0).collect::<Vec<_>>(), [2]);
        assert!(conn.session.has_task(2, waiting));
        assert_eq!(conn.write_budget.used(), 32 * 1024);
        // Late Data-Out for the ended write is discarded, and the connection goes on.
        let mut h = Bhs::new(Opcode::DataOut);
        h.set_flags(0x80);
        h.set_itt(1);
        h.set_ttt(1);
        let data = BytesMut::from(&[0u8; 512][..]);
        assert_eq!(on_data_out(&mut conn, Pdu { bhs: h, ahs: Vec::new(), data }), Flow::Continue);
        assert!(rx.try_recv().is_none());
        // The second write, now admitted, is bound by the same timeout.
        expire(&mut conn, later + timeout + std::time::Duration::from_secs(1));
        assert!(matches!(rx.try_recv(), Some(Outgoing::Scsi(r)) if r.itt == 2));
        assert_eq!(conn.write_budget.used(), 0);
    }

    #[test]
    fn data_out_keeps_a_slow_write_alive() {
        let (mut conn, mut rx) = conn_with_budget(64 * 1024);
        let timeout = conn.registry.data_out_timeout();
        new_write(&mut conn, 1, 8 * 1024);
        let ttt = r2ts(&mut rx)[0].1;
        let admitted = conn.data_out.pending[&1].last_heard.expect("admitted: waiting on the initiator");
        std::thread::sleep(std::time::Duration::from_millis(5));
        let mut h = Bhs::new(Opcode::DataOut);
        h.set_flags(0); // not the burst's last PDU
        h.set_itt(1);
        h.set_ttt(ttt);
        let data = BytesMut::from(&[0u8; 512][..]);
        assert_eq!(on_data_out(&mut conn, Pdu { bhs: h, ahs: Vec::new(), data }), Flow::Continue);
        // The timeout counts from the last Data-Out, not from the command.
        let heard = conn.data_out.pending[&1].last_heard.expect("waiting on the initiator");
        assert!(heard > admitted);
        expire(&mut conn, admitted + timeout);
        assert!(rx.try_recv().is_none() && conn.data_out.pending.contains_key(&1));
        expire(&mut conn, heard + timeout);
        assert!(matches!(rx.try_recv(), Some(Outgoing::Scsi(r)) if r.itt == 1));
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
            queued: false,
            budget: WriteBudget::new(1 << 20, Default::default()).unasked(u64::from(unsolicited)),
            last_heard: None,
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
}
