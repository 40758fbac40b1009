//! One io_uring and what it holds: the submission path, which never gives an entry back once
//! it is queued, and the completion thread.
//!
//! An entry pushed to the submission queue belongs to the kernel from then on, whatever
//! io_uring_enter answers: an error means the kernel took none of the queued entries *in that
//! call*, but they stay in the ring and a later enter hands them over. So the submit path never
//! fails an operation: entries that do not fit the submission queue wait in a backlog, and an
//! enter that says "not now" (EBUSY, EAGAIN, EINTR, or anything else) is retried, by the next
//! submit or by the completion thread within `RETRY_INTERVAL_MS`. The operation's buffer and
//! slot stay owned until its completion is reaped.

use super::slots::Slots;
use io_uring::{squeue, IoUring};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

/// Submission queue entries; the kernel makes the completion queue twice that, and that many
/// operations may be in flight at once (see `slots`).
const RING_ENTRIES: u32 = 256;
/// How soon refused entries are offered again when nothing else submits.
const RETRY_INTERVAL_MS: i32 = 1;
/// Enters tried in a row before a refusal is left to the retry timer.
const ENTER_TRIES: u32 = 4;

pub(super) struct Ring {
    uring: IoUring,
    /// Admitted entries that did not fit the submission queue yet, oldest first. Its lock also
    /// serialises pushing to the submission queue and entering the kernel.
    backlog: Mutex<VecDeque<squeue::Entry>>,
    /// The operations in flight; its lock also serialises draining the completion queue.
    pub(super) slots: Mutex<Slots>,
    /// Entries wait for a retry (in the backlog or the submission queue): the kernel said not now.
    stalled: AtomicBool,
    eventfd: OwnedFd,
    stop: AtomicBool,
    /// Errors the next enters report instead of entering (a test's stand-in for a busy kernel).
    #[cfg(test)]
    refused: Mutex<VecDeque<i32>>,
}

impl Ring {
    pub(super) fn new() -> io::Result<Self> {
        let uring = IoUring::new(RING_ENTRIES)?;
        let limit = uring.params().cq_entries() as usize;
        // SAFETY: eventfd takes plain integer arguments; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh descriptor that nothing else owns.
        let eventfd = unsafe { OwnedFd::from_raw_fd(fd) };
        uring.submitter().register_eventfd(eventfd.as_raw_fd())?;
        Ok(Ring {
            uring,
            backlog: Mutex::new(VecDeque::new()),
            slots: Mutex::new(Slots::new(limit)),
            stalled: false.into(),
            eventfd,
            stop: false.into(),
            #[cfg(test)]
            refused: Mutex::new(VecDeque::new()),
        })
    }

    /// Hand an admitted entry (its user_data names its slot) to the kernel. From here the ring
    /// owns it until its completion is reaped: nothing here can fail it.
    pub(super) fn submit(&self, entry: squeue::Entry) {
        let mut backlog = self.backlog.lock();
        backlog.push_back(entry);
        self.flush(&mut backlog);
    }

    /// Offer refused entries to the kernel again.
    pub(super) fn retry(&self) {
        if self.stalled.load(Ordering::Acquire) {
            self.flush(&mut self.backlog.lock());
        }
    }

    /// Move the backlog into the submission queue and enter the kernel until everything queued
    /// is taken or the kernel says not now; then the entries stay and `stalled` asks for a retry.
    fn flush(&self, backlog: &mut VecDeque<squeue::Entry>) {
        let mut tries = 0;
        loop {
            // SAFETY: the submission queue is only used with `backlog` locked. Each entry's buffer
            // stays valid until its completion is reaped: `Op` waits for it even when dropped.
            let queued = unsafe {
                let mut sq = self.uring.submission_shared();
                while let Some(entry) = backlog.front() {
                    if sq.push(entry).is_err() {
                        break;
                    }
                    backlog.pop_front();
                }
                sq.len()
            };
            if queued == 0 {
                self.stalled.store(false, Ordering::Release);
                return;
            }
            tries += 1;
            match self.enter() {
                // Some taken: room for more of the backlog.
                Ok(n) if n > 0 => tries = 0,
                // The completion queue is full of completions the kernel could not post: make room.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => self.reap(),
                // Interrupted, out of memory for requests (EAGAIN), or a fault we cannot cure here:
                // the entries are still in the ring, so they are offered again, never given back.
                Ok(_) | Err(_) => {}
            }
            if tries >= ENTER_TRIES {
                break;
            }
        }
        if !self.stalled.swap(true, Ordering::AcqRel) {
            // The completion thread may be asleep with no timeout: let it start the retry timer.
            self.wake_completion_thread();
        }
    }

    fn enter(&self) -> io::Result<usize> {
        #[cfg(test)]
        if let Some(errno) = self.refused.lock().pop_front() {
            return Err(io::Error::from_raw_os_error(errno));
        }
        self.uring.submit()
    }

    /// Move every completion into its slot and wake the futures that wait for them.
    pub(super) fn reap(&self) {
        let mut slots = self.slots.lock();
        // SAFETY: the completion queue is only used with `slots` locked.
        let cq = unsafe { self.uring.completion_shared() };
        for cqe in cq {
            slots.complete(cqe.user_data() as usize, cqe.result());
        }
    }

    /// The completion thread: sleep until the kernel finishes something it could not do inline,
    /// or, while entries wait for a retry, until the retry interval passes.
    pub(super) fn complete_loop(&self) {
        let mut count = [0u8; 8];
        while !self.stop.load(Ordering::Acquire) {
            if self.stalled.load(Ordering::Acquire) {
                let mut pfd = libc::pollfd { fd: self.eventfd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                // SAFETY: polls one pollfd that lives on this stack frame.
                let n = unsafe { libc::poll(&mut pfd, 1, RETRY_INTERVAL_MS) };
                if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break;
                }
                if n > 0 {
                    // SAFETY: reads 8 bytes into a local array from a descriptor we own; it is
                    // readable, and only this thread reads it, so this does not block.
                    unsafe { libc::read(self.eventfd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
                }
            } else {
                // SAFETY: reads 8 bytes into a local array from a descriptor we own.
                let n = unsafe { libc::read(self.eventfd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
                if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break;
                }
            }
            self.retry();
            self.reap();
        }
    }

    pub(super) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake_completion_thread();
    }

    fn wake_completion_thread(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a local array to a descriptor we own.
        unsafe { libc::write(self.eventfd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
    }

    /// Make the next enters fail with these errors, one each, without entering the kernel.
    #[cfg(test)]
    pub(super) fn refuse_submits(&self, errnos: &[i32]) {
        self.refused.lock().extend(errnos);
    }

    #[cfg(test)]
    pub(super) fn refusals_left(&self) -> usize {
        self.refused.lock().len()
    }

    #[cfg(test)]
    pub(super) fn in_flight_limit(&self) -> usize {
        self.slots.lock().limit()
    }

    /// The most operations ever in flight at once.
    #[cfg(test)]
    pub(super) fn in_flight_high_water(&self) -> usize {
        self.slots.lock().high_water()
    }
}
