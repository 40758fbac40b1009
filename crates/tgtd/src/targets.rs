//! The daemon's one table of targets: tid -> the core `rtgt_scsi::Target` and the transport serving
//! it (an iSCSI target or a vhost-user-scsi device). As in tgt, a tid names one target whatever its
//! LLD, and a name is one target's: every creation and deletion goes through this table, which
//! checks and inserts under one lock, so two targets cannot share a tid by construction.
//!
//! The iSCSI `Registry` keeps its own index of the iSCSI targets (logins look a target up by name,
//! TSIH allocation walks the sessions); the table adds to it and removes from it under the same lock,
//! so that index never holds a target the table does not.

use crate::vhost::VhostTargetError;
use parking_lot::Mutex;
use rtgt_iscsi::{IscsiTarget, Registry};
use rtgt_scsi::Target;
use rtgt_vhost::VhostScsiDevice;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// How a target reaches its initiators.
#[derive(Debug, Clone)]
pub enum TransportBinding {
    Iscsi(Arc<IscsiTarget>),
    Vhost(Arc<VhostScsiDevice>),
}

/// One target of the daemon.
#[derive(Debug, Clone)]
pub struct TargetEntry {
    pub scsi: Arc<Target>,
    pub binding: TransportBinding,
}

impl TargetEntry {
    fn new(binding: TransportBinding) -> Self {
        let scsi = match &binding {
            TransportBinding::Iscsi(t) => t.scsi.clone(),
            TransportBinding::Vhost(d) => d.target().clone(),
        };
        TargetEntry { scsi, binding }
    }

    /// Whether `name` is this target's: iSCSI names compare case-insensitively (RFC 3722
    /// normalises them to lower case); a vhost target's name is its socket path, compared as is.
    fn is_named(&self, name: &str) -> bool {
        match self.binding {
            TransportBinding::Iscsi(_) => self.scsi.name.eq_ignore_ascii_case(name),
            TransportBinding::Vhost(_) => self.scsi.name == name,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TargetTableError {
    #[error("target {0} already exists")]
    TidTaken(u32),
    #[error("target name {0} already exists")]
    NameTaken(String),
    #[error("socket {0} is already served by another vhost target")]
    SocketTaken(String),
    #[error(transparent)]
    Vhost(#[from] VhostTargetError),
}

/// Every target of the daemon, by tid.
#[derive(Debug)]
pub struct Targets {
    /// Shared (weakly) with the media changers' drive lookups, which find a drive by tid.
    entries: Arc<Mutex<BTreeMap<u32, TargetEntry>>>,
    /// The iSCSI transport's index, kept in step with `entries`.
    iscsi: Arc<Registry>,
}

impl Targets {
    pub fn new(iscsi: Arc<Registry>) -> Self {
        Targets { entries: Arc::new(Mutex::new(BTreeMap::new())), iscsi }
    }

    /// How a media changer finds the drive at (tid, LUN): through this table as it is when
    /// asked, so a drive created, replaced or deleted after the changer's element was bound is
    /// seen as it is. Holds the table weakly (the changer lives inside it).
    pub fn drive_lookup(&self) -> rtgt_scsi::smc::DriveResolver {
        let entries = Arc::downgrade(&self.entries);
        Arc::new(move |tid, lun| {
            let entries = entries.upgrade()?;
            let scsi: Arc<Target> = entries.lock().get(&tid)?.scsi.clone();
            scsi.medium_drive(lun)
        })
    }

    /// Add an iSCSI target; refused when its tid or its name is taken by a target of any LLD.
    pub fn add_iscsi(&self, target: Arc<IscsiTarget>) -> Result<(), TargetTableError> {
        let mut entries = self.entries.lock();
        check_free(&entries, target.tid(), target.name())?;
        // The registry's own checks cannot fail once the table's passed; kept as a second guard.
        self.iscsi.add_target(target.clone()).map_err(|_| TargetTableError::TidTaken(target.tid()))?;
        entries.insert(target.tid(), TargetEntry::new(TransportBinding::Iscsi(target)));
        Ok(())
    }

    /// Add a vhost target serving `socket` (its name); `start` opens the socket once the tid, the
    /// name and the socket are known to be free, so a refused target never touches the file system.
    pub fn add_vhost(
        &self,
        tid: u32,
        socket: &Path,
        start: impl FnOnce() -> Result<Arc<VhostScsiDevice>, VhostTargetError>,
    ) -> Result<Arc<VhostScsiDevice>, TargetTableError> {
        let mut entries = self.entries.lock();
        check_free(&entries, tid, &socket.display().to_string())?;
        if entries.values().any(|e| matches!(&e.binding, TransportBinding::Vhost(d) if d.socket() == socket)) {
            return Err(TargetTableError::SocketTaken(socket.display().to_string()));
        }
        let device = start()?;
        entries.insert(tid, TargetEntry::new(TransportBinding::Vhost(device.clone())));
        Ok(device)
    }

    /// Remove iSCSI target `tid` (from the table and the registry); None when `tid` is not an iSCSI
    /// target. Its sessions are the caller's to close.
    pub fn remove_iscsi(&self, tid: u32) -> Option<Arc<IscsiTarget>> {
        let mut entries = self.entries.lock();
        let TransportBinding::Iscsi(target) = &entries.get(&tid)?.binding else { return None };
        let target = target.clone();
        entries.remove(&tid);
        self.iscsi.remove_target(tid);
        Some(target)
    }

    /// Remove vhost target `tid` and stop serving it (the guest loses the device); None when `tid`
    /// is not a vhost target. Stopping joins the accept thread: call it off the async workers.
    pub fn remove_vhost(&self, tid: u32) -> Option<Arc<VhostScsiDevice>> {
        let device = {
            let mut entries = self.entries.lock();
            let TransportBinding::Vhost(device) = &entries.get(&tid)?.binding else { return None };
            let device = device.clone();
            entries.remove(&tid);
            device
        };
        device.stop();
        Some(device)
    }

    /// Take every vhost target out of the table (daemon stop); the caller stops them.
    pub fn take_vhost(&self) -> Vec<Arc<VhostScsiDevice>> {
        let mut entries = self.entries.lock();
        let tids: Vec<u32> =
            entries.iter().filter(|(_, e)| matches!(e.binding, TransportBinding::Vhost(_))).map(|(t, _)| *t).collect();
        tids.iter()
            .filter_map(|tid| match entries.remove(tid)?.binding {
                TransportBinding::Vhost(device) => Some(device),
                TransportBinding::Iscsi(_) => None,
            })
            .collect()
    }

    pub fn get(&self, tid: u32) -> Option<TargetEntry> {
        self.entries.lock().get(&tid).cloned()
    }

    /// Every target by tid ascending.
    pub fn all(&self) -> Vec<TargetEntry> {
        self.entries.lock().values().cloned().collect()
    }

    pub fn iscsi(&self, tid: u32) -> Option<Arc<IscsiTarget>> {
        match self.get(tid)?.binding {
            TransportBinding::Iscsi(t) => Some(t),
            TransportBinding::Vhost(_) => None,
        }
    }

    pub fn vhost(&self, tid: u32) -> Option<Arc<VhostScsiDevice>> {
        match self.get(tid)?.binding {
            TransportBinding::Vhost(d) => Some(d),
            TransportBinding::Iscsi(_) => None,
        }
    }

    /// The iSCSI targets by tid ascending.
    pub fn iscsi_targets(&self) -> Vec<Arc<IscsiTarget>> {
        let entries = self.entries.lock();
        entries
            .values()
            .filter_map(|e| match &e.binding {
                TransportBinding::Iscsi(t) => Some(t.clone()),
                TransportBinding::Vhost(_) => None,
            })
            .collect()
    }

    /// The vhost targets by tid ascending.
    pub fn vhost_targets(&self) -> Vec<Arc<VhostScsiDevice>> {
        let entries = self.entries.lock();
        entries
            .values()
            .filter_map(|e| match &e.binding {
                TransportBinding::Vhost(d) => Some(d.clone()),
                TransportBinding::Iscsi(_) => None,
            })
            .collect()
    }

    pub fn tid_taken(&self, tid: u32) -> bool {
        self.entries.lock().contains_key(&tid)
    }

    pub fn name_taken(&self, name: &str) -> bool {
        self.entries.lock().values().any(|e| e.is_named(name))
    }

    /// The name of target `tid`, whatever its LLD.
    pub fn name(&self, tid: u32) -> Option<String> {
        self.entries.lock().get(&tid).map(|e| e.scsi.name.clone())
    }
}

fn check_free(entries: &BTreeMap<u32, TargetEntry>, tid: u32, name: &str) -> Result<(), TargetTableError> {
    if entries.contains_key(&tid) {
        return Err(TargetTableError::TidTaken(tid));
    }
    if entries.values().any(|e| e.is_named(name)) {
        return Err(TargetTableError::NameTaken(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vhost::VhostTransport;

    fn iscsi(tid: u32, name: &str) -> Arc<IscsiTarget> {
        IscsiTarget::new(Target::new(tid, name.to_string()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn one_tid_and_one_name_across_transports() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::new();
        let table = Targets::new(registry.clone());
        let vhost = VhostTransport::default();
        let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));

        table.add_iscsi(iscsi(1, "iqn.2024-01.test:one")).unwrap();
        table.add_vhost(2, &a, || vhost.start(2, &a)).unwrap();
        assert!(a.exists());
        // A tid or a name held by one transport is refused to the other, and to the same one.
        assert!(matches!(table.add_vhost(1, &b, || vhost.start(1, &b)), Err(TargetTableError::TidTaken(1))));
        assert!(!b.exists(), "a refused vhost target opens no socket");
        assert!(matches!(table.add_iscsi(iscsi(2, "iqn.2024-01.test:two")), Err(TargetTableError::TidTaken(2))));
        assert!(matches!(table.add_iscsi(iscsi(1, "iqn.2024-01.test:x")), Err(TargetTableError::TidTaken(1))));
        let a_name = a.display().to_string();
        assert!(matches!(table.add_iscsi(iscsi(3, &a_name)), Err(TargetTableError::NameTaken(_))));
        assert!(matches!(table.add_iscsi(iscsi(3, "IQN.2024-01.TEST:ONE")), Err(TargetTableError::NameTaken(_))));
        assert!(matches!(table.add_vhost(3, &a, || vhost.start(3, &a)), Err(TargetTableError::NameTaken(_))));
        let a_again = dir.path().join(".").join("a.sock");
        assert!(matches!(table.add_vhost(3, &a_again, || vhost.start(3, &a)), Err(TargetTableError::SocketTaken(_))));
        assert!(table.get(3).is_none() && registry.target(3).is_none());

        // Lookups see each target once, under its own transport.
        assert_eq!(table.all().iter().map(|e| e.scsi.tid).collect::<Vec<_>>(), vec![1, 2]);
        assert!(table.iscsi(1).is_some() && table.vhost(1).is_none());
        assert!(table.vhost(2).is_some() && table.iscsi(2).is_none());
        assert_eq!(table.name(2).as_deref(), Some(a_name.as_str()));
        assert!(registry.target(1).is_some() && registry.target(2).is_none());

        // Removal goes by transport: the wrong one leaves the target in place.
        assert!(table.remove_vhost(1).is_none() && table.tid_taken(1));
        assert!(table.remove_iscsi(2).is_none() && table.tid_taken(2));
        assert!(table.remove_iscsi(1).is_some());
        assert!(
            !table.tid_taken(1)
                && registry.target(1).is_none()
                && registry.target_by_name("iqn.2024-01.test:one").is_none()
        );
        let (table, gone) = tokio::task::spawn_blocking(move || {
            let gone = (table.remove_vhost(2).is_some(), table.remove_vhost(2).is_none());
            (table, gone)
        })
        .await
        .unwrap();
        assert_eq!(gone, (true, true));
        assert!(!a.exists(), "a removed vhost target's socket is gone");
        // Freed tids and names can be taken again, by either transport.
        table.add_iscsi(iscsi(2, &a_name)).unwrap();
        assert!(table.name_taken(&a_name) && table.iscsi_targets().len() == 1 && table.vhost_targets().is_empty());
    }
}
