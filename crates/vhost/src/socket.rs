//! The device's unix socket file: where it may be created, and with which owner and mode.
//!
//! A vhost target's name is a path given by an administrator (or a config file), so creating the
//! socket must never destroy what is there: a regular file, a directory, a symlink or a socket some
//! other process still listens on is refused; only a stale socket (nobody accepts on it) is
//! replaced. The mode never depends on the daemon's umask: the socket is bound inside a private
//! directory (0700) next to its final path, given its mode (0600, or 0660 and the group allowed to
//! connect) there, and then hard-linked into place. link(2) never replaces an existing name, so a
//! file that appears in the meantime is refused rather than overwritten, and the socket is never
//! reachable under its final name with a wider mode.

use std::fs::{DirBuilder, Permissions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("{0} exists and is not a socket: refusing to replace it")]
    NotASocket(String),
    #[error("{0} is a socket another process is listening on")]
    InUse(String),
    #[error("cannot check {path}: {source}")]
    Inspect { path: String, source: std::io::Error },
    #[error("cannot create the socket {path}: {source}")]
    Create { path: String, source: std::io::Error },
}

/// Who may connect besides the daemon's own user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketAccess {
    /// A group allowed to connect (QEMU's): mode 0660 and this group. None: mode 0600.
    pub group: Option<u32>,
}

impl SocketAccess {
    fn mode(self) -> u32 {
        if self.group.is_some() {
            0o660
        } else {
            0o600
        }
    }
}

/// A bound socket and the identity of its file, so that only that file is removed at stop.
#[derive(Debug)]
pub(crate) struct BoundSocket {
    pub listener: UnixListener,
    pub file: (u64, u64),
}

/// Create the socket at `path` as the module comment describes.
pub(crate) fn bind(path: &Path, access: SocketAccess) -> Result<BoundSocket, SocketError> {
    let shown = || path.display().to_string();
    let create = |source| SocketError::Create { path: shown(), source };
    if stale_socket(path)? {
        // Removed only now that nobody answers on it; a replacement appearing before the link
        // below makes the link fail.
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => return Err(create(err)),
        }
    }
    let private = PrivateDir::create(path).map_err(create)?;
    let staged = private.0.join("socket");
    let listener = UnixListener::bind(&staged).map_err(create)?;
    if let Some(gid) = access.group {
        std::os::unix::fs::chown(&staged, None, Some(gid)).map_err(create)?;
    }
    std::fs::set_permissions(&staged, Permissions::from_mode(access.mode())).map_err(create)?;
    match std::fs::hard_link(&staged, path) {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            // Something took the name after the check above: it is not ours to replace.
            return Err(SocketError::NotASocket(shown()));
        }
        Err(err) => return Err(create(err)),
    }
    let meta = std::fs::symlink_metadata(path).map_err(create)?;
    Ok(BoundSocket { listener, file: (meta.dev(), meta.ino()) })
}

/// Whether `path` holds a socket nobody listens on (false: nothing there). Anything else there is
/// an error: a file that is not a socket, or a socket that accepts connections.
fn stale_socket(path: &Path) -> Result<bool, SocketError> {
    let shown = || path.display().to_string();
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(SocketError::Inspect { path: shown(), source }),
    };
    // A symlink is refused even when it points at a socket: the name is what gets replaced.
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket(shown()));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(SocketError::InUse(shown())),
        Err(err) if err.kind() == ErrorKind::ConnectionRefused => Ok(true),
        // Cannot tell whether it is alive (no permission to connect, ...): leave it alone.
        Err(source) => Err(SocketError::Inspect { path: shown(), source }),
    }
}

/// Remove the socket file at `path` if it is still the one `bind` created.
pub(crate) fn remove_if_ours(path: &Path, file: (u64, u64)) {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if (meta.dev(), meta.ino()) == file {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A 0700 directory beside the socket's final path, removed with what it holds when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn create(socket: &Path) -> std::io::Result<PrivateDir> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let parent = socket.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = socket.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Someone may have taken a name already (a crashed daemon's leftover, or on purpose):
        // try a few others rather than use theirs.
        let mut last = None;
        for _ in 0..16 {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = parent.join(format!(".{name}.rtgt-{}-{n}", std::process::id()));
            match DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    // The umask may have taken bits from 0700 (never added any): restore them
                    // so the daemon can bind in it.
                    std::fs::set_permissions(&dir, Permissions::from_mode(0o700))?;
                    return Ok(PrivateDir(dir));
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.unwrap_or_else(|| ErrorKind::AlreadyExists.into()))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0.join("socket"));
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absent_or_stale_names_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("disk.img");
        std::fs::write(&file, b"precious").unwrap();
        assert!(matches!(bind(&file, SocketAccess::default()), Err(SocketError::NotASocket(_))));
        assert_eq!(std::fs::read(&file).unwrap(), b"precious");
        let subdir = dir.path().join("d");
        std::fs::create_dir(&subdir).unwrap();
        assert!(matches!(bind(&subdir, SocketAccess::default()), Err(SocketError::NotASocket(_))));

        let live = dir.path().join("live.sock");
        let _listener = UnixListener::bind(&live).unwrap();
        assert!(matches!(bind(&live, SocketAccess::default()), Err(SocketError::InUse(_))));

        let stale = dir.path().join("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        let bound = bind(&stale, SocketAccess::default()).unwrap();
        assert!(UnixStream::connect(&stale).is_ok(), "the new socket answers");
        let meta = std::fs::symlink_metadata(&stale).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!((meta.dev(), meta.ino()), bound.file);
        // Nothing is left of the private directory.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 4, "{names:?}");
        remove_if_ours(&stale, bound.file);
        assert!(!stale.exists());
    }
}
