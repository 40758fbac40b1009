//! Exclusive locks on LBA ranges of one logical unit, so that a read-modify-write command
//! (COMPARE AND WRITE, ORWRITE) is atomic with respect to every other write to the same blocks
//! (SBC-4 5.3: no other command may change the blocks between the compare and the write).
//!
//! Every write-class command holds the lock for its range while it touches the store. Ranges that
//! do not overlap never wait for one another, so ordinary traffic to different blocks runs in
//! parallel; overlapping writes run one after the other, in no particular order (the task set is
//! SIMPLE, so any order is allowed). The lock is a future so that waiting never blocks a thread of
//! the transport's runtime.

use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
pub(crate) struct RangeLocks {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Held ranges as `[start, end)` in logical blocks, with the holder's ticket.
    held: Vec<(u64, u64, u64)>,
    next_ticket: u64,
    /// Tasks waiting for some range to be released; all are woken on each release and retry.
    waiting: Vec<Waker>,
}

/// A held range; released on drop.
#[derive(Debug)]
pub(crate) struct RangeGuard<'a> {
    locks: &'a RangeLocks,
    ticket: u64,
}

impl RangeLocks {
    /// Wait until `[lba, lba + blocks)` overlaps no held range, then hold it. A range of zero
    /// blocks is held as one block so that it still orders against writers of that block.
    pub(crate) fn lock(&self, lba: u64, blocks: u64) -> impl Future<Output = RangeGuard<'_>> {
        let end = lba.saturating_add(blocks.max(1));
        Acquire { locks: self, start: lba, end }
    }

    fn try_lock(&self, start: u64, end: u64, cx: &mut Context<'_>) -> Option<RangeGuard<'_>> {
        let mut state = self.state.lock();
        if state.held.iter().any(|&(s, e, _)| s < end && start < e) {
            state.waiting.push(cx.waker().clone());
            return None;
        }
        state.next_ticket += 1;
        let ticket = state.next_ticket;
        state.held.push((start, end, ticket));
        Some(RangeGuard { locks: self, ticket })
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.state.lock().held.len()
    }
}

struct Acquire<'a> {
    locks: &'a RangeLocks,
    start: u64,
    end: u64,
}

impl<'a> Future for Acquire<'a> {
    type Output = RangeGuard<'a>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<RangeGuard<'a>> {
        match self.locks.try_lock(self.start, self.end, cx) {
            Some(guard) => Poll::Ready(guard),
            None => Poll::Pending,
        }
    }
}

impl Drop for RangeGuard<'_> {
    fn drop(&mut self) {
        let waiting = {
            let mut state = self.locks.state.lock();
            state.held.retain(|&(_, _, t)| t != self.ticket);
            std::mem::take(&mut state.waiting)
        };
        // Woken outside the lock: a waker may run its task inline.
        for w in waiting {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn overlapping_ranges_wait_disjoint_do_not() {
        let locks = RangeLocks::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let Poll::Ready(a) = pin!(locks.lock(10, 5)).poll(&mut cx) else { panic!("free range") };
        // Disjoint: [15, 20) and [0, 10).
        let Poll::Ready(b) = pin!(locks.lock(15, 5)).poll(&mut cx) else { panic!("disjoint") };
        let Poll::Ready(c) = pin!(locks.lock(0, 10)).poll(&mut cx) else { panic!("disjoint") };
        assert_eq!(locks.held(), 3);
        let mut waiter = pin!(locks.lock(14, 1));
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
        drop(b);
        drop(c);
        assert!(count.0.load(Ordering::SeqCst) >= 1, "release wakes waiters");
        assert!(waiter.as_mut().poll(&mut cx).is_pending(), "still overlaps a");
        drop(a);
        assert!(waiter.as_mut().poll(&mut cx).is_ready());
    }

    #[test]
    fn zero_blocks_and_end_of_space() {
        let locks = RangeLocks::default();
        let waker = Waker::noop();
        let mut cx = Context::from_waker(waker);
        let Poll::Ready(_a) = pin!(locks.lock(u64::MAX - 1, 5)).poll(&mut cx) else { panic!() };
        assert!(pin!(locks.lock(u64::MAX - 1, 0)).poll(&mut cx).is_pending());
        assert!(pin!(locks.lock(0, 0)).poll(&mut cx).is_ready());
    }
}
