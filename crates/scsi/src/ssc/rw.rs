//! READ(6) (SSC-3 7.4), WRITE(6) (7.9), WRITE FILEMARKS(6) (7.10) and VERIFY(6) (7.8), in
//! variable-block mode (one block of TRANSFER LENGTH bytes) and fixed-block mode (TRANSFER LENGTH
//! blocks of the mode's block length).
//!
//! A read that meets a filemark, the end of data or a block of another length returns what it read
//! with CHECK CONDITION and the sense saying so (FILEMARK, BLANK CHECK / END-OF-DATA DETECTED,
//! ILI), the INFORMATION field holding the residue: bytes in variable mode (negative when the
//! block was longer than asked for), blocks in fixed mode (SSC-3 4.2.17).
//!
//! Writes end the tape where they are written. Near the end of the tape's capacity each write still
//! succeeds but reports the early warning (NO SENSE, EOM, END-OF-PARTITION/MEDIUM DETECTED); a
//! write that does not fit is refused with VOLUME OVERFLOW and nothing of it written.

use super::state::{flush, Drive, TapeState};
use super::WORM_OVERWRITE;
use super::{residue, tape, tape_error, CLEANING_CARTRIDGE, END_OF_DATA, END_OF_MEDIUM, FILEMARK_DETECTED};
use crate::cdb::{be24, Cdb, Decoded};
use crate::failure::Failure;
use crate::lun::{LogicalUnit, MAX_TRANSFER_BYTES};
use crate::opcodes::{io, Handler};
use crate::sense::{Asc, Sense, SenseKey};
use rtgt_backstore::tape::{MediumType, Object, TapeImage};
use std::sync::Arc;

/// READ(6), VERIFY(6) and WRITE(6): FIXED, SILI (READ only), IMMED (VERIFY only) and the 24-bit
/// TRANSFER LENGTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transfer {
    pub fixed: bool,
    pub sili: bool,
    pub immed: bool,
    pub length: u32,
    /// WRITE(6): the length is data-out. READ's is data-in, and VERIFY (BYTCMP 0) moves no data.
    pub write: bool,
}

impl Cdb for Transfer {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let t = Transfer {
            fixed: c[1] & 0x01 != 0,
            sili: c[0] == 0x08 && c[1] & 0x02 != 0,
            immed: c[0] == 0x13 && c[1] & 0x04 != 0,
            length: be24(c, 2),
            write: c[0] == 0x0a,
        };
        if t.fixed && t.sili {
            // SSC-3 7.4: SILI with FIXED is an error.
            return Err(Sense::invalid_cdb_field(1, Some(1)));
        }
        Ok(t)
    }

    fn decoded(&self) -> Decoded {
        match (self.write, self.fixed, self.length) {
            (false, _, _) => Decoded::NONE,
            // The fixed-mode length is the unit's block size (`LogicalUnit::block_size`).
            (true, true, n) => Decoded::blocks(u64::from(n)),
            (true, false, n) => Decoded::params(n),
        }
    }
}

/// The mode's block length for a FIXED command: refused in variable mode (SSC-3 7.4: FIXED set
/// while the block length is 0).
fn fixed_block_len(state: &TapeState) -> Result<u32, Sense> {
    match state.block_len() {
        0 => Err(Sense::invalid_cdb_field(1, Some(0))),
        len => Ok(len),
    }
}

/// The bytes a transfer moves: in fixed mode, its blocks of the mode's length (refused in
/// variable mode and beyond the largest transfer).
fn fixed_bytes(state: &TapeState, blocks: u32) -> Result<u32, Sense> {
    let len = fixed_block_len(state)?;
    len.checked_mul(blocks).filter(|&b| b <= MAX_TRANSFER_BYTES).ok_or(Sense::invalid_cdb_field(2, Some(7)))
}

/// A READ's or VERIFY's fixed-mode checks: a VERIFY moves no data, so only a READ is bounded by
/// the largest transfer.
fn check_fixed(state: &TapeState, t: Transfer, reads_data: bool) -> Result<(), Sense> {
    if reads_data {
        fixed_bytes(state, t.length).map(drop)
    } else {
        fixed_block_len(state).map(drop)
    }
}

fn object_sense(asc: Asc, key: SenseKey, stream: u8, info: u64) -> Failure {
    Failure::SenseWithData(Sense::new(key, asc).with_stream(stream).with_information(info))
}

/// Read (or with `out` None, verify) one block in variable mode.
fn read_variable(image: &mut TapeImage, t: Transfer, out: Option<&mut Vec<u8>>) -> Result<(), Failure> {
    let asked = t.length;
    match image.peek() {
        Object::EndOfData => Err(object_sense(END_OF_DATA, SenseKey::BlankCheck, 0, u64::from(asked))),
        Object::Filemark => {
            image.forward().map_err(|e| tape_error(&e, false))?;
            Err(object_sense(FILEMARK_DETECTED, SenseKey::NoSense, crate::Sense::FILEMARK, u64::from(asked)))
        }
        Object::Data(len) => {
            if let Some(out) = out {
                // Both bounded: `asked` is 24 bits, `len` was checked against the format's largest.
                out.resize(asked.min(len) as usize, 0);
                image.read_data(out).map_err(|e| tape_error(&e, false))?;
            }
            image.forward().map_err(|e| tape_error(&e, false))?;
            if len == asked || (len < asked && t.sili) {
                Ok(())
            } else {
                Err(object_sense(Asc::NO_ADDITIONAL_SENSE, SenseKey::NoSense, crate::Sense::ILI, residue(asked, len)))
            }
        }
    }
}

/// Read (or verify) `blocks` blocks of `block_len` bytes; the residue is in blocks.
fn read_fixed(
    image: &mut TapeImage,
    blocks: u32,
    block_len: u32,
    mut out: Option<&mut Vec<u8>>,
) -> Result<(), Failure> {
    for done in 0..blocks {
        let left = u64::from(blocks - done);
        match image.peek() {
            Object::EndOfData => return Err(object_sense(END_OF_DATA, SenseKey::BlankCheck, 0, left)),
            Object::Filemark => {
                image.forward().map_err(|e| tape_error(&e, false))?;
                return Err(object_sense(FILEMARK_DETECTED, SenseKey::NoSense, crate::Sense::FILEMARK, left));
            }
            Object::Data(len) if len != block_len => {
                image.forward().map_err(|e| tape_error(&e, false))?;
                return Err(object_sense(Asc::NO_ADDITIONAL_SENSE, SenseKey::NoSense, crate::Sense::ILI, left));
            }
            Object::Data(_) => {
                if let Some(out) = out.as_deref_mut() {
                    let at = out.len();
                    out.resize(at + block_len as usize, 0);
                    image.read_data(&mut out[at..]).map_err(|e| tape_error(&e, false))?;
                }
                image.forward().map_err(|e| tape_error(&e, false))?;
            }
        }
    }
    Ok(())
}

/// READ(6) on the drive's thread.
fn read(state: &TapeState, drive: &mut Drive, t: Transfer, out: &mut Vec<u8>) -> Result<(), Failure> {
    drive.check_ready()?;
    if t.length == 0 {
        // No data and no motion (SSC-3 7.4).
        return Ok(());
    }
    if t.fixed {
        check_fixed(state, t, true)?;
    }
    read_at(drive, t, state.block_len(), Some(out))
}

/// The motion of a READ or VERIFY whose CDB was checked, on a ready drive.
fn read_at(drive: &mut Drive, t: Transfer, block_len: u32, out: Option<&mut Vec<u8>>) -> Result<(), Failure> {
    flush(drive).map_err(|e| tape_error(&e, true))?;
    let image = drive.image.as_mut().expect("ready drive has a tape");
    if t.fixed {
        read_fixed(image, t.length, block_len, out)
    } else {
        read_variable(image, t, out)
    }
}

/// READ(6): the blocks read go to `data_in` (kept with a CHECK CONDITION that has data).
async fn read_data(lu: &Arc<LogicalUnit>, t: Transfer, data_in: &mut Vec<u8>) -> Result<(), Failure> {
    let mut buf = std::mem::take(data_in);
    let (result, buf) = tape(lu)?
        .run(lu, move |_, state, drive| {
            let result = read(state, drive, t, &mut buf);
            (result, buf)
        })
        .await?;
    *data_in = buf;
    result
}

/// VERIFY(6). With IMMED, GOOD as soon as the CDB is checked against the drive (SSC-3 7.11): the
/// verify goes on on the drive's thread, and what it meets (a filemark, the end of data, a block
/// of another length, a medium error) becomes the deferred error of the nexus that sent it.
async fn verify(lu: &Arc<LogicalUnit>, nexus: u64, t: Transfer) -> Result<(), Failure> {
    tape(lu)?
        .perform(lu, nexus, t.immed, move |_, state, drive| {
            drive.check_ready()?;
            if t.length == 0 {
                return Ok(((), None));
            }
            if t.fixed {
                check_fixed(state, t, false)?;
            }
            let block_len = state.block_len();
            Ok(((), Some(move |_: &LogicalUnit, _: &TapeState, drive: &mut Drive| read_at(drive, t, block_len, None))))
        })
        .await
}

/// Whether the tape may be written at the position: DATA PROTECT for a write-protected unit or
/// file, a cleaning cartridge, or a WORM tape anywhere but at its end of data.
pub(crate) fn check_writable(lu: &LogicalUnit, image: &TapeImage) -> Result<(), Sense> {
    if lu.write_protected() || !image.writable() {
        return Err(Sense::new(SenseKey::DataProtect, Asc::WRITE_PROTECTED));
    }
    match image.medium_type() {
        MediumType::Cleaning => Err(Sense::new(SenseKey::DataProtect, CLEANING_CARTRIDGE)),
        MediumType::Worm if image.peek() != Object::EndOfData => Err(Sense::new(SenseKey::DataProtect, WORM_OVERWRITE)),
        _ => Ok(()),
    }
}

/// Where writing stops: the tape's capacity, and the early warning a sixteenth of it before.
fn limits(image: &TapeImage) -> (u64, u64) {
    let capacity = image.mam().max_capacity();
    (capacity, capacity - capacity / 16)
}

/// Write `objects` (a block each; None is a filemark) at the position. Past the capacity the
/// rest is refused with VOLUME OVERFLOW, `unit` saying what the INFORMATION field counts.
fn append<'a>(
    lu: &LogicalUnit,
    drive: &mut Drive,
    buffered: bool,
    objects: impl ExactSizeIterator<Item = Option<&'a [u8]>>,
    residue_of_rest: impl Fn(usize) -> u64,
) -> Result<(), Failure> {
    let image = drive.image.as_mut().expect("ready drive has a tape");
    check_writable(lu, image)?;
    let (capacity, early_warning) = limits(image);
    let mut end = 0;
    for (i, object) in objects.enumerate() {
        let len = object.map_or(0, |b| b.len() as u32);
        end = image.end_after_write(len);
        if end > capacity {
            let sense = Sense::new(SenseKey::VolumeOverflow, END_OF_MEDIUM)
                .with_stream(Sense::EOM)
                .with_information(residue_of_rest(i));
            drive.dirty = true;
            return Err(sense.into());
        }
        let result = match object {
            Some(block) => image.write_block(block, !buffered),
            None => image.write_filemark(!buffered),
        };
        result.map_err(|e| tape_error(&e, true))?;
        drive.dirty |= buffered;
    }
    if end > early_warning {
        return Err(Sense::new(SenseKey::NoSense, END_OF_MEDIUM).with_stream(Sense::EOM).with_information(0).into());
    }
    Ok(())
}

fn write(lu: &LogicalUnit, state: &TapeState, drive: &mut Drive, t: Transfer, data: &[u8]) -> Result<(), Failure> {
    drive.check_ready()?;
    if t.length == 0 {
        return Ok(());
    }
    let buffered = state.buffered();
    if t.fixed {
        let len = fixed_bytes(state, t.length)? as usize;
        let block = state.block_len() as usize;
        // Whole blocks only (the shared path refused a data-out ending inside one).
        let data = &data[..len.min(data.len())];
        let blocks = data.chunks_exact(block);
        let total = t.length as usize;
        append(lu, drive, buffered, blocks.map(Some), |i| (total - i) as u64)
    } else {
        let len = t.length as usize;
        if data.len() < len {
            return Err(Sense::illegal_request(Asc::INVALID_FIELD_IN_INFORMATION_UNIT).into());
        }
        append(lu, drive, buffered, std::iter::once(Some(&data[..len])), |_| u64::from(t.length))
    }
}

/// WRITE(6): the data-out is copied for the drive's thread (the command may end, aborted, while
/// the write it started goes on there).
async fn write_data(lu: &Arc<LogicalUnit>, t: Transfer, data_out: &[u8]) -> Result<(), Failure> {
    let data = data_out.to_vec();
    tape(lu)?.run(lu, move |lu, state, drive| write(lu, state, drive, t, &data)).await?
}

/// WRITE FILEMARKS(6): IMMED and the count; setmarks (WSMK) are not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteFilemarks {
    pub immed: bool,
    pub count: u32,
}

impl Cdb for WriteFilemarks {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(WriteFilemarks { immed: c[1] & 0x01 != 0, count: be24(c, 2) })
    }
}

/// Write the filemarks, then (without IMMED) make everything written so far durable: the point
/// where backup software knows its file is on tape (SSC-3 7.10). A count of 0 only flushes. With
/// IMMED (buffered mode only) the command answers once it is checked and the marks are written
/// after, as buffered writes are, made durable by the next flush point; a failure to write them
/// (VOLUME OVERFLOW, a write error) is a deferred error. Their early warning is not: it is no
/// failure, and the next write reports it, as every write past the early warning does.
async fn write_filemarks(lu: &Arc<LogicalUnit>, nexus: u64, c: WriteFilemarks) -> Result<(), Failure> {
    tape(lu)?
        .perform(lu, nexus, c.immed, move |lu, state, drive| {
            drive.check_ready()?;
            if c.immed && !state.buffered() {
                // SSC-3 7.10: IMMED is valid only in buffered mode.
                return Err(Sense::invalid_cdb_field(1, Some(0)).into());
            }
            if c.count == 0 {
                if !c.immed {
                    flush(drive).map_err(|e| tape_error(&e, true))?;
                }
                return Ok(((), None));
            }
            check_writable(lu, drive.image.as_ref().expect("ready drive has a tape"))?;
            let write = move |lu: &LogicalUnit, _: &TapeState, drive: &mut Drive| {
                let count = c.count as usize;
                let result = append(lu, drive, true, (0..count).map(|_| None), |i| (count - i) as u64);
                if c.immed {
                    return result.or_else(drop_early_warning);
                }
                flush(drive).map_err(|e| tape_error(&e, true))?;
                result
            };
            Ok(((), Some(write)))
        })
        .await
}

/// An immediate operation's early warning (NO SENSE, END-OF-PARTITION/MEDIUM DETECTED) dropped;
/// any other failure kept.
fn drop_early_warning(failure: Failure) -> Result<(), Failure> {
    match failure {
        Failure::Sense(s) if s.key == SenseKey::NoSense && s.asc == END_OF_MEDIUM => Ok(()),
        other => Err(other),
    }
}

pub(crate) const READ6: Handler = io!(Transfer, |req, t| read_data(req.lu, t, req.data_in));
pub(crate) const VERIFY6: Handler = io!(Transfer, |req, t| verify(req.lu, req.ctx.nexus.id, t));
pub(crate) const WRITE6: Handler = io!(Transfer, |req, t| write_data(req.lu, t, req.data_out));
pub(crate) const WRITE_FILEMARKS: Handler = io!(WriteFilemarks, |req, c| write_filemarks(req.lu, req.ctx.nexus.id, c));
