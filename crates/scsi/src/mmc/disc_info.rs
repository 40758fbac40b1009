//! What the drive says of the disc's layout: one complete session holding one data track that
//! starts at LBA 0 and runs to the end of the image. READ TOC/PMA/ATIP (MMC-6 6.26) formats 0
//! (TOC) and 1 (session information), in LBA or MSF; READ DISC INFORMATION (6.22, standard disc
//! information); READ TRACK INFORMATION (6.27).

use super::{disc_blocks, loaded};
use crate::cdb::{be16, be32, Cdb};
use crate::lun::LogicalUnit;
use crate::opcodes::{now, Handler};
use crate::sense::Sense;
use crate::spc::truncate;
use rtgt_backstore::BlockStore;

/// ADR 1 (the Q sub-channel encodes the current position), CONTROL 4 (a data track, recorded
/// uninterrupted).
const ADR_CONTROL: u8 = 0x14;
const LEAD_OUT: u8 = 0xaa;

/// An address as READ TOC reports it: the LBA, or with MSF the minute, second and frame of the
/// LBA plus the 2-second (150-frame) pregap (MMC-6 4.2.3.6). Addresses beyond what MSF can
/// express (a DVD-sized image) saturate at 255:59:74.
pub(crate) fn address(lba: u64, msf: bool) -> [u8; 4] {
    if !msf {
        return u32::try_from(lba).unwrap_or(u32::MAX).to_be_bytes();
    }
    let frames = lba.saturating_add(150);
    let minutes = frames / (60 * 75);
    if minutes > 255 {
        return [0, 255, 59, 74];
    }
    [0, minutes as u8, (frames / 75 % 60) as u8, (frames % 75) as u8]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadToc {
    pub msf: bool,
    /// 0: TOC; 1: session information.
    pub format: u8,
    pub track: u8,
    pub alloc_len: u16,
}

impl Cdb for ReadToc {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let format = c[2] & 0x0f;
        if format > 1 {
            return Err(Sense::invalid_cdb_field(2, Some(3)));
        }
        let track = c[6];
        // Track 1 and the lead-out are the only tracks; session information ignores the field.
        if format == 0 && track > 1 && track != LEAD_OUT {
            return Err(Sense::invalid_cdb_field(6, Some(7)));
        }
        Ok(ReadToc { msf: c[1] & 0x02 != 0, format, track, alloc_len: be16(c, 7) })
    }
}

fn read_toc(lu: &LogicalUnit, c: ReadToc, out: &mut Vec<u8>) -> Result<(), Sense> {
    let blocks = disc_blocks(loaded(lu)?.size());
    // First and last track (format 0) or session (format 1) numbers.
    out.extend_from_slice(&[0, 0, 1, 1]);
    let mut descriptor = |track: u8, lba: u64| {
        out.extend_from_slice(&[0, ADR_CONTROL, track, 0]);
        out.extend_from_slice(&address(lba, c.msf));
    };
    if c.format == 1 {
        descriptor(1, 0);
    } else {
        if c.track <= 1 {
            descriptor(1, 0);
        }
        descriptor(LEAD_OUT, blocks);
    }
    // TOC DATA LENGTH: the bytes after the field itself.
    let len = (out.len() - 2) as u16;
    out[..2].copy_from_slice(&len.to_be_bytes());
    truncate(out, usize::from(c.alloc_len));
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadDiscInformation {
    pub alloc_len: u16,
}

impl Cdb for ReadDiscInformation {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        // DATA TYPE 000b, standard disc information, is the only one a read-only drive has.
        if c[1] & 0x07 != 0 {
            return Err(Sense::invalid_cdb_field(1, Some(2)));
        }
        Ok(ReadDiscInformation { alloc_len: be16(c, 7) })
    }
}

fn read_disc_information(lu: &LogicalUnit, alloc_len: u16, out: &mut Vec<u8>) -> Result<(), Sense> {
    loaded(lu)?;
    let mut d = [0u8; 34];
    d[1] = 32; // DISC INFORMATION LENGTH
    d[2] = 0x0e; // not erasable, last session complete, disc complete
    d[3] = 1; // first track on the disc
    d[4] = 1; // sessions
    d[5] = 1; // first track in the last session
    d[6] = 1; // last track in the last session
    d[7] = 0x20; // URU: unrestricted use
                 // LAST SESSION LEAD-IN START and LAST POSSIBLE LEAD-OUT START: none on a complete disc.
    d[16..24].fill(0xff);
    out.extend_from_slice(&d);
    truncate(out, usize::from(alloc_len));
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadTrackInformation {
    /// ADDRESS/NUMBER TYPE: 0 an LBA, 1 a track number, 2 a session number.
    pub kind: u8,
    pub number: u32,
    pub alloc_len: u16,
}

impl Cdb for ReadTrackInformation {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let kind = c[1] & 0x03;
        if kind == 3 {
            return Err(Sense::invalid_cdb_field(1, Some(1)));
        }
        Ok(ReadTrackInformation { kind, number: be32(c, 2), alloc_len: be16(c, 7) })
    }
}

fn read_track_information(lu: &LogicalUnit, c: ReadTrackInformation, out: &mut Vec<u8>) -> Result<(), Sense> {
    let blocks = disc_blocks(loaded(lu)?.size());
    let found = match c.kind {
        0 => u64::from(c.number) < blocks,
        _ => c.number == 1,
    };
    if !found {
        return Err(Sense::invalid_cdb_field(2, Some(7)));
    }
    let mut d = [0u8; 36];
    d[1] = 34; // DATA LENGTH
    d[2] = 1; // track number
    d[3] = 1; // session number
    d[5] = 0x04; // TRACK MODE: data, recorded uninterrupted
    d[6] = 0x01; // DATA MODE 1
    d[7] = 0x02; // LRA_V: LAST RECORDED ADDRESS is valid; NWA_V 0: nothing may be written
    let size = u32::try_from(blocks).unwrap_or(u32::MAX);
    // TRACK START ADDRESS 0; TRACK SIZE and LAST RECORDED ADDRESS from the image.
    d[24..28].copy_from_slice(&size.to_be_bytes());
    d[28..32].copy_from_slice(&size.saturating_sub(1).to_be_bytes());
    out.extend_from_slice(&d);
    truncate(out, usize::from(c.alloc_len));
    Ok(())
}

pub(crate) const READ_TOC: Handler = now!(ReadToc, |req, c| read_toc(req.lu, c, req.data_in));
pub(crate) const READ_DISC_INFORMATION: Handler = now!(
    ReadDiscInformation,
    |req, ReadDiscInformation { alloc_len }| read_disc_information(req.lu, alloc_len, req.data_in)
);
pub(crate) const READ_TRACK_INFORMATION: Handler =
    now!(ReadTrackInformation, |req, c| read_track_information(req.lu, c, req.data_in));
