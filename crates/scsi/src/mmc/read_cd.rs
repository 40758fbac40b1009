//! READ CD (MMC-6 6.17) of the disc's one data track, as Linux (the CDROMREADMODE1 ioctl) and
//! Windows (raw reads of data sectors) ask for it: every sector is a Mode 1 sector whose user data
//! is 2048 bytes of the image.
//!
//! The image holds user data only, so the drive returns what it has and refuses what it would have
//! to invent: the SYNC pattern, the header, EDC/ECC, C2 error information and sub-channel data are
//! INVALID FIELD IN CDB. A Mode 1 sector has no sub-header (only Mode 2 sectors carry one), so
//! asking for it adds no bytes. An expected sector type other
//! than "any" or Mode 1 does not match the track: ILLEGAL MODE FOR THIS TRACK.

use super::read::read;
use crate::cdb::{be24, be32, BlockRange, Cdb};
use crate::lun::LogicalUnit;
use crate::opcodes::{io, Handler};
use crate::sense::{Asc, Sense};
use rtgt_backstore::BlockStore;

/// ILLEGAL MODE FOR THIS TRACK (SPC-4 annex D).
pub(crate) const ILLEGAL_MODE_FOR_THIS_TRACK: Asc = Asc(0x64, 0x00);

/// EXPECTED SECTOR TYPE (MMC-6 table 392).
const ANY_TYPE: u8 = 0b000;
const MODE_1: u8 = 0b010;

/// Byte 9, the main channel selection: SYNC (bit 7), HEADER CODES (bits 6-5), USER DATA (bit 4),
/// EDC & ECC (bit 3), C2 ERROR INFORMATION (bits 2-1).
const USER_DATA: u8 = 0x10;
/// HEADER CODES 10b: the sub-header only.
const SUB_HEADER_ONLY: u8 = 0x40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadCd {
    pub range: BlockRange,
    /// Whether the user data is asked for (otherwise nothing is transferred).
    pub user_data: bool,
}

impl Cdb for ReadCd {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        match c[1] >> 2 & 0x07 {
            ANY_TYPE | MODE_1 => {}
            // CD-DA, Mode 2 formless, Mode 2 Form 1 and Form 2: not what this track holds.
            1 | 3..=5 => return Err(Sense::illegal_request(ILLEGAL_MODE_FOR_THIS_TRACK)),
            _ => return Err(Sense::invalid_cdb_field(1, Some(4))),
        }
        let main = c[9];
        // C2 ERROR INFORMATION 11b is reserved; 01b and 10b ask for error flags, which are refused
        // below with the other fields the image does not hold.
        if main & !(USER_DATA | SUB_HEADER_ONLY) != 0 {
            let bit = (0..8).rev().find(|b| main & !(USER_DATA | SUB_HEADER_ONLY) & (1 << b) != 0);
            return Err(Sense::invalid_cdb_field(9, bit));
        }
        // SUB-CHANNEL DATA SELECTION: the image has no sub-channel.
        if c[10] & 0x07 != 0 {
            return Err(Sense::invalid_cdb_field(10, Some(2)));
        }
        Ok(ReadCd {
            range: BlockRange { lba: u64::from(be32(c, 2)), blocks: be24(c, 6) },
            user_data: main & USER_DATA != 0,
        })
    }
}

/// The sectors' user data; with nothing selected, the range is still checked (a drive seeks there)
/// and nothing is transferred (MMC-6 6.17.2.6).
async fn read_cd(lu: &LogicalUnit, c: ReadCd, data_in: &mut Vec<u8>) -> Result<(), Sense> {
    if c.user_data {
        return read(lu, c.range, 6, data_in).await;
    }
    let blocks = super::disc_blocks(super::loaded(lu)?.size());
    if c.range.lba.saturating_add(u64::from(c.range.blocks)) > blocks {
        return Err(Sense::lba_out_of_range());
    }
    data_in.clear();
    Ok(())
}

pub(crate) const READ_CD: Handler = io!(ReadCd, |req, c| read_cd(req.lu, c, req.data_in));
