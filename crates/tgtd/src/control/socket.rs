//! Creating the control socket with its final owner group and mode before anyone can reach it.
//!
//! Binding at the final path and then changing the mode and group by path leaves a window in which
//! whoever may write the socket's directory can swap the new socket for a symlink, and the chmod
//! and chown then land on the file the symlink names (with `--control-group`, handing that file to
//! the group). Instead the socket is bound in a fresh directory of its own (mode 0700, so nobody
//! else can enter it or add anything to it), given its mode and group there through that
//! directory's descriptor, and only then renamed onto the final path: rename replaces a directory
//! entry and never follows a symlink, and the listener's descriptor stays valid throughout.

use std::ffi::{CString, OsStr};
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The socket's name inside the private directory (short: sun_path holds 108 bytes).
const INNER: &std::ffi::CStr = c"s";

/// Bind the control socket at `path`: mode 0600, or 0660 and group `group` when one is given. A
/// stale socket (or anything else that is not a directory) at `path` is replaced.
pub fn bind(path: &Path, group: Option<u32>) -> io::Result<UnixListener> {
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent)?;
    let private = private_dir(&parent)?;
    let bound = bind_in(&private, path, group);
    // Empty once the socket has moved out (or was never made): nothing else can be in it.
    let _ = fs::remove_file(private.join("s"));
    let _ = fs::remove_dir(&private);
    bound
}

fn bind_in(private: &Path, path: &Path, group: Option<u32>) -> io::Result<UnixListener> {
    let dir = File::open(private)?;
    // The directory this descriptor names is the one made just now, and ours alone.
    let meta = dir.metadata()?;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "the socket's private directory was replaced"));
    }
    let listener = UnixListener::bind(private.join("s"))?;
    let fd = dir.as_raw_fd();
    if let Some(gid) = group {
        // SAFETY: `fd` is an open directory descriptor and INNER a NUL-terminated name; uid -1
        // leaves the owner as it is.
        let rc = unsafe { libc::fchownat(fd, INNER.as_ptr(), libc::uid_t::MAX, gid, libc::AT_SYMLINK_NOFOLLOW) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let mode = if group.is_some() { 0o660 } else { 0o600 };
    // SAFETY: as above; only tgtd can add entries to this directory, so INNER is the socket
    // bound just now and not a symlink.
    if unsafe { libc::fchmodat(fd, INNER.as_ptr(), mode, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let target = c_path(path.as_os_str())?;
    // SAFETY: both names are NUL-terminated; `fd` is open; AT_FDCWD resolves `target` as a path.
    if unsafe { libc::renameat(fd, INNER.as_ptr(), libc::AT_FDCWD, target.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

/// A new directory of mode 0700 in `parent`, never one that already existed.
fn private_dir(parent: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!(".rtgt-{}-{n}", std::process::id()));
        match DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

fn c_path(path: &OsStr) -> io::Result<CString> {
    CString::new(path.as_bytes()).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    #[test]
    fn the_socket_arrives_with_its_mode_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.sock");
        let first = bind(&path, None).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(first);
        // A stale socket from a crash is replaced; the group is applied when asked.
        let gid = nix::unistd::getegid().as_raw();
        let _second = bind(&path, Some(gid)).unwrap();
        let meta = fs::symlink_metadata(&path).unwrap();
        assert_eq!((meta.permissions().mode() & 0o777, meta.gid()), (0o660, gid));
        std::os::unix::net::UnixStream::connect(&path).unwrap();
        // Only the socket is left in the directory.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("control.sock")]);
    }

    #[test]
    fn a_symlink_at_the_path_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"x").unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).unwrap();
        let path = dir.path().join("control.sock");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let _listener = bind(&path, None).unwrap();
        assert!(fs::symlink_metadata(&path).unwrap().file_type().is_socket());
        assert_eq!(fs::metadata(&victim).unwrap().permissions().mode() & 0o777, 0o644);
    }
}
