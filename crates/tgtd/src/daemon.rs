//! The running daemon: what every part (portals, management server, signal handling) shares.

use rtgt_iscsi::{IscsiServer, Registry};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Debug)]
pub struct Daemon {
    /// Every target, by tid, with the transport serving it. Targets are created and deleted here.
    pub targets: crate::targets::Targets,
    /// The iSCSI transport's state: its index of the iSCSI targets (kept by `targets`), accounts,
    /// portals, limits and sessions.
    pub registry: Arc<Registry>,
    /// The portals serving `registry`.
    pub iscsi: Arc<IscsiServer>,
    /// Signalled when the daemon must stop (SIGTERM, SIGINT, `tgtadm --mode system --op delete`).
    pub stop: Notify,
    /// Where state that must survive a restart lives (`--state-dir`): the running configuration,
    /// persistent reservations with APTPL. None: nothing is persisted (tests, or no writable dir).
    pub state_dir: Option<PathBuf>,
    /// The vhost-user-scsi transport's settings (`--lld vhost`; its targets are in `targets`).
    pub vhost: crate::vhost::VhostTransport,
    /// The running configuration's extras (start-up portals, NOP settings) and its state file.
    pub config: crate::state::ConfigState,
    /// The iSNS client (`system update iSNS*`).
    pub isns: crate::isns::Isns,
    /// What /metrics reports of the daemon itself.
    pub counters: crate::metrics::DaemonCounters,
    /// The daemon itself, for what runs outside a management request and must reach it (a media
    /// changer saving the state after a move).
    me: std::sync::Weak<Daemon>,
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
        Arc::new_cyclic(|me| Daemon {
            me: me.clone(),
            targets: crate::targets::Targets::new(registry.clone()),
            registry,
            iscsi,
            stop: Notify::new(),
            vhost: Default::default(),
            state_dir,
            config,
            isns: Default::default(),
            counters: Default::default(),
        })
    }

    /// A handle on the daemon that does not keep it alive.
    pub fn weak(&self) -> std::sync::Weak<Daemon> {
        self.me.clone()
    }

    /// As in tgt, a tid names one target in the daemon whatever its LLD.
    pub fn tid_taken(&self, tid: u32) -> bool {
        self.targets.tid_taken(tid)
    }

    /// The name of target `tid`, whatever its LLD.
    pub fn target_name(&self, tid: u32) -> Option<String> {
        self.targets.name(tid)
    }

    /// Create vhost target `tid` serving `socket`; refused when the tid, the name (the socket path)
    /// or the socket is taken.
    pub fn add_vhost_target(
        &self,
        tid: u32,
        socket: &std::path::Path,
    ) -> Result<Arc<rtgt_vhost::VhostScsiDevice>, crate::targets::TargetTableError> {
        self.targets.add_vhost(tid, socket, || self.vhost.start(tid, socket))
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
        crate::vhost::shutdown(self.targets.take_vhost()).await;
        for target in self.targets.iscsi_targets() {
            for (lun, unit) in target.scsi.luns() {
                // The unit's own flush: a tape drive's buffered writes go through its drive.
                if let Err(err) = unit.flush().await {
                    tracing::error!(tid = target.tid(), lun, %err, "flush at shutdown failed");
                }
                // A gateway of several leaves the image's registry, so that another takes over at
                // once rather than after its lease. Blocking: a few cluster round trips.
                #[cfg(feature = "rbd")]
                if let Some(rtgt_backstore::Backstore::Rbd(_)) = unit.store().map(|s| s.engine()) {
                    let unit = unit.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        if let Some(rtgt_backstore::Backstore::Rbd(rbd)) = unit.store().map(|s| s.engine()) {
                            rbd.leave_gateway();
                        }
                    })
                    .await;
                }
            }
        }
    }
}
