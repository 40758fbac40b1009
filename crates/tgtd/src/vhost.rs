//! The daemon's vhost-user-scsi transport: each vhost target is an `rtgt_scsi::Target` served on
//! its own unix socket by an `rtgt_vhost::VhostScsiDevice` (see crates/vhost). The targets
//! themselves live in the daemon's one table (`targets.rs`), with the iSCSI ones; they are saved
//! with them (`state::model`), and their LUNs are the same logical units on the same backing stores.

use crate::targets::TargetTableError;
use parking_lot::Mutex;
use rtgt_scsi::Target;
use rtgt_vhost::{DeviceConfig, SocketAccess, VhostError, VhostScsiDevice};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What every vhost target's socket shares.
#[derive(Debug, Default)]
pub struct VhostTransport {
    /// Who may connect to the sockets besides tgtd's user (`--vhost-group`).
    access: Mutex<SocketAccess>,
}

#[derive(Debug, thiserror::Error)]
pub enum VhostTargetError {
    #[error(transparent)]
    Start(#[from] VhostError),
    #[error("vhost targets are created from within the daemon's runtime")]
    NoRuntime,
}

impl VhostTransport {
    /// `--vhost-group`: sockets created from now on get mode 0660 and this group (QEMU's), instead
    /// of 0600.
    pub fn set_socket_group(&self, group: Option<u32>) {
        *self.access.lock() = SocketAccess { group };
    }

    /// Serve a new target `tid` on `socket` (its name is the socket path). Only the daemon's target
    /// table calls this, once the tid and the socket are known to be free. Commands run on the
    /// current tokio runtime, so this must be called from within it (the control socket's blocking
    /// pool counts).
    pub fn start(&self, tid: u32, socket: &Path) -> Result<Arc<VhostScsiDevice>, VhostTargetError> {
        let target = Target::new(tid, socket.display().to_string());
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| VhostTargetError::NoRuntime)?;
        let config = DeviceConfig { access: *self.access.lock(), ..DeviceConfig::new(socket) };
        Ok(VhostScsiDevice::start(target, config, runtime)?)
    }
}

/// At daemon stop: drop the guests, then flush every backing store.
pub async fn shutdown(devices: Vec<Arc<VhostScsiDevice>>) {
    for device in devices {
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

/// Start the targets of tgtd's `--vhost-user-scsi` options; a target without `tid=` takes the lowest
/// tid no other target uses. Their LUNs are added with `tgtadm --lld vhost`.
pub fn start_from_options(daemon: &crate::Daemon, options: &[VhostOption]) -> Result<(), TargetTableError> {
    for option in options {
        let tid = match option.tid {
            Some(tid) => tid,
            None => (1..).find(|&t| !daemon.targets.tid_taken(t)).unwrap_or(0),
        };
        daemon.add_vhost_target(tid, &option.socket)?;
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
}
