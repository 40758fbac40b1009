//! Block commands (SBC-3) for direct-access devices, and the checks they share: LBA ranges, write
//! protection and the mapping of backing-store errors to sense data.

pub(crate) mod capacity;
pub(crate) mod locked_write;
pub(crate) mod medium;
pub(crate) mod prefetch;
pub(crate) mod provisioning;
pub(crate) mod rw;
pub(crate) mod sanitize;
pub(crate) mod sync;

use crate::cdb::BlockRange;
use crate::lun::LogicalUnit;
use crate::sense::{Asc, Sense, SenseKey};
use rtgt_backstore::BackstoreError;

/// Byte offset and length of an LBA range, or LOGICAL BLOCK ADDRESS OUT OF RANGE (SBC-3 4.5) when
/// it reaches past the last block. A range of zero blocks may start right after the last block.
pub(crate) fn byte_range(lu: &LogicalUnit, range: BlockRange) -> Result<(u64, u64), Sense> {
    let end = range.lba.checked_add(u64::from(range.blocks)).ok_or(Sense::lba_out_of_range())?;
    if end > lu.capacity_blocks() {
        return Err(Sense::lba_out_of_range());
    }
    let bs = u64::from(lu.block_size());
    Ok((range.lba * bs, u64::from(range.blocks) * bs))
}

/// The TRANSFER LENGTH must not exceed the MAXIMUM TRANSFER LENGTH of the block limits VPD page
/// (SBC-3 6.5.3); the field pointer names the CDB's transfer length field.
pub(crate) fn check_transfer_length(lu: &LogicalUnit, blocks: u32, field_byte: u16) -> Result<(), Sense> {
    if blocks > lu.max_transfer_blocks() {
        return Err(Sense::invalid_cdb_field(field_byte, Some(7)));
    }
    Ok(())
}

/// DATA PROTECT, WRITE PROTECTED for a unit that is read-only or software write protected.
pub(crate) fn check_writable(lu: &LogicalUnit) -> Result<(), Sense> {
    if lu.write_protected() {
        return Err(Sense::new(SenseKey::DataProtect, Asc::WRITE_PROTECTED));
    }
    Ok(())
}

/// Which kind of medium access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// A backing-store failure as sense data: MEDIUM ERROR with the LBA in INFORMATION, or the thin
/// provisioning space allocation failure when the store ran out of space (SBC-3 4.7.3.6).
pub(crate) fn store_error(lu: &LogicalUnit, err: &BackstoreError, access: Access) -> Sense {
    tracing::warn!(error = %err, "backing store I/O failed");
    if err.is_no_space() {
        return Sense::new(SenseKey::DataProtect, Asc::SPACE_ALLOCATION_FAILED_WRITE_PROTECT);
    }
    let asc = match access {
        Access::Read => Asc::UNRECOVERED_READ_ERROR,
        Access::Write => Asc::WRITE_ERROR,
    };
    let sense = Sense::new(SenseKey::MediumError, asc);
    match err {
        BackstoreError::Io { offset, .. } | BackstoreError::OutOfRange { offset, .. } => {
            sense.with_information(offset / u64::from(lu.block_size()))
        }
        _ => sense,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::TestLun;
    use rtgt_backstore::ErrorKind;

    #[test]
    fn store_errors_become_sense() {
        let t = TestLun::disk(1 << 20);
        let eio = BackstoreError::io(ErrorKind::Read, 4096, std::io::Error::from_raw_os_error(5));
        let s = store_error(&t.lu, &eio, Access::Read);
        assert_eq!(
            s.encode(crate::SenseFormat::Fixed),
            [0xf0, 0, 0x03, 0, 0, 0, 8, 0x0a, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0]
        );
        let s = store_error(&t.lu, &eio, Access::Write);
        assert_eq!((s.key, s.asc), (SenseKey::MediumError, Asc(0x0c, 0x00)));
        // ENOSPC (28 on Linux): thin provisioning space exhausted.
        let full = BackstoreError::io(ErrorKind::Write, 0, std::io::Error::from_raw_os_error(28));
        let s = store_error(&t.lu, &full, Access::Write);
        assert_eq!(
            s.encode(crate::SenseFormat::Fixed),
            [0x70, 0, 0x07, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x27, 0x07, 0, 0, 0, 0]
        );
    }
}
