//! The read data one device holds at once: the data-in buffers the SCSI core allocates and fills
//! for a guest's commands, from before the core runs a command until its answer is in guest memory.
//! The size is the CDB's (`Target::data_in_bound`), already no larger than the guest's writable
//! room (a larger READ is answered OVERRUN without running, see `request_queue`). That room alone
//! bounds nothing: a guest may point any number of writable descriptors at one region of its
//! memory, so each of its READs may ask for a full MAXIMUM TRANSFER LENGTH. A command whose data-in
//! may be large waits here for room in the device's byte budget, before its buffer is allocated;
//! it never fails for lack of room, and one READ always fits once the others are done (the budget
//! is at least one MAXIMUM TRANSFER LENGTH). The room comes back when the command's future drops:
//! after its answer is written, or when it is aborted (task management) or lost with its
//! connection (device reset, VMM gone), since aborting the task drops the future.
//!
//! Reads below `SMALL_READ` skip the byte budget: no semaphore for the ordinary 4-128 KiB READ.
//! Their count bounds what they hold. A well-behaved guest cannot have more requests in flight than
//! its virtqueues hold descriptors, but a hostile one can: it may make an available-ring entry of a
//! chain the device has not answered yet, again and again. So only `UNCOUNTED_SMALL_READS` small
//! reads at a time skip the budget (one atomic counter, no lock); past that they take the budget
//! like large ones, which only a guest with more than that many small reads in flight would notice.

use crate::budget::ByteBudget;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::OwnedSemaphorePermit;

/// Commands whose data-in bound is below this may skip the byte budget (see the module comment).
pub(crate) const SMALL_READ: u64 = 256 << 10;

/// Small reads that may be in flight at once without taking the byte budget: at most 256 MiB held
/// by them. Linux's virtio_scsi keeps at most its queue depth (128 per LUN by default) in flight
/// per LUN, so a guest reaches this only with many busy LUNs, and then waits no more than any
/// large READ does.
pub(crate) const UNCOUNTED_SMALL_READS: usize = 1024;

#[derive(Debug)]
pub(crate) struct ReadBudget {
    bytes: ByteBudget,
    small: AtomicUsize,
}

/// What a command holds of the read budget until it drops: nothing (no data-in sized by the CDB),
/// a place among the uncounted small reads, or room in the byte budget.
#[derive(Debug, Default)]
pub(crate) struct ReadHold<'a> {
    _small: Option<SmallRead<'a>>,
    _bytes: Option<OwnedSemaphorePermit>,
}

#[cfg(test)]
impl ReadHold<'_> {
    fn is_small(&self) -> bool {
        self._small.is_some()
    }

    fn counted(&self) -> bool {
        self._bytes.is_some()
    }
}

#[derive(Debug)]
pub(crate) struct SmallRead<'a>(&'a AtomicUsize);

impl Drop for SmallRead<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ReadBudget {
    pub(crate) fn new(bytes: u64) -> Self {
        ReadBudget { bytes: ByteBudget::new(bytes), small: AtomicUsize::new(0) }
    }

    /// Wait until a command whose data-in is at most `bound` bytes may run.
    pub(crate) async fn reserve(&self, bound: u64) -> ReadHold<'_> {
        if bound == 0 {
            return ReadHold::default();
        }
        if bound < SMALL_READ {
            if self.small.fetch_add(1, Ordering::Relaxed) < UNCOUNTED_SMALL_READS {
                return ReadHold { _small: Some(SmallRead(&self.small)), _bytes: None };
            }
            self.small.fetch_sub(1, Ordering::Relaxed);
        }
        // Bounds never exceed MAXIMUM TRANSFER LENGTH (`data_in_bound`), so they fit a usize.
        let bytes = usize::try_from(bound).unwrap_or(usize::MAX);
        ReadHold { _small: None, _bytes: self.bytes.reserve(bytes).await }
    }

    /// Read data held against the byte budget now (small reads that skip it are not counted).
    pub(crate) fn held_bytes(&self) -> u64 {
        self.bytes.held_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::DEFAULT_READ_BUDGET;
    use std::sync::Arc;
    use std::time::Duration;

    const MAX: u64 = rtgt_scsi::MAX_TRANSFER_BYTES as u64;

    #[tokio::test]
    async fn large_reads_wait_for_room_and_give_it_back() {
        let budget = Arc::new(ReadBudget::new(DEFAULT_READ_BUDGET));
        let none = budget.reserve(0).await;
        assert!(!none.is_small() && !none.counted());
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(budget.reserve(MAX).await);
        }
        assert_eq!(budget.held_bytes(), DEFAULT_READ_BUDGET);
        // A fifth waits, even a 256 KiB one; a small one does not.
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(SMALL_READ).await.counted() }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a read past the budget waits");
        assert!(budget.reserve(SMALL_READ - 1).await.is_small());
        held.pop();
        assert!(waiting.await.unwrap(), "the waiting read got its room");
        drop(held);
        assert_eq!(budget.held_bytes(), 0);
    }

    #[tokio::test]
    async fn small_reads_past_their_count_take_the_budget() {
        let budget = ReadBudget::new(DEFAULT_READ_BUDGET);
        let mut small = Vec::new();
        for _ in 0..UNCOUNTED_SMALL_READS {
            small.push(budget.reserve(4096).await);
        }
        assert!(small.iter().all(ReadHold::is_small));
        assert_eq!(budget.held_bytes(), 0);
        let counted = budget.reserve(4096).await;
        assert!(counted.counted());
        assert_eq!(budget.held_bytes(), 4096);
        // One uncounted read ends: the next small read skips the budget again.
        small.pop();
        assert!(budget.reserve(4096).await.is_small());
        drop((small, counted));
        assert_eq!((budget.held_bytes(), budget.small.load(Ordering::Relaxed)), (0, 0));
    }
}
