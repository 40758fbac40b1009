//! A store that keeps nothing: reads return zeros, writes are dropped. For benchmarks of the data path.

use crate::{check_range, BackstoreError, BlockStore, ErrorKind};

#[derive(Debug)]
pub struct NullStore {
    size: u64,
}

impl NullStore {
    pub fn new(size: u64) -> Self {
        NullStore { size }
    }
}

impl BlockStore for NullStore {
    fn size(&self) -> u64 {
        self.size
    }

    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError> {
        check_range(ErrorKind::Read, offset, buf.len() as u64, self.size)?;
        buf.fill(0);
        Ok(())
    }

    async fn write_at(&self, offset: u64, buf: &[u8], _fua: bool) -> Result<(), BackstoreError> {
        check_range(ErrorKind::Write, offset, buf.len() as u64, self.size)
    }

    async fn flush(&self) -> Result<(), BackstoreError> {
        Ok(())
    }

    async fn unmap(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        check_range(ErrorKind::Unmap, offset, len, self.size)
    }
}
