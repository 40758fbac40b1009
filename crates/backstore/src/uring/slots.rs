//! The operations a ring holds, and the admission queue that bounds how many it holds at once.
//!
//! An operation is admitted before its entry reaches the submission queue and counts as in
//! flight until its completion is reaped. No more operations are in flight than the completion
//! queue has entries, so the kernel never has a completion it cannot post (we do not lean on
//! IORING_FEAT_NODROP, whose overflow list needs an extra enter to drain). Operations beyond
//! that wait in a first-come queue; each reaped completion hands its place straight to the
//! oldest waiter, so a newcomer cannot overtake it.

use std::collections::{HashSet, VecDeque};
use std::task::Waker;

#[derive(Debug)]
enum Slot {
    Free,
    /// Admitted and not reaped yet; the waker of the future waiting for it, once it had to wait.
    Waiting(Option<Waker>),
    /// Reaped; the result waits for its future to collect it.
    Done(i32),
}

/// The outcome of asking for admission.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Admission {
    /// In flight: the slot whose index is the entry's user_data.
    Admitted(usize),
    /// Waiting behind others, with this ticket.
    Queued(u64),
}

#[derive(Debug)]
pub(super) struct Slots {
    state: Vec<Slot>,
    free: Vec<usize>,
    /// Operations admitted whose completion has not been reaped (including places handed to
    /// waiters not yet claimed).
    in_flight: usize,
    limit: usize,
    high_water: usize,
    /// Tickets waiting for admission, oldest (smallest) first.
    queue: VecDeque<(u64, Waker)>,
    /// Tickets given a place by a completion, not yet claimed by their operation.
    granted: HashSet<u64>,
    next_ticket: u64,
}

impl Slots {
    pub(super) fn new(limit: usize) -> Self {
        Slots {
            state: Vec::new(),
            free: Vec::new(),
            in_flight: 0,
            limit: limit.max(1),
            high_water: 0,
            queue: VecDeque::new(),
            granted: HashSet::new(),
            next_ticket: 0,
        }
    }

    /// Admit a new operation, or queue it (behind any already waiting) and wake it when it has
    /// a place.
    pub(super) fn admit(&mut self, waker: &Waker) -> Admission {
        if self.in_flight < self.limit && self.queue.is_empty() {
            self.in_flight += 1;
            self.high_water = self.high_water.max(self.in_flight);
            return Admission::Admitted(self.alloc());
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.queue.push_back((ticket, waker.clone()));
        Admission::Queued(ticket)
    }

    /// For a queued operation: its slot once a completion gave it a place; otherwise `waker` is
    /// the one to wake.
    pub(super) fn claim(&mut self, ticket: u64, waker: &Waker) -> Option<usize> {
        if self.granted.remove(&ticket) {
            return Some(self.alloc());
        }
        if let Ok(at) = self.queue.binary_search_by_key(&ticket, |(t, _)| *t) {
            let w = &mut self.queue[at].1;
            if !w.will_wake(waker) {
                *w = waker.clone();
            }
        }
        None
    }

    /// A queued operation given up (its future dropped): a place it was handed goes on.
    pub(super) fn withdraw(&mut self, ticket: u64) {
        if self.granted.remove(&ticket) {
            self.pass_on();
        } else if let Ok(at) = self.queue.binary_search_by_key(&ticket, |(t, _)| *t) {
            self.queue.remove(at);
        }
    }

    /// The kernel finished the operation in slot `i`: its place goes to the oldest waiter.
    pub(super) fn complete(&mut self, i: usize, result: i32) {
        let Some(slot) = self.state.get_mut(i) else { return };
        let Slot::Waiting(waker) = slot else { return };
        let waker = waker.take();
        *slot = Slot::Done(result);
        self.pass_on();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The result of slot `i` (the slot is then free for reuse), or None while the kernel still
    /// has it; then `waker` is the one to wake.
    pub(super) fn take_result(&mut self, i: usize, waker: &Waker) -> Option<i32> {
        match &mut self.state[i] {
            Slot::Done(r) => {
                let r = *r;
                self.state[i] = Slot::Free;
                self.free.push(i);
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

    #[cfg(test)]
    pub(super) fn limit(&self) -> usize {
        self.limit
    }

    #[cfg(test)]
    pub(super) fn high_water(&self) -> usize {
        self.high_water
    }

    /// One place given up: to the oldest waiter if any, else back to the pool.
    fn pass_on(&mut self) {
        match self.queue.pop_front() {
            Some((ticket, waker)) => {
                self.granted.insert(ticket);
                waker.wake();
            }
            None => self.in_flight -= 1,
        }
    }

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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_go_to_the_oldest_waiter_and_a_withdrawn_place_is_passed_on() {
        let w = Waker::noop();
        let mut s = Slots::new(2);
        let (Admission::Admitted(a), Admission::Admitted(b)) = (s.admit(w), s.admit(w)) else { panic!() };
        let (Admission::Queued(t1), Admission::Queued(t2), Admission::Queued(t3)) =
            (s.admit(w), s.admit(w), s.admit(w))
        else {
            panic!("admitted past the limit")
        };
        assert_eq!(s.claim(t1, w), None);
        s.complete(a, 7);
        // The place is t1's, not a newcomer's.
        assert!(matches!(s.admit(w), Admission::Queued(_)));
        assert_eq!(s.claim(t2, w), None);
        let c = s.claim(t1, w).expect("t1 was handed the place");
        assert_eq!(s.take_result(a, w), Some(7));
        s.complete(b, 8);
        // t2 gives up its place: t3 gets it.
        s.withdraw(t2);
        assert!(s.claim(t3, w).is_some());
        assert_eq!(s.take_result(c, w), None, "still in the kernel");
        assert_eq!(s.high_water(), 2);
    }
}
