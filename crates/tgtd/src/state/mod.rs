//! The running configuration that survives restarts: what tgtd keeps beside the registry (the
//! portals given at start, the NOP-Out default for new targets), the state file under `--state-dir`, rewritten after
//! every change a management request makes and before that request is answered (so nothing
//! acknowledged is lost by a crash), and the restore at start that replays it.

pub mod file;
mod legacy;
pub mod model;
pub mod pending;

use crate::Daemon;
use file::StateFile;
use model::RunningConfig;
use parking_lot::Mutex;
use rtgt_mgmt::{AccountOp, LunOp, Op, TargetOp};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// NOP-Out probing settings (tgt's nop_interval / nop_count), 0 = off. Each iSCSI target holds
/// its own (`IscsiTarget::nop`, the one place they live); tgtd keeps only the default new targets
/// start with.
pub use rtgt_iscsi::params::NopParams as NopSettings;

#[derive(Default)]
pub struct ConfigState {
    file: Option<StateFile>,
    /// Portals from the command line: not part of the saved configuration (the command line
    /// brings them back).
    boot_portals: Mutex<Vec<SocketAddr>>,
    /// What new targets start with: tgtd's `--iscsi nop_interval=,nop_count=`, as in tgt.
    nop_default: Mutex<NopSettings>,
    /// While the saved configuration is replayed, saving waits until the end.
    restoring: AtomicBool,
    /// Saved LUNs whose backing store could not be opened: still saved, shown, retried.
    pub pending: pending::PendingLuns,
    /// Held from a save's snapshot to its write: saves come from management requests and from the
    /// command path (a media changer's move) at once, and a snapshot taken earlier must never be
    /// written after one taken later.
    saving: Mutex<()>,
    /// Runs once between a save's snapshot and its write (tests make saves overlap with it).
    #[cfg(test)]
    after_snapshot: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl std::fmt::Debug for ConfigState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigState").field("file", &self.file).field("pending", &self.pending).finish_non_exhaustive()
    }
}

/// What a restore did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    pub applied: usize,
    /// Each step that failed, with why (a missing backing file, a port now taken, ...).
    pub failed: Vec<String>,
}

impl ConfigState {
    /// Persist under `dir`, or nothing at all.
    pub fn new(dir: Option<PathBuf>) -> Self {
        ConfigState { file: dir.map(StateFile::new), ..ConfigState::default() }
    }

    pub fn set_boot_portals(&self, portals: Vec<SocketAddr>) {
        *self.boot_portals.lock() = portals;
    }

    pub fn boot_portals(&self) -> Vec<SocketAddr> {
        self.boot_portals.lock().clone()
    }

    pub fn set_nop_default(&self, nop: NopSettings) {
        *self.nop_default.lock() = nop;
    }

    pub fn nop_default(&self) -> NopSettings {
        *self.nop_default.lock()
    }

    /// A deleted target's settings go with it.
    pub fn forget_target(&self, tid: u32) {
        self.pending.forget_target(tid);
    }

    /// Write the daemon's configuration to the state file (nothing when not persisting or while
    /// restoring).
    pub fn save(&self, daemon: &Daemon) -> Result<(), String> {
        let Some(file) = &self.file else { return Ok(()) };
        if self.restoring.load(Ordering::Acquire) {
            return Ok(());
        }
        let _saving = self.saving.lock();
        let config = RunningConfig::snapshot(daemon);
        #[cfg(test)]
        {
            let hook = self.after_snapshot.lock().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        let bytes = serde_json::to_vec_pretty(&config).map_err(|e| e.to_string())?;
        file.write(&bytes).map_err(|e| e.to_string())
    }

    /// Replay the saved configuration into `daemon` (at start, before any initiator or client is
    /// served). Steps that fail are reported and skipped; when any did, the file as it was is kept
    /// beside the new one (`.restore-failed`) so that nothing is silently forgotten.
    pub fn restore(&self, daemon: &Daemon) -> Result<RestoreReport, String> {
        let Some(file) = &self.file else { return Ok(RestoreReport::default()) };
        let Some(bytes) = file.read().map_err(|e| e.to_string())? else { return Ok(RestoreReport::default()) };
        let config: RunningConfig = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a valid state file: {e}", file.path().display()))?;
        if config.version != model::FORMAT_VERSION {
            return Err(format!(
                "{} has format version {}, this tgtd reads version {}",
                file.path().display(),
                config.version,
                model::FORMAT_VERSION
            ));
        }
        self.restoring.store(true, Ordering::Release);
        let mut report = RestoreReport::default();
        // Targets one of whose CHAP bindings failed (an account missing from a hand-edited file):
        // their access rules are not restored, so they stay closed instead of open without CHAP.
        let mut unprotected = std::collections::BTreeSet::new();
        for request in config.requests() {
            let what = model::in_words(&request.op);
            if let Op::Target(TargetOp::Bind { tid, .. }) = &request.op {
                if unprotected.contains(tid) {
                    report.failed.push(format!("{what} not restored: target {tid} lacks a CHAP account it had"));
                    continue;
                }
            }
            let binding = match &request.op {
                // tid 0 here is the discovery sessions, not a target.
                Op::Account(AccountOp::Bind { tid, .. }) if *tid != 0 => Some(*tid),
                _ => None,
            };
            // A LUN whose store cannot be opened now (a late mount) stays configured, pending.
            let lun_new = match &request.op {
                Op::LogicalUnit(LunOp::New { tid, lun, spec }) => Some((*tid, *lun, spec.clone())),
                _ => None,
            };
            if is_started_vhost_target(daemon, &request) {
                // Started by `--vhost-user-scsi` already: the same target, whose LUNs come next.
                report.applied += 1;
                continue;
            }
            match crate::control::dispatch(daemon, request).result {
                Ok(_) => report.applied += 1,
                // Its target is there (iSCSI or vhost): the LUN waits for its store.
                Err(err) if lun_new.as_ref().is_some_and(|(tid, ..)| daemon.tid_taken(*tid)) => {
                    let Some((tid, lun, spec)) = lun_new else { continue };
                    let name = daemon.target_name(tid).unwrap_or_default();
                    let reason = pending::reason(&err);
                    report.failed.push(pending::not_restored(tid, lun, &name, &reason));
                    self.pending.keep(tid, lun, spec, reason);
                }
                Err(err) => {
                    report.failed.push(format!("{what} not restored: {err}"));
                    unprotected.extend(binding);
                }
            }
        }
        self.restoring.store(false, Ordering::Release);
        if !report.failed.is_empty() {
            if let Err(err) = file.keep_copy("restore-failed") {
                tracing::warn!(%err, "cannot keep a copy of the state file");
            }
        }
        self.save(daemon)?;
        Ok(report)
    }
}

/// A saved vhost target the command line started again: same tid, same socket.
fn is_started_vhost_target(daemon: &Daemon, request: &rtgt_mgmt::Request) -> bool {
    match (&request.lld, &request.op) {
        (rtgt_mgmt::Lld::Vhost, Op::Target(TargetOp::New { tid, name })) => {
            daemon.targets.vhost(*tid).is_some_and(|c| c.socket() == std::path::Path::new(name))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::control::dispatch;
    use crate::Daemon;
    use rtgt_mgmt::{AccountOp, LunOp, LunSpec, Op, Request, TargetOp};

    fn apply(d: &Daemon, op: Op) {
        dispatch(d, Request::iscsi(op)).result.unwrap();
    }

    /// A save whose snapshot was taken before another request changed the configuration and
    /// saved (a changer's move and a management request at once) must not be written last.
    #[test]
    fn the_last_save_written_carries_the_latest_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let d = Daemon::with_state_dir(Some(dir.path().to_path_buf()));
        apply(&d, Op::Target(TargetOp::New { tid: 1, name: "iqn.2026-11.t:first".into() }));
        let other = std::sync::Arc::clone(&d);
        let (tx, rx) = std::sync::mpsc::channel();
        *d.config.after_snapshot.lock() = Some(Box::new(move || {
            // While this save holds its older snapshot, a management request changes and saves.
            let change = std::thread::spawn(move || {
                apply(&other, Op::Target(TargetOp::New { tid: 2, name: "iqn.2026-11.t:second".into() }));
            });
            tx.send(change).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(300));
        }));
        d.config.save(&d).unwrap();
        rx.recv().unwrap().join().unwrap();
        let saved = std::fs::read_to_string(dir.path().join(super::file::FILE_NAME)).unwrap();
        assert!(saved.contains("iqn.2026-11.t:second"), "{saved}");
    }

    #[test]
    fn every_change_is_saved_and_restored_into_a_new_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let first = Daemon::with_state_dir(Some(dir.path().to_path_buf()));
        apply(&first, Op::Target(TargetOp::New { tid: 3, name: "iqn.2026-11.t:saved".into() }));
        let store =
            rtgt_mgmt::StoreSpec { size: Some(1 << 20), ..rtgt_mgmt::StoreSpec::of(rtgt_mgmt::StoreKind::Null) };
        let spec = LunSpec { store, ..LunSpec::disk(None) };
        apply(&first, Op::LogicalUnit(LunOp::New { tid: 3, lun: 2, spec }));
        apply(&first, Op::Account(AccountOp::New { user: "u".into(), password: "secret-pw".into() }));
        apply(&first, Op::Account(AccountOp::Bind { tid: 3, user: "u".into(), outgoing: true }));
        let offline = vec![rtgt_mgmt::Param::new("state", "offline")];
        apply(&first, Op::Target(TargetOp::Update { tid: 3, params: offline }));
        // A failed request saves nothing new.
        let refused = dispatch(&first, Request::iscsi(Op::Target(TargetOp::Delete { tid: 9, force: false })));
        assert!(refused.result.is_err());

        let second = Daemon::with_state_dir(Some(dir.path().to_path_buf()));
        let report = second.config.restore(&second).unwrap();
        assert_eq!((report.applied, report.failed.len()), (5, 0));
        let target = second.registry.target(3).unwrap();
        assert!(target.is_offline());
        assert_eq!(target.name(), "iqn.2026-11.t:saved");
        assert_eq!(target.scsi.lun(2).unwrap().size_bytes(), 1 << 20);
        assert_eq!(target.accounts().outgoing.as_deref(), Some("u"));
        assert_eq!(second.registry.account("u").unwrap().password, "secret-pw");
    }

    /// A state file whose target names an account the file does not hold (edited by hand): the
    /// target comes back without its access rules, closed, rather than open without CHAP.
    #[test]
    fn a_target_whose_account_cannot_be_bound_stays_closed() {
        let dir = tempfile::tempdir().unwrap();
        let first = Daemon::with_state_dir(Some(dir.path().to_path_buf()));
        apply(&first, Op::Target(TargetOp::New { tid: 1, name: "iqn.2026-11.t:chap".into() }));
        apply(&first, Op::Target(TargetOp::New { tid: 2, name: "iqn.2026-11.t:open".into() }));
        for tid in [1, 2] {
            apply(&first, Op::Target(TargetOp::Bind { tid, rules: vec![rtgt_mgmt::AclEntry::All] }));
        }
        apply(&first, Op::Account(AccountOp::New { user: "u".into(), password: "secret-pw".into() }));
        apply(&first, Op::Account(AccountOp::Bind { tid: 1, user: "u".into(), outgoing: false }));
        let path = dir.path().join(super::file::FILE_NAME);
        let mut saved: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        saved["accounts"] = serde_json::json!([]);
        std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();

        let second = Daemon::with_state_dir(Some(dir.path().to_path_buf()));
        let report = second.config.restore(&second).unwrap();
        assert_eq!(report.failed.len(), 2, "{:?}", report.failed);
        assert!(report.failed[1].contains("lacks a CHAP account"), "{:?}", report.failed);
        assert!(second.registry.target(1).unwrap().acl().is_empty());
        assert_eq!(second.registry.target(2).unwrap().acl().len(), 1);
    }

    /// tgt's iSNS settings survive a restart, and come back before any target: with access
    /// control on, no target is ever open to initiators the discovery domains do not allow.
    #[tokio::test]
    async fn isns_settings_are_saved_and_restored_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = Daemon::with_state_dir(Some(dir.path().to_path_buf()));
        apply(&first, Op::Target(TargetOp::New { tid: 1, name: "iqn.2026-11.t:isns".into() }));
        let params =
            [("iSNSServerIP", "127.0.0.1"), ("iSNSServerPort", "1"), ("iSNSAccessControl", "On"), ("iSNS", "On")]
                .map(|(n, v)| rtgt_mgmt::Param::new(n, v))
                .to_vec();
        apply(&first, Op::System(rtgt_mgmt::SystemOp::Update { params }));
        let saved = super::model::RunningConfig::snapshot(&first);
        assert!(matches!(saved.requests()[0].op, Op::System(_)), "{:?}", saved.requests()[0]);

        let second = Daemon::with_state_dir(Some(dir.path().to_path_buf()));
        let report = second.config.restore(&second).unwrap();
        assert_eq!((report.applied, report.failed.len()), (2, 0), "{:?}", report.failed);
        assert_eq!(second.isns.settings(), first.isns.settings());
        let s = second.isns.settings();
        assert!(s.enabled && s.access_control && s.server_port == 1);
        first.isns.shutdown().await;
        second.isns.shutdown().await;
    }

    #[test]
    fn an_unreadable_state_file_stops_the_restore() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(super::file::FILE_NAME);
        let d = Daemon::with_state_dir(Some(dir.path().to_path_buf()));
        std::fs::write(&path, "{ not json").unwrap();
        assert!(d.config.restore(&d).unwrap_err().contains("not a valid state file"));
        std::fs::write(&path, r#"{"version": 99}"#).unwrap();
        assert!(d.config.restore(&d).unwrap_err().contains("format version 99"));
        // Nothing was overwritten.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), r#"{"version": 99}"#);
        // No file: nothing to do.
        std::fs::remove_file(&path).unwrap();
        assert_eq!(d.config.restore(&d).unwrap(), super::RestoreReport::default());
    }
}
