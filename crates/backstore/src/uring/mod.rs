//! A store on a regular file or block device whose reads, writes and syncs go through io_uring
//! (`--bstype aio`), so a slow device never blocks the thread that runs the command.
//!
//! Design (measured, see bench/README.md): one ring per store, shared by every thread. A command
//! pushes its entry and submits it itself; a read of a cached page completes inside that submit
//! call, so the future is ready at its first poll, like pread, with no thread hop. Completions that
//! wait for the device are signalled on an eventfd; one small thread per store sleeps on it, moves
//! the results into their slots and wakes the futures. (An "async only" eventfd would spare that
//! thread the inline completions, but the kernel posts O_DIRECT completions through task work,
//! which it does not count as async: they would never be signalled.) Dropping a future whose
//! operation is still in the kernel waits for it: the kernel writes into the caller's buffer.
//!
//! Once an entry is queued the ring owns it, its buffer and its slot until its completion is
//! reaped, whatever io_uring_enter answers (ring.rs); no more operations are in flight than the
//! completion queue holds, later ones wait their turn (slots.rs).
//!
//! Unmap and size changes go to the pread/pwrite `FileStore` opened on the same file.

mod op;
mod ring;
mod slots;
#[cfg(test)]
mod tests;

use crate::{check_range, BackstoreError, BlockStore, ErrorKind, FileStore, OpenFlags};
use io_uring::{opcode, types};
use op::Op;
use ring::Ring;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

/// O_DIRECT buffer alignment.
const DIRECT_ALIGN: usize = 4096;

/// A file store whose I/O goes through io_uring.
pub struct UringStore {
    /// The same file through pread/pwrite: size, unmap, and the path and flags shown to users.
    plain: FileStore,
    file: File,
    ring: Arc<Ring>,
    completer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for UringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringStore").field("path", &self.plain.path()).finish()
    }
}

impl UringStore {
    /// Open `path`; fails when the file cannot be opened or the kernel refuses io_uring (then the
    /// caller can use `FileStore`).
    pub fn open(path: &Path, flags: OpenFlags) -> Result<Self, BackstoreError> {
        let plain = FileStore::open(path, flags)?;
        let open_err = |source| BackstoreError::Open { path: path.display().to_string(), source };
        let mut custom = 0;
        if flags.direct {
            custom |= libc::O_DIRECT;
        }
        if flags.sync {
            custom |= libc::O_SYNC;
        }
        let file =
            OpenOptions::new().read(true).write(!flags.readonly).custom_flags(custom).open(path).map_err(open_err)?;
        let ring = Arc::new(Ring::new().map_err(open_err)?);
        let r = ring.clone();
        let completer =
            std::thread::Builder::new().name("io_uring".into()).spawn(move || r.complete_loop()).map_err(open_err)?;
        Ok(UringStore { plain, file, ring, completer: Some(completer) })
    }

    pub fn path(&self) -> &Path {
        self.plain.path()
    }

    pub fn flags(&self) -> OpenFlags {
        self.plain.flags()
    }

    fn fd(&self) -> types::Fd {
        types::Fd(self.file.as_raw_fd())
    }

    /// Read all of `buf` at `offset`, resubmitting after short reads.
    async fn read_exact(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let rest = &mut buf[done..];
            let len = rest.len().min(u32::MAX as usize) as u32;
            let entry = opcode::Read::new(self.fd(), rest.as_mut_ptr(), len).offset(offset + done as u64).build();
            match Op::new(&self.ring, entry).await {
                n if n < 0 => return Err(io::Error::from_raw_os_error(-n)),
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => done += n as usize,
            }
        }
        Ok(())
    }

    async fn write_all(&self, offset: u64, buf: &[u8]) -> io::Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let rest = &buf[done..];
            let len = rest.len().min(u32::MAX as usize) as u32;
            let entry = opcode::Write::new(self.fd(), rest.as_ptr(), len).offset(offset + done as u64).build();
            match Op::new(&self.ring, entry).await {
                n if n < 0 => return Err(io::Error::from_raw_os_error(-n)),
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => done += n as usize,
            }
        }
        Ok(())
    }

    async fn sync_data(&self) -> io::Result<()> {
        let entry = opcode::Fsync::new(self.fd()).flags(types::FsyncFlags::DATASYNC).build();
        match Op::new(&self.ring, entry).await {
            n if n < 0 => Err(io::Error::from_raw_os_error(-n)),
            _ => Ok(()),
        }
    }
}

/// An O_DIRECT bounce buffer: a plain vector with an aligned window of `len` bytes.
fn aligned(len: usize) -> (Vec<u8>, usize) {
    let v = vec![0u8; len + DIRECT_ALIGN];
    let start = v.as_ptr().align_offset(DIRECT_ALIGN);
    (v, start)
}

impl BlockStore for UringStore {
    fn size(&self) -> u64 {
        self.plain.size()
    }

    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError> {
        check_range(ErrorKind::Read, offset, buf.len() as u64, self.size())?;
        let result = if self.flags().direct {
            // Callers' buffers carry no alignment promise.
            let (mut bounce, start) = aligned(buf.len());
            let window = &mut bounce[start..start + buf.len()];
            let r = self.read_exact(offset, window).await;
            buf.copy_from_slice(window);
            r
        } else {
            self.read_exact(offset, buf).await
        };
        result.map_err(|e| BackstoreError::io(ErrorKind::Read, offset, e))
    }

    async fn write_at(&self, offset: u64, buf: &[u8], fua: bool) -> Result<(), BackstoreError> {
        check_range(ErrorKind::Write, offset, buf.len() as u64, self.size())?;
        let result = if self.flags().direct {
            let (mut bounce, start) = aligned(buf.len());
            bounce[start..start + buf.len()].copy_from_slice(buf);
            self.write_all(offset, &bounce[start..start + buf.len()]).await
        } else {
            self.write_all(offset, buf).await
        };
        result.map_err(|e| BackstoreError::io(ErrorKind::Write, offset, e))?;
        // O_SYNC already made the data durable; otherwise FUA needs an explicit data sync.
        if fua && !self.flags().sync {
            self.sync_data().await.map_err(|e| BackstoreError::io(ErrorKind::Flush, offset, e))?;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), BackstoreError> {
        self.sync_data().await.map_err(|e| BackstoreError::io(ErrorKind::Flush, 0, e))
    }

    async fn unmap(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        self.plain.unmap(offset, len).await
    }

    fn reload_size(&self) -> Result<u64, BackstoreError> {
        self.plain.reload_size()
    }
}

impl Drop for UringStore {
    fn drop(&mut self) {
        self.ring.stop();
        if let Some(t) = self.completer.take() {
            let _ = t.join();
        }
    }
}
