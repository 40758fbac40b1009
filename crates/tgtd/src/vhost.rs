//! The daemon's vhost-user-scsi targets: each is an `rtgt_scsi::Target` served on its own unix
//! socket by an `rtgt_vhost::VhostScsiDevice` (see crates/vhost). They share the tid space with
//! the iSCSI targets (`Daemon::tid_taken`), are saved with them (`state::model`), and their LUNs
//! are the same logical units on the same backing stores.

use parking_lot::Mutex;
use rtgt_scsi::Target;
use rtgt_vhost::{DeviceConfig, LunEvent, SocketAccess, VhostError, VhostScsiDevice};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The vhost targets by tid.
#[derive(Debug, Default)]
pub struct VhostTargets {
    targets: Mutex<BTreeMap<u32, Arc<VhostScsiDevice>>>,
    /// Who may connect to the sockets besides tgtd's user (`--vhost-group`).
    access: Mutex<SocketAccess>,
}

#[derive(Debug, thiserror::Error)]
pub enum VhostTargetError {
    #[error("target {0} already exists")]
    TidTaken(u32),
    #[error("socket {0} is already served by another vhost target")]
    SocketTaken(String),
    #[error(transparent)]
    Start(#[from] VhostError),
    #[error("vhost targets are created from within the daemon's runtime")]
    NoRuntime,
}

impl VhostTargets {
    /// `--vhost-group`: sockets created from now on get mode 0660 and this group (QEMU's), instead
    /// of 0600.
    pub fn set_socket_group(&self, group: Option<u32>) {
        *self.access.lock() = SocketAccess { group };
    }

    /// Create target `tid` serving `socket` (its name is the socket path). Commands run on the
    /// current tokio runtime, so this must be called from within it (the control socket's blocking
    /// pool counts).
    pub fn add(&self, tid: u32, socket: &Path) -> Result<Arc<VhostScsiDevice>, VhostTargetError> {
        let mut targets = self.targets.lock();
        if targets.contains_key(&tid) {
            return Err(VhostTargetError::TidTaken(tid));
        }
        if targets.values().any(|c| c.socket() == socket) {
            return Err(VhostTargetError::SocketTaken(socket.display().to_string()));
        }
        let target = Target::new(tid, socket.display().to_string());
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| VhostTargetError::NoRuntime)?;
        let config = DeviceConfig { access: *self.access.lock(), ..DeviceConfig::new(socket) };
        let device = VhostScsiDevice::start(target, config, runtime)?;
        targets.insert(tid, device.clone());
        Ok(device)
    }

    pub fn get(&self, tid: u32) -> Option<Arc<VhostScsiDevice>> {
        self.targets.lock().get(&tid).cloned()
    }

    pub fn list(&self) -> Vec<Arc<VhostScsiDevice>> {
        self.targets.lock().values().cloned().collect()
    }

    /// Stop serving target `tid` (the guest loses the device). None when there is no such target.
    pub fn remove(&self, tid: u32) -> Option<Arc<VhostScsiDevice>> {
        let device = self.targets.lock().remove(&tid)?;
        device.stop();
        Some(device)
    }

    /// Tell target `tid`'s guest that a LUN appeared, went away or changed size.
    pub fn notify(&self, tid: u32, event: LunEvent) {
        if let Some(device) = self.get(tid) {
            device.notify(event);
        }
    }

    /// At daemon stop: drop the guests, then flush every backing store.
    pub async fn shutdown(&self) {
        let all: Vec<_> = std::mem::take(&mut *self.targets.lock()).into_values().collect();
        for device in all {
            let stopping = device.clone();
            let _ = tokio::task::spawn_blocking(move || stopping.stop()).await;
            for (lun, unit) in device.target().luns() {
                let Some(store) = unit.store() else { continue };
                if let Err(err) = rtgt_backstore::BlockStore::flush(store).await {
                    tracing::error!(tid = device.target().tid, lun, %err, "flush at shutdown failed");
                }
            }
        }
    }
}

/// Start the targets of tgtd's `--vhost-user-scsi` options; a target without `tid=` takes the lowest
/// tid no other target uses. Their LUNs are added with `tgtadm --lld vhost`.
pub fn start_from_options(daemon: &crate::Daemon, options: &[VhostOption]) -> Result<(), VhostTargetError> {
    for option in options {
        let tid = match option.tid {
            Some(tid) => tid,
            None => (1..).find(|&t| !daemon.tid_taken(t)).unwrap_or(0),
        };
        if daemon.tid_taken(tid) {
            return Err(VhostTargetError::TidTaken(tid));
        }
        daemon.vhost.add(tid, &option.socket)?;
        tracing::info!(tid, socket = %option.socket.display(), "vhost-user-scsi target ready");
    }
    Ok(())
}

/// One `--vhost-user-scsi controller=PATH[,tid=N]` from tgtd's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostOption {
    pub socket: PathBuf,
    pub tid: Option<u32>,
}

impl VhostOption {
    pub fn parse(text: &str) -> Result<Self, String> {
        let (mut socket, mut tid) = (None, None);
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) =
                item.split_once('=').ok_or_else(|| format!("--vhost-user-scsi: '{item}' is not key=value"))?;
            match key {
                "controller" | "socket" if !value.is_empty() => socket = Some(PathBuf::from(value)),
                "tid" => {
                    tid = Some(value.parse().map_err(|_| format!("--vhost-user-scsi: tid '{value}' is not a number"))?)
                }
                other => return Err(format!("--vhost-user-scsi: unknown option '{other}'")),
            }
        }
        let socket = socket.ok_or("--vhost-user-scsi needs controller=PATH")?;
        Ok(VhostOption { socket, tid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_parses_controller_and_tid() {
        let o = VhostOption::parse("controller=/run/rtgt/vm1.sock,tid=5").unwrap();
        assert_eq!(o, VhostOption { socket: PathBuf::from("/run/rtgt/vm1.sock"), tid: Some(5) });
        assert_eq!(VhostOption::parse("controller=/x").unwrap().tid, None);
        assert!(VhostOption::parse("tid=5").is_err());
        assert!(VhostOption::parse("controller=/x,tid=five").is_err());
        assert!(VhostOption::parse("controller=/x,colour=red").is_err());
        assert!(VhostOption::parse("controller").is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn targets_refuse_taken_tids_and_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let targets = VhostTargets::default();
        let (a, b) = (dir.path().join("a.sock"), dir.path().join("b.sock"));
        targets.add(1, &a).unwrap();
        assert!(a.exists());
        assert!(matches!(targets.add(1, &b), Err(VhostTargetError::TidTaken(1))));
        assert!(matches!(targets.add(2, &a), Err(VhostTargetError::SocketTaken(_))));
        let removed = tokio::task::spawn_blocking(move || {
            let gone = targets.remove(1).is_some();
            (gone, targets.remove(1).is_none())
        })
        .await
        .unwrap();
        assert_eq!(removed, (true, true));
        assert!(!a.exists());
    }
}
