//! PRE-FETCH(10/16) (SBC-4 5.14, 5.15) and READ DEFECT DATA(10/12) (SBC-4 5.19, 5.20): commands a
//! virtual disk answers without touching its blocks.
//!
//! PRE-FETCH: the stores sit on the host's page cache, which reads ahead on its own; the range is
//! checked and GOOD returned, which the standard allows when the blocks are not (known to be)
//! held in a cache of the device server's own (CONDITION MET would promise they are).

use super::byte_range;
use crate::cdb::{self, be16, be32, BlockRange, Cdb};
use crate::lun::LogicalUnit;
use crate::opcodes::{now, Handler};
use crate::sense::Sense;
use crate::spc::truncate;

pub(crate) fn prefetch(lu: &LogicalUnit, lba: u64, blocks: u32) -> Result<(), Sense> {
    let capacity = lu.capacity_blocks();
    let blocks = if blocks == 0 {
        // PREFETCH LENGTH 0: from LBA to the end of the medium; an LBA past the end is still out of range.
        if lba > capacity {
            return Err(Sense::lba_out_of_range());
        }
        0
    } else {
        blocks
    };
    byte_range(lu, BlockRange { lba, blocks })?;
    Ok(())
}

/// DEFECT LIST FORMAT values SBC-4 defines (table 34); others are reserved.
const DEFINED_FORMATS: [u8; 6] = [0, 3, 4, 5, 6, 7];

/// A virtual disk has no defects: an empty list in the format asked for, with PLISTV/GLISTV
/// saying which lists were asked for (an empty list is a valid one).
pub(crate) fn read_defect_data(
    twelve: bool,
    plist: bool,
    glist: bool,
    format: u8,
    alloc_len: u32,
    out: &mut Vec<u8>,
) -> Result<(), Sense> {
    if !DEFINED_FORMATS.contains(&format) {
        return Err(Sense::invalid_cdb_field(if twelve { 1 } else { 2 }, Some(2)));
    }
    let flags = (u8::from(plist) << 4) | (u8::from(glist) << 3) | format;
    if twelve {
        // Header: reserved, flags, GENERATION CODE (2), DEFECT LIST LENGTH (4).
        out.extend_from_slice(&[0, flags, 0, 0, 0, 0, 0, 0]);
    } else {
        // Header: reserved, flags, DEFECT LIST LENGTH (2).
        out.extend_from_slice(&[0, flags, 0, 0]);
    }
    truncate(out, usize::try_from(alloc_len).unwrap_or(usize::MAX));
    Ok(())
}

/// PRE-FETCH(10/16) (SBC-4 5.14, 5.15): a PREFETCH LENGTH of 0 means to the end of the medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PreFetch {
    pub lba: u64,
    pub blocks: u32,
}

impl Cdb for PreFetch {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let BlockRange { lba, blocks } = cdb::range(c);
        Ok(PreFetch { lba, blocks })
    }
}

/// READ DEFECT DATA(10/12) (SBC-4 5.19, 5.20): the list fields are in byte 2 of the 10-byte CDB
/// and byte 1 of the 12-byte one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadDefectData {
    pub twelve: bool,
    pub plist: bool,
    pub glist: bool,
    pub format: u8,
    pub alloc_len: u32,
}

impl Cdb for ReadDefectData {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let twelve = c.len() == 12;
        let (b, alloc_len) = if twelve { (c[1], be32(c, 6)) } else { (c[2], u32::from(be16(c, 7))) };
        Ok(ReadDefectData { twelve, plist: b & 0x10 != 0, glist: b & 0x08 != 0, format: b & 0x07, alloc_len })
    }
}

pub(crate) const PRE_FETCH: Handler = now!(PreFetch, |req, PreFetch { lba, blocks }| prefetch(req.lu, lba, blocks));
pub(crate) const READ_DEFECT_DATA: Handler =
    now!(ReadDefectData, |req, ReadDefectData { twelve, plist, glist, format, alloc_len }| read_defect_data(
        twelve,
        plist,
        glist,
        format,
        alloc_len,
        req.data_in
    ));

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    #[test]
    fn prefetch_ranges() {
        let t = TestLun::disk(1 << 20); // 2048 blocks
        assert_good(&t.run(&[0x34, 0, 0, 0, 0, 0, 0, 0, 1, 0]).0);
        assert_good(&t.run(&[0x34, 0x02, 0, 0, 0x07, 0xff, 0, 0, 1, 0]).0);
        // Zero blocks: to the end, even at the end.
        assert_good(&t.run(&[0x34, 0, 0, 0, 0x08, 0x00, 0, 0, 0, 0]).0);
        assert_sense(&t.run(&[0x34, 0, 0, 0, 0x08, 0x01, 0, 0, 0, 0]).0, 0x05, 0x21, 0x00);
        assert_sense(&t.run(&[0x34, 0, 0, 0, 0x07, 0xff, 0, 0, 2, 0]).0, 0x05, 0x21, 0x00);
        let mut c16 = [0u8; 16];
        c16[0] = 0x90;
        c16[2..10].copy_from_slice(&u64::MAX.to_be_bytes());
        c16[13] = 1;
        assert_sense(&t.run(&c16).0, 0x05, 0x21, 0x00);
        c16[2..10].copy_from_slice(&0u64.to_be_bytes());
        assert_good(&t.run(&c16).0);
        // Reserved bit in byte 1.
        assert_sense(&t.run(&[0x34, 0x01, 0, 0, 0, 0, 0, 0, 1, 0]).0, 0x05, 0x24, 0x00);
    }

    #[test]
    fn defect_data_is_empty() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&[0x37, 0, 0x18 | 5, 0, 0, 0, 0, 0, 0xff, 0]);
        assert_good(&r);
        assert_eq!(d, [0, 0x1d, 0, 0]);
        let (r, d) = t.run(&[0xb7, 0x08 | 4, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0]);
        assert_good(&r);
        assert_eq!(d, [0, 0x0c, 0, 0, 0, 0, 0, 0]);
        // Truncated to the allocation length; reserved format 1 refused.
        let (_, d) = t.run(&[0x37, 0, 0, 0, 0, 0, 0, 0, 2, 0]);
        assert_eq!(d.len(), 2);
        assert_sense(&t.run(&[0x37, 0, 1, 0, 0, 0, 0, 0, 4, 0]).0, 0x05, 0x24, 0x00);
    }
}
