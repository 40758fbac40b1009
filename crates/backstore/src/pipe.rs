//! A kernel pipe that holds a file's bytes as references to its page-cache pages, for sending
//! them on without a copy: `splice(2)` moves the pages from the file into the pipe (a READ's
//! data-in) and from the pipe into a socket (the transport's Data-In), and the bytes never pass
//! through user space.
//!
//! What the pipe holds are references, not copies: a write to the same blocks after the fill and
//! before the bytes leave the socket may show in what is sent. That is within what a READ running
//! beside an overlapping WRITE may return (the task set is SIMPLE: either order, or a mix, as
//! pread beside pwrite already gives), and the bytes are read no earlier than the command
//! arrived and no later than its status reaches the initiator, which sees the data before the
//! status on the same stream.
//!
//! Pipes cost two descriptors each, so the daemon keeps at most `MAX_LIVE` of them; past that a
//! caller gets none and copies instead.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Pipes alive in the daemon at most (two descriptors each).
pub const MAX_LIVE: usize = 1024;
/// The most a pipe is grown to: the default `/proc/sys/fs/pipe-max-size`, which an unprivileged
/// process may not exceed. Larger reads are copied.
pub const MAX_PIPE_BYTES: usize = 1 << 20;
const PAGE: usize = 4096;

static LIVE: AtomicUsize = AtomicUsize::new(0);

/// A pipe and the number of bytes it holds.
#[derive(Debug)]
pub struct PagePipe {
    rd: OwnedFd,
    wr: OwnedFd,
    /// Bytes the pipe can hold (`F_GETPIPE_SZ`), one page per slot.
    capacity: usize,
    len: usize,
}

/// Why a pipe was not filled and the caller should copy instead.
#[derive(Debug, PartialEq, Eq)]
pub enum FillRefused {
    /// Too large for a pipe, or the kernel would not grow it.
    TooLarge,
    /// The file does not splice (EINVAL), or the pipe filled up before the range did.
    Unsupported,
}

impl PagePipe {
    /// A new empty pipe; `None` when the daemon already has `MAX_LIVE` or the kernel refuses one
    /// (out of descriptors).
    pub fn new() -> Option<Self> {
        if LIVE.fetch_add(1, Ordering::Relaxed) >= MAX_LIVE {
            LIVE.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into the two-element array on success.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if rc != 0 {
            LIVE.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        // SAFETY: both descriptors were just created by pipe2 and are owned by nothing else.
        let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fcntl on a descriptor we own; F_GETPIPE_SZ takes no argument.
        let capacity = unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_GETPIPE_SZ) };
        Some(PagePipe { rd, wr, capacity: capacity.max(0) as usize, len: 0 })
    }

    /// Bytes the pipe holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Pipes alive in the process now.
    pub fn live() -> usize {
        LIVE.load(Ordering::Relaxed)
    }

    /// Make room for `len` more bytes that start anywhere in a page (a range not page-aligned
    /// spans one page more than its length).
    fn reserve(&mut self, len: usize) -> Result<(), FillRefused> {
        let need = (self.len + len).div_ceil(PAGE) * PAGE + PAGE;
        if need <= self.capacity {
            return Ok(());
        }
        if need > MAX_PIPE_BYTES {
            return Err(FillRefused::TooLarge);
        }
        // SAFETY: fcntl on a descriptor we own with an integer argument.
        let got = unsafe { libc::fcntl(self.wr.as_raw_fd(), libc::F_SETPIPE_SZ, need as libc::c_int) };
        if got < 0 {
            return Err(FillRefused::TooLarge);
        }
        self.capacity = got as usize;
        Ok(())
    }

    /// Move `len` bytes of the file `fd` from `offset` into the pipe, by page reference. On
    /// `Ok(Err(_))` the pipe is as it was and the caller copies instead; on `Err` (the file's
    /// error, or its end: `UnexpectedEof`, with the offset reached) the pipe is emptied.
    pub(crate) fn fill_from(
        &mut self,
        fd: RawFd,
        offset: u64,
        len: usize,
    ) -> Result<Result<(), FillRefused>, (u64, io::Error)> {
        if let Err(refused) = self.reserve(len) {
            return Ok(Err(refused));
        }
        let before = self.len;
        let mut done = 0usize;
        while done < len {
            let mut at = (offset + done as u64) as libc::loff_t;
            let start = at as u64;
            // SAFETY: splice between two descriptors we hold; `at` is a local the kernel
            // advances (the file's own position is not used or changed).
            let n = unsafe {
                libc::splice(
                    fd,
                    &mut at,
                    self.wr.as_raw_fd(),
                    std::ptr::null_mut(),
                    len - done,
                    libc::SPLICE_F_NONBLOCK,
                )
            };
            let err = match n {
                n if n > 0 => {
                    done += n as usize;
                    self.len += n as usize;
                    continue;
                }
                0 => io::Error::from(io::ErrorKind::UnexpectedEof),
                _ => io::Error::last_os_error(),
            };
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EINVAL) | Some(libc::EAGAIN) | Some(libc::ENOSYS) => {
                    // Nothing a read would fail on: give back what was moved and copy instead.
                    return match self.discard_to(before) {
                        Ok(()) => Ok(Err(FillRefused::Unsupported)),
                        Err(e) => Err((start, e)),
                    };
                }
                _ => {
                    let _ = self.discard_to(0);
                    return Err((start, err));
                }
            }
        }
        Ok(Ok(()))
    }

    /// Splice up to `max` bytes of the pipe into the socket (or other descriptor) `fd`, once:
    /// the bytes it took, or the error (`WouldBlock` when `fd` is non-blocking and full).
    /// `more` tells the socket that more data follows at once (`SPLICE_F_MORE`), so it does not
    /// push a partial segment.
    pub fn splice_into(&mut self, fd: RawFd, max: usize, more: bool) -> io::Result<usize> {
        let want = max.min(self.len);
        if want == 0 {
            return Ok(0);
        }
        let flags = libc::SPLICE_F_NONBLOCK | if more { libc::SPLICE_F_MORE } else { 0 };
        // SAFETY: splice between two descriptors; no user memory is involved.
        let n =
            unsafe { libc::splice(self.rd.as_raw_fd(), std::ptr::null_mut(), fd, std::ptr::null_mut(), want, flags) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        self.len -= (n as usize).min(self.len);
        Ok(n as usize)
    }

    /// Copy `n` bytes out of the pipe, appending them to `out` (for a connection that cannot
    /// splice, or one whose data must be digested).
    pub fn read_into(&mut self, out: &mut Vec<u8>, n: usize) -> io::Result<()> {
        let n = n.min(self.len);
        out.reserve(n);
        let mut left = n;
        while left > 0 {
            let spare = &mut out.spare_capacity_mut()[..left];
            // SAFETY: read writes at most `spare.len()` bytes into memory we borrow mutably;
            // MaybeUninit<u8> has u8's layout.
            let got = unsafe { libc::read(self.rd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
            if got < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if got == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let got = got as usize;
            // SAFETY: the kernel initialized `got` bytes of the spare capacity.
            unsafe { out.set_len(out.len() + got) };
            left -= got;
            self.len -= got;
        }
        Ok(())
    }

    /// Drop what the pipe holds, so it can be used again.
    pub fn clear(&mut self) -> io::Result<()> {
        self.discard_to(0)
    }

    /// Read and drop bytes until the pipe holds `keep`.
    fn discard_to(&mut self, keep: usize) -> io::Result<()> {
        let mut sink = [0u8; 16 * 1024];
        while self.len > keep {
            let n = (self.len - keep).min(sink.len());
            // SAFETY: read into a local buffer of at least `n` bytes.
            let got = unsafe { libc::read(self.rd.as_raw_fd(), sink.as_mut_ptr().cast(), n) };
            match got {
                g if g > 0 => self.len -= g as usize,
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                _ => {
                    let e = io::Error::last_os_error();
                    if e.kind() != io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
            }
        }
        Ok(())
    }
}

impl Drop for PagePipe {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_of(bytes: &[u8]) -> std::fs::File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn a_fill_holds_the_file_bytes_and_reads_back_in_order() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let f = file_of(&data);
        let mut p = PagePipe::new().unwrap();
        // Not page-aligned, longer than the default 64 KiB pipe.
        p.fill_from(f.as_raw_fd(), 1000, 150_000).unwrap().unwrap();
        assert_eq!(p.len(), 150_000);
        let mut out = Vec::new();
        p.read_into(&mut out, 100).unwrap();
        p.read_into(&mut out, 149_900).unwrap();
        assert_eq!(out, &data[1000..151_000]);
        assert!(p.is_empty());
    }

    #[test]
    fn the_end_of_the_file_is_an_error_and_leaves_the_pipe_empty() {
        let f = file_of(&[7u8; 10_000]);
        let mut p = PagePipe::new().unwrap();
        let (at, e) = p.fill_from(f.as_raw_fd(), 4096, 8192).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(at, 10_000);
        assert!(p.is_empty());
        // Still usable.
        p.fill_from(f.as_raw_fd(), 0, 4096).unwrap().unwrap();
        assert_eq!(p.len(), 4096);
    }

    #[test]
    fn too_large_a_range_is_refused_untouched() {
        let f = file_of(&[1u8; 4096]);
        let mut p = PagePipe::new().unwrap();
        assert_eq!(p.fill_from(f.as_raw_fd(), 0, MAX_PIPE_BYTES).unwrap(), Err(FillRefused::TooLarge));
        assert!(p.is_empty());
    }

    #[test]
    fn splice_into_a_pipe_moves_part_and_clear_drops_the_rest() {
        let data: Vec<u8> = (0..16384u32).map(|i| i as u8).collect();
        let f = file_of(&data);
        let mut p = PagePipe::new().unwrap();
        p.fill_from(f.as_raw_fd(), 0, 16384).unwrap().unwrap();
        let mut q = PagePipe::new().unwrap();
        let n = p.splice_into(q.wr.as_raw_fd(), 5000, false).unwrap();
        assert_eq!(n, 5000);
        q.len = n;
        let mut out = Vec::new();
        q.read_into(&mut out, n).unwrap();
        assert_eq!(out, &data[..5000]);
        p.clear().unwrap();
        assert!(p.is_empty());
        p.fill_from(f.as_raw_fd(), 8192, 10).unwrap().unwrap();
        out.clear();
        p.read_into(&mut out, 10).unwrap();
        assert_eq!(out, &data[8192..8202], "nothing of the first fill is left");
    }
}
