//! Unit attention conditions (SAM-5 5.14, SPC-4 5.15): pending per I_T nexus per logical unit.
//!
//! Each nexus owns its queue. A counter of pending conditions lets the command path skip the lock
//! entirely in the common case of nothing pending.

use crate::sense::Asc;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// More than this many distinct conditions for one nexus are collapsed: the oldest are dropped
/// (SAM-5 5.14 lets a device server report a more general condition instead of several).
const MAX_PENDING: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct UnitAttentions {
    count: AtomicUsize,
    pending: Mutex<Vec<(u64, Asc)>>,
}

/// Power-on and reset conditions (ASC 0x29) take precedence over all others (SAM-5 5.14).
fn is_reset(asc: Asc) -> bool {
    asc.0 == 0x29
}

impl UnitAttentions {
    /// Establish `asc` for `lun`. A reset supersedes every other condition pending for that LUN.
    pub fn add(&self, lun: u64, asc: Asc) {
        let mut pending = self.pending.lock();
        if is_reset(asc) {
            pending.retain(|&(l, _)| l != lun);
        } else if pending.iter().any(|&(l, a)| l == lun && is_reset(a)) {
            // The pending reset already tells the initiator to re-read everything.
            return;
        }
        if pending.iter().any(|&(l, a)| l == lun && a == asc) {
            return;
        }
        if pending.len() >= MAX_PENDING {
            pending.remove(0);
        }
        pending.push((lun, asc));
        self.count.store(pending.len(), Ordering::Release);
    }

    /// Take the condition to report for `lun`, if any.
    pub fn take(&self, lun: u64) -> Option<Asc> {
        if self.count.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut pending = self.pending.lock();
        let at = pending.iter().position(|&(l, _)| l == lun)?;
        let (_, asc) = pending.remove(at);
        self.count.store(pending.len(), Ordering::Release);
        Some(asc)
    }

    /// Drop every condition for `lun` (the LUN was removed).
    pub fn forget(&self, lun: u64) {
        let mut pending = self.pending.lock();
        pending.retain(|&(l, _)| l != lun);
        self.count.store(pending.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_lun_fifo_and_reset_precedence() {
        let ua = UnitAttentions::default();
        assert_eq!(ua.take(0), None);
        ua.add(1, Asc::MODE_PARAMETERS_CHANGED);
        ua.add(1, Asc::CAPACITY_DATA_HAS_CHANGED);
        ua.add(1, Asc::MODE_PARAMETERS_CHANGED);
        ua.add(2, Asc::REPORTED_LUNS_DATA_HAS_CHANGED);
        assert_eq!(ua.take(1), Some(Asc::MODE_PARAMETERS_CHANGED));
        assert_eq!(ua.take(1), Some(Asc::CAPACITY_DATA_HAS_CHANGED));
        assert_eq!(ua.take(1), None);
        ua.add(2, Asc::BUS_DEVICE_RESET_FUNCTION_OCCURRED);
        ua.add(2, Asc::MODE_PARAMETERS_CHANGED);
        assert_eq!(ua.take(2), Some(Asc::BUS_DEVICE_RESET_FUNCTION_OCCURRED));
        assert_eq!(ua.take(2), None);
    }

    #[test]
    fn forget_clears_one_lun() {
        let ua = UnitAttentions::default();
        ua.add(1, Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET);
        ua.add(2, Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET);
        ua.forget(1);
        assert_eq!(ua.take(1), None);
        assert_eq!(ua.take(2), Some(Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET));
    }
}
