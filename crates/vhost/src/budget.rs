//! The data one device holds at once for commands that have not answered yet, in bytes: the
//! data-out copied out of guest memory (the write budget) and the data-in the SCSI core reads for
//! the guest (the read budget, see `read_budget`). The guest alone decides how many requests it
//! queues and how much each transfers, so without a bound every queued WRITE would hold its own
//! copy of up to MAXIMUM TRANSFER LENGTH, and every queued READ its own buffer of that size. A
//! command waits here for room before its data is copied or read; a well-behaved guest only sees
//! it finish later. The same idea as the iSCSI side's budgets, kept in this crate (transports do
//! not import each other, and a device needs none of the per-connection rules of iSCSI's).

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default write budget of one device: four maximum-size writes, or many ordinary ones.
pub const DEFAULT_WRITE_BUDGET: u64 = 256 << 20;

/// Default read budget of one device: four maximum-size reads, or many ordinary ones.
pub const DEFAULT_READ_BUDGET: u64 = 256 << 20;

/// The budget is counted in KiB so that a 64 MiB write is 65536 permits (a u32 count).
const UNIT: u64 = 1024;

#[derive(Debug)]
pub(crate) struct ByteBudget {
    permits: Arc<Semaphore>,
    /// All permits: a command is never asked to wait for more than this.
    units: u64,
}

impl ByteBudget {
    /// A budget of `bytes`, raised to one MAXIMUM TRANSFER LENGTH so a transfer the device accepts
    /// always fits once the others are done.
    pub(crate) fn new(bytes: u64) -> Self {
        let units = bytes.max(u64::from(rtgt_scsi::MAX_TRANSFER_BYTES)).div_ceil(UNIT);
        let units = units.min(Semaphore::MAX_PERMITS as u64);
        ByteBudget { permits: Arc::new(Semaphore::new(units as usize)), units }
    }

    /// Wait until `bytes` may be held; the room comes back when the permit is dropped (the command
    /// answered, or was aborted). Nothing to wait for without data.
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

    /// Bytes held now (rounded up to whole KiB per command).
    pub(crate) fn held_bytes(&self) -> u64 {
        self.units.saturating_sub(self.permits.available_permits() as u64) * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn writes_wait_for_room_and_get_it_back() {
        let budget = Arc::new(ByteBudget::new(DEFAULT_WRITE_BUDGET));
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
        let budget = ByteBudget::new(1 << 20);
        assert_eq!(budget.available_bytes(), u64::from(rtgt_scsi::MAX_TRANSFER_BYTES));
    }
}
