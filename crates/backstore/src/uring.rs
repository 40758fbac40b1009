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
//! Unmap and size changes go to the pread/pwrite `FileStore` opened on the same file.

use crate::{check_range, BackstoreError, BlockStore, ErrorKind, FileStore, OpenFlags};
use io_uring::{opcode, squeue, types, IoUring};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::Duration;

/// Submission queue entries; the completion queue is twice that, and the kernel keeps overflowing
/// completions (IORING_FEAT_NODROP) rather than dropping them.
const RING_ENTRIES: u32 = 256;
/// O_DIRECT buffer alignment.
const DIRECT_ALIGN: usize = 4096;

#[derive(Debug)]
enum Slot {
    Free,
    /// In the kernel; the waker of the future waiting for it, once it had to wait.
    Waiting(Option<Waker>),
    Done(i32),
}

#[derive(Debug, Default)]
struct Slots {
    state: Vec<Slot>,
    free: Vec<usize>,
}

impl Slots {
    fn alloc(&mut self) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.state[i] = Slot::Waiting(None);
                i
            }
            None => {
                self.state.push(Slot::Waiting(None));
                self.state.len() - 1
            }
        }
    }

    fn release(&mut self, i: usize) {
        self.state[i] = Slot::Free;
        self.free.push(i);
    }
}

struct Ring {
    uring: IoUring,
    /// Serialises pushes to the submission queue.
    submit: Mutex<()>,
    /// The operations in flight; its lock also serialises draining the completion queue.
    slots: Mutex<Slots>,
    eventfd: OwnedFd,
    stop: AtomicBool,
}

impl Ring {
    fn new() -> io::Result<Self> {
        let uring = IoUring::new(RING_ENTRIES)?;
        // SAFETY: eventfd takes plain integer arguments; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        uring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        Ok(Ring { uring, submit: Mutex::new(()), slots: Mutex::new(Slots::default()), eventfd, stop: false.into() })
    }

    fn push_and_submit(&self, entry: &squeue::Entry) -> io::Result<()> {
        let _guard = self.submit.lock();
        // SAFETY: the submission queue is only used with `submit` locked. The entry's buffer stays
        // valid until its completion is reaped: `Op` waits for it even when dropped.
        let pushed = unsafe { self.uring.submission_shared().push(entry).is_ok() };
        if !pushed {
            // Full: hand the queued entries to the kernel, then there is room.
            self.uring.submit()?;
            // SAFETY: as above.
            unsafe { self.uring.submission_shared().push(entry) }
                .map_err(|_| io::Error::new(io::ErrorKind::WouldBlock, "io_uring submission queue full"))?;
        }
        self.uring.submit()?;
        Ok(())
    }

    /// Move every completion into its slot and wake the futures that wait for them.
    fn reap(&self) {
        let mut slots = self.slots.lock();
        // SAFETY: the completion queue is only used with `slots` locked.
        let cq = unsafe { self.uring.completion_shared() };
        for cqe in cq {
            let Some(slot) = slots.state.get_mut(cqe.user_data() as usize) else { continue };
            if let Slot::Waiting(Some(waker)) = std::mem::replace(slot, Slot::Done(cqe.result())) {
                waker.wake();
            }
        }
    }

    /// The completion thread: sleep until the kernel finishes something it could not do inline.
    fn complete_loop(&self) {
        let mut count = [0u8; 8];
        while !self.stop.load(Ordering::Acquire) {
            // SAFETY: reads 8 bytes into a local array from a descriptor we own.
            let n = unsafe { libc::read(self.eventfd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
            if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
            self.reap();
        }
    }

    fn wake_completion_thread(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a local array to a descriptor we own.
        unsafe { libc::write(self.eventfd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }
}

/// One operation: submitted at the first poll, ready when its completion is reaped.
struct Op<'a> {
    ring: &'a Ring,
    entry: Option<squeue::Entry>,
    slot: Option<usize>,
}

impl<'a> Op<'a> {
    fn new(ring: &'a Ring, entry: squeue::Entry) -> Self {
        Op { ring, entry: Some(entry), slot: None }
    }

    /// The result if done (the slot is then released), else remember `waker`.
    fn check(&mut self, waker: &Waker) -> Option<i32> {
        let i = self.slot?;
        let mut slots = self.ring.slots.lock();
        match &mut slots.state[i] {
            Slot::Done(r) => {
                let r = *r;
                slots.release(i);
                self.slot = None;
                Some(r)
            }
            Slot::Waiting(w) => {
                if !w.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    *w = Some(waker.clone());
                }
                None
            }
            Slot::Free => None,
        }
    }
}

impl Future for Op<'_> {
    type Output = io::Result<i32>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(entry) = this.entry.take() {
            let i = this.ring.slots.lock().alloc();
            this.slot = Some(i);
            if let Err(e) = this.ring.push_and_submit(&entry.user_data(i as u64)) {
                this.ring.slots.lock().release(i);
                this.slot = None;
                return Poll::Ready(Err(e));
            }
            // Cached data completes inside the submit call: pick it up without a thread hop.
            this.ring.reap();
        }
        match this.check(cx.waker()) {
            Some(r) => Poll::Ready(Ok(r)),
            None if this.slot.is_none() => Poll::Ready(Err(io::Error::other("io_uring operation lost"))),
            None => Poll::Pending,
        }
    }
}

impl Drop for Op<'_> {
    fn drop(&mut self) {
        // Still in the kernel (the command was aborted): the buffer must outlive the operation.
        while self.slot.is_some() {
            self.ring.reap();
            if self.check(Waker::noop()).is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

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
            match Op::new(&self.ring, entry).await? {
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
            match Op::new(&self.ring, entry).await? {
                n if n < 0 => return Err(io::Error::from_raw_os_error(-n)),
                0 => return Err(io::ErrorKind::WriteZero.into()),
                n => done += n as usize,
            }
        }
        Ok(())
    }

    async fn sync_data(&self) -> io::Result<()> {
        let entry = opcode::Fsync::new(self.fd()).flags(types::FsyncFlags::DATASYNC).build();
        match Op::new(&self.ring, entry).await? {
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
        self.ring.stop.store(true, Ordering::Release);
        self.ring.wake_completion_thread();
        if let Some(t) = self.completer.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::block_on;

    fn store(len: u64, flags: OpenFlags) -> (tempfile::NamedTempFile, UringStore) {
        // /var/tmp: a disk filesystem (O_DIRECT works there, not on tmpfs).
        let tmp = tempfile::NamedTempFile::new_in("/var/tmp").unwrap();
        tmp.as_file().set_len(len).unwrap();
        let s = UringStore::open(tmp.path(), flags).unwrap();
        (tmp, s)
    }

    #[test]
    fn reads_back_writes_with_fua_and_flush() {
        let (tmp, s) = store(1 << 20, OpenFlags::default());
        assert_eq!(s.size(), 1 << 20);
        let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        block_on(s.write_at(8192, &data, true)).unwrap();
        let mut back = vec![0u8; data.len()];
        block_on(s.read_at(8192, &mut back)).unwrap();
        assert_eq!(back, data);
        block_on(s.flush()).unwrap();
        let on_disk = std::fs::read(tmp.path()).unwrap();
        assert_eq!(&on_disk[8192..8192 + data.len()], &data[..]);
    }

    #[test]
    fn direct_io_through_the_bounce_buffer() {
        let (_tmp, s) = store(1 << 20, OpenFlags { direct: true, ..OpenFlags::default() });
        let data = vec![0xa5u8; 8192];
        block_on(s.write_at(4096, &data, false)).unwrap();
        let mut back = vec![0u8; 8192];
        block_on(s.read_at(4096, &mut back)).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn many_operations_in_flight_each_get_their_own_result() {
        let (_tmp, s) = store(1 << 20, OpenFlags::default());
        for i in 0..64u64 {
            block_on(s.write_at(i * 4096, &[i as u8; 4096], false)).unwrap();
        }
        // Poll many reads before any is awaited to the end: every slot must carry its own data.
        let mut bufs = vec![vec![0u8; 4096]; 64];
        let mut futs: Vec<_> =
            bufs.iter_mut().enumerate().map(|(i, b)| Box::pin(s.read_at(i as u64 * 4096, b))).collect();
        let mut cx = Context::from_waker(Waker::noop());
        let first: Vec<_> = futs.iter_mut().map(|f| f.as_mut().poll(&mut cx)).collect();
        for (f, p) in futs.into_iter().zip(first) {
            match p {
                Poll::Ready(r) => r.unwrap(),
                Poll::Pending => block_on(f).unwrap(),
            }
        }
        for (i, b) in bufs.iter().enumerate() {
            assert!(b.iter().all(|&x| x == i as u8), "block {i}");
        }
    }

    #[test]
    fn unmap_beyond_end_and_readonly() {
        let (tmp, s) = store(1 << 16, OpenFlags::default());
        block_on(s.write_at(0, &[1u8; 16384], false)).unwrap();
        block_on(s.unmap(4096, 4096)).unwrap();
        let mut back = vec![9u8; 16384];
        block_on(s.read_at(0, &mut back)).unwrap();
        assert!(back[4096..8192].iter().all(|&b| b == 0));
        assert!(back[8192..].iter().all(|&b| b == 1));
        let mut buf = vec![0u8; 512];
        assert!(matches!(block_on(s.read_at(1 << 16, &mut buf)), Err(BackstoreError::OutOfRange { .. })));
        drop(s);
        let ro = UringStore::open(tmp.path(), OpenFlags { readonly: true, ..OpenFlags::default() }).unwrap();
        assert!(block_on(ro.write_at(0, &[0u8; 512], false)).is_err());
        block_on(ro.read_at(0, &mut buf)).unwrap();
        assert_eq!(buf, vec![1u8; 512]);
    }
}
