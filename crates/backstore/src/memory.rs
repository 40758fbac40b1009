//! A store held in memory: for tests and demos (`--bstype memory --bsopts size=1G`).
//!
//! Memory is reserved lazily in chunks, so a large store that is mostly unwritten costs little, and
//! unmapping a whole chunk gives its memory back.

use crate::{check_range, BackstoreError, BlockStore, ErrorKind};
use parking_lot::RwLock;

const CHUNK: usize = 1 << 20;

#[derive(Debug)]
pub struct MemoryStore {
    size: u64,
    chunks: Vec<RwLock<Option<Box<[u8]>>>>,
}

impl MemoryStore {
    pub fn new(size: u64) -> Self {
        let count = size.div_ceil(CHUNK as u64) as usize;
        MemoryStore { size, chunks: (0..count).map(|_| RwLock::new(None)).collect() }
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
}
