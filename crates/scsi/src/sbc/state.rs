//! What a disk keeps beside the state every logical unit has: the LBA range locks of its writes,
//! the nexuses preventing medium removal, the outcomes of EXTENDED COPY for RECEIVE COPY RESULTS,
//! the rate limit of its backing-store failure log and the state of SANITIZE.

use crate::removal_prevention::RemovalPrevention;
use crate::spc::copy_outcome::CopyOutcome;
use parking_lot::Mutex;

/// EXTENDED COPY results kept per unit for RECEIVE COPY RESULTS.
const MAX_COPY_RESULTS: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct DiskState {
    /// Held by every write for its blocks (see `range_lock`).
    range_locks: crate::range_lock::RangeLocks,
    /// Nexus ids with PREVENT ALLOW MEDIUM REMOVAL in effect.
    prevent: RemovalPrevention,
    /// EXTENDED COPY outcomes by (nexus id, list identifier).
    copies: Mutex<Vec<(u64, u8, CopyOutcome)>>,
    /// Rate limit of the backing-store failure log.
    medium_errors: crate::error_log::ErrorLog,
    /// Whether a SANITIZE runs and how the last one ended.
    sanitize: super::sanitize_state::SanitizeState,
}

impl DiskState {
    pub fn range_locks(&self) -> &crate::range_lock::RangeLocks {
        &self.range_locks
    }

    pub fn medium_errors(&self) -> &crate::error_log::ErrorLog {
        &self.medium_errors
    }

    pub fn sanitize(&self) -> &super::sanitize_state::SanitizeState {
        &self.sanitize
    }

    /// Remember the outcome of an EXTENDED COPY for RECEIVE COPY RESULTS (per nexus and list
    /// identifier; the oldest are forgotten past a bound).
    pub fn record_copy(&self, nexus_id: u64, list_id: u8, result: CopyOutcome) {
        let mut copies = self.copies.lock();
        copies.retain(|(n, l, _)| (*n, *l) != (nexus_id, list_id));
        if copies.len() >= MAX_COPY_RESULTS {
            copies.remove(0);
        }
        copies.push((nexus_id, list_id, result));
    }

    pub fn copy_result(&self, nexus_id: u64, list_id: u8) -> Option<CopyOutcome> {
        self.copies.lock().iter().find(|(n, l, _)| (*n, *l) == (nexus_id, list_id)).map(|(_, _, r)| *r)
    }

    pub fn set_prevent(&self, nexus_id: u64, prevent: bool) {
        self.prevent.set(nexus_id, prevent);
    }

    pub fn removal_prevented(&self) -> bool {
        self.prevent.is_prevented()
    }

    /// The nexus is gone: its prevention and copy results go with it (SBC-3 5.13).
    pub fn forget_nexus(&self, nexus_id: u64) {
        self.set_prevent(nexus_id, false);
        self.copies.lock().retain(|(n, _, _)| *n != nexus_id);
    }

    /// Logical unit reset (SAM-5 6.6): medium removal prevention is cleared.
    pub fn reset(&self) {
        self.prevent.clear();
    }
}
