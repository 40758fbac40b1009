//! Logical block provisioning (SBC-3 4.7): UNMAP (5.28), WRITE SAME(10/16) (5.41, 5.42) and
//! GET LBA STATUS (5.7). UNMAP and GET LBA STATUS exist only on thin-provisioned units; WRITE SAME
//! exists on all disks but its UNMAP bit needs thin provisioning.

use super::{byte_range, check_writable, store_error, Access};
use crate::cdb::{self, be16, be32, be64, BlockRange, Cdb, Decoded};
use crate::lun::LogicalUnit;
use crate::opcodes::{io, now, Handler};
use crate::sense::{Asc, Sense};
use crate::spc::truncate;
use crate::spc::vpd::{MAX_UNMAP_BLOCKS, MAX_UNMAP_DESCRIPTORS};
use rtgt_backstore::BlockStore;

/// Largest piece of a WRITE SAME pattern written at once.
const WRITE_SAME_CHUNK: usize = 1 << 20;

pub(crate) async fn unmap(lu: &LogicalUnit, param_len: u16, data_out: &[u8]) -> Result<(), Sense> {
    check_writable(lu)?;
    let param_len = usize::from(param_len);
    // SBC-3 5.28: a zero length is not an error; a list shorter than its header is.
    if param_len == 0 {
        return Ok(());
    }
    if param_len < 8 || data_out.len() < param_len {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR));
    }
    let list = &data_out[..param_len];
    let descriptors_len = usize::from(be16(list, 2)).min(param_len - 8) / 16 * 16;
    let descriptors = &list[8..8 + descriptors_len];
    if descriptors.len() / 16 > MAX_UNMAP_DESCRIPTORS as usize {
        return Err(Sense::invalid_param_field(2, Some(7)));
    }
    // Check every descriptor before deallocating anything.
    for (i, d) in descriptors.chunks_exact(16).enumerate() {
        let blocks = be32(d, 8);
        if blocks > MAX_UNMAP_BLOCKS {
            return Err(Sense::invalid_param_field((8 + i * 16 + 8) as u16, Some(7)));
        }
        byte_range(lu, BlockRange { lba: be64(d, 0), blocks })?;
    }
    let store = lu.medium()?;
    for d in descriptors.chunks_exact(16) {
        let (offset, len) = byte_range(lu, BlockRange { lba: be64(d, 0), blocks: be32(d, 8) })?;
        if len > 0 {
            let _held = lu.disk()?.range_locks().lock(be64(d, 0), u64::from(be32(d, 8))).await;
            store.unmap(offset, len).await.map_err(|e| store_error(lu, &e, Access::Write))?;
        }
    }
    Ok(())
}

/// WRITE SAME: one block of data-out (zeros with NDOB) repeated over the range, or deallocation
/// with the UNMAP bit (or for a zero block on a thin unit, whose unmapped blocks read as zeros).
/// `scratch` is the unused data-in buffer, reused for the repeated pattern.
pub(crate) async fn write_same(
    lu: &LogicalUnit,
    range: BlockRange,
    unmap: bool,
    ndob: bool,
    cdb_len: usize,
    data_out: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), Sense> {
    check_writable(lu)?;
    let thin = lu.config().thin_provisioning;
    if unmap && !thin {
        return Err(Sense::invalid_cdb_field(1, Some(3)));
    }
    let count_byte = if cdb_len == 16 { 10 } else { 7 };
    // Zero blocks means from the LBA to the end of the medium (SBC-4 5.49), which must itself be a
    // valid LBA; offered on thin units only (WSNZ in the block limits page).
    if range.blocks == 0 && !thin {
        return Err(Sense::invalid_cdb_field(count_byte, Some(7)));
    }
    let range = if range.blocks == 0 {
        let capacity = lu.capacity_blocks();
        if range.lba >= capacity {
            return Err(Sense::lba_out_of_range());
        }
        let to_end = u32::try_from(capacity - range.lba).unwrap_or(u32::MAX);
        BlockRange { lba: range.lba, blocks: to_end }
    } else {
        range
    };
    // MAXIMUM WRITE SAME LENGTH.
    if range.blocks > MAX_UNMAP_BLOCKS {
        return Err(Sense::invalid_cdb_field(count_byte, Some(7)));
    }
    let (offset, len) = byte_range(lu, range)?;
    let bs = lu.block_size() as usize;
    let block: &[u8] =
        if ndob { &[] } else { data_out.get(..bs).ok_or(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR))? };
    let zero = block.iter().all(|&b| b == 0);
    let store = lu.medium()?;
    let _held = lu.disk()?.range_locks().lock(range.lba, u64::from(range.blocks)).await;
    if thin && (unmap || zero) {
        return store.unmap(offset, len).await.map_err(|e| store_error(lu, &e, Access::Write));
    }
    let per_chunk = (WRITE_SAME_CHUNK / bs).max(1);
    let chunk_blocks = per_chunk.min(range.blocks as usize);
    scratch.clear();
    if zero {
        scratch.resize(chunk_blocks * bs, 0);
    } else {
        for _ in 0..chunk_blocks {
            scratch.extend_from_slice(block);
        }
    }
    let mut done = 0u64;
    let mut result = Ok(());
    while done < len {
        let n = (len - done).min(scratch.len() as u64) as usize;
        if let Err(e) = store.write_at(offset + done, &scratch[..n], false).await {
            result = Err(store_error(lu, &e, Access::Write));
            break;
        }
        done += n as u64;
    }
    scratch.clear();
    result
}

/// Most LBA status descriptors one GET LBA STATUS returns.
const MAX_LBA_STATUS_DESCRIPTORS: usize = 64;

/// GET LBA STATUS (SBC-4 5.7): mapped and deallocated extents from the store's allocation map
/// (SEEK_DATA/SEEK_HOLE on files), starting at `lba`, as many descriptors as the allocation
/// length holds. A block is mapped when any byte of it is allocated. Stores without a map report
/// everything mapped.
pub(crate) fn get_lba_status(lu: &LogicalUnit, lba: u64, alloc_len: u32, out: &mut Vec<u8>) -> Result<(), Sense> {
    let capacity = lu.capacity_blocks();
    if lba >= capacity {
        return Err(Sense::lba_out_of_range());
    }
    let store = lu.medium()?;
    let bs = u64::from(lu.block_size());
    // At least one descriptor, even when the allocation length truncates it.
    let wanted =
        (usize::try_from(alloc_len).unwrap_or(usize::MAX).saturating_sub(8) / 16).clamp(1, MAX_LBA_STATUS_DESCRIPTORS);
    let mut extents: Vec<(u64, u64, bool)> = Vec::with_capacity(wanted);
    let mut at = lba;
    while at < capacity {
        let (allocated, bytes) =
            store.allocation(at * bs, (capacity - at) * bs).map_err(|e| store_error(lu, &e, Access::Read))?;
        // Round to whole blocks: a partly allocated block is mapped.
        let (mapped, blocks) = if allocated {
            (true, (at * bs + bytes).div_ceil(bs) - at)
        } else if bytes / bs == 0 {
            (true, 1)
        } else {
            (false, bytes / bs)
        };
        let blocks = blocks.clamp(1, capacity - at);
        match extents.last_mut() {
            Some(last) if last.2 == mapped && last.1 + blocks <= u64::from(u32::MAX) => last.1 += blocks,
            _ => {
                if extents.len() == wanted {
                    break;
                }
                extents.push((at, blocks.min(u64::from(u32::MAX)), mapped));
            }
        }
        at += blocks;
    }
    let data_len = 4 + 16 * extents.len() as u32;
    out.extend_from_slice(&data_len.to_be_bytes()); // PARAMETER DATA LENGTH
    out.extend_from_slice(&[0; 4]);
    for (start, blocks, mapped) in extents {
        out.extend_from_slice(&start.to_be_bytes());
        out.extend_from_slice(&(blocks as u32).to_be_bytes());
        // PROVISIONING STATUS: 0 mapped, 1 deallocated.
        out.extend_from_slice(&[u8::from(!mapped), 0, 0, 0]);
    }
    truncate(out, usize::try_from(alloc_len).unwrap_or(usize::MAX));
    Ok(())
}

/// UNMAP's PARAMETER LIST LENGTH (SBC-3 5.28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unmap {
    pub param_len: u16,
}

impl Cdb for Unmap {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(Unmap { param_len: be16(c, 7) })
    }

    fn decoded(&self) -> Decoded {
        Decoded::params(u32::from(self.param_len))
    }
}

/// WRITE SAME(10/16) (SBC-3 5.41, 5.42); NDOB exists in the 16-byte CDB only (the usage data of
/// the 10-byte one keeps its bit clear).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteSame {
    pub range: BlockRange,
    pub unmap: bool,
    pub ndob: bool,
}

impl Cdb for WriteSame {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(WriteSame { range: cdb::range(c), unmap: c[1] & 0x08 != 0, ndob: c[1] & 0x01 != 0 })
    }

    /// One logical block, the pattern; none with NDOB.
    fn decoded(&self) -> Decoded {
        if self.ndob {
            Decoded::NONE
        } else {
            Decoded::blocks(1)
        }
    }
}

/// GET LBA STATUS (SBC-3 5.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GetLbaStatus {
    pub lba: u64,
    pub alloc_len: u32,
}

impl Cdb for GetLbaStatus {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(GetLbaStatus { lba: be64(c, 2), alloc_len: be32(c, 10) })
    }
}

pub(crate) const UNMAP: Handler = io!(Unmap, |req, Unmap { param_len }| unmap(req.lu, param_len, req.data_out));
pub(crate) const WRITE_SAME: Handler = io!(WriteSame, |req, WriteSame { range, unmap, ndob }| write_same(
    req.lu,
    range,
    unmap,
    ndob,
    req.cdb.len(),
    req.data_out,
    req.data_in
));
pub(crate) const GET_LBA_STATUS: Handler =
    now!(GetLbaStatus, |req, GetLbaStatus { lba, alloc_len }| get_lba_status(req.lu, lba, alloc_len, req.data_in));

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    fn unmap_list(descriptors: &[(u64, u32)]) -> Vec<u8> {
        let mut l = Vec::new();
        l.extend_from_slice(&((6 + descriptors.len() * 16) as u16).to_be_bytes());
        l.extend_from_slice(&((descriptors.len() * 16) as u16).to_be_bytes());
        l.extend_from_slice(&[0; 4]);
        for &(lba, n) in descriptors {
            l.extend_from_slice(&lba.to_be_bytes());
            l.extend_from_slice(&n.to_be_bytes());
            l.extend_from_slice(&[0; 4]);
        }
        l
    }

    fn unmap_cdb(len: usize) -> [u8; 10] {
        let [hi, lo] = (len as u16).to_be_bytes();
        [0x42, 0, 0, 0, 0, 0, 0, hi, lo, 0]
    }

    #[test]
    fn unmap_zeroes_and_checks_ranges() {
        let t = TestLun::thin(1 << 20);
        assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 4, 0], &[9u8; 2048]).0);
        let l = unmap_list(&[(1, 2)]);
        assert_good(&t.run_out(&unmap_cdb(l.len()), &l).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 4, 0]);
        assert!(d[..512].iter().all(|&b| b == 9));
        assert!(d[512..1536].iter().all(|&b| b == 0));
        assert!(d[1536..].iter().all(|&b| b == 9));
        let l = unmap_list(&[(0, 1), (2047, 2)]);
        assert_sense(&t.run_out(&unmap_cdb(l.len()), &l).0, 0x05, 0x21, 0x00);
        assert_good(&t.run_out(&unmap_cdb(0), &[]).0);
        assert_sense(&t.run_out(&unmap_cdb(24), &l[..10]).0, 0x05, 0x1a, 0x00);
        // Not offered without thin provisioning.
        let plain = TestLun::disk(1 << 20);
        assert_sense(&plain.run_out(&unmap_cdb(l.len()), &l).0, 0x05, 0x20, 0x00);
    }

    #[test]
    fn write_same_pattern_and_unmap() {
        let t = TestLun::disk(1 << 20);
        let block = [0xabu8; 512];
        assert_good(&t.run_out(&[0x41, 0, 0, 0, 0, 3, 0, 0, 5, 0], &block).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 2, 0, 0, 7, 0]);
        assert!(d[..512].iter().all(|&b| b == 0));
        assert!(d[512..3072].iter().all(|&b| b == 0xab));
        assert!(d[3072..].iter().all(|&b| b == 0));
        // UNMAP bit without thin provisioning, beyond the end.
        assert_sense(&t.run_out(&[0x41, 0x08, 0, 0, 0, 3, 0, 0, 5, 0], &block).0, 0x05, 0x24, 0x00);
        assert_sense(&t.run_out(&[0x41, 0, 0, 0, 0x07, 0xff, 0, 0, 2, 0], &block).0, 0x05, 0x21, 0x00);
        // Zero blocks: refused on a fully provisioned unit (WSNZ 1); on a thin one, from the LBA to
        // the end, and the LBA must exist.
        assert_sense(&t.run_out(&[0x41, 0, 0, 0, 0x07, 0xfe, 0, 0, 0, 0], &block).0, 0x05, 0x24, 0x00);
        let thin = TestLun::thin(1 << 20);
        assert_good(&thin.run_out(&[0x41, 0, 0, 0, 0x07, 0xfe, 0, 0, 0, 0], &block).0);
        let (_, d) = thin.run(&[0x28, 0, 0, 0, 0x07, 0xfe, 0, 0, 2, 0]);
        assert!(d.iter().all(|&b| b == 0xab));
        assert_sense(&thin.run_out(&[0x41, 0, 0, 0, 0x08, 0x00, 0, 0, 0, 0], &block).0, 0x05, 0x21, 0x00);
        let thin = TestLun::thin(1 << 20);
        assert_good(&thin.run_out(&[0x41, 0, 0, 0, 0, 0, 0, 0, 8, 0], &block).0);
        let mut ws16 = [0u8; 16];
        ws16[0] = 0x93;
        ws16[1] = 0x08;
        ws16[13] = 4;
        assert_good(&thin.run_out(&ws16, &block).0);
        let (_, d) = thin.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]);
        assert!(d[..2048].iter().all(|&b| b == 0));
        assert!(d[2048..].iter().all(|&b| b == 0xab));
    }

    #[test]
    fn get_lba_status() {
        let t = TestLun::thin(1 << 20);
        let cdb = |lba: u64| {
            let mut c = [0u8; 16];
            c[0] = 0x9e;
            c[1] = 0x12;
            c[2..10].copy_from_slice(&lba.to_be_bytes());
            c[13] = 24;
            c
        };
        let (r, d) = t.run(&cdb(8));
        assert_good(&r);
        assert_eq!(d, [0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0x07, 0xf8, 0, 0, 0, 0]);
        assert_sense(&t.run(&cdb(2048)).0, 0x05, 0x21, 0x00);
    }

    #[test]
    fn lba_status_follows_holes_in_a_file() {
        use rtgt_backstore::{Backstore, FileStore, OpenFlags};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thin.img");
        std::fs::File::create(&path).unwrap().set_len(1 << 20).unwrap();
        let store = FileStore::open(&path, OpenFlags::default()).unwrap();
        let config = crate::LunConfig { thin_provisioning: true, ..crate::LunConfig::disk(1, 1) };
        let t = TestLun::with_store(config, Some(Backstore::File(store)), 1);
        let cdb = |lba: u64| {
            let mut c = [0u8; 16];
            c[0] = 0x9e;
            c[1] = 0x12;
            c[2..10].copy_from_slice(&lba.to_be_bytes());
            c[13] = 0xff;
            c
        };
        // Map 64 KiB at block 256 (4K-aligned, so the filesystem allocates exactly that).
        assert_good(&t.run_out(&[0x2a, 0, 0, 0, 1, 0, 0, 0, 128, 0], &vec![1u8; 65536]).0);
        let (r, d) = t.run(&cdb(0));
        assert_good(&r);
        let descriptors: Vec<(u64, u32, u8)> = d[8..]
            .chunks_exact(16)
            .map(|c| {
                (
                    u64::from_be_bytes(c[..8].try_into().unwrap()),
                    u32::from_be_bytes(c[8..12].try_into().unwrap()),
                    c[12],
                )
            })
            .collect();
        if descriptors.len() == 1 {
            // A filesystem without SEEK_HOLE: everything is reported mapped.
            assert_eq!(descriptors, [(0, 2048, 0)]);
            return;
        }
        assert_eq!(descriptors, [(0, 256, 1), (256, 128, 0), (384, 1664, 1)]);
        // Unmapped again: one deallocated extent from the asked LBA.
        let mut list = vec![0u8; 24];
        list[1] = 22;
        list[3] = 16;
        list[8..16].copy_from_slice(&256u64.to_be_bytes());
        list[16..20].copy_from_slice(&128u32.to_be_bytes());
        assert_good(&t.run_out(&[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], &list).0);
        let (_, d) = t.run(&cdb(10));
        assert_eq!(&d[8..21], [0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0x07, 0xf6, 1]);
    }
}
