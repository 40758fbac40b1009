//! Data-In without copies: a READ from a page-cache file leaves its data in a kernel pipe
//! (`PagePipe`, filled by the SCSI core), and the writer moves it from the pipe to the socket
//! with splice(2) between the PDU headers it sends with sendmsg. The payload never enters user
//! space: two copies of every byte fewer than pread then writev.
//!
//! Offered only where it cannot change what goes on the wire: a kernel TCP socket, no DataDigest
//! (the digest would need the bytes), and reads of at least `SPLICE_MIN` bytes (below that the
//! copy into a batched writev costs less than the extra system calls). The store decides the
//! rest (`Backstore::read_into_pipe`): other engines, O_DIRECT and injected faults copy.
//!
//! This module owns the connection's pipes and the socket calls; the writer decides what goes
//! where.

use crate::send_timeout::StallWatch;
use parking_lot::Mutex;
use rtgt_scsi::PagePipe;
use std::io::{self, IoSlice};
use std::ops::{Deref, DerefMut};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, Interest};
use tokio::net::TcpStream;

/// iovecs per writev (the kernel's UIO_MAXIOV is 1024): a QD128 batch of small reads, two
/// iovecs per Data-In (header run, payload), goes out in one call.
const MAX_IOVECS: usize = 512;

/// Whether connections splice READ data at all (see `set_splice_reads`).
static SPLICE_READS: AtomicBool = AtomicBool::new(false);

/// Turn splicing of READ data on (or off again) for connections that log in from now on. Off by
/// default: over loopback, where the sender pays for delivering every segment, 128 KiB reads
/// spliced in page-sized fragments moved a third fewer bytes per CPU-second than copied ones
/// (bench/README, "Zero-copy READ Data-In"); tgtd turns it on when told to by
/// `RTGT_SPLICE_READS=on`, to measure it where delivery is a NIC's.
pub fn set_splice_reads(on: bool) {
    SPLICE_READS.store(on, Ordering::Relaxed);
}

pub(crate) fn splice_reads() -> bool {
    SPLICE_READS.load(Ordering::Relaxed)
}

/// Reads shorter than this are copied.
pub(crate) const SPLICE_MIN: usize = 32 * 1024;
/// Pipes one connection may have at once (in flight and kept); past it reads are copied, so a
/// connection cannot take all of the daemon's descriptors.
const PER_CONN: usize = 32;
/// Idle pipes a connection keeps for its next reads (each spares a read pipe2, fcntl and two
/// closes; an idle connection holds this many descriptor pairs).
const KEEP: usize = 8;

/// The writing half of a connection, and the kernel socket under it when there is one.
pub(crate) trait OutStream: AsyncWrite + Unpin {
    /// The TCP socket to splice Data-In into; None for streams that are not one (the fuzz
    /// targets' in-memory pipes), whose connections then copy.
    fn kernel_socket(&self) -> Option<&TcpStream> {
        None
    }
}

impl OutStream for tokio::net::tcp::OwnedWriteHalf {
    fn kernel_socket(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

impl<T: tokio::io::AsyncRead + AsyncWrite> OutStream for tokio::io::WriteHalf<T> {}

/// A connection's pipes.
#[derive(Debug, Default)]
pub(crate) struct PipePool {
    free: Mutex<Vec<ConnPipe>>,
    /// Pipes of this connection alive now, free or in use.
    alive: Arc<AtomicUsize>,
}

/// A pipe counted against its connection's `PER_CONN`.
#[derive(Debug)]
pub(crate) struct ConnPipe {
    pipe: PagePipe,
    alive: Arc<AtomicUsize>,
}

impl Deref for ConnPipe {
    type Target = PagePipe;
    fn deref(&self) -> &PagePipe {
        &self.pipe
    }
}

impl DerefMut for ConnPipe {
    fn deref_mut(&mut self) -> &mut PagePipe {
        &mut self.pipe
    }
}

impl Drop for ConnPipe {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PipePool {
    /// An empty pipe, or None when the connection or the daemon has as many as it may.
    pub fn take(&self) -> Option<ConnPipe> {
        if let Some(p) = self.free.lock().pop() {
            return Some(p);
        }
        if self.alive.fetch_add(1, Ordering::Relaxed) >= PER_CONN {
            self.alive.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        match PagePipe::new() {
            Some(pipe) => Some(ConnPipe { pipe, alive: self.alive.clone() }),
            None => {
                self.alive.fetch_sub(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Keep a pipe for later, emptied first; one that cannot be emptied is closed.
    pub fn give(&self, mut p: ConnPipe) {
        if !p.is_empty() && p.clear().is_err() {
            return;
        }
        let mut free = self.free.lock();
        if free.len() < KEEP {
            free.push(p);
        }
    }

    #[cfg(test)]
    pub fn alive(&self) -> usize {
        self.alive.load(Ordering::Relaxed)
    }
}

/// Send `parts` whole with sendmsg; `more` (MSG_MORE) when spliced data follows at once, so the
/// header and its data leave in the same segments. Fails with `send_timeout::stalled()` when the
/// peer takes no bytes for `stall`.
pub(crate) async fn send_all(sock: &TcpStream, parts: &[&[u8]], more: bool, stall: Duration) -> io::Result<()> {
    let mut at = PartsCursor::default();
    loop {
        // Empty parts (and the ends of parts already sent) take nothing.
        while at.idx < parts.len() && parts[at.idx].len() == at.skip {
            at.idx += 1;
            at.skip = 0;
        }
        if at.idx == parts.len() {
            return Ok(());
        }
        let iov = at.slices(parts);
        let last_call = at.idx + iov.len() == parts.len();
        let flags = libc::MSG_NOSIGNAL | if more || !last_call { libc::MSG_MORE } else { 0 };
        let fd = sock.as_raw_fd();
        let n = io_when_writable(sock, stall, || {
            // SAFETY: an all-zero msghdr is valid (no name, no control data).
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            // IoSlice is ABI compatible with iovec on Unix (std's guarantee); each points into a
            // slice of `parts`, which outlives the call, and sendmsg only reads them.
            msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
            msg.msg_iovlen = iov.len() as _;
            // SAFETY: as above; `fd` is the socket `sock` owns.
            let n = unsafe { libc::sendmsg(fd, &msg, flags) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(n as usize)
        })
        .await?;
        at.advance(parts, n)?;
    }
}

/// How far a vectored write over `parts` has got: the part it stands in, and the bytes of that
/// part already written. Shared by the writer's writev and `send_all`'s sendmsg.
#[derive(Default)]
pub(crate) struct PartsCursor {
    pub(crate) idx: usize,
    pub(crate) skip: usize,
}

impl PartsCursor {
    /// The parts from here, at most `MAX_IOVECS` of them, the first without what was written.
    pub(crate) fn slices<'a>(&self, parts: &[&'a [u8]]) -> Vec<IoSlice<'a>> {
        parts[self.idx..]
            .iter()
            .take(MAX_IOVECS)
            .enumerate()
            .map(|(i, p)| IoSlice::new(if i == 0 { &p[self.skip..] } else { p }))
            .collect()
    }

    /// Move past the `n` bytes one call wrote; a call that wrote nothing is an error.
    pub(crate) fn advance(&mut self, parts: &[&[u8]], mut n: usize) -> io::Result<()> {
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while self.idx < parts.len() && n > 0 {
            let left = parts[self.idx].len() - self.skip;
            if n >= left {
                n -= left;
                self.idx += 1;
                self.skip = 0;
            } else {
                self.skip += n;
                n = 0;
            }
        }
        Ok(())
    }
}

/// Splice `n` bytes of `pipe` into the socket; `more` when more of the batch follows at once.
/// Fails with `send_timeout::stalled()` when the peer takes no bytes for `stall`.
pub(crate) async fn splice_all(
    sock: &TcpStream,
    pipe: &mut PagePipe,
    n: usize,
    more: bool,
    stall: Duration,
) -> io::Result<()> {
    let fd = sock.as_raw_fd();
    let mut left = n;
    while left > 0 {
        let moved = io_when_writable(sock, stall, || pipe.splice_into(fd, left, more)).await?;
        if moved == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        left -= moved;
    }
    Ok(())
}

/// Run a non-blocking socket call, waiting for the socket to take more when it is full; fails with
/// `send_timeout::stalled()` once the peer has taken no bytes for `stall`.
async fn io_when_writable<R>(
    sock: &TcpStream,
    stall: Duration,
    mut call: impl FnMut() -> io::Result<R>,
) -> io::Result<R> {
    // Started when the socket is first found full, so a call with room costs nothing more.
    let mut watch = None;
    loop {
        match sock.try_io(Interest::WRITABLE, &mut call) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let watch = watch.get_or_insert_with(|| StallWatch::start(stall, Some(sock.as_raw_fd())));
                tokio::select! {
                    biased;
                    ready = sock.writable() => ready?,
                    expired = watch.expired() => expired?,
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_holds_at_most_its_share_of_pipes() {
        let pool = PipePool::default();
        let taken: Vec<ConnPipe> = (0..PER_CONN).map(|_| pool.take().expect("a pipe")).collect();
        assert!(pool.take().is_none(), "one past the connection's share");
        assert_eq!(pool.alive(), PER_CONN);
        for p in taken {
            pool.give(p);
        }
        // KEEP are kept, the rest closed; the kept ones come back first.
        assert_eq!(pool.alive(), KEEP);
        let again = pool.take();
        assert!(again.is_some());
        assert_eq!(pool.alive(), KEEP);
        drop(again);
        assert_eq!(pool.alive(), KEEP - 1, "a pipe dropped instead of given back is no longer counted");
    }
}
