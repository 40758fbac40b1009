//! Writes that must be atomic with respect to every other write to their blocks: COMPARE AND
//! WRITE (SBC-4 5.3), ORWRITE(16) (5.10) and WRITE ATOMIC(16) (5.48). Each holds the unit's
//! range lock for its blocks from the first read to the last write (plain WRITEs take the same
//! lock, see `rw::write`), so no other write lands between the compare and the write.

use super::rw::transfer_length_byte;
use super::{byte_range, check_transfer_length, check_writable, store_error, Access};
use crate::cdb::{self, be16, be64, BlockRange, Cdb, Decoded};
use crate::lun::LogicalUnit;
use crate::opcodes::{io, Handler};
use crate::sense::{Asc, Sense, SenseKey};
use rtgt_backstore::{BackstoreError, BlockStore};

/// MAXIMUM COMPARE AND WRITE LENGTH in the block limits VPD page (the field is one byte).
pub(crate) const MAX_COMPARE_AND_WRITE_BLOCKS: u8 = 255;
/// MAXIMUM ATOMIC TRANSFER LENGTH in the block limits VPD page; ATOMIC ALIGNMENT and ATOMIC
/// TRANSFER LENGTH GRANULARITY are 0 (none) and atomic boundaries are not supported.
pub(crate) const MAX_ATOMIC_TRANSFER_BLOCKS: u32 = 8192;

fn fua_for(lu: &LogicalUnit, fua: bool) -> bool {
    fua || !lu.mode_params().wce
}

pub(crate) async fn compare_and_write(
    lu: &LogicalUnit,
    range: BlockRange,
    fua: bool,
    data_out: &[u8],
) -> Result<(), Sense> {
    check_writable(lu)?;
    if range.blocks > u32::from(MAX_COMPARE_AND_WRITE_BLOCKS) {
        return Err(Sense::invalid_cdb_field(13, Some(7)));
    }
    let (offset, len) = byte_range(lu, range)?;
    let len = len as usize;
    // Verify data and write data, exactly: a data-out buffer of another size means the CDB and
    // the transfer disagree (NUMBER OF LOGICAL BLOCKS 0 with data sent included: an initiator
    // asking for 256 blocks wraps the one-byte field to 0), and half a compare must never be
    // written.
    if data_out.len() != 2 * len {
        return Err(Sense::invalid_cdb_field(13, Some(7)));
    }
    // SBC-4 5.3: zero blocks is not an error and transfers nothing.
    if len == 0 {
        return Ok(());
    }
    let (verify, write) = data_out.split_at(len);
    let store = lu.medium()?;
    let _held = lu.disk()?.range_locks().lock(range.lba, u64::from(range.blocks)).await;
    // The store compares and writes (atomically itself where the engine can, e.g. rbd); the range
    // lock keeps this daemon's other writers out either way. The write is made durable first
    // when FUA (or write-through caching) asks for it.
    match store.compare_and_write(offset, verify, write).await {
        // INFORMATION: offset of the first differing byte within the verify data (SBC-4 5.3).
        Err(BackstoreError::Miscompare { offset: at }) => {
            Err(Sense::new(SenseKey::Miscompare, Asc::MISCOMPARE_DURING_VERIFY).with_information(at))
        }
        Err(e) => Err(store_error(lu, &e, Access::Write)),
        Ok(()) if fua_for(lu, fua) => store.flush().await.map_err(|e| store_error(lu, &e, Access::Write)),
        Ok(()) => Ok(()),
    }
}

/// ORWRITE: each block becomes the bitwise OR of what is on the medium and the data-out. Only
/// the whole blocks that arrived are written (as WRITE does).
pub(crate) async fn orwrite(
    lu: &LogicalUnit,
    range: BlockRange,
    fua: bool,
    data_out: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), Sense> {
    check_writable(lu)?;
    let (offset, len) = byte_range(lu, range)?;
    check_transfer_length(lu, range.blocks, transfer_length_byte(16))?;
    let bs = lu.block_size() as usize;
    let n = (len as usize).min(data_out.len() / bs * bs);
    if n == 0 {
        return Ok(());
    }
    let store = lu.medium()?;
    let _held = lu.disk()?.range_locks().lock(range.lba, u64::from(range.blocks)).await;
    scratch.clear();
    scratch.resize(n, 0);
    let result = async {
        store.read_at(offset, scratch).await.map_err(|e| store_error(lu, &e, Access::Read))?;
        for (have, add) in scratch.iter_mut().zip(&data_out[..n]) {
            *have |= add;
        }
        store.write_at(offset, scratch, fua_for(lu, fua)).await.map_err(|e| store_error(lu, &e, Access::Write))
    }
    .await;
    scratch.clear();
    result
}

/// WRITE ATOMIC(16): all of the blocks or none. The data-out must carry the whole transfer; the
/// write is one store call under the range lock.
pub(crate) async fn write_atomic(
    lu: &LogicalUnit,
    range: BlockRange,
    fua: bool,
    boundary: u16,
    data_out: &[u8],
) -> Result<(), Sense> {
    check_writable(lu)?;
    if boundary != 0 {
        // MAXIMUM ATOMIC BOUNDARY SIZE is 0: boundaries are not supported.
        return Err(Sense::invalid_cdb_field(10, Some(7)));
    }
    let (offset, len) = byte_range(lu, range)?;
    if range.blocks > MAX_ATOMIC_TRANSFER_BLOCKS.min(lu.max_transfer_blocks()) {
        return Err(Sense::invalid_cdb_field(12, Some(7)));
    }
    if len == 0 {
        return Ok(());
    }
    let Some(data) = data_out.get(..len as usize) else {
        // Fewer bytes than the transfer length: nothing is written, so the command is not atomic
        // half-way.
        return Err(Sense::invalid_cdb_field(12, Some(7)));
    };
    let store = lu.medium()?;
    let _held = lu.disk()?.range_locks().lock(range.lba, u64::from(range.blocks)).await;
    store.write_at(offset, data, fua_for(lu, fua)).await.map_err(|e| store_error(lu, &e, Access::Write))
}

/// COMPARE AND WRITE (SBC-4 5.3): NUMBER OF LOGICAL BLOCKS is byte 13; the data-out is the
/// verify data followed by the write data, that many blocks of each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CompareAndWrite {
    pub range: BlockRange,
    pub fua: bool,
}

impl Cdb for CompareAndWrite {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(CompareAndWrite { range: BlockRange { lba: be64(c, 2), blocks: u32::from(c[13]) }, fua: cdb::fua(c) })
    }

    fn decoded(&self) -> Decoded {
        Decoded::blocks(2 * u64::from(self.range.blocks))
    }
}

/// ORWRITE(16) (SBC-4 5.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrWrite {
    pub range: BlockRange,
    pub fua: bool,
}

impl Cdb for OrWrite {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(OrWrite { range: cdb::range(c), fua: cdb::fua(c) })
    }

    fn decoded(&self) -> Decoded {
        Decoded::blocks(u64::from(self.range.blocks))
    }
}

/// WRITE ATOMIC(16) (SBC-4 5.48): ATOMIC BOUNDARY in bytes 10-11, TRANSFER LENGTH in 12-13.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteAtomic {
    pub range: BlockRange,
    pub fua: bool,
    pub boundary: u16,
}

impl Cdb for WriteAtomic {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let range = BlockRange { lba: be64(c, 2), blocks: u32::from(be16(c, 12)) };
        Ok(WriteAtomic { range, fua: cdb::fua(c), boundary: be16(c, 10) })
    }

    fn decoded(&self) -> Decoded {
        Decoded::blocks(u64::from(self.range.blocks))
    }
}

pub(crate) const COMPARE_AND_WRITE: Handler =
    io!(CompareAndWrite, |req, CompareAndWrite { range, fua }| compare_and_write(req.lu, range, fua, req.data_out));
pub(crate) const ORWRITE: Handler =
    io!(OrWrite, |req, OrWrite { range, fua }| orwrite(req.lu, range, fua, req.data_out, req.data_in));
pub(crate) const WRITE_ATOMIC: Handler = io!(WriteAtomic, |req, WriteAtomic { range, fua, boundary }| write_atomic(
    req.lu,
    range,
    fua,
    boundary,
    req.data_out
));

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    fn caw(lba: u64, blocks: u8) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = 0x89;
        c[2..10].copy_from_slice(&lba.to_be_bytes());
        c[13] = blocks;
        c
    }

    #[test]
    fn compare_and_write_swaps_only_on_match() {
        let t = TestLun::disk(1 << 20);
        let mut data = vec![0u8; 1024];
        data[512..].fill(0xa5);
        assert_good(&t.run_out(&caw(3, 1), &data).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 3, 0, 0, 1, 0]);
        assert_eq!(d, vec![0xa5; 512]);
        // Now the compare with zeros fails at byte 0, and nothing is written.
        let mut again = data.clone();
        again[512..].fill(0x11);
        let (r, _) = t.run_out(&caw(3, 1), &again);
        let s = r.sense.unwrap();
        assert_eq!(s[0], 0xf0, "VALID with INFORMATION");
        assert_eq!((s[2], s[12], s[13]), (0x0e, 0x1d, 0x00));
        assert_eq!(&s[3..7], &[0, 0, 0, 0]);
        // A difference at byte 700 of a two-block compare.
        let mut two = vec![0u8; 2048];
        two[..512].fill(0xa5);
        two[700] = 1;
        let (r, _) = t.run_out(&caw(3, 2), &two);
        assert_eq!(&r.sense.unwrap()[3..7], &700u32.to_be_bytes());
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 3, 0, 0, 1, 0]);
        assert_eq!(d, vec![0xa5; 512]);
    }

    #[test]
    fn compare_and_write_edges() {
        let t = TestLun::disk(1 << 20);
        assert_good(&t.run(&caw(0, 0)).0);
        // 256 blocks wrapped to 0 in the one-byte field, with 512 blocks of data sent.
        assert_sense(&t.run_out(&caw(0, 0), &vec![0; 512 * 512]).0, 0x05, 0x24, 0x00);
        assert_sense(&t.run_out(&caw(2048, 1), &[0; 1024]).0, 0x05, 0x21, 0x00);
        // Data-out of the wrong size: 4 blocks for a 1-block compare, 4 for a 3-block one.
        assert_sense(&t.run_out(&caw(0, 1), &[0; 2048]).0, 0x05, 0x24, 0x00);
        assert_sense(&t.run_out(&caw(0, 3), &[0; 2048]).0, 0x05, 0x24, 0x00);
        let mut c = caw(0, 1);
        c[11] = 1; // reserved
        assert_sense(&t.run_out(&c, &[0; 1024]).0, 0x05, 0x24, 0x00);
        t.lu.set_readonly(true);
        assert_sense(&t.run_out(&caw(0, 1), &[0; 1024]).0, 0x07, 0x27, 0x00);
    }

    #[test]
    fn orwrite_ors() {
        let t = TestLun::disk(1 << 20);
        assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 5, 0, 0, 1, 0], &[0x0f; 512]).0);
        let mut c = [0u8; 16];
        c[0] = 0x8b;
        c[9] = 5;
        c[13] = 1;
        assert_good(&t.run_out(&c, &[0xf0; 512]).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 5, 0, 0, 1, 0]);
        assert_eq!(d, vec![0xff; 512]);
        c[13] = 0;
        assert_good(&t.run(&c).0);
        c[2..10].copy_from_slice(&2048u64.to_be_bytes());
        c[13] = 1;
        assert_sense(&t.run_out(&c, &[0; 512]).0, 0x05, 0x21, 0x00);
        c[1] = 0x20; // ORPROTECT
        assert_sense(&t.run_out(&c, &[0; 512]).0, 0x05, 0x24, 0x00);
    }

    #[test]
    fn write_atomic() {
        let t = TestLun::disk(1 << 20);
        let mut c = [0u8; 16];
        c[0] = 0x9c;
        c[9] = 7;
        c[13] = 2;
        assert_good(&t.run_out(&c, &[0x3c; 1024]).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 7, 0, 0, 2, 0]);
        assert_eq!(d, vec![0x3c; 1024]);
        // Short data-out writes nothing.
        assert_sense(&t.run_out(&c, &[0; 512]).0, 0x05, 0x24, 0x00);
        c[11] = 1; // ATOMIC BOUNDARY
        assert_sense(&t.run_out(&c, &[0; 1024]).0, 0x05, 0x24, 0x00);
        c[11] = 0;
        c[2..10].copy_from_slice(&2047u64.to_be_bytes());
        assert_sense(&t.run_out(&c, &[0; 1024]).0, 0x05, 0x21, 0x00);
    }
}
