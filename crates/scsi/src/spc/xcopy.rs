//! EXTENDED COPY(LID1) (SPC-4 6.4) and RECEIVE COPY RESULTS (SPC-4 6.25): block-to-block copies
//! between disks of the target that received the command, named by the designators of their
//! Device Identification pages (identification CSCD descriptors, type E4h). This is what VMware
//! VAAI's "full copy" sends.
//!
//! A copy acts for the I_T nexus that sent it and reaches no further than that nexus could with
//! its own commands: designators are looked up among the logical units of the nexus's own target
//! only (`Target::disk_by_designator`), so the target's ACL and CHAP guard every unit a copy
//! touches; a designator of another target's unit, predictable as the default ones are, names
//! nothing. Reservations held by other nexuses apply to the copy's reads and writes as to that
//! nexus's READ and WRITE.
//!
//! The copy runs before status is returned; its outcome is kept per I_T nexus and list
//! identifier for RECEIVE COPY RESULTS (COPY STATUS, FAILED SEGMENT DETAILS). Segment errors end
//! the command with COPY ABORTED. Block-to-block segment descriptors, in blocks (02h) and with
//! byte offsets (0Ah), are implemented; inline and held data are not offered.
//!
//! A copy moves up to MAXIMUM SEGMENT DESCRIPTOR COUNT segments of MAXIMUM SEGMENT LENGTH bytes
//! (4 GiB) in one command, through buffers of one chunk whatever its length, and can be aborted
//! between chunks (`copy_bytes`).

use super::copy_outcome::CopyOutcome;
use super::truncate;
use crate::cdb::{be16, be32, be64, Cdb, Decoded};
use crate::lun::LogicalUnit;
use crate::opcodes::{io, now, Handler};
use crate::sbc::{check_writable, store_error, Access};
use crate::sense::{Asc, Sense, SenseKey};
use crate::spc::persistent_reservation::Access as PrAccess;
use crate::target::Ctx;
use rtgt_backstore::{Backstore, BlockStore};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Limits reported by RECEIVE COPY RESULTS (OPERATING PARAMETERS) and the Third-party Copy page.
pub(crate) const MAX_TARGET_DESCRIPTORS: u16 = 8;
pub(crate) const MAX_SEGMENT_DESCRIPTORS: u16 = 64;
/// Room for the most target descriptors and the most segment descriptors of the longest type.
pub(crate) const MAX_DESCRIPTOR_LIST_LENGTH: u32 = 8 * 32 + 64 * 32;
/// Largest segment in bytes.
pub(crate) const MAX_SEGMENT_BYTES: u32 = 64 << 20;
const HEADER: usize = 16;
const TARGET_DESCRIPTOR: usize = 32;
/// Identification descriptor CSCD descriptor.
pub(crate) const IDENTIFICATION_DESCRIPTOR: u8 = 0xe4;
/// Block device to block device segment descriptor.
pub(crate) const BLOCK_TO_BLOCK: u8 = 0x02;
/// Block device with offset to block device with offset segment descriptor.
pub(crate) const BLOCK_TO_BLOCK_OFFSET: u8 = 0x0a;
/// The segment and CSCD descriptor types this copy manager implements, segments first.
const IMPLEMENTED_DESCRIPTORS: [u8; 3] = [BLOCK_TO_BLOCK, BLOCK_TO_BLOCK_OFFSET, IDENTIFICATION_DESCRIPTOR];
/// Bytes moved per read/write pair.
const CHUNK: usize = 1 << 20;

const TOO_MANY_TARGET_DESCRIPTORS: Asc = Asc(0x26, 0x06);
const UNSUPPORTED_TARGET_DESCRIPTOR_TYPE: Asc = Asc(0x26, 0x07);
const TOO_MANY_SEGMENT_DESCRIPTORS: Asc = Asc(0x26, 0x08);
const UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE: Asc = Asc(0x26, 0x09);
const COPY_TARGET_DEVICE_NOT_REACHABLE: Asc = Asc(0x0d, 0x02);

/// A target descriptor after parsing: the unit it names, or why it cannot be used.
enum Cscd {
    Unit(std::sync::Arc<LogicalUnit>),
    /// NUL set, or no disk of the issuing nexus's target carries the designator.
    Unreachable,
}

fn copy_aborted(asc: Asc) -> Sense {
    Sense::new(SenseKey::CopyAborted, asc)
}

fn list_length_error() -> Sense {
    Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR)
}

pub(crate) async fn extended_copy(
    lu: &LogicalUnit,
    ctx: &Ctx<'_>,
    param_len: u32,
    data_out: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), Sense> {
    let param_len = param_len as usize;
    // SPC-4 6.4.1: a zero length is not an error; nothing is copied.
    if param_len == 0 {
        return Ok(());
    }
    if param_len < HEADER || data_out.len() < param_len {
        return Err(list_length_error());
    }
    let list = &data_out[..param_len];
    let list_id = list[0];
    let targets_len = usize::from(be16(list, 2));
    let segments_len = be32(list, 8) as usize;
    let inline_len = be32(list, 12) as usize;
    if inline_len != 0 {
        // MAXIMUM INLINE DATA LENGTH is 0.
        return Err(Sense::invalid_param_field(12, Some(7)));
    }
    if targets_len + segments_len > MAX_DESCRIPTOR_LIST_LENGTH as usize {
        return Err(list_length_error());
    }
    if HEADER + targets_len + segments_len > param_len {
        return Err(list_length_error());
    }
    if targets_len % TARGET_DESCRIPTOR != 0 {
        return Err(Sense::invalid_param_field(2, Some(7)));
    }
    if targets_len / TARGET_DESCRIPTOR > usize::from(MAX_TARGET_DESCRIPTORS) {
        return Err(Sense::illegal_request(TOO_MANY_TARGET_DESCRIPTORS));
    }
    let mut cscds = Vec::with_capacity(targets_len / TARGET_DESCRIPTOR);
    for d in list[HEADER..HEADER + targets_len].chunks_exact(TARGET_DESCRIPTOR) {
        cscds.push(target_descriptor(ctx, d)?);
    }
    // Walk the segment descriptors once to check types and count before copying anything.
    let segments = &list[HEADER + targets_len..HEADER + targets_len + segments_len];
    let mut bounds = Vec::new();
    let mut at = 0;
    while at < segments.len() {
        let offset = HEADER + targets_len + at;
        if segments.len() - at < 4 {
            return Err(list_length_error());
        }
        let d = &segments[at..];
        let expected = match d[0] {
            BLOCK_TO_BLOCK => 28,
            BLOCK_TO_BLOCK_OFFSET => 32,
            _ => return Err(Sense::illegal_request(UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE)),
        };
        let len = 4 + usize::from(be16(d, 2));
        if len != expected {
            return Err(Sense::invalid_param_field(offset as u16 + 2, Some(7)));
        }
        if len > d.len() {
            return Err(list_length_error());
        }
        bounds.push(at..at + len);
        if bounds.len() > usize::from(MAX_SEGMENT_DESCRIPTORS) {
            return Err(Sense::illegal_request(TOO_MANY_SEGMENT_DESCRIPTORS));
        }
        at += len;
    }
    let mut outcome = CopyOutcome { ok: true, segments_processed: 0, transferred: 0, sense_key: 0, asc: (0, 0) };
    let mut result = Ok(());
    // Source blocks of a chunk whose source and destination offsets differ; empty otherwise.
    let mut bounce = Vec::new();
    for range in bounds {
        match segment(ctx, &segments[range], &cscds, scratch, &mut bounce).await {
            Ok(bytes) => {
                outcome.segments_processed += 1;
                outcome.transferred += bytes;
            }
            Err(sense) => {
                outcome.ok = false;
                outcome.sense_key = sense.key as u8;
                outcome.asc = (sense.asc.0, sense.asc.1);
                result = Err(sense);
                break;
            }
        }
    }
    scratch.clear();
    lu.disk()?.record_copy(ctx.nexus.id, list_id, outcome);
    result
}

/// SPC-4 6.4.5.2 identification descriptor CSCD descriptor.
fn target_descriptor(ctx: &Ctx<'_>, d: &[u8]) -> Result<Cscd, Sense> {
    if d[0] != IDENTIFICATION_DESCRIPTOR {
        return Err(Sense::illegal_request(UNSUPPORTED_TARGET_DESCRIPTOR_TYPE));
    }
    // SPC-4 made LU ID TYPE obsolete (the designator alone names the unit), so it is ignored, as
    // is the obsolete NUL bit's old meaning beyond "no unit here".
    let nul = d[1] & 0x20 != 0;
    let peripheral = d[1] & 0x1f;
    if peripheral != 0 {
        return Err(Sense::illegal_request(UNSUPPORTED_TARGET_DESCRIPTOR_TYPE));
    }
    if nul {
        return Ok(Cscd::Unreachable);
    }
    let designator_type = d[5] & 0x0f;
    let len = usize::from(d[7]).min(20);
    let designator = &d[8..8 + len];
    let unit = ctx.target.disk_by_designator(designator_type, designator);
    // DISK BLOCK LENGTH (bytes 29-31) must match the unit's when given.
    let block_len = u32::from_be_bytes([0, d[29], d[30], d[31]]);
    match unit {
        Some(u) if block_len == 0 || block_len == u.block_size() => Ok(Cscd::Unit(u)),
        _ => Ok(Cscd::Unreachable),
    }
}

/// One segment (SPC-4 6.4.6.5 block device to block device, 6.4.6.12 the same with byte
/// offsets): checks its copy targets and ranges, then copies. Returns the bytes written.
async fn segment(
    ctx: &Ctx<'_>,
    d: &[u8],
    cscds: &[Cscd],
    scratch: &mut Vec<u8>,
    bounce: &mut Vec<u8>,
) -> Result<u64, Sense> {
    let unit = |index: u16| match cscds.get(usize::from(index)) {
        Some(Cscd::Unit(u)) => Ok(u.clone()),
        _ => Err(copy_aborted(COPY_TARGET_DEVICE_NOT_REACHABLE)),
    };
    let src = unit(be16(d, 4))?;
    let dst = unit(be16(d, 6))?;
    check_reservations(ctx, &src, PrAccess::Read)?;
    check_reservations(ctx, &dst, PrAccess::Write)?;
    let (sbs, dbs) = (u64::from(src.block_size()), u64::from(dst.block_size()));
    let (src_lba, dst_lba) = (be64(d, 12), be64(d, 20));
    let (bytes, src_offset, dst_offset) = if d[0] == BLOCK_TO_BLOCK {
        // NUMBER OF BLOCKS counts source blocks, or destination blocks with DC; either way the
        // bytes must fill whole blocks on both sides.
        let blocks = u64::from(be16(d, 10));
        let bytes = if d[1] & 0x02 != 0 { blocks * dbs } else { blocks * sbs };
        if bytes % sbs != 0 || bytes % dbs != 0 {
            return Err(copy_aborted(Asc::NO_ADDITIONAL_SENSE));
        }
        (bytes, 0, 0)
    } else {
        // The byte offsets are "into the first block": one past its end names no byte of it.
        let (src_offset, dst_offset) = (u64::from(be16(d, 28)), u64::from(be16(d, 30)));
        if src_offset >= sbs || dst_offset >= dbs {
            return Err(copy_aborted(Asc::INVALID_FIELD_IN_PARAMETER_LIST));
        }
        (u64::from(be32(d, 8)), src_offset, dst_offset)
    };
    if bytes > u64::from(MAX_SEGMENT_BYTES) {
        return Err(copy_aborted(Asc::NO_ADDITIONAL_SENSE));
    }
    // First byte of the segment on a unit, when the segment lies within its capacity. Checked
    // arithmetic: the LBAs are the initiator's, up to 2^64 - 1.
    let within = |u: &LogicalUnit, lba: u64, bs: u64, offset: u64| {
        let start = lba.checked_mul(bs)?.checked_add(offset)?;
        (start.checked_add(bytes)? <= u.capacity_blocks() * bs).then_some(start)
    };
    // Out of range on either side: the segment cannot be processed (COPY ABORTED, SPC-4 6.4.3.5).
    let (Some(src_at), Some(dst_at)) = (within(&src, src_lba, sbs, src_offset), within(&dst, dst_lba, dbs, dst_offset))
    else {
        return Err(copy_aborted(Asc::NO_ADDITIONAL_SENSE));
    };
    if bytes == 0 {
        return Ok(0);
    }
    check_writable(&dst).map_err(|_| copy_aborted(Asc::WRITE_PROTECTED))?;
    let src_store = src.medium().map_err(|_| copy_aborted(COPY_TARGET_DEVICE_NOT_REACHABLE))?;
    let dst_store = dst.medium().map_err(|_| copy_aborted(COPY_TARGET_DEVICE_NOT_REACHABLE))?;
    // Every destination block the segment touches, the partial first and last ones included:
    // their read-modify-write must not interleave with another write to them.
    let first = dst_at / dbs;
    let _held = dst.disk()?.range_locks().lock(first, (dst_at + bytes).div_ceil(dbs) - first).await;
    let src = Side { lu: &src, store: src_store, bs: sbs };
    let dst = Side { lu: &dst, store: dst_store, bs: dbs };
    copy_bytes(&src, src_at, &dst, dst_at, bytes, scratch, bounce).await?;
    Ok(bytes)
}

/// A copy target as the copy loop sees it.
struct Side<'a> {
    lu: &'a LogicalUnit,
    store: &'a Backstore,
    bs: u64,
}

impl Side<'_> {
    async fn read(&self, at: u64, buf: &mut [u8]) -> Result<(), Sense> {
        let failed = |e| copy_aborted(store_error(self.lu, &e, Access::Read).asc);
        self.store.read_at(at, buf).await.map_err(failed)
    }

    async fn write(&self, at: u64, buf: &[u8]) -> Result<(), Sense> {
        let failed = |e| copy_aborted(store_error(self.lu, &e, Access::Write).asc);
        self.store.write_at(at, buf, false).await.map_err(failed)
    }
}

/// Copy `bytes` from byte `src_at` of the source to byte `dst_at` of the destination, at most
/// a chunk of destination blocks at a time, so the memory used is `scratch` (one chunk) and,
/// when the two sides are not aligned alike, `bounce` (one chunk and two source blocks),
/// whatever the segment's length. Every store access is in whole blocks of its unit (a store
/// opened with O_DIRECT takes nothing else); a partial first or last destination block is read
/// first and written back whole, so its bytes outside the copy are kept (SPC-4 6.4.6.12).
///
/// Between chunks the copy yields to the executor: a transport aborts a task (ABORT TASK, a
/// reset, a lost session) by dropping its future, which can only happen while the future is
/// not being polled. Stores that answer at once (memory, page-cache files) would otherwise run
/// the whole copy, up to 64 segments of 64 MiB, in one poll. A drop between chunks leaves
/// the destination with the chunks written so far and releases the range lock.
async fn copy_bytes(
    src: &Side<'_>,
    src_at: u64,
    dst: &Side<'_>,
    dst_at: u64,
    bytes: u64,
    scratch: &mut Vec<u8>,
    bounce: &mut Vec<u8>,
) -> Result<(), Sense> {
    // A chunk is whole destination blocks; block sizes are powers of two.
    let span = (CHUNK as u64).max(dst.bs);
    let mut done = 0u64;
    while done < bytes {
        if done > 0 {
            YieldNow(false).await;
        }
        let pos = dst_at + done;
        let start = pos - pos % dst.bs;
        let end = (start + span).min(dst_at + bytes);
        let stop = end.div_ceil(dst.bs) * dst.bs;
        let (head, n) = ((pos - start) as usize, (end - pos) as usize);
        let (len, bs) = ((stop - start) as usize, dst.bs as usize);
        // Every byte of scratch[..len] is overwritten below (the partial blocks from the
        // destination, the rest from the source), so only growth is zero-filled: once a command.
        scratch.resize(len, 0);
        if head != 0 {
            dst.read(start, &mut scratch[..bs]).await?;
        }
        // The last block, unless it is the first one and was just read.
        if end != stop && (head == 0 || len > bs) {
            dst.read(stop - dst.bs, &mut scratch[len - bs..]).await?;
        }
        let s = src_at + done;
        let (s_start, s_stop) = (s - s % src.bs, (s + n as u64).div_ceil(src.bs) * src.bs);
        if s_start == s && s_stop == s + n as u64 {
            src.read(s, &mut scratch[head..head + n]).await?;
        } else {
            bounce.resize((s_stop - s_start) as usize, 0);
            src.read(s_start, bounce).await?;
            let skip = (s - s_start) as usize;
            scratch[head..head + n].copy_from_slice(&bounce[skip..skip + n]);
        }
        dst.write(start, scratch).await?;
        done += n as u64;
    }
    Ok(())
}

/// Pending once, then ready: hands the thread back to the executor, which polls again at once
/// unless the task was aborted meanwhile. The scsi crate knows no runtime, so tokio's
/// `yield_now` is not used.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// A copy reads its source and writes its destination for the nexus that sent it, so a
/// reservation another nexus holds on either applies as to that nexus's own READ and WRITE:
/// RESERVE(6/10) lets nothing through (SPC-2 5.5.1), a persistent reservation what the access
/// table allows (SPC-4 5.12.1, SBC-3 4.17). The unit the CDB addressed has passed the
/// dispatcher's check already (EXTENDED COPY counts as a write there); it is checked again here
/// for the access the segment makes of it. A copy target that refuses an access is an error
/// detected while segments are processed, which ends the copy with CHECK CONDITION and COPY
/// ABORTED (SPC-4 6.4.3.5), not with the RESERVATION CONFLICT status of a command addressed to
/// the reserved unit itself, and with the ASC given for every copy target this copy manager
/// cannot use. The initiator falls back to its own READ and WRITE, which then meet the
/// reservation as they should.
fn check_reservations(ctx: &Ctx<'_>, unit: &LogicalUnit, access: PrAccess) -> Result<(), Sense> {
    let reserved = unit.reservation_holder().is_some_and(|holder| holder != ctx.nexus.id);
    if reserved || !unit.persistent_reservations().allows(&ctx.nexus.initiator_port, access) {
        return Err(copy_aborted(COPY_TARGET_DEVICE_NOT_REACHABLE));
    }
    Ok(())
}

/// Service actions of RECEIVE COPY RESULTS.
const COPY_STATUS: u8 = 0x00;
const OPERATING_PARAMETERS: u8 = 0x03;
const FAILED_SEGMENT_DETAILS: u8 = 0x04;

pub(crate) fn receive_copy_results(
    lu: &LogicalUnit,
    ctx: &Ctx<'_>,
    service_action: u8,
    list_id: u8,
    alloc_len: u32,
    out: &mut Vec<u8>,
) -> Result<(), Sense> {
    match service_action {
        OPERATING_PARAMETERS => operating_parameters(out),
        COPY_STATUS | FAILED_SEGMENT_DETAILS => {
            // No copy with this list identifier from this nexus: LIST IDENTIFIER is invalid.
            let outcome = lu.disk()?.copy_result(ctx.nexus.id, list_id).ok_or(Sense::invalid_cdb_field(2, Some(7)))?;
            if service_action == COPY_STATUS {
                // SPC-4 6.25.3: COPY MANAGER STATUS 1 = completed without errors, 2 = with errors;
                // TRANSFER COUNT in KiB (units 1).
                let status = if outcome.ok { 0x01 } else { 0x02 };
                out.extend_from_slice(&8u32.to_be_bytes());
                out.push(status);
                out.extend_from_slice(&outcome.segments_processed.to_be_bytes());
                out.push(0x01);
                out.extend_from_slice(&u32::try_from(outcome.transferred / 1024).unwrap_or(u32::MAX).to_be_bytes());
            } else {
                // SPC-4 6.25.5: AVAILABLE DATA, 52 reserved bytes, COPY COMMAND STATUS (0 GOOD or
                // 2 CHECK CONDITION), SENSE DATA LENGTH and the sense data.
                let sense = if outcome.ok {
                    Vec::new()
                } else {
                    let mut s = vec![0x70, 0, outcome.sense_key, 0, 0, 0, 0, 10, 0, 0, 0, 0];
                    s.extend_from_slice(&[outcome.asc.0, outcome.asc.1, 0, 0, 0, 0]);
                    s
                };
                let available = 56 + sense.len() as u32 - 4;
                out.extend_from_slice(&available.to_be_bytes());
                out.resize(56, 0);
                out.push(if outcome.ok { 0x00 } else { 0x02 });
                out.push(0);
                out.extend_from_slice(&(sense.len() as u16).to_be_bytes());
                out.extend_from_slice(&sense);
            }
        }
        // The opcode table dispatches only the service actions above.
        _ => return Err(Sense::invalid_cdb_field(1, Some(4))),
    }
    truncate(out, usize::try_from(alloc_len).unwrap_or(usize::MAX));
    Ok(())
}

/// SPC-4 6.25.4 operating parameters.
fn operating_parameters(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0; 4]); // AVAILABLE DATA, filled in below
    out.extend_from_slice(&[0x01, 0, 0, 0]); // SNLID: list identifiers are per nexus
    out.extend_from_slice(&MAX_TARGET_DESCRIPTORS.to_be_bytes());
    out.extend_from_slice(&MAX_SEGMENT_DESCRIPTORS.to_be_bytes());
    out.extend_from_slice(&MAX_DESCRIPTOR_LIST_LENGTH.to_be_bytes());
    out.extend_from_slice(&MAX_SEGMENT_BYTES.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // MAXIMUM INLINE DATA LENGTH
    out.extend_from_slice(&[0; 4]); // HELD DATA LIMIT
    out.extend_from_slice(&[0; 4]); // MAXIMUM STREAM DEVICE TRANSFER SIZE
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&1u16.to_be_bytes()); // TOTAL CONCURRENT COPIES
    out.push(1); // MAXIMUM CONCURRENT COPIES
    out.push(9); // DATA SEGMENT GRANULARITY: 2^9 bytes
    out.extend_from_slice(&[0, 0, 0, 0, 0]);
    out.push(IMPLEMENTED_DESCRIPTORS.len() as u8); // IMPLEMENTED DESCRIPTOR LIST LENGTH
    out.extend_from_slice(&IMPLEMENTED_DESCRIPTORS);
    let available = (out.len() - 4) as u32;
    out[0..4].copy_from_slice(&available.to_be_bytes());
}

/// The Third-party Copy VPD page body (SPC-4 7.8.17): supported commands, parameter data,
/// supported descriptors and supported CSCD descriptor IDs, each padded to four bytes.
pub(crate) fn third_party_copy_page(out: &mut Vec<u8>) {
    let mut descriptor = |kind: u16, body: &[u8]| {
        let padded = body.len().div_ceil(4) * 4;
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&(padded as u16).to_be_bytes());
        out.extend_from_slice(body);
        out.resize(out.len() + padded - body.len(), 0);
    };
    // Supported commands: EXTENDED COPY (SA 00h) and RECEIVE COPY RESULTS (00h, 03h, 04h).
    let commands = [0x83, 1, 0x00, 0x84, 3, COPY_STATUS, OPERATING_PARAMETERS, FAILED_SEGMENT_DETAILS];
    let mut body = vec![commands.len() as u8];
    body.extend_from_slice(&commands);
    descriptor(0x0001, &body);
    // Parameter data (LID1).
    let mut body = vec![0u8; 4];
    body.extend_from_slice(&MAX_TARGET_DESCRIPTORS.to_be_bytes());
    body.extend_from_slice(&MAX_SEGMENT_DESCRIPTORS.to_be_bytes());
    body.extend_from_slice(&MAX_DESCRIPTOR_LIST_LENGTH.to_be_bytes());
    body.extend_from_slice(&[0; 4]); // MAXIMUM INLINE DATA LENGTH
    body.resize(28, 0);
    descriptor(0x0008, &body);
    // Supported descriptors.
    let mut body = vec![IMPLEMENTED_DESCRIPTORS.len() as u8];
    body.extend_from_slice(&IMPLEMENTED_DESCRIPTORS);
    descriptor(0x0004, &body);
    // Supported CSCD descriptor IDs: none beyond the descriptors in the list.
    descriptor(0x000c, &[0, 0]);
}

/// EXTENDED COPY(LID1)'s PARAMETER LIST LENGTH (SPC-4 6.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExtendedCopy {
    pub param_len: u32,
}

impl Cdb for ExtendedCopy {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(ExtendedCopy { param_len: be32(c, 10) })
    }

    fn decoded(&self) -> Decoded {
        Decoded::params(self.param_len)
    }
}

/// RECEIVE COPY RESULTS's fields (SPC-4 6.25).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReceiveCopyResults {
    pub service_action: u8,
    pub list_id: u8,
    pub alloc_len: u32,
}

impl Cdb for ReceiveCopyResults {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(ReceiveCopyResults { service_action: c[1] & 0x1f, list_id: c[2], alloc_len: be32(c, 10) })
    }
}

pub(crate) const EXTENDED_COPY: Handler = io!(ExtendedCopy, |req, ExtendedCopy { param_len }| extended_copy(
    req.lu,
    req.ctx,
    param_len,
    req.data_out,
    req.data_in
));
pub(crate) const RECEIVE_COPY_RESULTS: Handler =
    now!(ReceiveCopyResults, |req, ReceiveCopyResults { service_action, list_id, alloc_len }| receive_copy_results(
        req.lu,
        req.ctx,
        service_action,
        list_id,
        alloc_len,
        req.data_in
    ));

#[cfg(test)]
#[path = "xcopy_tests.rs"]
mod tests;
