//! Moving on the tape: SPACE(6) (SSC-3 7.6: blocks, filemarks, end of data, both ways), REWIND
//! (7.5), LOCATE(10/16) (7.3, 7.12: to a logical object, a file or the end of data), READ POSITION
//! (7.7: short, long and extended forms), ERASE (7.1) and LOAD UNLOAD (7.2).
//!
//! Each runs on the drive's thread (`state::TapeState::run`), after the commands queued before it.
//! Every move first makes buffered writes durable, as a drive writes its buffer out before the tape
//! moves. There is one partition (0). REWIND, LOCATE, ERASE and LOAD UNLOAD with IMMED answer once
//! the buffered writes are durable and the command is checked against the drive (SSC-3: status
//! once the CDB is validated); the motion goes on after, the commands after it wait for it, and its
//! failure is a deferred error (`TapeState::perform`). SPACE(6) has no IMMED (SPACE(16) has).

use super::rw::check_writable;
use super::state::{flush, Drive, TapeState};
use super::NOT_READY_MEDIUM_NOT_PRESENT;
use super::{tape, tape_error, BEGINNING_OF_MEDIUM, END_OF_DATA, FILEMARK_DETECTED, MEDIUM_MAY_HAVE_CHANGED};
use crate::cdb::{be16, be24, be32, be64, Cdb};
use crate::failure::Failure;
use crate::lun::LogicalUnit;
use crate::opcodes::{io, Handler};
use crate::sense::{Asc, Sense, SenseKey};
use crate::spc::truncate;
use crate::target::Ctx;
use rtgt_backstore::tape::{Object, TapeImage};
use std::sync::Arc;

/// A loaded tape, its buffered writes made durable: ready to move.
fn ready_to_move(drive: &mut Drive) -> Result<(), Failure> {
    drive.check_ready()?;
    flush(drive).map_err(|e| tape_error(&e, true))?;
    Ok(())
}

/// Run `job` on the drive's thread (see `TapeState::run`).
async fn on_drive<T: Send + 'static>(
    lu: &Arc<LogicalUnit>,
    job: impl FnOnce(&LogicalUnit, &mut Drive) -> Result<T, Failure> + Send + 'static,
) -> Result<T, Failure> {
    tape(lu)?.run(lu, move |lu, _, drive| job(lu, drive)).await?
}

fn image(drive: &mut Drive) -> &mut TapeImage {
    drive.image.as_mut().expect("ready drive has a tape")
}

fn stopped(key: SenseKey, asc: Asc, stream: u8, left: u64) -> Failure {
    Sense::new(key, asc).with_stream(stream).with_information(left).into()
}

/// SPACE(6): CODE and the signed 24-bit COUNT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Space {
    pub code: u8,
    pub count: i32,
}

const SPACE_BLOCKS: u8 = 0;
const SPACE_FILEMARKS: u8 = 1;
const SPACE_END_OF_DATA: u8 = 3;

impl Cdb for Space {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let code = c[1] & 0x0f;
        if !matches!(code, SPACE_BLOCKS | SPACE_FILEMARKS | SPACE_END_OF_DATA) {
            // Sequential filemarks and setmarks are not supported.
            return Err(Sense::invalid_cdb_field(1, Some(3)));
        }
        // Sign-extend the 24-bit two's complement count.
        let count = ((be24(c, 2) << 8) as i32) >> 8;
        Ok(Space { code, count })
    }
}

fn space(drive: &mut Drive, c: Space) -> Result<(), Failure> {
    ready_to_move(drive)?;
    let image = image(drive);
    let err = |e| tape_error(&e, false);
    let total = u64::from(c.count.unsigned_abs());
    match c.code {
        SPACE_END_OF_DATA => {
            while image.forward().map_err(err)? != Object::EndOfData {}
            Ok(())
        }
        SPACE_BLOCKS if c.count > 0 => {
            for done in 0..total {
                match image.peek() {
                    Object::EndOfData => {
                        return Err(stopped(SenseKey::BlankCheck, END_OF_DATA, 0, total - done));
                    }
                    Object::Filemark => {
                        // Stopped past the filemark (on its end-of-medium side).
                        image.forward().map_err(err)?;
                        return Err(stopped(SenseKey::NoSense, FILEMARK_DETECTED, Sense::FILEMARK, total - done));
                    }
                    Object::Data(_) => {
                        image.forward().map_err(err)?;
                    }
                }
            }
            Ok(())
        }
        SPACE_BLOCKS => {
            for done in 0..total {
                match image.backward().map_err(err)? {
                    None => return Err(stopped(SenseKey::NoSense, BEGINNING_OF_MEDIUM, Sense::EOM, total - done)),
                    // Stopped before the filemark (on its beginning-of-medium side).
                    Some(Object::Filemark) => {
                        return Err(stopped(SenseKey::NoSense, FILEMARK_DETECTED, Sense::FILEMARK, total - done));
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        }
        _ if c.count > 0 => {
            let mut done = 0;
            while done < total {
                match image.forward().map_err(err)? {
                    Object::EndOfData => return Err(stopped(SenseKey::BlankCheck, END_OF_DATA, 0, total - done)),
                    Object::Filemark => done += 1,
                    Object::Data(_) => {}
                }
            }
            Ok(())
        }
        _ => {
            // Backward over filemarks: the position ends before the last one passed.
            let mut done = 0;
            while done < total {
                match image.backward().map_err(err)? {
                    None => return Err(stopped(SenseKey::NoSense, BEGINNING_OF_MEDIUM, Sense::EOM, total - done)),
                    Some(Object::Filemark) => done += 1,
                    Some(_) => {}
                }
            }
            Ok(())
        }
    }
}

/// A command that moves the tape, IMMED or not: on a ready drive, its buffered writes made
/// durable, `check` (what can be known before the tape moves: its failure is the command's
/// status even with IMMED), then `motion`.
async fn move_tape(
    lu: &Arc<LogicalUnit>,
    nexus: u64,
    immed: bool,
    check: impl FnOnce(&LogicalUnit, &mut Drive) -> Result<(), Failure> + Send + 'static,
    motion: impl FnOnce(&mut Drive) -> Result<(), Failure> + Send + 'static,
) -> Result<(), Failure> {
    tape(lu)?
        .perform(lu, nexus, immed, move |lu, _, drive| {
            ready_to_move(drive)?;
            check(lu, drive)?;
            Ok(((), Some(move |_: &LogicalUnit, _: &TapeState, drive: &mut Drive| motion(drive))))
        })
        .await
}

/// REWIND (IMMED) and ERASE (IMMED; LONG is accepted: either way the tape ends at the position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Immed {
    pub immed: bool,
}

impl Cdb for Immed {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        // ERASE's IMMED is bit 1 (bit 0 is LONG); REWIND's bit 0.
        let bit = if c[0] == 0x19 { 0x02 } else { 0x01 };
        Ok(Immed { immed: c[1] & bit != 0 })
    }
}

fn rewind(drive: &mut Drive) -> Result<(), Failure> {
    image(drive).rewind().map_err(|e| tape_error(&e, false).into())
}

/// Where LOCATE goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Destination {
    Object(u64),
    File(u64),
    EndOfData,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Locate {
    pub to: Destination,
    pub immed: bool,
}

impl Cdb for Locate {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let cp = c[1] & 0x02 != 0;
        let immed = c[1] & 0x01 != 0;
        let (to, partition_byte) = if c.len() == 10 {
            (Destination::Object(u64::from(be32(c, 3))), 8)
        } else {
            let to = match (c[1] >> 3) & 0x07 {
                0 => Destination::Object(be64(c, 4)),
                1 => Destination::File(be64(c, 4)),
                3 => Destination::EndOfData,
                _ => return Err(Sense::invalid_cdb_field(1, Some(5))),
            };
            (to, 3)
        };
        if cp && c[partition_byte] != 0 {
            // One partition only (SSC-3 7.3: a partition that does not exist).
            return Err(Sense::invalid_cdb_field(partition_byte as u16, Some(7)));
        }
        Ok(Locate { to, immed })
    }
}

fn locate(drive: &mut Drive, c: Locate) -> Result<(), Failure> {
    let image = image(drive);
    let err = |e| tape_error(&e, false);
    let past_end = || stopped(SenseKey::BlankCheck, END_OF_DATA, 0, 0);
    match c.to {
        Destination::EndOfData => while image.forward().map_err(err)? != Object::EndOfData {},
        Destination::Object(target) => {
            if target < image.object_id() {
                image.rewind().map_err(err)?;
            }
            while image.object_id() < target {
                if image.forward().map_err(err)? == Object::EndOfData {
                    return Err(past_end());
                }
            }
        }
        Destination::File(target) => {
            image.rewind().map_err(err)?;
            while image.file_number() < target {
                if image.forward().map_err(err)? == Object::EndOfData {
                    return Err(past_end());
                }
            }
        }
    }
    Ok(())
}

/// READ POSITION: the form (service action) and the allocation length (extended form only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadPosition {
    pub form: u8,
    pub alloc_len: u16,
}

const SHORT: u8 = 0x00;
const SHORT_VENDOR: u8 = 0x01;
const LONG: u8 = 0x06;
const EXTENDED: u8 = 0x08;

impl Cdb for ReadPosition {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let form = c[1] & 0x1f;
        if !matches!(form, SHORT | SHORT_VENDOR | LONG | EXTENDED) {
            return Err(Sense::invalid_cdb_field(1, Some(4)));
        }
        Ok(ReadPosition { form, alloc_len: be16(c, 7) })
    }
}

/// The position: nothing is ever held in a buffer (writes reach the file before GOOD), so the
/// first and last object locations are the same and the buffer counts are 0.
fn read_position(drive: &mut Drive, c: ReadPosition, out: &mut Vec<u8>) -> Result<(), Failure> {
    drive.check_ready()?;
    let image = image(drive);
    let object = image.object_id();
    let capacity = image.mam().max_capacity();
    let bop = if object == 0 { 0x80 } else { 0 };
    let eop = if image.end_after_write(0) > capacity - capacity / 16 { 0x40 } else { 0 };
    match c.form {
        SHORT | SHORT_VENDOR => {
            out.resize(20, 0);
            match u32::try_from(object) {
                Ok(id) => {
                    out[4..8].copy_from_slice(&id.to_be_bytes());
                    out[8..12].copy_from_slice(&id.to_be_bytes());
                    out[0] = bop | eop;
                }
                // Too far for the short form: LOLU, the location is not reported.
                Err(_) => out[0] = eop | 0x04,
            }
        }
        LONG => {
            out.resize(32, 0);
            out[0] = bop | eop;
            out[8..16].copy_from_slice(&object.to_be_bytes());
            out[16..24].copy_from_slice(&image.file_number().to_be_bytes());
        }
        _ => {
            out.resize(32, 0);
            out[0] = bop | eop;
            out[2..4].copy_from_slice(&28u16.to_be_bytes());
            out[8..16].copy_from_slice(&object.to_be_bytes());
            out[16..24].copy_from_slice(&object.to_be_bytes());
            truncate(out, usize::from(c.alloc_len));
        }
    }
    Ok(())
}

/// ERASE: the tape ends at the position.
fn erase(drive: &mut Drive) -> Result<(), Failure> {
    image(drive).erase().map_err(|e| tape_error(&e, true).into())
}

/// LOAD UNLOAD: LOAD, RETEN and EOT (HOLD is not supported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoadUnload {
    pub load: bool,
    pub eot: bool,
    pub immed: bool,
}

impl Cdb for LoadUnload {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let l = LoadUnload { load: c[4] & 0x01 != 0, eot: c[4] & 0x04 != 0, immed: c[1] & 0x01 != 0 };
        if l.load && l.eot {
            // SSC-3 7.2: EOT with LOAD is an error.
            return Err(Sense::invalid_cdb_field(4, Some(2)));
        }
        Ok(l)
    }
}

/// LOAD makes an unloaded tape ready at its beginning (the other nexuses hear of it as a medium
/// change); UNLOAD rewinds it and leaves it in the drive, not ready, unless removal is prevented.
/// With IMMED the tape, removal and buffered writes are checked before GOOD and the rewind and
/// the change of state follow (the medium change is announced with the GOOD).
async fn load_unload(lu: &Arc<LogicalUnit>, ctx: &Ctx<'_>, c: LoadUnload) -> Result<(), Failure> {
    let loaded = tape(lu)?
        .perform(lu, ctx.nexus.id, c.immed, move |_, state, drive| {
            if !c.load && state.removal_prevented() {
                return Err(Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED).into());
            }
            flush(drive).map_err(|e| tape_error(&e, true))?;
            if drive.image.is_none() {
                return Err(NOT_READY_MEDIUM_NOT_PRESENT.into());
            }
            let loads = c.load && !drive.ready;
            let motion = move |_: &LogicalUnit, state: &TapeState, drive: &mut Drive| -> Result<(), Failure> {
                image(drive).rewind().map_err(|e| tape_error(&e, false))?;
                drive.ready = c.load;
                state.publish(drive);
                Ok(())
            };
            Ok((loads, Some(motion)))
        })
        .await?;
    if loaded {
        ctx.target.unit_attention_others(ctx.nexus, ctx.lun, MEDIUM_MAY_HAVE_CHANGED);
    }
    Ok(())
}

pub(crate) const REWIND: Handler =
    io!(Immed, |req, c| move_tape(req.lu, req.ctx.nexus.id, c.immed, |_, _| Ok(()), rewind));
pub(crate) const ERASE: Handler = io!(Immed, |req, c| {
    let writable = |lu: &LogicalUnit, drive: &mut Drive| Ok(check_writable(lu, image(drive))?);
    move_tape(req.lu, req.ctx.nexus.id, c.immed, writable, erase)
});
pub(crate) const SPACE: Handler = io!(Space, |req, c| on_drive(req.lu, move |_, drive| space(drive, c)));
pub(crate) const LOCATE: Handler = io!(Locate, |req, c| {
    move_tape(req.lu, req.ctx.nexus.id, c.immed, |_, _| Ok(()), move |drive| locate(drive, c))
});
pub(crate) const READ_POSITION: Handler = io!(ReadPosition, |req, c| async move {
    let mut out = std::mem::take(req.data_in);
    let (result, out) = on_drive(req.lu, move |_, drive| Ok((read_position(drive, c, &mut out), out))).await?;
    *req.data_in = out;
    result
});
pub(crate) const LOAD_UNLOAD: Handler = io!(LoadUnload, |req, c| load_unload(req.lu, req.ctx, c));
