//! The path of one command through a logical unit: unit attention, decode, reservation and medium
//! checks, then the command itself, and the result (status, sense in the unit's format).
//!
//! Order of checks (SAM-5 5.14, SPC-2 5.5.1): a pending unit attention is reported before anything
//! else except for INQUIRY, REPORT LUNS and REQUEST SENSE; then the CDB is decoded (invalid opcode or
//! field); then a reservation held by another nexus; then NOT READY for media-access commands.

use crate::cdb::Command;
use crate::lun::LogicalUnit;
use crate::opcodes::{self, Lookup, MEDIUM, NO_UA, RESERVATION_OK};
use crate::sbc::{self, capacity, locked_write, medium, prefetch, provisioning, rw, sanitize};
use crate::sense::{Asc, Sense, SenseFormat};
use crate::spc::{self, inquiry, mode, report_luns, request_sense, reserve, rsoc, xcopy};
use crate::target::{Ctx, Failure, Target, TaskResult};
use crate::ScsiStatus;
use std::sync::Arc;

pub(crate) async fn execute(
    lu: &Arc<LogicalUnit>,
    ctx: &Ctx<'_>,
    cdb: &[u8],
    data_out: &[u8],
    data_in: &mut Vec<u8>,
) -> TaskResult {
    let mut data_out_expected = 0;
    let command = run(lu, ctx, cdb, data_out, data_in, &mut data_out_expected);
    // A unit deleted while the command is still running (waiting on a slow store) ends the command
    // with the answer the next one would get: the unit is no longer there.
    let result = match lu.unless_removed(command).await {
        Some(result) => result,
        None => Err(Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED).into()),
    };
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
    let config = lu.config();
    let found = opcodes::lookup(cdb, config.device_type, config.thin_provisioning);
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
    let command = entry.decode(cdb)?;
    // SBC-4 4.11.2-3: while a SANITIZE runs only these may look at the unit (REQUEST SENSE reports
    // the progress below); after a failed one, another SANITIZE may also run.
    if let Some(sense) = lu.sanitize_state().sense() {
        let looks_only =
            matches!(command, Command::Inquiry { .. } | Command::ReportLuns { .. } | Command::RequestSense { .. });
        let retry = matches!(command, Command::Sanitize { .. }) && lu.sanitize_state().progress().is_none();
        if !looks_only && !retry {
            return Err(sense.into());
        }
    }
    tracing::trace!(command = entry.name, lun = ctx.lun, nexus = ctx.nexus.id, "execute");
    *data_out_expected = command.data_out_len(lu.block_size());
    if let Some(holder) = lu.reservation_holder() {
        if holder != ctx.nexus.id && !entry.has(RESERVATION_OK) {
            return Err(Failure::ReservationConflict);
        }
    }
    spc::persistent_reservation::check(lu, ctx, cdb)?;
    // The controller has no medium to be absent.
    if entry.has(MEDIUM) && config.device_type == crate::DeviceType::Disk {
        lu.medium()?;
    }
    sbc::check_whole_blocks(lu, &command, *data_out_expected, data_out.len())?;
    let cdb_len = entry.usage.len();
    match command {
        Command::TestUnitReady => {}
        Command::Inquiry { evpd, page_code, alloc_len } => inquiry::inquiry(lu, evpd, page_code, alloc_len, data_in)?,
        Command::RequestSense { desc, alloc_len } => {
            let pending = ctx.nexus.unit_attentions.take(ctx.lun).map(Sense::unit_attention);
            // SPC-4 6.39: with nothing pending, report the unit's state: a disk being sanitized
            // or without medium is NOT READY.
            let state = match config.device_type {
                crate::DeviceType::Disk => lu.sanitize_state().sense().or_else(|| lu.medium().err()),
                crate::DeviceType::Controller => None,
            };
            request_sense::request_sense(pending.or(state), desc, alloc_len, data_in);
        }
        Command::ReportLuns { select_report, alloc_len } => {
            let luns = ctx.target.luns();
            report_luns::report_luns(luns.iter().map(|(n, _)| *n), select_report, alloc_len, data_in);
        }
        Command::ModeSense { ten, dbd, llbaa, pc, page_code, subpage, alloc_len } => {
            let req = mode::ModeSenseRequest { ten, dbd, llbaa, pc, page_code, subpage, alloc_len };
            mode::mode_sense(lu, req, data_in)?;
        }
        Command::ModeSelect { ten, pf: _, sp, param_len } => mode::mode_select(lu, ctx, ten, sp, param_len, data_out)?,
        Command::ReportSupportedOpcodes { rctd, options, opcode, service_action, alloc_len } => {
            let req = rsoc::RsocRequest { rctd, options, opcode, service_action, alloc_len };
            rsoc::report_supported_opcodes(lu, req, data_in)?;
        }
        Command::Reserve => reserve::reserve(lu, ctx.nexus.id)?,
        Command::Release => reserve::release(lu, ctx.nexus.id)?,
        Command::PersistentReserveIn { service_action, alloc_len } => {
            spc::persistent_reservation::reserve_in(lu, service_action, alloc_len, data_in)?
        }
        Command::PersistentReserveOut { service_action, scope, pr_type, param_len } => {
            spc::persistent_reservation::reserve_out(lu, ctx, service_action, scope, pr_type, param_len, data_out)?
        }
        Command::PreventAllowMediumRemoval { prevent } => medium::prevent_allow(lu, ctx.nexus.id, prevent)?,
        Command::StartStopUnit { power_condition, loej, start } => {
            medium::start_stop_unit(lu, power_condition, loej, start)?
        }
        Command::ReadCapacity10 => capacity::read_capacity10(lu, data_in),
        Command::ReadCapacity16 { alloc_len } => capacity::read_capacity16(lu, alloc_len, data_in),
        Command::Read { range, fua: _ } => rw::read(lu, range, cdb_len, data_in).await?,
        Command::Write { range, fua } => rw::write(lu, range, fua, cdb_len, data_out).await?,
        Command::Verify { range, bytchk } => rw::verify(lu, range, bytchk == 1, cdb_len, data_out, data_in).await?,
        Command::WriteAndVerify { range, bytchk } => {
            rw::write_and_verify(lu, range, bytchk, cdb_len, data_out, data_in).await?
        }
        Command::SynchronizeCache { range } => sbc::sync::synchronize_cache(lu, range).await?,
        Command::Unmap { param_len } => provisioning::unmap(lu, param_len, data_out).await?,
        Command::WriteSame { range, unmap, ndob } => {
            provisioning::write_same(lu, range, unmap, ndob, cdb_len, data_out, data_in).await?
        }
        Command::GetLbaStatus { lba, alloc_len } => provisioning::get_lba_status(lu, lba, alloc_len, data_in)?,
        Command::PreFetch { lba, blocks } => prefetch::prefetch(lu, lba, blocks)?,
        Command::ReadDefectData { twelve, plist, glist, format, alloc_len } => {
            prefetch::read_defect_data(twelve, plist, glist, format, alloc_len, data_in)?
        }
        Command::CompareAndWrite { range, fua } => locked_write::compare_and_write(lu, range, fua, data_out).await?,
        Command::OrWrite { range, fua } => locked_write::orwrite(lu, range, fua, data_out, data_in).await?,
        Command::WriteAtomic { range, fua, boundary } => {
            locked_write::write_atomic(lu, range, fua, boundary, data_out).await?
        }
        Command::Sanitize { service_action, immed, ause, param_len } => {
            let request = sanitize::Request { service_action, immed, ause, param_len };
            sanitize::sanitize(lu, request, data_out).await?
        }
        Command::ExtendedCopy { param_len } => xcopy::extended_copy(lu, ctx, param_len, data_out, data_in).await?,
        Command::ReceiveCopyResults { service_action, list_id, alloc_len } => {
            xcopy::receive_copy_results(lu, ctx, service_action, list_id, alloc_len, data_in)?
        }
        Command::ReportSupportedTmf { repd, alloc_len } => rsoc::report_supported_tmf(repd, alloc_len, data_in),
    }
    Ok(())
}

/// A command addressed to a LUN the target does not have (SPC-4 6.6.2, 6.33, SAM-5 5.9.8): INQUIRY
/// answers with peripheral qualifier 011b, REPORT LUNS works as on any LUN, REQUEST SENSE returns
/// LOGICAL UNIT NOT SUPPORTED as its data, and everything else fails with it.
pub(crate) fn no_such_lun(target: &Target, cdb: &[u8], data_in: &mut Vec<u8>) -> TaskResult {
    let format = SenseFormat::Fixed;
    let not_supported = Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED);
    let result = match cdb.first() {
        Some(0x12) | Some(0xa0) => {
            // Decode through the table so the same field checks apply.
            let entry = match opcodes::lookup(cdb, crate::DeviceType::Controller, false) {
                Lookup::Found(e) => e,
                _ => return finish(Err(not_supported.into()), format, 0, data_in),
            };
            match entry.decode(cdb) {
                Ok(Command::Inquiry { evpd: false, alloc_len, .. }) => {
                    inquiry::no_such_lun(alloc_len, data_in);
                    Ok(())
                }
                Ok(Command::ReportLuns { select_report, alloc_len }) => {
                    let luns = target.luns();
                    report_luns::report_luns(luns.iter().map(|(n, _)| *n), select_report, alloc_len, data_in);
                    Ok(())
                }
                Ok(_) => Err(not_supported.into()),
                Err(sense) => Err(sense.into()),
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
