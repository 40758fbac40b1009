//! A store held in memory: for tests and demos (`--bstype memory --bsopts size=1G`).
//!
//! Memory is reserved lazily in chunks, so a large store that is mostly unwritten costs little, and
//! unmapping a whole chunk gives its memory back.
//!
//! A store built `with_access_log` also records every range it is asked for, so that tests and fuzz
//! targets can check that the SCSI layer never asks for bytes outside the logical unit.

use crate::{check_range, BackstoreError, BlockStore, ErrorKind};
use parking_lot::{Mutex, RwLock};

const CHUNK: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessOp {
    Read,
    Write,
    Unmap,
    /// An allocation-status query (GET LBA STATUS).
    Allocation,
}

/// One request made of a store with an access log: the operation and the byte range it named,
/// recorded before the range is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    pub op: AccessOp,
    pub offset: u64,
    pub len: u64,
}

impl Access {
    /// Whether the range lies inside a store of `size` bytes.
    pub fn within(&self, size: u64) -> bool {
        self.offset.checked_add(self.len).is_some_and(|end| end <= size)
    }
}

#[derive(Debug)]
pub struct MemoryStore {
    size: u64,
    chunks: Vec<RwLock<Option<Box<[u8]>>>>,
    log: Option<Mutex<Vec<Access>>>,
}

impl MemoryStore {
    pub fn new(size: u64) -> Self {
        let count = size.div_ceil(CHUNK as u64) as usize;
        MemoryStore { size, chunks: (0..count).map(|_| RwLock::new(None)).collect(), log: None }
    }

    /// A store that records every request (see `take_accesses`).
    pub fn with_access_log(size: u64) -> Self {
        MemoryStore { log: Some(Mutex::new(Vec::new())), ..Self::new(size) }
    }

    /// The requests recorded since the last call (always empty without an access log).
    pub fn take_accesses(&self) -> Vec<Access> {
        self.log.as_ref().map(|l| std::mem::take(&mut *l.lock())).unwrap_or_default()
    }

    fn record(&self, op: AccessOp, offset: u64, len: u64) {
        if let Some(log) = &self.log {
            log.lock().push(Access { op, offset, len });
        }
    }

    /// Walk `[offset, offset+len)` chunk by chunk: (chunk index, offset in chunk, offset in caller's buffer, length).
    fn pieces(offset: u64, len: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        let mut done = 0usize;
        std::iter::from_fn(move || {
            if done >= len {
                return None;
            }
            let pos = offset + done as u64;
            let index = (pos / CHUNK as u64) as usize;
            let within = (pos % CHUNK as u64) as usize;
            let n = (CHUNK - within).min(len - done);
            let item = (index, within, done, n);
            done += n;
            Some(item)
        })
    }
}

impl BlockStore for MemoryStore {
    fn size(&self) -> u64 {
        self.size
    }

    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError> {
        self.record(AccessOp::Read, offset, buf.len() as u64);
        check_range(ErrorKind::Read, offset, buf.len() as u64, self.size)?;
        for (index, within, at, n) in Self::pieces(offset, buf.len()) {
            let chunk = self.chunks[index].read();
            match chunk.as_ref() {
                Some(data) => buf[at..at + n].copy_from_slice(&data[within..within + n]),
                None => buf[at..at + n].fill(0),
            }
        }
        Ok(())
    }

    async fn write_at(&self, offset: u64, buf: &[u8], _fua: bool) -> Result<(), BackstoreError> {
        self.record(AccessOp::Write, offset, buf.len() as u64);
        check_range(ErrorKind::Write, offset, buf.len() as u64, self.size)?;
        for (index, within, at, n) in Self::pieces(offset, buf.len()) {
            let mut chunk = self.chunks[index].write();
            let data = chunk.get_or_insert_with(|| vec![0u8; CHUNK].into_boxed_slice());
            data[within..within + n].copy_from_slice(&buf[at..at + n]);
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), BackstoreError> {
        Ok(())
    }

    async fn unmap(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        self.record(AccessOp::Unmap, offset, len);
        check_range(ErrorKind::Unmap, offset, len, self.size)?;
        let len = usize::try_from(len).map_err(|_| BackstoreError::out_of_range(ErrorKind::Unmap, offset, len))?;
        for (index, within, _, n) in Self::pieces(offset, len) {
            let mut chunk = self.chunks[index].write();
            if within == 0 && n == CHUNK {
                *chunk = None;
            } else if let Some(data) = chunk.as_mut() {
                data[within..within + n].fill(0);
            }
        }
        Ok(())
    }

    async fn write_same(&self, offset: u64, len: u64, pattern: &[u8]) -> Result<(), BackstoreError> {
        self.record(AccessOp::Write, offset, len);
        crate::write_same_by_writes(self, offset, len, pattern).await
    }

    async fn compare_and_write(&self, offset: u64, expected: &[u8], data: &[u8]) -> Result<(), BackstoreError> {
        self.record(AccessOp::Write, offset, data.len() as u64);
        crate::compare_then_write(self, offset, expected, data).await
    }

    /// Everything counts as allocated (the trait's answer); only the request is recorded.
    fn allocation(&self, offset: u64, len: u64) -> Result<(bool, u64), BackstoreError> {
        self.record(AccessOp::Allocation, offset, len);
        Ok((true, len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_util::block_on;

    #[test]
    fn unwritten_reads_zero_and_writes_read_back_across_chunks() {
        let store = MemoryStore::new(3 * CHUNK as u64);
        let mut buf = vec![0xffu8; 4096];
        block_on(store.read_at(CHUNK as u64 - 100, &mut buf)).unwrap();
        assert!(buf.iter().all(|&b| b == 0));
        let data: Vec<u8> = (0..8192u32).map(|i| i as u8).collect();
        block_on(store.write_at(CHUNK as u64 - 4096, &data, false)).unwrap();
        let mut back = vec![0u8; 8192];
        block_on(store.read_at(CHUNK as u64 - 4096, &mut back)).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn out_of_range_is_refused() {
        let store = MemoryStore::new(8192);
        let mut buf = vec![0u8; 512];
        assert!(block_on(store.read_at(8192 - 511, &mut buf)).is_err());
        assert!(block_on(store.write_at(u64::MAX - 10, &buf, false)).is_err());
    }

    #[test]
    fn unmap_zeroes() {
        let store = MemoryStore::new(2 * CHUNK as u64);
        block_on(store.write_at(0, &vec![7u8; 2 * CHUNK], false)).unwrap();
        block_on(store.unmap(512, CHUNK as u64)).unwrap();
        let mut buf = vec![1u8; 2 * CHUNK];
        block_on(store.read_at(0, &mut buf)).unwrap();
        assert!(buf[..512].iter().all(|&b| b == 7));
        assert!(buf[512..512 + CHUNK].iter().all(|&b| b == 0));
        assert!(buf[512 + CHUNK..].iter().all(|&b| b == 7));
    }

    #[test]
    fn access_log_records_every_request_even_refused_ones() {
        let store = MemoryStore::with_access_log(8192);
        let mut buf = vec![0u8; 512];
        block_on(store.read_at(512, &mut buf)).unwrap();
        assert!(block_on(store.write_at(8192, &buf, false)).is_err());
        block_on(store.unmap(0, 4096)).unwrap();
        let log = store.take_accesses();
        let ops: Vec<_> = log.iter().map(|a| (a.op, a.offset, a.len)).collect();
        assert_eq!(ops, vec![(AccessOp::Read, 512, 512), (AccessOp::Write, 8192, 512), (AccessOp::Unmap, 0, 4096)]);
        assert_eq!(log.iter().map(|a| a.within(8192)).collect::<Vec<_>>(), vec![true, false, true]);
        assert!(store.take_accesses().is_empty());
        assert!(MemoryStore::new(8192).take_accesses().is_empty());
    }
}
