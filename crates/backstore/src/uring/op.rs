//! One io_uring operation as a future: admitted at its first poll (or queued until a completion
//! makes room), then submitted, then ready once its completion is reaped.

use super::ring::Ring;
use super::slots::Admission;
use io_uring::squeue;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

enum Stage {
    New(squeue::Entry),
    /// Waiting for admission with this ticket.
    Queued(u64, squeue::Entry),
    /// Owned by the ring, in this slot, until its completion is reaped.
    InRing(usize),
    Finished,
}

pub(super) struct Op<'a> {
    ring: &'a Ring,
    stage: Stage,
}

impl<'a> Op<'a> {
    /// The operation `entry` describes; whatever buffer it points to must stay valid while this
    /// lives (dropping it waits for the kernel).
    pub(super) fn new(ring: &'a Ring, entry: squeue::Entry) -> Self {
        Op { ring, stage: Stage::New(entry) }
    }
}

impl Future for Op<'_> {
    /// The completion's result: bytes moved, or a negated errno.
    type Output = i32;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<i32> {
        let this = self.get_mut();
        let ring = this.ring;
        let i = match std::mem::replace(&mut this.stage, Stage::Finished) {
            Stage::New(entry) => {
                // The guard must go before `start`, which locks the slots again.
                let admission = ring.slots.lock().admit(cx.waker());
                match admission {
                    Admission::Admitted(i) => this.start(i, entry),
                    Admission::Queued(ticket) => {
                        this.stage = Stage::Queued(ticket, entry);
                        return Poll::Pending;
                    }
                }
            }
            Stage::Queued(ticket, entry) => {
                let claimed = ring.slots.lock().claim(ticket, cx.waker());
                match claimed {
                    Some(i) => this.start(i, entry),
                    None => {
                        this.stage = Stage::Queued(ticket, entry);
                        return Poll::Pending;
                    }
                }
            }
            Stage::InRing(i) => {
                this.stage = Stage::InRing(i);
                i
            }
            Stage::Finished => panic!("io_uring operation polled after it completed"),
        };
        let result = ring.slots.lock().take_result(i, cx.waker());
        match result {
            Some(r) => {
                this.stage = Stage::Finished;
                Poll::Ready(r)
            }
            None => Poll::Pending,
        }
    }
}

impl Op<'_> {
    /// Submit the admitted entry in slot `i`; the ring owns it from now on.
    fn start(&mut self, i: usize, entry: squeue::Entry) -> usize {
        self.stage = Stage::InRing(i);
        self.ring.submit(entry.user_data(i as u64));
        // Cached data completes inside the submit call: pick it up without a thread hop.
        self.ring.reap();
        i
    }
}

impl Drop for Op<'_> {
    fn drop(&mut self) {
        match self.stage {
            Stage::Queued(ticket, _) => self.ring.slots.lock().withdraw(ticket),
            // Owned by the ring (the command was aborted): the buffer must outlive the operation,
            // even when its entry still waits for a retried submit.
            Stage::InRing(i) => loop {
                self.ring.retry();
                self.ring.reap();
                if self.ring.slots.lock().take_result(i, Waker::noop()).is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_micros(50));
            },
            Stage::New(_) | Stage::Finished => {}
        }
    }
}
