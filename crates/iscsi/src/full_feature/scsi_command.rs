//! SCSI Command (RFC 7143 11.3-11.4): the checks on a new command (CmdSN window, ITT, immediate
//! data, the transfer it announces), then either the write's data collection (`data_out`) or the
//! command runs at once (`execute`).

use crate::full_feature::cdb::Cdb;
use crate::full_feature::connection::{Conn, Flow, RejectReason};
use crate::full_feature::data_out::{self, NewWrite};
use crate::full_feature::execute::{check_condition, execute, Exec};
use crate::full_feature::sense;
use crate::pdu::{off, Pdu, RESERVED_TAG};
use bytes::Bytes;

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
        check_condition(conn, itt, lun_raw, sense::invalid_field_in_cdb());
        return Flow::Continue;
    }
    if dsl > 0 && (!p.immediate_data || dsl > p.first_burst_length) {
        // Immediate data that was not negotiated, or more of it than FirstBurstLength: the iSCSI
        // condition "unexpected unsolicited data" (RFC 7143 11.4.7.2). Nothing is written.
        check_condition(conn, itt, lun_raw, sense::unexpected_unsolicited_data());
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
        check_condition(conn, itt, lun_raw, sense::invalid_field_in_cdb());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::full_feature::data_out::tests::conn_with_budget;
    use crate::pdu::Bhs;
    use crate::pdu::Opcode;
    use crate::write_budget::WRITE_DATA_BUDGET;
    use crate::writer::Outgoing;
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
            assert!(conn.data_out.pending.is_empty() && conn.session.nexus.as_ref().unwrap().tasks().is_empty());
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
}
