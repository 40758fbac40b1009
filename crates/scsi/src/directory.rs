//! The daemon-wide directory of logical units by designator, for EXTENDED COPY (SPC-4 6.4): a copy
//! names its source and destination by the designators of the Device Identification VPD page,
//! and they may be units of any target in the daemon.
//!
//! Units are held weakly: the directory never keeps a removed unit alive, and a copy that finds a
//! unit already gone reports the copy target unreachable. Targets register their units when they
//! are added and unregister them when removed; every target of one daemon shares one directory
//! (`LunDirectory::global()` unless the caller builds targets with their own).

use crate::lun::LogicalUnit;
use parking_lot::Mutex;
use std::sync::{Arc, LazyLock, Weak};

#[derive(Debug, Default)]
pub struct LunDirectory {
    units: Mutex<Vec<Weak<LogicalUnit>>>,
}

static GLOBAL: LazyLock<Arc<LunDirectory>> = LazyLock::new(|| Arc::new(LunDirectory::default()));

impl LunDirectory {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The process-wide directory `Target::new` uses.
    pub fn global() -> &'static Arc<LunDirectory> {
        &GLOBAL
    }

    pub(crate) fn register(&self, unit: &Arc<LogicalUnit>) {
        let mut units = self.units.lock();
        units.retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), Arc::as_ptr(unit)));
        units.push(Arc::downgrade(unit));
    }

    pub(crate) fn unregister(&self, unit: &LogicalUnit) {
        self.units.lock().retain(|w| w.strong_count() > 0 && !std::ptr::eq(w.as_ptr(), unit));
    }

    /// The disk whose Device Identification page carries this designator (type and bytes). The
    /// identity is read at lookup time, so a changed SCSI ID is followed. Two disks answering to
    /// one designator (an administrator gave both the same scsi_id) make it name neither: a copy
    /// must never guess which unit to overwrite.
    pub(crate) fn find(&self, designator_type: u8, designator: &[u8]) -> Option<Arc<LogicalUnit>> {
        let units: Vec<Arc<LogicalUnit>> = self.units.lock().iter().filter_map(Weak::upgrade).collect();
        let mut matching = units
            .into_iter()
            .filter(|u| u.device_type() == crate::DeviceType::Disk && u.has_designator(designator_type, designator));
        let first = matching.next()?;
        match matching.next() {
            Some(_) => None,
            None => Some(first),
        }
    }

    /// How many live units are registered.
    pub fn len(&self) -> usize {
        self.units.lock().iter().filter(|w| w.strong_count() > 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LunConfig;
    use rtgt_backstore::{Backstore, MemoryStore};

    #[test]
    fn finds_by_naa_and_forgets_removed_units() {
        let dir = LunDirectory::new();
        let unit = Arc::new(LogicalUnit::new(LunConfig::disk(7, 3), Some(Backstore::Memory(MemoryStore::new(4096)))));
        dir.register(&unit);
        dir.register(&unit);
        assert_eq!(dir.len(), 1);
        let naa = unit.naa().to_be_bytes();
        assert!(dir.find(3, &naa).is_some());
        assert!(dir.find(3, &[0; 8]).is_none());
        assert!(dir.find(1, unit.config().scsi_id.as_bytes()).is_some());
        dir.unregister(&unit);
        assert!(dir.find(3, &naa).is_none());
        // A second unit with the same SCSI ID makes the designator ambiguous.
        let twin = Arc::new(LogicalUnit::new(LunConfig::disk(7, 3), Some(Backstore::Memory(MemoryStore::new(4096)))));
        dir.register(&twin);
        dir.register(&unit);
        assert!(dir.find(3, &naa).is_none(), "ambiguous");
        drop(twin);
        assert!(dir.find(3, &naa).is_some());
        drop(unit);
        assert!(dir.find(3, &naa).is_none(), "held weakly");
        assert!(dir.is_empty());
    }
}
