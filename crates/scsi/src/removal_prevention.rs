//! Who prevents medium removal on a logical unit (PREVENT ALLOW MEDIUM REMOVAL, SPC-4 6.13; its
//! effect per device type in SBC-3, MMC-6, SSC-3 and SMC-3). Removal stays prevented while any
//! I_T nexus that asked for it has not allowed it again; a logical unit reset clears every
//! request, and a nexus that is gone takes its own with it.

use parking_lot::Mutex;

/// The nexuses (by id) whose PREVENT is in force; one entry each however often they asked.
#[derive(Debug, Default)]
pub(crate) struct RemovalPrevention(Mutex<Vec<u64>>);

impl RemovalPrevention {
    /// Record PREVENT (true) or ALLOW (false) from this nexus.
    pub fn set(&self, nexus_id: u64, prevent: bool) {
        let mut list = self.0.lock();
        list.retain(|&id| id != nexus_id);
        if prevent {
            list.push(nexus_id);
        }
    }

    pub fn is_prevented(&self) -> bool {
        !self.0.lock().is_empty()
    }

    /// Logical unit reset (SAM-5 6.6): nobody prevents removal any more.
    pub fn clear(&self) {
        self.0.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::RemovalPrevention;

    #[test]
    fn removal_stays_prevented_until_every_preventing_nexus_allows_it() {
        let p = RemovalPrevention::default();
        assert!(!p.is_prevented());
        p.set(1, true);
        p.set(1, true);
        p.set(2, true);
        p.set(1, false);
        assert!(p.is_prevented(), "nexus 2 still prevents removal");
        p.set(2, false);
        assert!(!p.is_prevented(), "a repeated PREVENT must not need two ALLOWs");
    }

    #[test]
    fn a_reset_clears_every_prevention() {
        let p = RemovalPrevention::default();
        p.set(1, true);
        p.set(7, true);
        p.clear();
        assert!(!p.is_prevented());
    }

    #[test]
    fn allow_from_a_nexus_that_never_prevented_changes_nothing() {
        let p = RemovalPrevention::default();
        p.set(3, true);
        p.set(4, false);
        assert!(p.is_prevented());
    }
}
