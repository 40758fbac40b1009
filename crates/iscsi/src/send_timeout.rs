//! The send timeout (`Registry::send_timeout`): the writer's socket calls give up once the peer
//! has taken no bytes for that long, and the writer then closes the connection. An initiator that
//! reads slowly is never cut, only one that stops reading. Progress is either a call handing the
//! socket some bytes, or, while a call waits for room, the peer acknowledging bytes of the
//! socket's send queue (SIOCOUTQ falls): a socket signals room only once a good part of its buffer
//! has drained, which a slow reader may take longer than the timeout to do. The queue is looked
//! at when the timeout runs out, so a stalled peer is cut after one to two timeouts.
//!
//! This module owns the error that tells such a give-up from the socket's own errors (a TCP
//! retransmission timeout is also `TimedOut`) and the wait itself. Its cost on the hot path is
//! nothing: a call that completes at once arms no timer and makes no system call.

use std::future::Future;
use std::io;
use std::os::fd::RawFd;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// The marker inside the `io::Error` of a call that made no progress within the send timeout.
#[derive(Debug)]
struct Stalled;

impl std::fmt::Display for Stalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the peer took no bytes within the send timeout")
    }
}

impl std::error::Error for Stalled {}

pub(crate) fn stalled() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, Stalled)
}

/// Whether `e` is the send timeout's, not the socket's.
pub(crate) fn is_stall(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Stalled>())
}

/// Bytes in a TCP socket's send queue, sent or not, that the peer has not acknowledged yet; None
/// when the socket cannot tell.
pub(crate) fn unacknowledged(fd: RawFd) -> Option<u32> {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ for a socket) writes one int through the pointer, which points at
    // `queued`; `fd` is a socket the caller holds open.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued) };
    (r == 0).then_some(queued as u32)
}

/// One wait for a socket to take bytes, from the moment it was found full.
pub(crate) struct StallWatch {
    limit: Duration,
    socket: Option<RawFd>,
    deadline: tokio::time::Instant,
    queued: Option<u32>,
}

impl StallWatch {
    /// `socket`: the kernel socket written to, whose send queue tells whether the peer takes
    /// bytes; None for other streams, where only the call completing is progress.
    pub fn start(limit: Duration, socket: Option<RawFd>) -> Self {
        let queued = socket.and_then(unacknowledged);
        StallWatch { limit, socket, deadline: tokio::time::Instant::now() + limit, queued }
    }

    /// Completes at the deadline: Ok(()) with a new deadline if the peer acknowledged bytes since
    /// the last one, `stalled()` if not. The caller keeps waiting for room meanwhile.
    pub async fn expired(&mut self) -> io::Result<()> {
        tokio::time::sleep_until(self.deadline).await;
        match (self.socket.and_then(unacknowledged), self.queued) {
            (Some(now), Some(then)) if now < then => {
                self.queued = Some(now);
                self.deadline = tokio::time::Instant::now() + self.limit;
                Ok(())
            }
            _ => Err(stalled()),
        }
    }
}

/// One write call, which completes as soon as the socket takes some bytes: it fails with
/// `stalled()` once the peer has taken no bytes for `limit` (see `StallWatch`).
pub(crate) async fn progress_within<T>(
    limit: Duration,
    socket: Option<RawFd>,
    call: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    let mut call = pin!(call);
    // The common case: the socket has room, no timer and no ioctl.
    if let Poll::Ready(r) = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await {
        return r;
    }
    let mut watch = StallWatch::start(limit, socket);
    loop {
        tokio::select! {
            biased;
            r = call.as_mut() => return r,
            expired = watch.expired() => expired?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_full_stream_stalls_and_the_error_says_so() {
        let (mut near, _far) = tokio::io::duplex(16);
        progress_within(Duration::from_secs(5), None, near.write_all(&[1; 16])).await.expect("room for 16 bytes");
        let started = tokio::time::Instant::now();
        let e = progress_within(Duration::from_secs(5), None, near.write(&[2; 16])).await.unwrap_err();
        assert!(is_stall(&e), "{e}");
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        // The socket's own timeouts are not the send timeout's.
        assert!(!is_stall(&io::Error::from(io::ErrorKind::TimedOut)));
    }

    #[tokio::test(start_paused = true)]
    async fn each_call_that_makes_progress_has_the_whole_limit() {
        let (mut near, mut far) = tokio::io::duplex(16);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 16];
            let mut got = 0;
            while got < 160 {
                tokio::time::sleep(Duration::from_secs(4)).await;
                got += far.read(&mut buf).await.unwrap();
            }
        });
        let started = tokio::time::Instant::now();
        let mut sent = 0;
        while sent < 160 {
            sent += progress_within(Duration::from_secs(5), None, near.write(&[3; 16])).await.expect("progress");
        }
        assert!(started.elapsed() >= Duration::from_secs(30), "slower than the limit, all in all");
        reader.await.unwrap();
    }
}
