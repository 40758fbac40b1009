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

/// A decoded command. Field names follow SPC-4 / SBC-3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    TestUnitReady,
    Inquiry {
        evpd: bool,
        page_code: u8,
        alloc_len: u16,
    },
    RequestSense {
        desc: bool,
        alloc_len: u8,
    },
    ReportLuns {
        select_report: u8,
        alloc_len: u32,
    },
    ModeSense {
        ten: bool,
        dbd: bool,
        llbaa: bool,
        pc: u8,
        page_code: u8,
        subpage: u8,
        alloc_len: u16,
    },
    ModeSelect {
        ten: bool,
        pf: bool,
        sp: bool,
        param_len: u16,
    },
    ReportSupportedOpcodes {
        rctd: bool,
        options: u8,
        opcode: u8,
        service_action: u16,
        alloc_len: u32,
    },
    Reserve,
    Release,
    PersistentReserveIn {
        service_action: u8,
        alloc_len: u16,
    },
    PersistentReserveOut {
        service_action: u8,
        scope: u8,
        pr_type: u8,
        param_len: u32,
    },
    PreventAllowMediumRemoval {
        prevent: u8,
    },
    StartStopUnit {
        power_condition: u8,
        loej: bool,
        start: bool,
    },
    ReadCapacity10,
    ReadCapacity16 {
        alloc_len: u32,
    },
    Read {
        range: BlockRange,
        fua: bool,
    },
    Write {
        range: BlockRange,
        fua: bool,
    },
    /// BYTCHK: 0 = medium check only, 1 = compare with data-out (SBC-3 5.30).
    Verify {
        range: BlockRange,
        bytchk: u8,
    },
    WriteAndVerify {
        range: BlockRange,
        bytchk: bool,
    },
    SynchronizeCache {
        range: BlockRange,
    },
    Unmap {
        param_len: u16,
    },
    WriteSame {
        range: BlockRange,
        unmap: bool,
        ndob: bool,
    },
    GetLbaStatus {
        lba: u64,
        alloc_len: u32,
    },
    /// PRE-FETCH(10/16): a PREFETCH LENGTH of 0 means to the end of the medium.
    PreFetch {
        lba: u64,
        blocks: u32,
    },
    ReadDefectData {
        twelve: bool,
        plist: bool,
        glist: bool,
        format: u8,
        alloc_len: u32,
    },
    /// Data-out is the verify data followed by the write data, `blocks` of each.
    CompareAndWrite {
        range: BlockRange,
        fua: bool,
    },
    OrWrite {
        range: BlockRange,
        fua: bool,
    },
    WriteAtomic {
        range: BlockRange,
        fua: bool,
        boundary: u16,
    },
    Sanitize {
        service_action: u8,
        immed: bool,
        ause: bool,
        param_len: u16,
    },
    ExtendedCopy {
        param_len: u32,
    },
    ReceiveCopyResults {
        service_action: u8,
        list_id: u8,
        alloc_len: u32,
    },
    ReportSupportedTmf {
        repd: bool,
        alloc_len: u32,
    },
}

impl Command {
    /// How many data-out bytes this command calls for, given the logical block size.
    pub fn data_out_len(&self, block_size: u32) -> u32 {
        let blocks = |r: &BlockRange| (u64::from(r.blocks) * u64::from(block_size)).min(u64::from(u32::MAX)) as u32;
        match self {
            Command::Write { range, .. } | Command::WriteAndVerify { range, .. } => blocks(range),
            Command::Verify { range, bytchk: 1 } => blocks(range),
            Command::ModeSelect { param_len, .. } | Command::Unmap { param_len } => u32::from(*param_len),
            Command::WriteSame { ndob: false, .. } => block_size,
            Command::OrWrite { range, .. } | Command::WriteAtomic { range, .. } => blocks(range),
            Command::CompareAndWrite { range, .. } => blocks(range).saturating_mul(2),
            Command::Sanitize { param_len, .. } => u32::from(*param_len),
            Command::ExtendedCopy { param_len } => *param_len,
            Command::PersistentReserveOut { param_len, .. } => *param_len,
            _ => 0,
        }
    }

    /// True when the data-out is logical blocks (written, compared or repeated) rather than a
    /// parameter list: such data is only usable in whole blocks (see `sbc::check_whole_blocks`).
    pub fn data_out_is_blocks(&self) -> bool {
        matches!(
            self,
            Command::Write { .. }
                | Command::WriteAndVerify { .. }
                | Command::Verify { bytchk: 1, .. }
                | Command::WriteSame { ndob: false, .. }
                | Command::OrWrite { .. }
                | Command::WriteAtomic { .. }
                | Command::CompareAndWrite { .. }
        )
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

// The decoders below receive a CDB at least as long as their table entry says.

pub(crate) fn test_unit_ready(_: &[u8]) -> Result<Command, Sense> {
    Ok(Command::TestUnitReady)
}

/// SPC-4 6.6.1: a page code without EVPD is an error.
pub(crate) fn inquiry(c: &[u8]) -> Result<Command, Sense> {
    let evpd = c[1] & 0x01 != 0;
    if !evpd && c[2] != 0 {
        return Err(Sense::invalid_cdb_field(2, Some(7)));
    }
    Ok(Command::Inquiry { evpd, page_code: c[2], alloc_len: be16(c, 3) })
}

pub(crate) fn request_sense(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::RequestSense { desc: c[1] & 0x01 != 0, alloc_len: c[4] })
}

/// SPC-4 6.33.
pub(crate) fn report_luns(c: &[u8]) -> Result<Command, Sense> {
    let select_report = c[2];
    if select_report > 2 {
        return Err(Sense::invalid_cdb_field(2, Some(7)));
    }
    let alloc_len = be32(c, 6);
    // The allocation length shall be at least 16; less is an error (SPC-4 6.33).
    if alloc_len < 16 {
        return Err(Sense::invalid_cdb_field(6, Some(7)));
    }
    Ok(Command::ReportLuns { select_report, alloc_len })
}

pub(crate) fn mode_sense6(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::ModeSense {
        ten: false,
        dbd: c[1] & 0x08 != 0,
        llbaa: false,
        pc: c[2] >> 6,
        page_code: c[2] & 0x3f,
        subpage: c[3],
        alloc_len: u16::from(c[4]),
    })
}

pub(crate) fn mode_sense10(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::ModeSense {
        ten: true,
        dbd: c[1] & 0x08 != 0,
        llbaa: c[1] & 0x10 != 0,
        pc: c[2] >> 6,
        page_code: c[2] & 0x3f,
        subpage: c[3],
        alloc_len: be16(c, 7),
    })
}

pub(crate) fn mode_select6(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::ModeSelect { ten: false, pf: c[1] & 0x10 != 0, sp: c[1] & 0x01 != 0, param_len: u16::from(c[4]) })
}

pub(crate) fn mode_select10(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::ModeSelect { ten: true, pf: c[1] & 0x10 != 0, sp: c[1] & 0x01 != 0, param_len: be16(c, 7) })
}

/// SPC-4 6.35: MAINTENANCE IN / REPORT SUPPORTED OPERATION CODES.
pub(crate) fn report_supported_opcodes(c: &[u8]) -> Result<Command, Sense> {
    let options = c[2] & 0x07;
    if options > 3 {
        return Err(Sense::invalid_cdb_field(2, Some(2)));
    }
    Ok(Command::ReportSupportedOpcodes {
        rctd: c[2] & 0x80 != 0,
        options,
        opcode: c[3],
        service_action: be16(c, 4),
        alloc_len: be32(c, 6),
    })
}

pub(crate) fn reserve(_: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Reserve)
}

pub(crate) fn release(_: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Release)
}

pub(crate) fn prevent_allow(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::PreventAllowMediumRemoval { prevent: c[4] & 0x03 })
}

/// SBC-3 5.25.
pub(crate) fn start_stop_unit(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::StartStopUnit { power_condition: c[4] >> 4, loej: c[4] & 0x02 != 0, start: c[4] & 0x01 != 0 })
}

/// SBC-3 5.16: the PMI bit is obsolete in SBC-3 and LOGICAL BLOCK ADDRESS must be 0 without it.
pub(crate) fn read_capacity10(c: &[u8]) -> Result<Command, Sense> {
    if c[8] & 0x01 == 0 && be32(c, 2) != 0 {
        return Err(Sense::invalid_cdb_field(2, Some(7)));
    }
    Ok(Command::ReadCapacity10)
}

pub(crate) fn read_capacity16(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::ReadCapacity16 { alloc_len: be32(c, 10) })
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

pub(crate) fn read6(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Read { range: range6(c), fua: false })
}

pub(crate) fn read10(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Read { range: range10(c), fua: c[1] & 0x08 != 0 })
}

pub(crate) fn read12(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Read { range: range12(c), fua: c[1] & 0x08 != 0 })
}

pub(crate) fn read16(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Read { range: range16(c), fua: c[1] & 0x08 != 0 })
}

pub(crate) fn write6(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Write { range: range6(c), fua: false })
}

pub(crate) fn write10(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Write { range: range10(c), fua: c[1] & 0x08 != 0 })
}

pub(crate) fn write12(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Write { range: range12(c), fua: c[1] & 0x08 != 0 })
}

pub(crate) fn write16(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Write { range: range16(c), fua: c[1] & 0x08 != 0 })
}

/// SBC-3 5.30: BYTCHK 00b and 01b are supported; 10b is reserved, 11b (compare one block against
/// every block) is not offered in the usage data.
fn bytchk(c: &[u8]) -> Result<u8, Sense> {
    match (c[1] >> 1) & 0x03 {
        v @ (0 | 1) => Ok(v),
        _ => Err(Sense::invalid_cdb_field(1, Some(2))),
    }
}

pub(crate) fn verify10(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Verify { range: range10(c), bytchk: bytchk(c)? })
}

pub(crate) fn verify12(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Verify { range: range12(c), bytchk: bytchk(c)? })
}

pub(crate) fn verify16(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Verify { range: range16(c), bytchk: bytchk(c)? })
}

pub(crate) fn write_verify10(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::WriteAndVerify { range: range10(c), bytchk: bytchk(c)? == 1 })
}

pub(crate) fn write_verify12(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::WriteAndVerify { range: range12(c), bytchk: bytchk(c)? == 1 })
}

pub(crate) fn write_verify16(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::WriteAndVerify { range: range16(c), bytchk: bytchk(c)? == 1 })
}

pub(crate) fn sync_cache10(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::SynchronizeCache { range: range10(c) })
}

pub(crate) fn sync_cache16(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::SynchronizeCache { range: range16(c) })
}

/// SBC-3 5.28.
pub(crate) fn unmap(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Unmap { param_len: be16(c, 7) })
}

/// SBC-3 5.41/5.42.
pub(crate) fn write_same10(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::WriteSame { range: range10(c), unmap: c[1] & 0x08 != 0, ndob: false })
}

pub(crate) fn write_same16(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::WriteSame { range: range16(c), unmap: c[1] & 0x08 != 0, ndob: c[1] & 0x01 != 0 })
}

/// SBC-3 5.7.
pub(crate) fn get_lba_status(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::GetLbaStatus { lba: be64(c, 2), alloc_len: be32(c, 10) })
}

/// SBC-4 5.14/5.15.
pub(crate) fn prefetch10(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::PreFetch { lba: u64::from(be32(c, 2)), blocks: u32::from(be16(c, 7)) })
}

pub(crate) fn prefetch16(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::PreFetch { lba: be64(c, 2), blocks: be32(c, 10) })
}

/// SBC-4 5.19/5.20.
pub(crate) fn read_defect_data10(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::ReadDefectData {
        twelve: false,
        plist: c[2] & 0x10 != 0,
        glist: c[2] & 0x08 != 0,
        format: c[2] & 0x07,
        alloc_len: u32::from(be16(c, 7)),
    })
}

pub(crate) fn read_defect_data12(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::ReadDefectData {
        twelve: true,
        plist: c[1] & 0x10 != 0,
        glist: c[1] & 0x08 != 0,
        format: c[1] & 0x07,
        alloc_len: be32(c, 6),
    })
}

/// SBC-4 5.3: NUMBER OF LOGICAL BLOCKS is byte 13.
pub(crate) fn compare_and_write(c: &[u8]) -> Result<Command, Sense> {
    let range = BlockRange { lba: be64(c, 2), blocks: u32::from(c[13]) };
    Ok(Command::CompareAndWrite { range, fua: c[1] & 0x08 != 0 })
}

/// SBC-4 5.10.
pub(crate) fn orwrite16(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::OrWrite { range: range16(c), fua: c[1] & 0x08 != 0 })
}

/// SBC-4 5.48: ATOMIC BOUNDARY in bytes 10-11, TRANSFER LENGTH in 12-13.
pub(crate) fn write_atomic16(c: &[u8]) -> Result<Command, Sense> {
    let range = BlockRange { lba: be64(c, 2), blocks: u32::from(be16(c, 12)) };
    Ok(Command::WriteAtomic { range, fua: c[1] & 0x08 != 0, boundary: be16(c, 10) })
}

/// SBC-4 5.30.
pub(crate) fn sanitize(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::Sanitize {
        service_action: c[1] & 0x1f,
        immed: c[1] & 0x80 != 0,
        ause: c[1] & 0x20 != 0,
        param_len: be16(c, 7),
    })
}

/// SPC-4 6.4 EXTENDED COPY(LID1).
pub(crate) fn extended_copy(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::ExtendedCopy { param_len: be32(c, 10) })
}

/// SPC-4 6.25 RECEIVE COPY RESULTS.
pub(crate) fn receive_copy_results(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::ReceiveCopyResults { service_action: c[1] & 0x1f, list_id: c[2], alloc_len: be32(c, 10) })
}

/// SPC-4 6.37 REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS.
pub(crate) fn report_supported_tmf(c: &[u8]) -> Result<Command, Sense> {
    Ok(Command::ReportSupportedTmf { repd: c[2] & 0x80 != 0, alloc_len: be32(c, 6) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read6_zero_length_is_256() {
        let c = [0x08, 0x1f, 0xff, 0xff, 0x00, 0x00];
        assert_eq!(read6(&c).unwrap(), Command::Read { range: BlockRange { lba: 0x1f_ffff, blocks: 256 }, fua: false });
    }

    #[test]
    fn read16_fields() {
        let c = [0x88, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 1, 0, 0, 0];
        assert_eq!(
            read16(&c).unwrap(),
            Command::Read { range: BlockRange { lba: 0x0102_0304_0506_0708, blocks: 256 }, fua: true }
        );
    }

    #[test]
    fn inquiry_page_without_evpd() {
        assert_eq!(inquiry(&[0x12, 0, 0x80, 0, 0xff, 0]), Err(Sense::invalid_cdb_field(2, Some(7))));
    }

    #[test]
    fn verify_bytchk_reserved() {
        assert!(verify10(&[0x2f, 0x04, 0, 0, 0, 0, 0, 0, 1, 0]).is_err());
        assert_eq!(
            verify10(&[0x2f, 0x02, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap(),
            Command::Verify { range: BlockRange { lba: 0, blocks: 1 }, bytchk: 1 }
        );
    }

    #[test]
    fn data_out_lengths() {
        let r = BlockRange { lba: 0, blocks: 3 };
        assert_eq!(Command::Write { range: r, fua: false }.data_out_len(512), 1536);
        assert_eq!(Command::Verify { range: r, bytchk: 0 }.data_out_len(512), 0);
        assert_eq!(Command::WriteSame { range: r, unmap: false, ndob: false }.data_out_len(4096), 4096);
        assert_eq!(Command::WriteSame { range: r, unmap: true, ndob: true }.data_out_len(4096), 0);
        assert_eq!(Command::Read { range: r, fua: false }.data_out_len(512), 0);
    }
}
