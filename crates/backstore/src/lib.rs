//! Backing stores: where the blocks of a logical unit live.
//!
//! This crate knows nothing about SCSI. A store offers byte-addressed reads and writes, a flush, and
//! optionally deallocation; errors are `BackstoreError` values carrying the failed operation's kind and
//! offset, which the SCSI layer turns into sense data.
//!
//! Stores are reached through the `Backstore` enum rather than a trait object: the set of engines is
//! closed (file, memory, null; io_uring and rbd later), and enum dispatch lets every operation be an
//! `async fn` without boxing a future per command.

mod error;
mod file;
mod memory;
mod null;
mod open;

pub use error::{BackstoreError, ErrorKind};
pub use file::{FileStore, OpenFlags};
pub use memory::MemoryStore;
pub use null::NullStore;
pub use open::{open, BackstoreKind, BackstoreSpec};

/// The operations every engine provides. Offsets and lengths are in bytes; callers (the SCSI layer)
/// have already checked ranges against `size()`, but engines check again and never touch bytes outside.
#[allow(async_fn_in_trait)]
pub trait BlockStore {
    /// Current capacity in bytes.
    fn size(&self) -> u64;
    /// Fill `buf` from `offset`. Reading past the end is an error, never a short read.
    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError>;
    /// Write all of `buf` at `offset`. With `fua` the data is on stable storage before this returns.
    async fn write_at(&self, offset: u64, buf: &[u8], fua: bool) -> Result<(), BackstoreError>;
    /// Make every completed write durable.
    async fn flush(&self) -> Result<(), BackstoreError>;
    /// Deallocate a range; later reads of it return zeros. Stores that cannot deallocate write zeros.
    async fn unmap(&self, offset: u64, len: u64) -> Result<(), BackstoreError>;
    /// Re-read the capacity from the underlying object (a file that grew, for instance).
    fn reload_size(&self) -> Result<u64, BackstoreError> {
        Ok(self.size())
    }
}

/// A backing store of any engine.
#[derive(Debug)]
pub enum Backstore {
    File(FileStore),
    Memory(MemoryStore),
    Null(NullStore),
}

impl Backstore {
    /// The engine's name as tgt spells it in `--bstype` and in `show` output.
    pub fn kind(&self) -> BackstoreKind {
        match self {
            Backstore::File(_) => BackstoreKind::Rdwr,
            Backstore::Memory(_) => BackstoreKind::Memory,
            Backstore::Null(_) => BackstoreKind::Null,
        }
    }

    /// The path given at creation (file stores), or None.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Backstore::File(f) => Some(f.path()),
            _ => None,
        }
    }
}

impl BlockStore for Backstore {
    fn size(&self) -> u64 {
        match self {
            Backstore::File(s) => s.size(),
            Backstore::Memory(s) => s.size(),
            Backstore::Null(s) => s.size(),
        }
    }

    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError> {
        match self {
            Backstore::File(s) => s.read_at(offset, buf).await,
            Backstore::Memory(s) => s.read_at(offset, buf).await,
            Backstore::Null(s) => s.read_at(offset, buf).await,
        }
    }

    async fn write_at(&self, offset: u64, buf: &[u8], fua: bool) -> Result<(), BackstoreError> {
        match self {
            Backstore::File(s) => s.write_at(offset, buf, fua).await,
            Backstore::Memory(s) => s.write_at(offset, buf, fua).await,
            Backstore::Null(s) => s.write_at(offset, buf, fua).await,
        }
    }

    async fn flush(&self) -> Result<(), BackstoreError> {
        match self {
            Backstore::File(s) => s.flush().await,
            Backstore::Memory(s) => s.flush().await,
            Backstore::Null(s) => s.flush().await,
        }
    }

    async fn unmap(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        match self {
            Backstore::File(s) => s.unmap(offset, len).await,
            Backstore::Memory(s) => s.unmap(offset, len).await,
            Backstore::Null(s) => s.unmap(offset, len).await,
        }
    }

    fn reload_size(&self) -> Result<u64, BackstoreError> {
        match self {
            Backstore::File(s) => s.reload_size(),
            Backstore::Memory(s) => s.reload_size(),
            Backstore::Null(s) => s.reload_size(),
        }
    }
}

/// Check that `[offset, offset + len)` lies within `size`, without overflow.
pub(crate) fn check_range(op: ErrorKind, offset: u64, len: u64, size: u64) -> Result<(), BackstoreError> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(BackstoreError::out_of_range(op, offset, len)),
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    /// Drive a future that never waits (every engine here completes inline) to completion.
    pub fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }
}
