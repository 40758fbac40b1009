//! The path of one command through a logical unit: unit attention, decode, reservation and medium
//! checks, then the command itself, and the result (status, sense in the unit's format).
//!
//! Order of checks (SAM-5 5.14, SPC-2 5.5.1): a pending unit attention is reported before anything
//! else except for INQUIRY, REPORT LUNS and REQUEST SENSE; then the CDB is decoded (invalid opcode or
//! field); then a deferred error of the nexus (again not for those three); then a reservation held
//! by another nexus; then NOT READY for media-access commands.

use crate::alua::{AccessState, ForwardReply, ForwardRequest};
use crate::cdb::Cdb;
use crate::failure::Failure;
use crate::lun::LogicalUnit;
use crate::opcodes::{
    Lookup, Offer, Request, Run, ANY_PORT, MEDIUM, NO_UA, RESERVATION_OK, STANDBY_OK, UNAVAILABLE_OK,
};
use crate::sbc;
use crate::sense::{Asc, Sense, SenseFormat};
use crate::spc::{self, commands, inquiry, report_luns};
use crate::stats::Outcome;
use crate::target::{Ctx, Nexus, Target, TaskResult};
use crate::ScsiStatus;
use rtgt_backstore::PagePipe;
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
        self.execute_piped(nexus, lun, cdb, data_out, data_in, None).await
    }

    /// `execute`, with a pipe the transport can splice to its socket: a READ from a store that
    /// can (a page-cache file) leaves its data in `pipe` as page references instead of copying
    /// it into `data_in` (see `PagePipe`). Afterwards the data-in is the pipe's bytes when
    /// `pipe.len() > 0` (and `data_in` is empty), else `data_in`. On any status but GOOD both are
    /// empty. The pipe must be empty when given.
    pub async fn execute_piped(
        &self,
        nexus: &Nexus,
        lun: u64,
        cdb: &[u8],
        data_out: &[u8],
        data_in: &mut Vec<u8>,
        pipe: Option<&mut PagePipe>,
    ) -> TaskResult {
        data_in.clear();
        let Some(unit) = self.lun(lun) else {
            return no_such_lun(self, cdb, data_in);
        };
        let ctx = Ctx { target: self, nexus, lun };
        // A pipe holding bytes already could not tell its data-in from them: not used.
        let pipe = pipe.filter(|p| p.is_empty());
        execute(&unit, &ctx, cdb, data_out, DataIn { buf: data_in, pipe }, Origin::Local).await
    }

    /// Run one command another port of a multi-port unit forwarded here (see
    /// `PortGroups::forward`), for the nexus that stands for the originating initiator port. That
    /// port already reported its nexus's unit attentions, so none is reported here; the command
    /// is served only while this port's group is active/optimized (the one that owns the storage).
    pub async fn execute_forwarded(
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
        execute(&unit, &ctx, cdb, data_out, DataIn { buf: data_in, pipe: None }, Origin::Forwarded).await
    }
}

/// Where a command's data-in goes: the buffer, or for a READ the transport's pipe.
struct DataIn<'a> {
    buf: &'a mut Vec<u8>,
    pipe: Option<&'a mut PagePipe>,
}

impl DataIn<'_> {
    fn len(&self) -> usize {
        self.buf.len() + self.pipe.as_ref().map_or(0, |p| p.len())
    }

    /// Drop the piped data-in of a command that failed (`finish` decides about the buffer: sense
    /// with data keeps it).
    fn clear_pipe(&mut self) {
        if let Some(p) = self.pipe.as_deref_mut() {
            // A pipe that cannot be emptied is reported full; the transport then drops it.
            if let Err(e) = p.clear() {
                tracing::warn!(error = %e, "could not empty a data-in pipe");
            }
        }
    }
}

/// Where a command came from: an initiator of this port, or another port forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Local,
    Forwarded,
}

async fn execute(
    lu: &Arc<LogicalUnit>,
    ctx: &Ctx<'_>,
    cdb: &[u8],
    data_out: &[u8],
    mut data_in: DataIn<'_>,
    origin: Origin,
) -> TaskResult {
    let counted = lu.stats().start(cdb.first().copied().unwrap_or(0));
    let mut data_out_expected = 0;
    let command = run(lu, ctx, cdb, data_out, &mut data_in, &mut data_out_expected, origin);
    // A unit deleted while the command is still running (waiting on a slow store) ends the command
    // with the answer the next one would get: the unit is no longer there.
    let (result, forwarded) = match lu.unless_removed(command).await {
        Some(Ok(forwarded)) => (Ok(()), forwarded),
        Some(Err(failure)) => (Err(failure), None),
        None => (Err(Sense::illegal_request(Asc::LOGICAL_UNIT_NOT_SUPPORTED).into()), None),
    };
    counted.finish(match (&result, &forwarded) {
        // The forwarded command's own outcome (fixed or descriptor sense: the key is in byte 2 or 1).
        (_, Some(answer)) => match answer.status {
            ScsiStatus::ReservationConflict => Outcome::ReservationConflict,
            ScsiStatus::CheckCondition => {
                let sense = answer.sense.as_deref().unwrap_or(&[]);
                let key = if sense.first().is_some_and(|b| b & 0x7e == 0x72) { sense.get(1) } else { sense.get(2) };
                Outcome::CheckCondition { sense_key: key.copied().unwrap_or(0) & 0x0f }
            }
            _ => Outcome::Good { bytes: (data_in.len() + data_out.len().min(data_out_expected as usize)) as u64 },
        },
        // A read's data-in, or the data-out a write took (never more than its CDB asked for).
        (Ok(()), None) => {
            Outcome::Good { bytes: (data_in.len() + data_out.len().min(data_out_expected as usize)) as u64 }
        }
        (Err(Failure::Sense(sense) | Failure::SenseWithData(sense)), None) => {
            Outcome::CheckCondition { sense_key: sense.key as u8 }
        }
        (Err(Failure::ReservationConflict), None) => Outcome::ReservationConflict,
    });
    if let Some(answer) = forwarded {
        return answer;
    }
    if result.is_err() {
        data_in.clear_pipe();
    }
    finish(result, lu.sense_format(), data_out_expected, data_in.buf)
}

fn finish(
    result: Result<(), Failure>,
    format: SenseFormat,
    data_out_expected: u32,
    data_in: &mut Vec<u8>,
) -> TaskResult {
    match result {
        Ok(()) => TaskResult { status: ScsiStatus::Good, sense: None, data_out_expected },
        Err(Failure::SenseWithData(sense)) => {
            TaskResult { status: ScsiStatus::CheckCondition, sense: Some(sense.encode(format)), data_out_expected }
        }
        Err(failure) => {
            data_in.clear();
            match failure {
                Failure::Sense(sense) | Failure::SenseWithData(sense) => TaskResult {
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
    data_in: &mut DataIn<'_>,
    data_out_expected: &mut u32,
    origin: Origin,
) -> Result<Option<TaskResult>, Failure> {
    // `Some`: the answer of the port the command was forwarded to, data-in already in `data_in`.
    let device = lu.device_type();
    let ops = crate::dispatch::ops(device);
    let found = ops.commands.lookup(cdb, Offer::of(lu));
    let reports_ua = origin == Origin::Local && !matches!(found, Lookup::Found(e) if e.has(NO_UA));
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
    if let Some(groups) = lu.port_groups() {
        let unavailable_ok = entry.has(UNAVAILABLE_OK);
        let standby_ok = unavailable_ok || entry.has(STANDBY_OK);
        match origin {
            Origin::Local => {
                // SPC-4 5.15.2.4: a port group not active processes only the commands its state admits.
                crate::alua::admits(groups.local_state(), standby_ok, unavailable_ok)?;
                // A port that does not own the storage sends the command to the one that does,
                // unless every port can answer it (inquiry data, port groups, the persistent
                // reservations kept in common): the owner alone holds the rest of the unit's
                // state, so a MODE SENSE here meets a RESERVE(6) made there, and a MODE SELECT
                // here sets the owner's mode pages.
                if !entry.has(ANY_PORT) {
                    let request = ForwardRequest {
                        initiator_port: ctx.nexus.initiator_port.clone(),
                        relative_port: groups.relative_port(),
                        cdb: cdb.to_vec(),
                        data_out: data_out.to_vec(),
                    };
                    if let Some(reply) = groups.forward(request) {
                        let reply = reply.await?;
                        *data_in.buf = reply.data_in;
                        *data_out_expected = reply.data_out_expected;
                        let ForwardReply { status, sense, data_out_expected, .. } = reply;
                        return Ok(Some(TaskResult { status, sense, data_out_expected }));
                    }
                }
            }
            // Only the owner serves what another port forwards; one that just stopped owning
            // answers as in a transition, which the initiator retries.
            Origin::Forwarded if groups.local_state() != AccessState::ActiveOptimized => {
                return Err(AccessState::Transitioning.refusal().into());
            }
            Origin::Forwarded => {}
        }
    }
    // REQUEST SENSE returns a deferred error as its data: it waits for an immediate command too.
    if !entry.has(NO_UA) || entry.opcode == REQUEST_SENSE {
        if let Some(immediate) = (ops.settle)(lu) {
            immediate.await;
        }
    }
    if !entry.has(NO_UA) {
        if let Some(sense) = (ops.deferred_error)(lu, ctx.nexus.id) {
            return Err(sense.into());
        }
    }
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
    let (data_in, pipe) = (&mut *data_in.buf, data_in.pipe.as_deref_mut());
    let mut request = Request { lu, ops, ctx, cdb: &cdb[..entry.usage.len()], data_out, data_in, pipe };
    match entry.run {
        Run::Now(handler) => handler(&mut request),
        Run::Io(handler) => handler(&mut request).await,
    }
    .map(|()| None)
}

/// REQUEST SENSE's operation code.
const REQUEST_SENSE: u8 = 0x03;

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

#[cfg(test)]
#[path = "forward_tests.rs"]
mod forward_tests;
