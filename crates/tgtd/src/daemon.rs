//! The running daemon: what every part (portals, management server, signal handling) shares.

use rtgt_backstore::BlockStore;
use rtgt_iscsi::{IscsiServer, Registry};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug)]
pub struct Daemon {
    /// The iSCSI targets, their LUNs, ACLs and sessions.
    pub registry: Arc<Registry>,
    /// The portals serving `registry`.
    pub iscsi: Arc<IscsiServer>,
    /// Signalled when the daemon must stop (SIGTERM, SIGINT, `tgtadm --mode system --op delete`).
    pub stop: Notify,
    /// Where state that must survive a restart lives (`--state-dir`): the running configuration,
    /// persistent reservations with APTPL. None: nothing is persisted (tests, or no writable dir).
    pub state_dir: Option<PathBuf>,
    /// The vhost-user-scsi targets (`--lld vhost`).
    pub vhost: crate::vhost::VhostTargets,
    /// The running configuration's extras (start-up portals, NOP settings) and its state file.
    pub config: crate::state::ConfigState,
    /// The iSNS client (`system update iSNS*`).
    pub isns: crate::isns::Isns,
}

impl Daemon {
    /// A daemon that persists nothing.
    pub fn new() -> Arc<Self> {
        Self::with_state_dir(None)
    }

    pub fn with_state_dir(state_dir: Option<PathBuf>) -> Arc<Self> {
        let registry = Registry::new();
        let iscsi = IscsiServer::new(registry.clone());
        let config = crate::state::ConfigState::new(state_dir.clone());
        Arc::new(Daemon {
            registry,
            iscsi,
            stop: Notify::new(),
            vhost: Default::default(),
            state_dir,
            config,
            isns: Default::default(),
        })
    }

    /// As in tgt, a tid names one target in the daemon whatever its LLD: true when an iSCSI or a
    /// vhost target has it. Creation checks this, then adds to its LLD's table; management requests
    /// (and the restore, which replays them) are applied one at a time, so nothing comes between.
    pub fn tid_taken(&self, tid: u32) -> bool {
        self.registry.target(tid).is_some() || self.vhost.get(tid).is_some()
    }

    /// A target name, like a tid, is one target's across the LLDs (tgt refuses a second one too).
    pub fn name_taken(&self, name: &str) -> bool {
        self.registry.target_by_name(name).is_some() || self.vhost.list().iter().any(|c| c.target().name == name)
    }

    /// The name of target `tid`, whatever its LLD.
    pub fn target_name(&self, tid: u32) -> Option<String> {
        match self.registry.target(tid) {
            Some(t) => Some(t.name().to_string()),
            None => self.vhost.get(tid).map(|c| c.target().name.clone()),
        }
    }

    /// Ask the daemon to stop; the main task then shuts the portals down and exits.
    pub fn request_stop(&self) {
        self.stop.notify_one();
    }

    /// Stop serving: sessions are asked to log out (or closed), then every logical unit is flushed
    /// so nothing written through a write-back cache is lost.
    pub async fn shutdown(&self) {
        // Off the iSNS server first, so initiators stop being pointed at a daemon that is leaving.
        self.isns.shutdown().await;
        self.iscsi.shutdown().await;
        self.vhost.shutdown().await;
        for target in self.registry.targets() {
            for (lun, unit) in target.scsi.luns() {
                let Some(store) = unit.store() else { continue };
                if let Err(err) = store.flush().await {
                    tracing::error!(tid = target.tid(), lun, %err, "flush at shutdown failed");
                }
            }
        }
    }
}
