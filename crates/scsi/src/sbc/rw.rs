//! READ, WRITE, VERIFY and WRITE AND VERIFY (SBC-3 5.8-5.15, 5.29-5.35): the data path.
//!
//! A READ resizes the caller's data-in buffer and has the store fill it: no other allocation or
//! copy. A WRITE hands the data-out bytes straight to the store.
//!
//! Data-out shorter than the CDB's transfer length (the initiator's expected transfer length was
//! smaller, SAM-5 5.4.3 overflow) that ends on a block boundary: only the whole logical blocks that
//! arrived are written; the status is GOOD and the transport reports the residual from
//! `TaskResult::data_out_expected` (this is what libiscsi's residual tests require). VERIFY with
//! BYTCHK compares the blocks that arrived in the same way. Data-out that ends inside a block never
//! gets here: `sbc::check_whole_blocks` refuses it before anything is written.

use super::{byte_range, check_transfer_length, check_writable, store_error, Access};
use crate::cdb::{self, BlockRange, Cdb, Decoded};
use crate::lun::LogicalUnit;
use crate::opcodes::{io, Handler};
use crate::sense::{Asc, Sense, SenseKey};
use rtgt_backstore::PagePipe;

/// READ(6/10/12/16) (SBC-3 5.10-5.13); READ(6) has no FUA and a 21-bit LBA, its TRANSFER LENGTH 0
/// meaning 256 blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Read {
    pub range: BlockRange,
    pub fua: bool,
}

impl Cdb for Read {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(Read { range: cdb::range(c), fua: cdb::fua(c) })
    }
}

/// WRITE(6/10/12/16) (SBC-3 5.35-5.38).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Write {
    pub range: BlockRange,
    pub fua: bool,
}

impl Cdb for Write {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(Write { range: cdb::range(c), fua: cdb::fua(c) })
    }

    fn decoded(&self) -> Decoded {
        Decoded::blocks(u64::from(self.range.blocks))
    }
}

/// VERIFY(10/12/16) (SBC-3 5.30-5.32); BYTCHK 0 checks the medium only, 1 compares with data-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verify {
    pub range: BlockRange,
    pub bytchk: bool,
}

impl Cdb for Verify {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(Verify { range: cdb::range(c), bytchk: bytchk(c)? })
    }

    fn decoded(&self) -> Decoded {
        if self.bytchk {
            Decoded::blocks(u64::from(self.range.blocks))
        } else {
            Decoded::NONE
        }
    }
}

/// WRITE AND VERIFY(10/12/16) (SBC-3 5.39-5.41).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WriteAndVerify {
    pub range: BlockRange,
    pub bytchk: bool,
}

impl Cdb for WriteAndVerify {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(WriteAndVerify { range: cdb::range(c), bytchk: bytchk(c)? })
    }

    fn decoded(&self) -> Decoded {
        Decoded::blocks(u64::from(self.range.blocks))
    }
}

/// SBC-3 5.30: BYTCHK 00b and 01b are supported; 10b is reserved, 11b (compare one block against
/// every block) is not offered in the usage data.
fn bytchk(c: &[u8]) -> Result<bool, Sense> {
    match (c[1] >> 1) & 0x03 {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(Sense::invalid_cdb_field(1, Some(2))),
    }
}

pub(crate) const READ: Handler =
    io!(Read, |req, Read { range, fua: _ }| read(req.lu, range, req.cdb.len(), req.data_in, req.pipe.as_deref_mut()));
pub(crate) const WRITE: Handler =
    io!(Write, |req, Write { range, fua }| write(req.lu, range, fua, req.cdb.len(), req.data_out));
pub(crate) const VERIFY: Handler = io!(Verify, |req, Verify { range, bytchk }| verify(
    req.lu,
    range,
    bytchk,
    req.cdb.len(),
    req.data_out,
    req.data_in
));
pub(crate) const WRITE_AND_VERIFY: Handler =
    io!(WriteAndVerify, |req, WriteAndVerify { range, bytchk }| write_and_verify(
        req.lu,
        range,
        bytchk,
        req.cdb.len(),
        req.data_out,
        req.data_in
    ));

/// CDB byte holding the TRANSFER LENGTH field's most significant byte, by CDB length.
pub(crate) fn transfer_length_byte(cdb_len: usize) -> u16 {
    match cdb_len {
        6 => 4,
        10 => 7,
        12 => 6,
        _ => 10,
    }
}

pub(crate) async fn read(
    lu: &LogicalUnit,
    range: BlockRange,
    cdb_len: usize,
    data_in: &mut Vec<u8>,
    pipe: Option<&mut PagePipe>,
) -> Result<(), Sense> {
    let (offset, len) = byte_range(lu, range)?;
    check_transfer_length(lu, range.blocks, transfer_length_byte(cdb_len))?;
    if len == 0 {
        return Ok(());
    }
    let store = lu.medium()?;
    let len = len as usize;
    if let Some(pipe) = pipe {
        // Page references for the transport to splice: no copy at all (see `PagePipe`).
        if let Some(result) = store.read_into_pipe(offset, len, pipe) {
            return result.map_err(|e| store_error(lu, &e, Access::Read));
        }
    }
    data_in.clear();
    data_in.reserve(len);
    if let Some(result) = store.read_uninit(offset, &mut data_in.spare_capacity_mut()[..len]) {
        result.map_err(|e| store_error(lu, &e, Access::Read))?;
        // SAFETY: `read_uninit` returned Ok, so it wrote all `len` bytes of the spare capacity
        // (reserved above), which are now initialized.
        unsafe { data_in.set_len(len) };
        return Ok(());
    }
    data_in.resize(len, 0);
    super::read_fully(store, offset, data_in).await.map_err(|e| store_error(lu, &e, Access::Read))
}

/// The whole blocks of `data_out` that the range calls for (see the module comment).
fn received(lu: &LogicalUnit, len: u64, data_out: &[u8]) -> usize {
    let bs = lu.block_size() as usize;
    let whole = data_out.len() / bs * bs;
    (len as usize).min(whole)
}

pub(crate) async fn write(
    lu: &LogicalUnit,
    range: BlockRange,
    fua: bool,
    cdb_len: usize,
    data_out: &[u8],
) -> Result<(), Sense> {
    check_writable(lu)?;
    let (offset, len) = byte_range(lu, range)?;
    check_transfer_length(lu, range.blocks, transfer_length_byte(cdb_len))?;
    let n = received(lu, len, data_out);
    if n == 0 {
        return Ok(());
    }
    let store = lu.medium()?;
    // With the write cache disabled every write is write-through (SBC-3 6.4.5 WCE).
    let fua = fua || !lu.mode_params().wce;
    // Ordered against COMPARE AND WRITE and ORWRITE on the same blocks.
    let _held = lu.disk()?.range_locks().lock(range.lba, u64::from(range.blocks)).await;
    super::write_fully(store, offset, &data_out[..n], fua).await.map_err(|e| store_error(lu, &e, Access::Write))
}

/// VERIFY: BYTCHK 0 reads the blocks back (a medium verification, SBC-3 5.30: a store that
/// cannot read them answers MEDIUM ERROR) and discards them; BYTCHK 1 compares the data-out blocks with the medium, using `scratch` (the data-in buffer,
/// which VERIFY does not otherwise use) to read into. MISCOMPARE carries the offset of the first
/// differing byte in INFORMATION (SBC-3 5.30).
pub(crate) async fn verify(
    lu: &LogicalUnit,
    range: BlockRange,
    bytchk: bool,
    cdb_len: usize,
    data_out: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), Sense> {
    let (offset, len) = byte_range(lu, range)?;
    check_transfer_length(lu, range.blocks, transfer_length_byte(cdb_len))?;
    if !bytchk {
        return read_through(lu, offset, len, scratch).await;
    }
    let n = received(lu, len, data_out);
    if n == 0 {
        return Ok(());
    }
    compare(lu, offset, &data_out[..n], scratch).await
}

/// Bytes read per store call by a medium verification.
const VERIFY_CHUNK: u64 = 1 << 20;

async fn read_through(lu: &LogicalUnit, offset: u64, len: u64, scratch: &mut Vec<u8>) -> Result<(), Sense> {
    if len == 0 {
        return Ok(());
    }
    let store = lu.medium()?;
    let mut done = 0;
    let mut result = Ok(());
    while done < len {
        let n = (len - done).min(VERIFY_CHUNK) as usize;
        scratch.clear();
        scratch.resize(n, 0);
        if let Err(e) = super::read_fully(store, offset + done, scratch).await {
            result = Err(store_error(lu, &e, Access::Read));
            break;
        }
        done += n as u64;
    }
    scratch.clear();
    result
}

async fn compare(lu: &LogicalUnit, offset: u64, expected: &[u8], scratch: &mut Vec<u8>) -> Result<(), Sense> {
    let store = lu.medium()?;
    scratch.clear();
    scratch.resize(expected.len(), 0);
    let read = super::read_fully(store, offset, scratch).await;
    let mismatch = scratch.iter().zip(expected).position(|(a, b)| a != b);
    scratch.clear();
    read.map_err(|e| store_error(lu, &e, Access::Read))?;
    match mismatch {
        Some(at) => Err(Sense::new(SenseKey::Miscompare, Asc::MISCOMPARE_DURING_VERIFY).with_information(at as u64)),
        None => Ok(()),
    }
}

/// WRITE AND VERIFY: the write is forced to stable storage, then with BYTCHK read back and compared.
pub(crate) async fn write_and_verify(
    lu: &LogicalUnit,
    range: BlockRange,
    bytchk: bool,
    cdb_len: usize,
    data_out: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), Sense> {
    write(lu, range, true, cdb_len, data_out).await?;
    if !bytchk {
        return Ok(());
    }
    let (offset, len) = byte_range(lu, range)?;
    let n = received(lu, len, data_out);
    if n == 0 {
        return Ok(());
    }
    compare(lu, offset, &data_out[..n], scratch).await
}

#[cfg(test)]
mod tests {
    use crate::test_util::*;
    use rtgt_backstore::PagePipe;

    #[test]
    fn read_and_write_fields() {
        use crate::cdb::{BlockRange, Cdb, Decoded};
        let read6 = super::Read::decode(&[0x08, 0x1f, 0xff, 0xff, 0x00, 0x00]).unwrap();
        assert_eq!(read6, super::Read { range: BlockRange { lba: 0x1f_ffff, blocks: 256 }, fua: false });
        let c = [0x88, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 1, 0, 0, 0];
        let read16 = super::Read::decode(&c).unwrap();
        assert_eq!(read16, super::Read { range: BlockRange { lba: 0x0102_0304_0506_0708, blocks: 256 }, fua: true });
        assert_eq!(read16.decoded(), Decoded::NONE);
        let write = super::Write::decode(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 3, 0]).unwrap();
        assert_eq!(write.decoded().data_out_len(512), 1536);
        assert!(write.decoded().data_out_is_blocks());
    }

    #[test]
    fn verify_bytchk() {
        use crate::cdb::{BlockRange, Cdb};
        use crate::sense::Sense;
        let reserved = super::Verify::decode(&[0x2f, 0x04, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(reserved, Err(Sense::invalid_cdb_field(1, Some(2))));
        let v = super::Verify::decode(&[0x2f, 0x02, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap();
        assert_eq!(v, super::Verify { range: BlockRange { lba: 0, blocks: 1 }, bytchk: true });
        assert_eq!(v.decoded().data_out_len(512), 512);
        let v = super::Verify::decode(&[0x2f, 0, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap();
        assert_eq!(v.decoded().data_out_len(512), 0);
    }

    #[test]
    fn write_same_data_out_is_one_block_unless_ndob() {
        use crate::cdb::Cdb;
        use crate::sbc::provisioning::WriteSame;
        let ws10 = WriteSame::decode(&[0x41, 0x08, 0, 0, 0, 0, 0, 0, 3, 0]).unwrap();
        assert_eq!(ws10.decoded().data_out_len(4096), 4096);
        let mut ws16 = [0u8; 16];
        ws16[0] = 0x93;
        ws16[1] = 0x09;
        assert_eq!(WriteSame::decode(&ws16).unwrap().decoded().data_out_len(4096), 0);
    }

    fn rw10(op: u8, flags: u8, lba: u32, blocks: u16) -> [u8; 10] {
        let l = lba.to_be_bytes();
        let b = blocks.to_be_bytes();
        [op, flags, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0]
    }

    fn rw16(op: u8, lba: u64, blocks: u32) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = op;
        c[2..10].copy_from_slice(&lba.to_be_bytes());
        c[10..14].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    #[test]
    fn write_then_read_back_every_size() {
        let t = TestLun::disk(1 << 20); // 2048 blocks
        let data: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
        assert_good(&t.run_out(&rw10(0x2a, 0x08, 10, 2), &data).0);
        let (r, d) = t.run(&rw10(0x28, 0, 10, 2));
        assert_good(&r);
        assert_eq!(d, data);
        let (_, d) = t.run(&[0xa8, 0, 0, 0, 0, 10, 0, 0, 0, 2, 0, 0]);
        assert_eq!(d, data);
        let (_, d) = t.run(&rw16(0x88, 10, 2));
        assert_eq!(d, data);
        let (_, d) = t.run(&[0x08, 0, 0, 10, 2, 0]);
        assert_eq!(d, data);
        assert_good(&t.run_out(&[0x0a, 0, 0, 20, 1, 0], &data[..512]).0);
        assert_good(&t.run_out(&[0xaa, 0, 0, 0, 0, 21, 0, 0, 0, 1, 0, 0], &data[512..]).0);
        let mut w16 = rw16(0x8a, 22, 1);
        w16[1] = 0x18; // DPO FUA
        assert_good(&t.run_out(&w16, &data[..512]).0);
        let (_, d) = t.run(&rw10(0x28, 0x18, 20, 2));
        assert_eq!(d, data);
    }

    #[test]
    fn zero_length_moves_nothing() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&rw10(0x28, 0, 0, 0));
        assert_good(&r);
        assert!(d.is_empty());
        assert_good(&t.run(&rw10(0x2a, 0, 2048, 0)).0);
        assert_good(&t.run(&rw16(0x88, 2048, 0)).0);
        // READ(6) with length 0 reads 256 blocks.
        let (r, d) = t.run(&[0x08, 0, 0, 0, 0, 0]);
        assert_good(&r);
        assert_eq!(d.len(), 256 * 512);
    }

    #[test]
    fn beyond_the_end() {
        let t = TestLun::disk(1 << 20);
        assert_sense(&t.run(&rw10(0x28, 0, 2047, 2)).0, 0x05, 0x21, 0x00);
        assert_sense(&t.run(&rw10(0x28, 0, 2049, 0)).0, 0x05, 0x21, 0x00);
        assert_sense(&t.run(&rw16(0x88, u64::MAX, 1)).0, 0x05, 0x21, 0x00);
        assert_sense(&t.run(&rw16(0x88, u64::MAX - 1, 2)).0, 0x05, 0x21, 0x00);
        assert_sense(&t.run_out(&rw10(0x2a, 0, 2048, 1), &[0; 512]).0, 0x05, 0x21, 0x00);
        assert_sense(&t.run(&[0x08, 0x1f, 0xff, 0xff, 1, 0]).0, 0x05, 0x21, 0x00);
        assert_good(&t.run(&rw10(0x28, 0, 2047, 1)).0);
    }

    #[test]
    fn protection_fields_are_rejected() {
        let t = TestLun::disk(1 << 20);
        for rdprotect in 1..8u8 {
            assert_sense(&t.run(&rw10(0x28, rdprotect << 5, 0, 1)).0, 0x05, 0x24, 0x00);
            assert_sense(&t.run_out(&rw10(0x2a, rdprotect << 5, 0, 1), &[0; 512]).0, 0x05, 0x24, 0x00);
        }
    }

    #[test]
    fn short_data_out_writes_whole_blocks_only() {
        let t = TestLun::disk(1 << 20);
        assert_good(&t.run_out(&rw10(0x2a, 0, 0, 2), &[b'a'; 1024]).0);
        let (r, _) = t.run_out(&rw10(0x2a, 0, 0, 2), &[b'b'; 512]);
        assert_good(&r);
        assert_eq!(r.data_out_expected, 1024);
        let (_, d) = t.run(&rw10(0x28, 0, 0, 2));
        assert!(d[..512].iter().all(|&b| b == b'b'));
        assert!(d[512..].iter().all(|&b| b == b'a'));
        // More data than asked for: only the CDB's blocks are written.
        assert_good(&t.run_out(&rw10(0x2a, 0, 0, 1), &[b'c'; 1024]).0);
        let (_, d) = t.run(&rw10(0x28, 0, 0, 2));
        assert!(d[512..].iter().all(|&b| b == b'a'));
    }

    #[test]
    fn readonly_unit_refuses_writes() {
        let t = TestLun::with_config(1 << 20, |c| c.readonly = true);
        assert_sense(&t.run_out(&rw10(0x2a, 0, 0, 1), &[0; 512]).0, 0x07, 0x27, 0x00);
        assert_sense(&t.run_out(&rw10(0x2e, 0, 0, 1), &[0; 512]).0, 0x07, 0x27, 0x00);
        assert_good(&t.run(&rw10(0x28, 0, 0, 1)).0);
    }

    #[test]
    fn verify_compares_and_reports_the_offset() {
        let t = TestLun::disk(1 << 20);
        let mut data = vec![0x5au8; 1024];
        assert_good(&t.run_out(&rw10(0x2a, 0, 4, 2), &data).0);
        assert_good(&t.run(&rw10(0x2f, 0, 4, 2)).0);
        let (r, _) = t.run_out(&rw10(0x2f, 0x02, 4, 2), &data);
        assert_good(&r);
        assert_eq!(r.data_out_expected, 1024);
        data[600] = 0;
        let (r, _) = t.run_out(&rw10(0x2f, 0x02, 4, 2), &data);
        assert_eq!(
            r.sense.as_deref(),
            Some(&[0xf0, 0, 0x0e, 0, 0, 0x02, 0x58, 0x0a, 0, 0, 0, 0, 0x1d, 0x00, 0, 0, 0, 0][..])
        );
        assert_sense(&t.run(&rw10(0x2f, 0, 2047, 2)).0, 0x05, 0x21, 0x00);
        assert_sense(&t.run(&rw16(0x8f, 2047, 2)).0, 0x05, 0x21, 0x00);
        // BYTCHK 10b is reserved.
        assert_sense(&t.run(&rw10(0x2f, 0x04, 0, 1)).0, 0x05, 0x24, 0x00);
        // VRPROTECT.
        assert_sense(&t.run(&rw10(0x2f, 0x20, 0, 1)).0, 0x05, 0x24, 0x00);
    }

    #[test]
    fn write_and_verify() {
        let t = TestLun::disk(1 << 20);
        let data = vec![0x33u8; 512];
        assert_good(&t.run_out(&rw10(0x2e, 0x02, 7, 1), &data).0);
        assert_good(&t.run_out(&[0xae, 0, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0], &data).0);
        let mut c = rw16(0x8e, 9, 1);
        c[1] = 0x02;
        assert_good(&t.run_out(&c, &data).0);
        let (_, d) = t.run(&rw10(0x28, 0, 7, 3));
        assert!(d.iter().all(|&b| b == 0x33));
        assert_sense(&t.run_out(&rw10(0x2e, 0, 2048, 1), &data).0, 0x05, 0x21, 0x00);
    }

    #[test]
    fn data_in_buffer_is_reused() {
        let t = TestLun::disk(1 << 20);
        let mut buf = Vec::with_capacity(4096);
        let ptr = buf.as_ptr();
        let r = block_on(t.target.execute(&t.nexus, 1, &rw10(0x28, 0, 0, 8), &[], &mut buf));
        assert_good(&r);
        assert_eq!(buf.len(), 4096);
        assert_eq!(buf.as_ptr(), ptr);
    }

    /// A disk of 2048 blocks on a file holding `bytes` (shorter than the disk if asked).
    fn file_disk(bytes: &[u8]) -> (TestLun, tempfile::NamedTempFile) {
        use std::io::Write;
        use std::os::unix::fs::FileExt;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![0u8; 1 << 20]).unwrap();
        f.as_file().write_all_at(bytes, 0).unwrap();
        let store = rtgt_backstore::FileStore::open(f.path(), rtgt_backstore::OpenFlags::default()).unwrap();
        let t = TestLun::with_store(crate::LunConfig::disk(1, 1), Some(rtgt_backstore::Backstore::File(store)), 1);
        (t, f)
    }

    fn run_piped(t: &TestLun, cdb: &[u8], pipe: &mut PagePipe) -> (crate::TaskResult, Vec<u8>) {
        let mut buf = Vec::new();
        let r = block_on(t.target.execute_piped(&t.nexus, 1, cdb, &[], &mut buf, Some(pipe)));
        (r, buf)
    }

    #[test]
    fn a_read_from_a_file_leaves_its_data_in_the_offered_pipe() {
        let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 % 253) as u8).collect();
        let (t, _f) = file_disk(&data);
        let mut pipe = PagePipe::new().unwrap();
        let (r, buf) = run_piped(&t, &rw10(0x28, 0, 3, 64), &mut pipe);
        assert_good(&r);
        assert!(buf.is_empty(), "nothing copied");
        assert_eq!(pipe.len(), 64 * 512);
        let mut sent = Vec::new();
        pipe.read_into(&mut sent, 64 * 512).unwrap();
        assert_eq!(sent, &data[3 * 512..67 * 512]);
        // A command that is not a READ leaves the pipe alone.
        let (r, buf) = run_piped(&t, &[0x12, 0, 0, 0, 36, 0], &mut pipe);
        assert_good(&r);
        assert_eq!((buf.len(), pipe.len()), (36, 0));
    }

    #[test]
    fn a_piped_read_past_the_end_of_a_shrunk_file_is_a_medium_error_with_an_empty_pipe() {
        let (t, f) = file_disk(&[0x5a; 4096]);
        // The file shrinks under the unit (the unit still believes 2048 blocks).
        f.as_file().set_len(4096 + 1000).unwrap();
        let mut pipe = PagePipe::new().unwrap();
        let (r, buf) = run_piped(&t, &rw10(0x28, 0, 0, 16), &mut pipe);
        assert_sense(&r, 0x03, 0x11, 0x00);
        assert!(buf.is_empty() && pipe.is_empty(), "no partial data-in");
        // The pipe is usable again.
        let (r, _) = run_piped(&t, &rw10(0x28, 0, 0, 8), &mut pipe);
        assert_good(&r);
        assert_eq!(pipe.len(), 4096);
    }

    #[test]
    fn a_memory_store_copies_even_when_a_pipe_is_offered() {
        let t = TestLun::disk(1 << 20);
        let mut pipe = PagePipe::new().unwrap();
        let (r, buf) = run_piped(&t, &rw10(0x28, 0, 0, 8), &mut pipe);
        assert_good(&r);
        assert_eq!((buf.len(), pipe.len()), (4096, 0));
    }

    #[test]
    fn four_k_blocks() {
        let t = TestLun::with_config(1 << 20, |c| c.block_size = 4096);
        let (_, d) = t.run(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(d, [0, 0, 0, 0xff, 0, 0, 0x10, 0]);
        let data = vec![0x42u8; 8192];
        let (r, _) = t.run_out(&rw10(0x2a, 0, 254, 2), &data);
        assert_good(&r);
        assert_eq!(r.data_out_expected, 8192);
        let (_, d) = t.run(&rw10(0x28, 0, 254, 2));
        assert_eq!(d, data);
        assert_sense(&t.run(&rw10(0x28, 0, 255, 2)).0, 0x05, 0x21, 0x00);
    }

    #[test]
    fn transfer_length_limit() {
        let t = TestLun::null(1 << 40);
        // 64 MiB is the limit: 131072 blocks of 512 bytes; one more is refused.
        let mut c = rw16(0x88, 0, 131_073);
        assert_sense(&t.run(&c).0, 0x05, 0x24, 0x00);
        c[13] = 0; // 131072
        let (r, d) = t.run(&c);
        assert_good(&r);
        assert_eq!(d.len(), 64 << 20);
    }
}
