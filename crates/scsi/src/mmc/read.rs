//! READ CAPACITY (MMC-6 6.23), READ(10) (6.19) and READ(12) (6.20) from the disc image, and the
//! writes a read-only drive refuses (DATA PROTECT, WRITE PROTECTED).

use super::{disc_blocks, loaded, BLOCK_SIZE};
use crate::cdb::{be16, be32, BlockRange, Cdb, Decoded};
use crate::lun::LogicalUnit;
use crate::opcodes::{io, now, Handler};
use crate::sense::{Asc, Sense, SenseKey};
use rtgt_backstore::BlockStore;

/// READ CAPACITY: the last LBA of the disc (its partial last block counted) and 2048.
fn read_capacity(lu: &LogicalUnit, out: &mut Vec<u8>) -> Result<(), Sense> {
    let blocks = disc_blocks(loaded(lu)?.size());
    let last = u32::try_from(blocks.saturating_sub(1)).unwrap_or(u32::MAX);
    out.extend_from_slice(&last.to_be_bytes());
    out.extend_from_slice(&BLOCK_SIZE.to_be_bytes());
    Ok(())
}

/// Read `range` of the disc. Bytes past the end of the image (inside its partial last block) read
/// as zeros; blocks past that are LOGICAL BLOCK ADDRESS OUT OF RANGE. A transfer longer than the
/// unit takes is refused pointing at `len_byte`, the first byte of the CDB's transfer length.
pub(crate) async fn read(
    lu: &LogicalUnit,
    range: BlockRange,
    len_byte: u16,
    data_in: &mut Vec<u8>,
) -> Result<(), Sense> {
    let disc = loaded(lu)?;
    let size = disc.size();
    let end = range.lba.checked_add(u64::from(range.blocks)).ok_or(Sense::lba_out_of_range())?;
    if end > disc_blocks(size) {
        return Err(Sense::lba_out_of_range());
    }
    if range.blocks > lu.max_transfer_blocks() {
        return Err(Sense::invalid_cdb_field(len_byte, Some(7)));
    }
    let offset = range.lba * u64::from(BLOCK_SIZE);
    // Bounded by the maximum transfer length just checked.
    let len = range.blocks as usize * BLOCK_SIZE as usize;
    data_in.clear();
    data_in.resize(len, 0);
    let stored = usize::try_from(size.saturating_sub(offset)).unwrap_or(usize::MAX).min(len);
    if stored > 0 {
        crate::sbc::read_fully(&disc, offset, &mut data_in[..stored])
            .await
            .map_err(|e| crate::sbc::store_error(lu, &e, crate::sbc::Access::Read))?;
    }
    Ok(())
}

/// READ(10) and READ(12): DPO and FUA are accepted and mean nothing for a disc that does not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Read {
    pub range: BlockRange,
}

impl Cdb for Read {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let lba = u64::from(be32(c, 2));
        let blocks = if c.len() == 12 { be32(c, 6) } else { u32::from(be16(c, 7)) };
        Ok(Read { range: BlockRange { lba, blocks } })
    }
}

/// WRITE(10) and WRITE(12): their data-out is logical blocks, which the transport accounts for
/// before the drive refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Write {
    pub blocks: u32,
}

impl Cdb for Write {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(Write { blocks: Read::decode(c)?.range.blocks })
    }

    fn decoded(&self) -> Decoded {
        Decoded::blocks(u64::from(self.blocks))
    }
}

/// READ CAPACITY: its LBA and PMI fields are obsolete in MMC-6 (the usage data keeps them zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadCapacity;

impl Cdb for ReadCapacity {
    fn decode(_: &[u8]) -> Result<Self, Sense> {
        Ok(ReadCapacity)
    }
}

// The transfer length's first byte: 7 in READ(10), 6 in READ(12).
pub(crate) const READ: Handler =
    io!(Read, |req, Read { range }| read(req.lu, range, if req.cdb.len() == 12 { 6 } else { 7 }, req.data_in));
pub(crate) const WRITE: Handler =
    now!(Write, |_, Write { .. }| Err::<(), Sense>(Sense::new(SenseKey::DataProtect, Asc::WRITE_PROTECTED)));
pub(crate) const READ_CAPACITY: Handler = now!(ReadCapacity, |req, ReadCapacity| read_capacity(req.lu, req.data_in));
