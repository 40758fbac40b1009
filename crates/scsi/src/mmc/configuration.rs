//! GET CONFIGURATION (MMC-6 6.6): the feature header with the current profile, then the features
//! of a read-only drive (MMC-6 5.3): Profile List, Core, Morphing, Removable Medium, Random
//! Readable, CD Read and DVD Read. The profile is DVD-ROM for an image larger than a CD holds,
//! CD-ROM otherwise; with no readable disc there is no current profile and the medium-dependent
//! features are not current.

use super::{loaded, BLOCK_SIZE};
use crate::cdb::{be16, Cdb};
use crate::lun::LogicalUnit;
use crate::opcodes::{now, Handler};
use crate::sense::Sense;
use crate::spc::truncate;
use rtgt_backstore::BlockStore;

const PROFILE_CD_ROM: u16 = 0x0008;
pub(crate) const PROFILE_DVD_ROM: u16 = 0x0010;
/// The most an 80-minute CD-ROM holds: 360,000 sectors of 2048 bytes.
const CD_CAPACITY: u64 = 360_000 * BLOCK_SIZE as u64;

/// The current profile for a disc of `size` bytes.
pub(crate) fn profile(size: u64) -> u16 {
    if size > CD_CAPACITY {
        PROFILE_DVD_ROM
    } else {
        PROFILE_CD_ROM
    }
}

/// RT (MMC-6 6.6.2.2): which features to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rt {
    /// Every feature from the starting feature number.
    All,
    /// Those of them that are current.
    Current,
    /// Only the starting feature.
    One,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GetConfiguration {
    pub rt: Rt,
    pub start: u16,
    pub alloc_len: u16,
}

impl Cdb for GetConfiguration {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let rt = match c[1] & 0x03 {
            0 => Rt::All,
            1 => Rt::Current,
            2 => Rt::One,
            _ => return Err(Sense::invalid_cdb_field(1, Some(1))),
        };
        Ok(GetConfiguration { rt, start: be16(c, 2), alloc_len: be16(c, 7) })
    }
}

/// Append one feature descriptor: code, version, persistent and current bits, then `data`.
fn feature(out: &mut Vec<u8>, code: u16, version: u8, persistent: bool, current: bool, data: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    out.push(version << 2 | u8::from(persistent) << 1 | u8::from(current));
    out.push(data.len() as u8);
    out.extend_from_slice(data);
}

fn get_configuration(lu: &LogicalUnit, cdb: GetConfiguration, out: &mut Vec<u8>) {
    let current = loaded(lu).ok().map(|disc| profile(disc.size()));
    let has_disc = current.is_some();
    let is = |p| current == Some(p);
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&current.unwrap_or(0).to_be_bytes());
    let profiles = [
        PROFILE_DVD_ROM.to_be_bytes()[0],
        PROFILE_DVD_ROM.to_be_bytes()[1],
        u8::from(is(PROFILE_DVD_ROM)),
        0,
        PROFILE_CD_ROM.to_be_bytes()[0],
        PROFILE_CD_ROM.to_be_bytes()[1],
        u8::from(is(PROFILE_CD_ROM)),
        0,
    ];
    let blocking: u16 = if is(PROFILE_DVD_ROM) { 16 } else { 1 };
    let mut random_readable = [0u8; 8];
    random_readable[..4].copy_from_slice(&BLOCK_SIZE.to_be_bytes());
    random_readable[4..6].copy_from_slice(&blocking.to_be_bytes());
    // (code, version, persistent, current, data)
    let features: [(u16, u8, bool, bool, &[u8]); 7] = [
        (0x0000, 0, true, true, &profiles),
        // Core: physical interface SCSI family (1), DBE (GET EVENT STATUS NOTIFICATION reports the
        // device busy class, MMC-6 5.3.2).
        (0x0001, 2, true, true, &[0, 0, 0, 1, 0x01, 0, 0, 0]),
        // Morphing: OCEvent (GET EVENT STATUS NOTIFICATION reports the operational change class),
        // polled only (`tray`).
        (0x0002, 1, true, true, &[0x02, 0, 0, 0]),
        // Removable Medium: tray (001b), Load, Eject, Lock.
        (0x0003, 2, true, true, &[0x39, 0, 0, 0]),
        (0x0010, 0, false, has_disc, &random_readable),
        (0x001e, 2, false, is(PROFILE_CD_ROM), &[0, 0, 0, 0]),
        (0x001f, 1, false, is(PROFILE_DVD_ROM), &[0, 0, 0, 0]),
    ];
    for (code, version, persistent, current, data) in features {
        let wanted = match cdb.rt {
            Rt::All => code >= cdb.start,
            Rt::Current => code >= cdb.start && current,
            Rt::One => code == cdb.start,
        };
        if wanted {
            feature(out, code, version, persistent, current, data);
        }
    }
    // DATA LENGTH: the bytes after the field itself.
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    truncate(out, usize::from(cdb.alloc_len));
}

pub(crate) const GET_CONFIGURATION: Handler = now!(GetConfiguration, |req, c| {
    get_configuration(req.lu, c, req.data_in);
    Ok::<(), Sense>(())
});
