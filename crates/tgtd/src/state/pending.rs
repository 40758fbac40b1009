//! LUNs of the saved configuration whose backing store could not be opened at start (a late mount,
//! a slow SAN, a file moved away for a while). They stay part of the configuration: saved as they
//! were, shown as missing, retried at every start and on `--op update --params online=1`. Dropping
//! them would turn one bad boot into a configuration lost for good.

use parking_lot::Mutex;
use rtgt_mgmt::{LunSpec, MgmtError};
use std::collections::BTreeMap;

/// One LUN waiting for its backing store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLun {
    /// As saved: what the retry opens.
    pub spec: LunSpec,
    /// Why the last try failed, in words (`cannot open /srv/disk1.img: No such file or directory`).
    pub reason: String,
}

/// Every pending LUN, by (tid, lun).
#[derive(Debug, Default)]
pub struct PendingLuns(Mutex<BTreeMap<(u32, u64), PendingLun>>);

impl PendingLuns {
    pub fn keep(&self, tid: u32, lun: u64, spec: LunSpec, reason: String) {
        self.0.lock().insert((tid, lun), PendingLun { spec, reason });
    }

    pub fn get(&self, tid: u32, lun: u64) -> Option<PendingLun> {
        self.0.lock().get(&(tid, lun)).cloned()
    }

    /// The pending LUNs of one target, by LUN number.
    pub fn of_target(&self, tid: u32) -> Vec<(u64, PendingLun)> {
        self.0.lock().range((tid, 0)..=(tid, u64::MAX)).map(|((_, lun), p)| (*lun, p.clone())).collect()
    }

    /// The LUN is open now, replaced or deleted: it waits no more.
    pub fn forget(&self, tid: u32, lun: u64) -> bool {
        self.0.lock().remove(&(tid, lun)).is_some()
    }

    /// A deleted target's pending LUNs go with it.
    pub fn forget_target(&self, tid: u32) {
        self.0.lock().retain(|(t, _), _| *t != tid);
    }
}

/// Why a LUN could not be opened, without tgt's generic prefix ("invalid request").
pub fn reason(err: &MgmtError) -> String {
    match &err.message {
        Some(detail) if !detail.is_empty() => detail.clone(),
        _ => err.to_string(),
    }
}

/// The command that retries a pending LUN, as an administrator types it.
pub fn retry_command(tid: u32, lun: u64) -> String {
    format!("tgtadm --lld iscsi --mode logicalunit --op update --tid {tid} --lun {lun} --params online=1")
}

/// The log line for a LUN kept pending at start.
pub fn not_restored(tid: u32, lun: u64, target_name: &str, reason: &str) -> String {
    format!(
        "LUN {lun} of target {tid} ({target_name}) not restored: {reason}; kept in the saved configuration, \
         retried at each start or with `{}`",
        retry_command(tid, lun)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_by_target_and_forgotten_with_it() {
        let pending = PendingLuns::default();
        let spec = LunSpec::disk(Some("/srv/d.img".into()));
        pending.keep(1, 3, spec.clone(), "gone".into());
        pending.keep(1, 1, spec.clone(), "gone".into());
        pending.keep(2, 1, spec, "gone".into());
        let luns: Vec<u64> = pending.of_target(1).into_iter().map(|(l, _)| l).collect();
        assert_eq!(luns, [1, 3]);
        assert!(pending.forget(1, 3) && !pending.forget(1, 3));
        pending.forget_target(1);
        assert!(pending.of_target(1).is_empty());
        assert_eq!(pending.get(2, 1).unwrap().reason, "gone");
    }
}
