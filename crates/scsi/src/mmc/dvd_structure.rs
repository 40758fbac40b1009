//! READ DVD STRUCTURE (MMC-6 6.22, the command MMC-6 calls READ DISC STRUCTURE, media type 0 for
//! DVD): what a pressed single-layer DVD-ROM says of itself. Format 00h (physical format
//! information, one layer descriptor), 01h (copyright information: no protection, every region)
//! and FFh (the list of the structures there are). Other formats are not on such a disc: INVALID
//! FIELD IN CDB. A CD in the drive (the CD-ROM profile) and Blu-ray structures (media type 1) are
//! CANNOT READ MEDIUM - INCOMPATIBLE FORMAT, as a DVD drive answers for a disc of another kind.

use super::configuration::{profile, PROFILE_DVD_ROM};
use super::{disc_blocks, loaded};
use crate::cdb::{be16, Cdb};
use crate::lun::LogicalUnit;
use crate::opcodes::{now, Handler};
use crate::sense::{Asc, Sense};
use crate::spc::truncate;
use rtgt_backstore::BlockStore;

/// CANNOT READ MEDIUM - INCOMPATIBLE FORMAT (SPC-4 annex D).
pub(crate) const INCOMPATIBLE_FORMAT: Asc = Asc(0x30, 0x02);

const PHYSICAL: u8 = 0x00;
const COPYRIGHT: u8 = 0x01;
const LIST: u8 = 0xff;
/// A layer descriptor is 2048 bytes (MMC-6 6.22.3.2.1).
const LAYER_DESCRIPTOR_LEN: usize = 2048;
/// The first physical sector of a DVD-ROM's data area (030000h, ECMA-267).
const DATA_AREA_START: u32 = 0x0003_0000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadDvdStructure {
    /// MEDIA TYPE: 0 DVD and HD DVD, 1 BD.
    pub blu_ray: bool,
    pub format: u8,
    pub alloc_len: u16,
}

impl Cdb for ReadDvdStructure {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let blu_ray = match c[1] & 0x0f {
            0 => false,
            1 => true,
            _ => return Err(Sense::invalid_cdb_field(1, Some(3))),
        };
        let format = c[7];
        if !blu_ray && !matches!(format, PHYSICAL | COPYRIGHT | LIST) {
            return Err(Sense::invalid_cdb_field(7, Some(7)));
        }
        // One layer: layer 0 is the only one to describe (the field means nothing to the others).
        if format == PHYSICAL && c[6] != 0 {
            return Err(Sense::invalid_cdb_field(6, Some(7)));
        }
        Ok(ReadDvdStructure { blu_ray, format, alloc_len: be16(c, 8) })
    }
}

/// Header: the DATA LENGTH (bytes after the field) and two reserved bytes.
fn header(out: &mut Vec<u8>, body_len: usize) {
    // At most the 2048-byte layer descriptor plus two bytes: fits.
    out.extend_from_slice(&((body_len + 2) as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

fn read_dvd_structure(lu: &LogicalUnit, c: ReadDvdStructure, out: &mut Vec<u8>) -> Result<(), Sense> {
    let size = loaded(lu)?.size();
    if c.blu_ray || profile(size) != PROFILE_DVD_ROM {
        return Err(Sense::illegal_request(INCOMPATIBLE_FORMAT));
    }
    match c.format {
        PHYSICAL => {
            header(out, LAYER_DESCRIPTOR_LEN);
            let start = out.len();
            out.resize(start + LAYER_DESCRIPTOR_LEN, 0);
            let d = &mut out[start..];
            d[0] = 0x01; // DISK CATEGORY 0000b DVD-ROM, PART VERSION 1
            d[1] = 0x0f; // DISC SIZE 0000b 120 mm, MAXIMUM RATE 1111b not specified
            d[2] = 0x01; // one layer, parallel track path, LAYER TYPE 0001b embossed (read-only)
            d[3] = 0x00; // linear density 0.267 um/bit, track density 0.74 um/track
            let blocks = u32::try_from(disc_blocks(size)).unwrap_or(u32::MAX);
            // Starting and ending physical sector numbers of the data area (byte 4 and 8 are 00h).
            d[4..8].copy_from_slice(&DATA_AREA_START.to_be_bytes());
            d[8..12].copy_from_slice(&DATA_AREA_START.saturating_add(blocks.saturating_sub(1)).to_be_bytes());
            // END SECTOR NUMBER IN LAYER 0 (dual-layer opposite track path only) and BCA flag: 0.
        }
        COPYRIGHT => {
            header(out, 4);
            // COPYRIGHT PROTECTION SYSTEM TYPE 00h (none), REGION MANAGEMENT INFORMATION 00h (every
            // region may play it).
            out.extend_from_slice(&[0, 0, 0, 0]);
        }
        _ => {
            // One descriptor per structure: its format code, RDS (readable with this command),
            // and the length of what this command returns for it.
            let list: [(u8, u16); 3] = [(PHYSICAL, 4 + LAYER_DESCRIPTOR_LEN as u16), (COPYRIGHT, 8), (LIST, 4 + 3 * 4)];
            header(out, list.len() * 4);
            for (format, len) in list {
                out.extend_from_slice(&[format, 0x40]);
                out.extend_from_slice(&len.to_be_bytes());
            }
        }
    }
    truncate(out, usize::from(c.alloc_len));
    Ok(())
}

pub(crate) const READ_DVD_STRUCTURE: Handler =
    now!(ReadDvdStructure, |req, c| read_dvd_structure(req.lu, c, req.data_in));
