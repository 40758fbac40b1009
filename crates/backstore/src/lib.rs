//! Backing stores: where the blocks of a logical unit live.
//!
//! This crate knows nothing about SCSI. A store offers byte-addressed reads and writes, a flush, and
//! optionally deallocation; errors are `BackstoreError` values carrying the failed operation's kind and
//! offset, which the SCSI layer turns into sense data.
//!
//! Stores are reached through the `Backstore` enum rather than a trait object: the set of engines is
//! closed (file via pread/pwrite or io_uring, memory, null, rbd behind the `rbd` feature), and enum
//! dispatch lets every operation be an `async fn` without boxing a future per command.

#[cfg(test)]
mod engine_suite;
mod error;
mod fault;
mod file;
mod memory;
mod null;
mod open;
mod pipe;
#[cfg(feature = "rbd")]
pub mod rbd;
pub mod tape;
mod uring;

pub use error::{BackstoreError, ErrorKind};
pub use fault::{Effect, FaultOp, FaultRule, FaultStore};
pub use file::{FileStore, OpenFlags};
pub use memory::{Access, AccessOp, MemoryStore};
pub use null::NullStore;
pub use open::{open, BackstoreKind, BackstoreSpec};
pub use pipe::{FillRefused, PagePipe};
#[cfg(feature = "rbd")]
pub use rbd::RbdStore;
pub use uring::UringStore;

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
    /// Write `pattern` repeatedly over `[offset, offset + len)`; `len` is a multiple of the
    /// pattern's length (WRITE SAME). Engines with a native call override this.
    async fn write_same(&self, offset: u64, len: u64, pattern: &[u8]) -> Result<(), BackstoreError> {
        write_same_by_writes(self, offset, len, pattern).await
    }
    /// If the bytes at `offset` equal `expected`, write `data` (same length) there; otherwise
    /// `BackstoreError::Miscompare` with the offset of the first differing byte (COMPARE AND WRITE).
    /// The default reads, compares and writes, which is atomic only if the caller keeps other
    /// writers to the range out meanwhile; engines with an atomic call override it.
    async fn compare_and_write(&self, offset: u64, expected: &[u8], data: &[u8]) -> Result<(), BackstoreError> {
        compare_then_write(self, offset, expected, data).await
    }
    /// Whether the byte at `offset` is allocated (`true`) or deallocated, and for how many bytes
    /// from `offset` (at most `len`, at least 1 when `len > 0`) that stays so. For GET LBA STATUS.
    /// Engines that cannot tell report the whole range allocated.
    fn allocation(&self, offset: u64, len: u64) -> Result<(bool, u64), BackstoreError> {
        let _ = offset;
        Ok((true, len))
    }
}

/// A backing store of any engine.
#[derive(Debug)]
pub enum Backstore {
    File(FileStore),
    Memory(MemoryStore),
    Null(NullStore),
    /// A file or block device through io_uring (`--bstype aio`).
    Uring(UringStore),
    #[cfg(feature = "rbd")]
    Rbd(RbdStore),
    /// Another store behind injected faults (`fault=` options; a testing aid, see `fault`).
    Faulty(Box<FaultStore<Backstore>>),
}

impl Backstore {
    /// Fill `buf`, whose bytes may be uninitialized, from `offset`, when the engine can read
    /// straight into such memory (a plain file: pread). `None` when it cannot; the caller then
    /// zero-fills a buffer and uses `read_at`. Saves the zero-fill of every READ's data buffer,
    /// which at 128 KiB per command is a tenth of the target's CPU. On `Some(Ok(()))` every byte
    /// of `buf` has been written.
    pub fn read_uninit(
        &self,
        offset: u64,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Option<Result<(), BackstoreError>> {
        match self {
            Backstore::File(s) => s.read_uninit(offset, buf),
            _ => None,
        }
    }

    /// Put `len` bytes from `offset` into `pipe` as references to the page cache, for a transport
    /// that splices them to its socket without copying them (see `PagePipe`), when the engine
    /// can: a plain file without O_DIRECT (pread/pwrite engine). `None` when it cannot (other
    /// engines, injected faults, a range too large for a pipe): the pipe is unchanged and the
    /// caller reads into memory instead. `Some(Err)` is the read's failure, as `read_at` would
    /// report it; the pipe is then empty.
    pub fn read_into_pipe(&self, offset: u64, len: usize, pipe: &mut PagePipe) -> Option<Result<(), BackstoreError>> {
        match self {
            Backstore::File(s) => s.read_into_pipe(offset, len, pipe),
            _ => None,
        }
    }

    /// The engine's name as tgt spells it in `--bstype` and in `show` output.
    pub fn kind(&self) -> BackstoreKind {
        match self {
            Backstore::File(_) => BackstoreKind::Rdwr,
            Backstore::Memory(_) => BackstoreKind::Memory,
            Backstore::Null(_) => BackstoreKind::Null,
            Backstore::Uring(_) => BackstoreKind::Aio,
            #[cfg(feature = "rbd")]
            Backstore::Rbd(_) => BackstoreKind::Rbd,
            Backstore::Faulty(f) => f.inner().kind(),
        }
    }

    /// The store faults are injected into, or the store itself.
    pub fn engine(&self) -> &Backstore {
        match self {
            Backstore::Faulty(f) => f.inner().engine(),
            other => other,
        }
    }

    /// Whether operations go through injected faults.
    pub fn has_faults(&self) -> bool {
        matches!(self, Backstore::Faulty(_))
    }

    /// The injected-fault rules in `fault=` syntax (empty without faults).
    pub fn fault_rules(&self) -> Vec<String> {
        match self {
            Backstore::Faulty(f) => f.rules().iter().map(ToString::to_string).collect(),
            _ => Vec::new(),
        }
    }

    /// How a file store was opened (`--bsoflags`); None for the other engines.
    pub fn open_flags(&self) -> Option<OpenFlags> {
        match self.engine() {
            Backstore::File(f) => Some(f.flags()),
            Backstore::Uring(u) => Some(u.flags()),
            _ => None,
        }
    }

    /// The path given at creation (file stores), or None.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self.engine() {
            Backstore::File(f) => Some(f.path()),
            Backstore::Uring(u) => Some(u.path()),
            #[cfg(feature = "rbd")]
            Backstore::Rbd(r) => Some(r.display_path()),
            _ => None,
        }
    }

    /// The store refuses writes whatever the LUN's setting (an RBD snapshot).
    pub fn readonly(&self) -> bool {
        #[cfg(feature = "rbd")]
        if let Backstore::Rbd(r) = self.engine() {
            return r.readonly();
        }
        false
    }

    /// Whether completed writes may sit in a volatile cache until a flush: what the caching mode
    /// page's WCE should say by default. A file opened O_SYNC is write-through (each write returns
    /// once durable). O_DIRECT alone is not: it skips the page cache, but neither the device's write
    /// cache nor the metadata of a newly allocated block is made durable without a flush, so FUA
    /// and SYNCHRONIZE CACHE still need fdatasync and WCE stays 1.
    pub fn volatile_cache(&self) -> bool {
        #[cfg(feature = "rbd")]
        if let Backstore::Rbd(r) = self.engine() {
            return r.volatile_cache();
        }
        match self.open_flags() {
            Some(flags) => !flags.sync,
            None => true,
        }
    }

    /// The `--bsopts` that reopen this store after a restart, for stores whose options are more than
    /// a size (an RBD image's connection settings); None otherwise.
    pub fn reopen_options(&self) -> Option<&str> {
        #[cfg(feature = "rbd")]
        if let Backstore::Rbd(r) = self.engine() {
            return Some(r.options());
        }
        None
    }

    /// Whether the store allocates on write and deallocates on unmap, so that the LUN is best
    /// offered thin provisioned (an RBD image). Files stay fully provisioned unless asked.
    pub fn thin_provisioned(&self) -> bool {
        #[cfg(feature = "rbd")]
        if let Backstore::Rbd(_) = self.engine() {
            return true;
        }
        false
    }
}

impl BlockStore for Backstore {
    fn size(&self) -> u64 {
        match self {
            Backstore::File(s) => s.size(),
            Backstore::Memory(s) => s.size(),
            Backstore::Null(s) => s.size(),
            Backstore::Uring(s) => s.size(),
            #[cfg(feature = "rbd")]
            Backstore::Rbd(s) => s.size(),
            Backstore::Faulty(s) => s.size(),
        }
    }

    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError> {
        match self {
            Backstore::File(s) => s.read_at(offset, buf).await,
            Backstore::Memory(s) => s.read_at(offset, buf).await,
            Backstore::Null(s) => s.read_at(offset, buf).await,
            Backstore::Uring(s) => s.read_at(offset, buf).await,
            #[cfg(feature = "rbd")]
            Backstore::Rbd(s) => s.read_at(offset, buf).await,
            // Boxed: the wrapped store is itself a `Backstore`, whose future cannot contain itself.
            Backstore::Faulty(s) => Box::pin(s.read_at(offset, buf)).await,
        }
    }

    async fn write_at(&self, offset: u64, buf: &[u8], fua: bool) -> Result<(), BackstoreError> {
        match self {
            Backstore::File(s) => s.write_at(offset, buf, fua).await,
            Backstore::Memory(s) => s.write_at(offset, buf, fua).await,
            Backstore::Null(s) => s.write_at(offset, buf, fua).await,
            Backstore::Uring(s) => s.write_at(offset, buf, fua).await,
            #[cfg(feature = "rbd")]
            Backstore::Rbd(s) => s.write_at(offset, buf, fua).await,
            // Boxed: the wrapped store is itself a `Backstore`, whose future cannot contain itself.
            Backstore::Faulty(s) => Box::pin(s.write_at(offset, buf, fua)).await,
        }
    }

    async fn flush(&self) -> Result<(), BackstoreError> {
        match self {
            Backstore::File(s) => s.flush().await,
            Backstore::Memory(s) => s.flush().await,
            Backstore::Null(s) => s.flush().await,
            Backstore::Uring(s) => s.flush().await,
            #[cfg(feature = "rbd")]
            Backstore::Rbd(s) => s.flush().await,
            // Boxed: the wrapped store is itself a `Backstore`, whose future cannot contain itself.
            Backstore::Faulty(s) => Box::pin(s.flush()).await,
        }
    }

    async fn unmap(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        match self {
            Backstore::File(s) => s.unmap(offset, len).await,
            Backstore::Memory(s) => s.unmap(offset, len).await,
            Backstore::Null(s) => s.unmap(offset, len).await,
            Backstore::Uring(s) => s.unmap(offset, len).await,
            #[cfg(feature = "rbd")]
            Backstore::Rbd(s) => s.unmap(offset, len).await,
            // Boxed: the wrapped store is itself a `Backstore`, whose future cannot contain itself.
            Backstore::Faulty(s) => Box::pin(s.unmap(offset, len)).await,
        }
    }

    async fn write_same(&self, offset: u64, len: u64, pattern: &[u8]) -> Result<(), BackstoreError> {
        #[cfg(feature = "rbd")]
        if let Backstore::Rbd(s) = self {
            return s.write_same(offset, len, pattern).await;
        }
        write_same_by_writes(self, offset, len, pattern).await
    }

    async fn compare_and_write(&self, offset: u64, expected: &[u8], data: &[u8]) -> Result<(), BackstoreError> {
        #[cfg(feature = "rbd")]
        if let Backstore::Rbd(s) = self {
            return s.compare_and_write(offset, expected, data).await;
        }
        compare_then_write(self, offset, expected, data).await
    }

    fn allocation(&self, offset: u64, len: u64) -> Result<(bool, u64), BackstoreError> {
        match self {
            Backstore::File(s) => s.allocation(offset, len),
            #[cfg(feature = "rbd")]
            Backstore::Rbd(s) => s.allocation(offset, len),
            Backstore::Faulty(s) => s.allocation(offset, len),
            // The other engines keep no allocation map.
            _ => Ok((true, len)),
        }
    }

    fn reload_size(&self) -> Result<u64, BackstoreError> {
        match self {
            Backstore::File(s) => s.reload_size(),
            Backstore::Memory(s) => s.reload_size(),
            Backstore::Null(s) => s.reload_size(),
            Backstore::Uring(s) => s.reload_size(),
            #[cfg(feature = "rbd")]
            Backstore::Rbd(s) => s.reload_size(),
            Backstore::Faulty(s) => s.reload_size(),
        }
    }
}

/// Largest piece of a WRITE SAME pattern written at once by the generic path.
const WRITE_SAME_CHUNK: u64 = 1 << 20;

/// WRITE SAME for engines without a native call: the pattern repeated into a buffer of up to
/// `WRITE_SAME_CHUNK` bytes, written piece by piece.
pub async fn write_same_by_writes<S: BlockStore + ?Sized>(
    store: &S,
    offset: u64,
    len: u64,
    pattern: &[u8],
) -> Result<(), BackstoreError> {
    check_range(ErrorKind::Write, offset, len, store.size())?;
    if len == 0 {
        return Ok(());
    }
    if pattern.is_empty() || !len.is_multiple_of(pattern.len() as u64) {
        return Err(BackstoreError::out_of_range(ErrorKind::Write, offset, len));
    }
    let repeats = (WRITE_SAME_CHUNK / pattern.len() as u64).clamp(1, len / pattern.len() as u64) as usize;
    let chunk = pattern.repeat(repeats);
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(chunk.len() as u64) as usize;
        store.write_at(offset + done, &chunk[..n], false).await?;
        done += n as u64;
    }
    Ok(())
}

/// COMPARE AND WRITE for engines without an atomic call: read, compare, write.
pub async fn compare_then_write<S: BlockStore + ?Sized>(
    store: &S,
    offset: u64,
    expected: &[u8],
    data: &[u8],
) -> Result<(), BackstoreError> {
    if expected.len() != data.len() {
        return Err(BackstoreError::BadOption("compare and write buffers differ in length".into()));
    }
    let mut current = vec![0u8; expected.len()];
    store.read_at(offset, &mut current).await?;
    if let Some(at) = current.iter().zip(expected).position(|(a, b)| a != b) {
        return Err(BackstoreError::Miscompare { offset: at as u64 });
    }
    store.write_at(offset, data, false).await
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

#[cfg(test)]
mod generic_path_tests {
    use super::test_util::block_on;
    use super::*;

    #[test]
    fn write_same_and_compare_and_write_without_native_calls() {
        let store = Backstore::Memory(MemoryStore::new(1 << 20));
        block_on(store.write_same(4096, 3 * 512, &[7u8; 512])).unwrap();
        let mut back = vec![0u8; 5 * 512];
        block_on(store.read_at(3584, &mut back)).unwrap();
        assert!(back[..512].iter().all(|&b| b == 0) && back[512..2048].iter().all(|&b| b == 7));
        assert!(back[2048..].iter().all(|&b| b == 0));
        assert!(block_on(store.write_same(0, 700, &[1u8; 512])).is_err(), "not a whole number of patterns");
        let err = block_on(store.compare_and_write(4096, &[7u8; 512], &[9u8; 512])).map(|_| ());
        assert!(err.is_ok());
        let mut expected = [9u8; 512];
        expected[77] = 0;
        let err = block_on(store.compare_and_write(4096, &expected, &[1u8; 512])).unwrap_err();
        assert!(matches!(err, BackstoreError::Miscompare { offset: 77 }), "{err}");
    }
}
