//! The drive's modes: the block descriptor of MODE SENSE/SELECT (SSC-3 8.3.1: density code and
//! block length, 0 for variable-block mode) and the header's WP and BUFFERED MODE, the data
//! compression (0Fh, 8.3.2) and device configuration (10h, 8.3.3) pages, READ BLOCK LIMITS (7.2)
//! and REPORT DENSITY SUPPORT (6.5).
//!
//! The shared MODE SENSE/SELECT knows a disk's block descriptor (a capacity and a fixed block
//! size); a tape's is its mode, so this type's rows wrap the shared commands: MODE SENSE splices
//! the tape's descriptor in after the header, MODE SELECT takes it (and the buffered mode) out
//! and hands the shared path the rest, applying the descriptor only when the pages were accepted.

use super::tape;
use crate::cdb::{be16, be24, Cdb};
use crate::failure::Failure;
use crate::lun::{LogicalUnit, ModeParams};
use crate::opcodes::{io, now, Handler};
use crate::sense::{Asc, Sense};
use crate::spc::mode::{self, ModePages, ModeSenseRequest, MAX_PAGE};
use crate::spc::mode_cdb::ModeSelect;
use crate::spc::truncate;
use crate::target::Ctx;
use rtgt_backstore::tape::MAX_BLOCK_LEN;
use std::sync::Arc;

/// Vendor page 0 (no page format): tgt offers it because initiators ask for it to get the header
/// and block descriptor alone.
const VENDOR: u8 = 0x00;
const DATA_COMPRESSION: u8 = 0x0f;
const DEVICE_CONFIGURATION: u8 = 0x10;

/// The density this drive writes: LTO-3 (Ultrium 3), as the HP and IBM drives of tgt's examples.
pub(crate) const DENSITY: u8 = 0x44;
/// MODE SELECT's "no change" density code.
const DENSITY_NO_CHANGE: u8 = 0x7f;

pub(crate) static MODE_PAGES: ModePages = ModePages {
    pages: &[VENDOR, DATA_COMPRESSION, DEVICE_CONFIGURATION],
    image,
    apply: |_, _, _| {},
    device_specific,
    block_descriptors: false,
};

fn image(_: &LogicalUnit, code: u8, _values: ModeParams, changeable: bool, p: &mut [u8; MAX_PAGE]) -> usize {
    match code {
        VENDOR => 2,
        DATA_COMPRESSION => {
            if !changeable {
                // DCE 0 and DCC 0: no compression; DDE 1: data is decompressed (there is none).
                p[3] = 0x80;
            }
            16
        }
        _ => {
            if !changeable {
                // EEG (the drive writes end of data) and SEW (buffered data is written at the
                // early warning); no data compression algorithm.
                p[10] = 0x18;
            }
            16
        }
    }
}

/// WP for a write-protected unit or tape; BUFFERED MODE 1 while writes are buffered.
fn device_specific(lu: &LogicalUnit) -> u8 {
    let Some(state) = lu.tape() else { return 0 };
    let wp = if lu.write_protected() || state.tape_protected() { 0x80 } else { 0 };
    wp | if state.buffered() { 0x10 } else { 0 }
}

/// The density code of the tape in the drive (0 without one).
fn medium_density(lu: &LogicalUnit) -> u8 {
    match lu.tape() {
        Some(state) if state.ready().is_ok() => match state.density() {
            0 => DENSITY,
            d => d,
        },
        _ => 0,
    }
}

fn mode_sense(lu: &LogicalUnit, req: ModeSenseRequest, out: &mut Vec<u8>) -> Result<(), Sense> {
    let state = tape(lu)?;
    let full = ModeSenseRequest { dbd: true, alloc_len: if req.ten { u16::MAX } else { 255 }, ..req };
    mode::mode_sense(lu, &MODE_PAGES, full, out)?;
    if !req.dbd {
        let header = if req.ten { 8 } else { 4 };
        // SSC-3 8.3.1: density, number of blocks (0: the rest of the tape), block length.
        let (density, len) = if req.pc == 1 { (0xff, 0x00ff_ffff) } else { (medium_density(lu), state.block_len()) };
        let mut descriptor = [density, 0, 0, 0, 0, 0, 0, 0];
        descriptor[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
        out.splice(header..header, descriptor);
        if req.ten {
            out[6..8].copy_from_slice(&8u16.to_be_bytes());
            let total = (out.len() - 2) as u16;
            out[0..2].copy_from_slice(&total.to_be_bytes());
        } else {
            out[3] = 8;
            out[0] = (out.len() - 1).min(255) as u8;
        }
    }
    truncate(out, usize::from(req.alloc_len));
    Ok(())
}

async fn mode_select(lu: &Arc<LogicalUnit>, ctx: &Ctx<'_>, c: ModeSelect, data_out: &[u8]) -> Result<(), Failure> {
    let state = tape(lu)?;
    let len = usize::from(c.param_len);
    let header = if c.ten { 8 } else { 4 };
    if len == 0 {
        return Ok(());
    }
    if data_out.len() < len || len < header {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into());
    }
    let data = &data_out[..len];
    let (dsp_at, bdl_at) = if c.ten { (3, 6) } else { (2, 3) };
    let bdl = if c.ten { usize::from(be16(data, 6)) } else { usize::from(data[3]) };
    // BUFFERED MODE 0 or 1 (bits 6-4); the speed and WP are not settable.
    let buffered = match (data[dsp_at] >> 4) & 0x07 {
        0 => false,
        1 => true,
        _ => return Err(Sense::invalid_param_field(dsp_at as u16, Some(6)).into()),
    };
    if !(bdl == 0 || bdl == 8) || header + bdl > len {
        return Err(Sense::invalid_param_field(bdl_at as u16, Some(7)).into());
    }
    let mut block_len = state.block_len();
    let mut density = state.density();
    if bdl == 8 {
        let d = &data[header..header + 8];
        match d[0] {
            DENSITY_NO_CHANGE => {}
            0 | DENSITY => density = d[0],
            _ => return Err(Sense::invalid_param_field(header as u16, Some(7)).into()),
        }
        block_len = be24(d, 5);
        if block_len > MAX_BLOCK_LEN {
            return Err(Sense::invalid_param_field(header as u16 + 5, Some(7)).into());
        }
    }
    // The pages, behind a header without the descriptor, go through the shared checks.
    let mut rest = data[..header].to_vec();
    rest[bdl_at] = 0;
    if c.ten {
        rest[bdl_at + 1] = 0;
    }
    rest[dsp_at] = 0;
    rest.extend_from_slice(&data[header + bdl..]);
    crate::spc::mode_select::mode_select(lu, ctx, &MODE_PAGES, c.ten, c.sp, rest.len() as u16, &rest).await?;
    let changed = block_len != state.block_len() || buffered != state.buffered() || density != state.density();
    state.set_block_len(block_len);
    state.set_density(density);
    state.set_buffered(buffered);
    if changed {
        ctx.target.unit_attention_others(ctx.nexus, ctx.lun, Asc::MODE_PARAMETERS_CHANGED);
    }
    Ok(())
}

/// READ BLOCK LIMITS: any block length from 1 byte to the largest a 24-bit transfer length says
/// (granularity 0), in either mode.
fn read_block_limits(out: &mut Vec<u8>) -> Result<(), Sense> {
    out.push(0);
    out.extend_from_slice(&MAX_BLOCK_LEN.to_be_bytes()[1..]);
    out.extend_from_slice(&1u16.to_be_bytes());
    Ok(())
}

/// REPORT DENSITY SUPPORT: MEDIA and the allocation length (medium type reports are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReportDensity {
    pub media: bool,
    pub alloc_len: u16,
}

impl Cdb for ReportDensity {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(ReportDensity { media: c[1] & 0x01 != 0, alloc_len: be16(c, 7) })
    }
}

/// One density descriptor (SSC-3 6.5.2): LTO-3, writable and the default; with MEDIA, the tape's
/// own capacity (its MAM's, in units of 10^6 bytes).
fn report_density(lu: &LogicalUnit, c: ReportDensity, out: &mut Vec<u8>) -> Result<(), Sense> {
    let capacity_mb =
        if c.media { u32::try_from(tape(lu)?.capacity()? / 1_000_000).unwrap_or(u32::MAX) } else { 400_000 };
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&[DENSITY, DENSITY, 0xa0, 0, 0]);
    // Bits per mm, media width (tenths of mm), tracks.
    out.extend_from_slice(&9638u32.to_be_bytes()[1..]);
    out.extend_from_slice(&127u16.to_be_bytes());
    out.extend_from_slice(&704u16.to_be_bytes());
    out.extend_from_slice(&capacity_mb.to_be_bytes());
    out.extend_from_slice(b"LTO-CVE U-316   Ultrium 3/16T       ");
    let available = (out.len() - 2) as u16;
    out[0..2].copy_from_slice(&available.to_be_bytes());
    truncate(out, usize::from(c.alloc_len));
    Ok(())
}

/// READ BLOCK LIMITS: no fields.
pub(crate) const READ_BLOCK_LIMITS: Handler =
    now!(crate::cdb::NoFields, |req, crate::cdb::NoFields| read_block_limits(req.data_in));
pub(crate) const REPORT_DENSITY_SUPPORT: Handler = now!(ReportDensity, |req, c| report_density(req.lu, c, req.data_in));
pub(crate) const MODE_SENSE: Handler = now!(ModeSenseRequest, |req, c| mode_sense(req.lu, c, req.data_in));
pub(crate) const MODE_SELECT: Handler = io!(ModeSelect, |req, c| mode_select(req.lu, req.ctx, c, req.data_out));
