//! Typed CDB decoding: the bytes of a command descriptor block into a `Command`.
//!
//! Decoding happens once per command. The opcode table (`opcodes.rs`) has already checked the CDB's
//! length and that no bit outside the CDB usage data is set (reserved bits, unsupported fields such as
//! RDPROTECT), so the functions here only pull fields out and check their values.

use crate::sense::Sense;

/// An LBA range of a media-access command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRange {
    pub lba: u64,
    /// Number of logical blocks; 0 moves nothing.
    pub blocks: u32,
}

/// What the shared command path (`exec`) needs of any decoded command, whatever its own fields:
/// each command's typed fields (beside its handler) say it through `Cdb::decoded`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Decoded {
    pub data_out: DataOut,
}

/// The data-out a command calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum DataOut {
    #[default]
    None,
    /// This many logical blocks (written, compared or repeated): only usable in whole blocks
    /// (see `sbc::check_whole_blocks`).
    Blocks(u64),
    /// A parameter list of this many bytes.
    Params(u32),
}

impl Decoded {
    pub const NONE: Decoded = Decoded { data_out: DataOut::None };

    pub const fn blocks(blocks: u64) -> Decoded {
        Decoded { data_out: DataOut::Blocks(blocks) }
    }

    pub const fn params(len: u32) -> Decoded {
        Decoded { data_out: DataOut::Params(len) }
    }

    /// How many data-out bytes the command calls for, given the logical block size.
    pub fn data_out_len(&self, block_size: u32) -> u32 {
        match self.data_out {
            DataOut::None => 0,
            DataOut::Blocks(n) => n.saturating_mul(u64::from(block_size)).min(u64::from(u32::MAX)) as u32,
            DataOut::Params(len) => len,
        }
    }

    /// True when the data-out is logical blocks rather than a parameter list.
    pub fn data_out_is_blocks(&self) -> bool {
        matches!(self.data_out, DataOut::Blocks(_))
    }
}

/// A command's typed fields, decoded from a CDB the opcode table has already checked against the
/// row's usage data (length, no bit outside it): the decoder only pulls fields out and checks their
/// values. One type may serve several rows (READ(6/10/12/16)); it tells them apart by the CDB's
/// length or operation code.
pub(crate) trait Cdb: Sized {
    fn decode(cdb: &[u8]) -> Result<Self, Sense>;

    /// What the shared path needs: by default no data-out.
    fn decoded(&self) -> Decoded {
        Decoded::NONE
    }
}

/// A command whose CDB carries no field beyond its usage data (TEST UNIT READY, RESERVE, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NoFields;

impl Cdb for NoFields {
    fn decode(_: &[u8]) -> Result<Self, Sense> {
        Ok(NoFields)
    }
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn be24(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([0, b[at], b[at + 1], b[at + 2]])
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn range6(c: &[u8]) -> BlockRange {
    // SBC-3 5.10: 21-bit LBA; a TRANSFER LENGTH of 0 means 256 blocks.
    let lba = u64::from(be24(c, 1) & 0x1f_ffff);
    let blocks = if c[4] == 0 { 256 } else { u32::from(c[4]) };
    BlockRange { lba, blocks }
}

fn range10(c: &[u8]) -> BlockRange {
    BlockRange { lba: u64::from(be32(c, 2)), blocks: u32::from(be16(c, 7)) }
}

fn range12(c: &[u8]) -> BlockRange {
    BlockRange { lba: u64::from(be32(c, 2)), blocks: be32(c, 6) }
}

fn range16(c: &[u8]) -> BlockRange {
    BlockRange { lba: be64(c, 2), blocks: be32(c, 10) }
}

/// The LBA range of a READ, WRITE, VERIFY, WRITE AND VERIFY, SYNCHRONIZE CACHE, WRITE SAME or
/// PRE-FETCH CDB, by its length (the usage data fixed it): every one of these keeps the LBA and the
/// length at the same places for a given CDB length.
pub(crate) fn range(c: &[u8]) -> BlockRange {
    match c.len() {
        6 => range6(c),
        10 => range10(c),
        12 => range12(c),
        _ => range16(c),
    }
}

/// The FUA bit (byte 1, bit 3) of a CDB that has one; the 6-byte CDBs have none.
pub(crate) fn fua(c: &[u8]) -> bool {
    c.len() > 6 && c[1] & 0x08 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_by_cdb_length() {
        // READ(6): 21-bit LBA, TRANSFER LENGTH 0 means 256 blocks.
        assert_eq!(range(&[0x08, 0xff, 0xff, 0xff, 0x00, 0x00]), BlockRange { lba: 0x1f_ffff, blocks: 256 });
        let c = [0x88, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 1, 0, 0, 0];
        assert_eq!(range(&c), BlockRange { lba: 0x0102_0304_0506_0708, blocks: 256 });
        assert!(fua(&c));
        assert!(!fua(&[0x08, 0x08, 0, 0, 1, 0]));
    }

    #[test]
    fn data_out_lengths() {
        assert_eq!(Decoded::blocks(3).data_out_len(512), 1536);
        assert_eq!(Decoded::blocks(u64::from(u32::MAX)).data_out_len(4096), u32::MAX);
        assert_eq!(Decoded::params(24).data_out_len(4096), 24);
        assert_eq!(Decoded::NONE.data_out_len(512), 0);
        assert!(Decoded::blocks(0).data_out_is_blocks());
        assert!(!Decoded::params(8).data_out_is_blocks());
    }
}
