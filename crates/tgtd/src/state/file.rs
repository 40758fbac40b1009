//! The files tgtd keeps under `--state-dir`: the running configuration (`StateFile`), and the
//! helpers the APTPL files and sanitize journals share with it. Every one is written so that a crash
//! at any moment leaves either the old or the new file, never a torn one (temporary file in the same
//! directory, fsync, rename over, fsync the directory so the rename itself is durable).

use serde::de::DeserializeOwned;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The file name under `--state-dir`.
pub const FILE_NAME: &str = "running-config.json";

#[derive(Debug, thiserror::Error)]
pub enum StateFileError {
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid state file: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("cannot encode the running configuration: {0}")]
    Encode(serde_json::Error),
}

#[derive(Debug, Clone)]
pub struct StateFile {
    dir: PathBuf,
}

impl StateFile {
    pub fn new(dir: PathBuf) -> Self {
        StateFile { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Replace the file's content with `bytes`, durably.
    pub fn write(&self, bytes: &[u8]) -> Result<(), StateFileError> {
        let path = self.path();
        write_atomically(&path, bytes).map_err(|source| StateFileError::Write { path: path.clone(), source })
    }

    /// The file's content; None when there is no file yet.
    pub fn read(&self) -> Result<Option<Vec<u8>>, StateFileError> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateFileError::Read { path, source }),
        }
    }

    /// Keep a copy of the current file beside it (`name.suffix`), e.g. before a partial restore
    /// overwrites it.
    pub fn keep_copy(&self, suffix: &str) -> std::io::Result<PathBuf> {
        let copy = self.dir.join(format!("{FILE_NAME}.{suffix}"));
        std::fs::copy(self.path(), &copy)?;
        Ok(copy)
    }
}

/// Whether `dir` holds a state file.
pub fn exists(dir: &Path) -> bool {
    dir.join(FILE_NAME).exists()
}

/// Replace `path` with `bytes`, durably, as a file of mode 0600 (the running configuration holds
/// account passwords; the other state files are nobody else's business either).
///
/// The temporary file has a name of its own per call (`.NAME.PID.N.tmp`, created exclusively): two
/// writers of the same file (an APTPL save racing the running configuration's, or two LUNs' saves
/// under one directory) each rename their own complete file, never one the other is still
/// writing or has already removed. A write that fails removes its temporary file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("state file has no directory"))?;
    let name = path.file_name().ok_or_else(|| io::Error::other("state file has no name"))?;
    let (tmp, mut file) = create_temporary(dir, name)?;
    let written = file.write_all(bytes).and_then(|()| file.sync_all()).and_then(|()| {
        drop(file);
        fs::rename(&tmp, path)
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    File::open(dir)?.sync_all()
}

/// A new temporary file beside `name` in `dir`, never one that already exists (create_new: a
/// name taken, by a leftover of a crash or by anyone else, is skipped rather than reused).
fn create_temporary(dir: &Path, name: &std::ffi::OsStr) -> io::Result<(PathBuf, File)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".{pid}.{n}.tmp"));
        let tmp = dir.join(tmp_name);
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `write_atomically`, creating the file's directory first (the per-target directories of the APTPL
/// files and sanitize journals come and go with their files).
pub(crate) fn write_creating_dir(path: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(path.parent().ok_or_else(|| io::Error::other("state file has no directory"))?)?;
    write_atomically(path, bytes)
}

/// Remove `path`; one that is not there is already removed.
pub(crate) fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// An InvalidData error naming the file.
pub(crate) fn invalid(path: &Path, what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}", path.display()))
}

/// The JSON content of `path`, None when there is no such file; content that does not parse or
/// whose version (as `version_of` reads it) is not `version` is an InvalidData error.
pub(crate) fn read_versioned<T: DeserializeOwned>(
    path: &Path,
    version: u32,
    version_of: impl Fn(&T) -> u32,
) -> io::Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let saved: T = serde_json::from_slice(&bytes).map_err(|e| invalid(path, e.to_string()))?;
    match version_of(&saved) {
        v if v == version => Ok(Some(saved)),
        v => Err(invalid(path, format!("version {v} is not {version}"))),
    }
}

/// A target name as one file name under a state directory. The mapping is injective, so two
/// targets never share a file: letters, digits, '.', '-' and ':' (all an iSCSI name is made of)
/// stand for themselves, every other byte (including '%' and '_') becomes `%XX`, and so does a
/// leading '.' (no name is hidden, `.` or `..`); the empty name becomes a lone `%`, which no other
/// name produces. The result never contains '/'.
pub(crate) fn file_name(name: &str) -> String {
    if name.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || matches!(b, b'-' | b':') || (b == b'.' && i > 0);
        if plain {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Refuse a state directory that someone other than tgtd's user (or root) could have written:
/// tgtd replays `running-config.json` from it (backing files it opens, CHAP secrets it trusts), so
/// a directory or file writable by group or others, or owned by another user, would let that user
/// configure the daemon. Checked before anything in it is read.
pub fn check_private(dir: &Path) -> Result<(), NotPrivate> {
    let euid = nix::unistd::geteuid().as_raw();
    for (path, what) in [(dir.to_path_buf(), "state directory"), (dir.join(FILE_NAME), "state file")] {
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            // No state file yet: the directory alone decides.
            Err(e) if e.kind() == io::ErrorKind::NotFound && what == "state file" => continue,
            Err(source) => return Err(NotPrivate::Unreadable { path, source }),
        };
        let mode = meta.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(NotPrivate::Writable { what, path, mode });
        }
        if meta.uid() != euid && meta.uid() != 0 {
            return Err(NotPrivate::Owner { what, path, owner: meta.uid(), euid });
        }
    }
    Ok(())
}

/// The lock file in the state directory: held (flock, exclusive) by the one tgtd using it.
pub const LOCK_NAME: &str = "lock";

/// Take the state directory for this process: two daemons on one directory would each rewrite the
/// other's saved configuration with their own. The lock lives as long as the returned file (and
/// dies with the process, so a crash leaves nothing to clean up).
pub fn lock_dir(dir: &Path) -> Result<File, LockError> {
    let path = dir.join(LOCK_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|source| LockError::Open { path: path.clone(), source })?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Err(LockError::Busy { dir: dir.to_path_buf() });
        }
        return Err(LockError::Open { path, source: err });
    }
    Ok(file)
}

/// Why the state directory could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another tgtd is using the state directory {} (it holds {}/lock): give each daemon its own --state-dir", dir.display(), dir.display())]
    Busy { dir: PathBuf },
    #[error("cannot lock {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
}

/// Why `check_private` refused a state directory.
#[derive(Debug, thiserror::Error)]
pub enum NotPrivate {
    #[error("{what} {} is writable by group/others (mode {mode:04o}): refusing to replay it; chmod go-w {}", path.display(), path.display())]
    Writable { what: &'static str, path: PathBuf, mode: u32 },
    #[error("{what} {} is owned by uid {owner}, not by tgtd's user (uid {euid}) or root: refusing to replay it", path.display())]
    Owner { what: &'static str, path: PathBuf, owner: u32, euid: u32 },
    #[error("cannot check {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: io::Error },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// flock conflicts between open file descriptions, even in one process: the second taker is
    /// refused with the directory named, and the lock is free again once the first is closed.
    #[test]
    fn one_daemon_per_state_directory() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock_dir(dir.path()).unwrap();
        let err = lock_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("another tgtd") && err.contains(&dir.path().display().to_string()), "{err}");
        drop(held);
        lock_dir(dir.path()).unwrap();
    }

    #[test]
    fn write_replaces_and_read_returns() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path().to_path_buf());
        assert!(file.read().unwrap().is_none());
        assert!(!exists(dir.path()));
        file.write(b"one").unwrap();
        file.write(b"two").unwrap();
        assert_eq!(file.read().unwrap().unwrap(), b"two");
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from(FILE_NAME)]);
        let copy = file.keep_copy("old").unwrap();
        assert_eq!(std::fs::read(copy).unwrap(), b"two");
    }

    #[test]
    fn unwritable_directory_is_an_error() {
        let file = StateFile::new(PathBuf::from("/nonexistent/rtgt-state"));
        assert!(matches!(file.write(b"x"), Err(StateFileError::Write { .. })));
    }

    #[test]
    fn concurrent_writers_of_one_file_each_rename_their_own_complete_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lun-1.json");
        let contents: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'a' + i; 256 * 1024]).collect();
        std::thread::scope(|s| {
            for content in &contents {
                let path = &path;
                s.spawn(move || {
                    for round in 0..40 {
                        write_atomically(path, content).unwrap_or_else(|e| panic!("round {round}: {e}"));
                    }
                });
            }
        });
        let last = fs::read(&path).unwrap();
        assert!(contents.contains(&last), "the file holds one writer's whole content");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("lun-1.json")], "no temporary file is left");
    }

    #[test]
    fn file_names_are_injective_and_stay_in_their_directory() {
        let names = [
            "x/y",
            "x_y",
            "x%2Fy",
            "x%5Fy",
            "x.y",
            "x y",
            "",
            "%",
            "_",
            ".",
            "..",
            "..x",
            "%2E",
            "_.",
            "a\\b",
            "iqn.2026-01.org:x",
            "IQN.2026-01.ORG:X",
            "x\u{e9}",
            "x%C3%A9",
        ];
        let mut seen = std::collections::HashMap::new();
        for name in names {
            let mapped = file_name(name);
            assert!(!mapped.is_empty() && !mapped.contains('/') && mapped != "." && mapped != "..", "{name:?}");
            assert!(!mapped.starts_with('.'), "{name:?} -> {mapped:?} is not hidden");
            if let Some(other) = seen.insert(mapped.clone(), name) {
                panic!("{other:?} and {name:?} share the file name {mapped:?}");
            }
        }
        // What an iSCSI name is made of stays readable (and where earlier versions put it).
        assert_eq!(file_name("iqn.2026-01.org:x"), "iqn.2026-01.org:x");
        assert_eq!(file_name("x/y"), "x%2Fy");
        assert_eq!(file_name("x_y"), "x%5Fy");
        assert_eq!(file_name("../etc"), "%2E.%2Fetc");
    }

    #[test]
    fn a_state_directory_others_may_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let set = |p: &Path, mode| fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        set(dir.path(), 0o700);
        check_private(dir.path()).unwrap();
        set(dir.path(), 0o755);
        check_private(dir.path()).unwrap();
        for mode in [0o777, 0o775, 0o1777, 0o757] {
            set(dir.path(), mode);
            let err = check_private(dir.path()).unwrap_err();
            assert!(matches!(err, NotPrivate::Writable { .. }), "{mode:o}: {err}");
            assert!(err.to_string().contains("chmod go-w"), "{err}");
        }
        set(dir.path(), 0o700);
        let file = dir.path().join(FILE_NAME);
        fs::write(&file, b"{}").unwrap();
        set(&file, 0o600);
        check_private(dir.path()).unwrap();
        set(&file, 0o666);
        let err = check_private(dir.path()).unwrap_err();
        assert!(err.to_string().contains(FILE_NAME) && err.to_string().contains("0666"), "{err}");
        set(&file, 0o600);
        if nix::unistd::geteuid().is_root() {
            // Root's tgtd: a directory another user owns is theirs to fill.
            std::os::unix::fs::chown(dir.path(), Some(65534), None).unwrap();
            let err = check_private(dir.path()).unwrap_err();
            assert!(matches!(err, NotPrivate::Owner { owner: 65534, .. }), "{err}");
        }
    }
}
