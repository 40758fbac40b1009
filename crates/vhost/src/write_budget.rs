//! The write data one device holds at once: data-out copied out of guest memory for commands that
//! have not answered yet. The guest alone decides how many requests it queues (up to QUEUE_SIZE per
//! request queue, more with indirect descriptors) and how much data-out each carries, so without a
//! bound every queued WRITE would hold its own copy of up to MAXIMUM TRANSFER LENGTH. A command
//! waits here for room before its data is copied; a well-behaved guest only sees it finish later.
//! The same idea as the iSCSI side's write budget, kept in this crate (transports do not import
//! each other).

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default budget of one device: four maximum-size writes, or many ordinary ones.
pub const DEFAULT_WRITE_BUDGET: u64 = 256 << 20;

/// The budget is counted in KiB so that a 64 MiB write is 65536 permits (a u32 count).
const UNIT: u64 = 1024;

#[derive(Debug)]
pub(crate) struct WriteBudget {
    permits: Arc<Semaphore>,
    /// All permits: a command is never asked to wait for more than this.
    units: u64,
}

impl WriteBudget {
    /// A budget of `bytes`, raised to one MAXIMUM TRANSFER LENGTH so a write the device accepts
    /// always fits once the others are done.
    pub(crate) fn new(bytes: u64) -> Self {
        let units = bytes.max(u64::from(rtgt_scsi::MAX_TRANSFER_BYTES)).div_ceil(UNIT);
        let units = units.min(Semaphore::MAX_PERMITS as u64);
        WriteBudget { permits: Arc::new(Semaphore::new(units as usize)), units }
    }

    /// Wait until `bytes` of data-out may be held; the room comes back when the permit is dropped
    /// (the command answered, or was aborted). Nothing to wait for without data-out.
    pub(crate) async fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        if bytes == 0 {
            return None;
        }
        let units = (bytes as u64).div_ceil(UNIT).min(self.units);
        // u32: units <= MAX_TRANSFER_BYTES / UNIT for what callers pass, and min(self.units).
        let units = u32::try_from(units).unwrap_or(u32::MAX);
        // The semaphore is never closed, so acquiring only ends with a permit.
        self.permits.clone().acquire_many_owned(units).await.ok()
    }

    #[cfg(test)]
    fn available_bytes(&self) -> u64 {
        self.permits.available_permits() as u64 * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn writes_wait_for_room_and_get_it_back() {
        let budget = Arc::new(WriteBudget::new(DEFAULT_WRITE_BUDGET));
        assert_eq!(budget.available_bytes(), DEFAULT_WRITE_BUDGET);
        assert!(budget.reserve(0).await.is_none(), "no data-out holds nothing");
        // Four maximum-size writes fill it; a fifth (even a 1-byte one) waits.
        let max = rtgt_scsi::MAX_TRANSFER_BYTES as usize;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(budget.reserve(max).await.unwrap());
        }
        assert_eq!(budget.available_bytes(), 0);
        let waiting = tokio::spawn({
            let budget = budget.clone();
            async move { budget.reserve(1).await.map(|p| p.num_permits()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a write past the budget waits");
        held.pop();
        assert_eq!(waiting.await.unwrap(), Some(1), "a 1-byte write holds one KiB unit");
        drop(held);
        assert_eq!(budget.available_bytes(), DEFAULT_WRITE_BUDGET);
    }

    #[test]
    fn a_budget_below_one_maximum_write_is_raised() {
        let budget = WriteBudget::new(1 << 20);
        assert_eq!(budget.available_bytes(), u64::from(rtgt_scsi::MAX_TRANSFER_BYTES));
    }
}
