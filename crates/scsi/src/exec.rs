//! The path of one command through a logical unit: unit attention, decode, reservation and medium
//! checks, then the command itself, and the result (status, sense in the unit's format).
//!
//! Order of checks (SAM-5 5.14, SPC-2 5.5.1): a pending unit attention is reported before anything
//! else except for INQUIRY, REPORT LUNS and REQUEST SENSE; then the CDB is decoded (invalid opcode or
//! field); then a reservation held by another nexus; then NOT READY for media-access commands.

use crate::cdb::Cdb;
use crate::failure::Failure;
use crate::lun::LogicalUnit;
use crate::opcodes::{Lookup, Request, Run, MEDIUM, NO_UA, RESERVATION_OK};
use crate::sbc;
use crate::sense::{Asc, Sense, SenseFormat};
use crate::spc::{self, commands, inquiry, report_luns};
use crate::stats::Outcome;
use crate::target::{Ctx, Nexus, Target, TaskResult};
use crate::ScsiStatus;
use std::sync::Arc;

impl Target {
    /// Run one command. `lun` is the decoded LUN number (see `decode_lun`); `data_out` holds the bytes
    /// the initiator sent (possibly fewer or more than the CDB calls for); `data_in` is cleared and
    /// filled with the response data, already cut to the CDB's allocation length (the transport cuts
    /// it further to its expected transfer length).
    pub async fn execute(
        &self,
        nexus: &Nexus,
        lun: u64,
        cdb: &[u8],
        data_out: &[u8],
        data_in: &mut Vec<u8>,
    ) -> TaskResult {
        data_in.clear();
        let Some(unit) = self.lun(lun) else {
            return no_such_lun(self, cdb, data_in);
        };
        let ctx = Ctx { target: self, nexus, lun };
        execute(&unit, &ctx, cdb, data_out, data_in).await
    }
}

async fn execute(
    lu: &Arc<LogicalUnit>,
    ctx: &Ctx<'_>,
    cdb: &[u8],
    data_out: &[u8],
    data_in: &mut Vec<u8>,
) -> TaskResult {
    let counted = lu.stats().start(cdb.first().copied().unwrap_or(0));
    let mut data_out_expected = 0;
    let command = run(lu, ctx, cdb, data_out, data_in, &mut data_out_expected);
    // A unit deleted while the command is still running (waiting on a slow store) ends the command
    // with the answer the next one would get: the unit is no longer there.
    let result = match lu.unless_removed(command).await {
        Some(result) => result,
        None => Err(Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED).into()),
    };
    counted.finish(match &result {
        // A read's data-in, or the data-out a write took (never more than its CDB asked for).
        Ok(()) => Outcome::Good { bytes: (data_in.len() + data_out.len().min(data_out_expected as usize)) as u64 },
        Err(Failure::Sense(sense)) => Outcome::CheckCondition { sense_key: sense.key as u8 },
        Err(Failure::ReservationConflict) => Outcome::ReservationConflict,
    });
    finish(result, lu.sense_format(), data_out_expected, data_in)
}

fn finish(
    result: Result<(), Failure>,
    format: SenseFormat,
    data_out_expected: u32,
    data_in: &mut Vec<u8>,
) -> TaskResult {
    match result {
        Ok(()) => TaskResult { status: ScsiStatus::Good, sense: None, data_out_expected },
        Err(failure) => {
            data_in.clear();
            match failure {
                Failure::Sense(sense) => TaskResult {
                    status: ScsiStatus::CheckCondition,
                    sense: Some(sense.encode(format)),
                    data_out_expected,
                },
                Failure::ReservationConflict => {
                    TaskResult { status: ScsiStatus::ReservationConflict, sense: None, data_out_expected }
                }
            }
        }
    }
}

async fn run(
    lu: &Arc<LogicalUnit>,
    ctx: &Ctx<'_>,
    cdb: &[u8],
    data_out: &[u8],
    data_in: &mut Vec<u8>,
    data_out_expected: &mut u32,
) -> Result<(), Failure> {
    let device = lu.device_type();
    let ops = crate::dispatch::ops(device);
    let found = ops.commands.lookup(cdb, lu.thin_provisioning());
    let reports_ua = !matches!(found, Lookup::Found(e) if e.has(NO_UA));
    if reports_ua {
        if let Some(asc) = ctx.nexus.unit_attentions.take(ctx.lun) {
            return Err(Sense::unit_attention(asc).into());
        }
    }
    let entry = match found {
        Lookup::Found(entry) => entry,
        Lookup::UnknownOpcode => return Err(Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE).into()),
        Lookup::UnknownServiceAction => return Err(Sense::invalid_cdb_field(1, Some(4)).into()),
    };
    let decoded = entry.decode(cdb)?;
    (ops.admit)(lu, entry)?;
    tracing::trace!(command = entry.name, lun = ctx.lun, nexus = ctx.nexus.id, "execute");
    *data_out_expected = decoded.data_out_len(lu.block_size());
    if let Some(holder) = lu.reservation_holder() {
        if holder != ctx.nexus.id && !entry.has(RESERVATION_OK) {
            return Err(Failure::ReservationConflict);
        }
    }
    spc::persistent_reservation::check(lu, ctx, cdb)?;
    if entry.has(MEDIUM) && device.has_medium() {
        lu.medium()?;
    }
    sbc::check_whole_blocks(lu, &decoded, *data_out_expected, data_out.len())?;
    // `decode` checked that the CDB is at least as long as the row's usage data.
    let mut request = Request { lu, ops, ctx, cdb: &cdb[..entry.usage.len()], data_out, data_in };
    match entry.run {
        Run::Now(handler) => handler(&mut request),
        Run::Io(handler) => handler(&mut request).await,
    }
}

/// A command addressed to a LUN the target does not have (SPC-4 6.6.2, 6.33, SAM-5 5.9.8): INQUIRY
/// answers with peripheral qualifier 011b, REPORT LUNS works as on any LUN, REQUEST SENSE returns
/// LOGICAL UNIT NOT SUPPORTED as its data, and everything else fails with it.
fn no_such_lun(target: &Target, cdb: &[u8], data_in: &mut Vec<u8>) -> TaskResult {
    let format = SenseFormat::Fixed;
    let not_supported = Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    let result = match cdb.first() {
        Some(0x12) | Some(0xa0) => {
            // Check through the shared rows so the same usage data applies, then take the fields.
            if cdb[0] == 0x12 {
                match commands::INQUIRY.decode(cdb).and_then(|_| inquiry::Inquiry::decode(cdb)) {
                    Ok(inquiry::Inquiry { evpd: false, alloc_len, .. }) => {
                        inquiry::no_such_lun(alloc_len, data_in);
                        Ok(())
                    }
                    Ok(_) => Err(not_supported.into()),
                    Err(sense) => Err(sense.into()),
                }
            } else {
                match commands::REPORT_LUNS.decode(cdb).and_then(|_| report_luns::ReportLuns::decode(cdb)) {
                    Ok(report_luns::ReportLuns { select_report, alloc_len }) => {
                        let luns = target.luns();
                        report_luns::report_luns(luns.iter().map(|(n, _)| *n), select_report, alloc_len, data_in);
                        Ok(())
                    }
                    Err(sense) => Err(sense.into()),
                }
            }
        }
        Some(0x03) => {
            let desc = cdb.get(1).is_some_and(|b| b & 0x01 != 0);
            let alloc = cdb.get(4).copied().unwrap_or(0);
            not_supported.encode_into(if desc { SenseFormat::Descriptor } else { SenseFormat::Fixed }, data_in);
            spc::truncate(data_in, usize::from(alloc));
            Ok(())
        }
        _ => Err(not_supported.into()),
    };
    finish(result, format, 0, data_in)
}
