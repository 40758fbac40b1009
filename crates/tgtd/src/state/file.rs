//! The files tgtd keeps under `--state-dir`: the running configuration (`StateFile`), and the
//! helpers the APTPL files and sanitize journals share with it. Every one is written so that a crash
//! at any moment leaves either the old or the new file, never a torn one (temporary file in the same
//! directory, fsync, rename over, fsync the directory so the rename itself is durable).

use serde::de::DeserializeOwned;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

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
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("state file has no directory"))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    // A leftover temporary file from a crash is removed first, so that the mode applies to a file
    // created now.
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
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

/// Keep names filesystem-safe: iSCSI names use letters, digits, '.', '-', ':' only, anything else
/// (or a leading dot) becomes '_'.
pub(crate) fn file_name(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':') { c } else { '_' }).collect();
    match safe.strip_prefix('.') {
        Some(rest) => format!("_{rest}"),
        None if safe.is_empty() => "_".to_string(),
        None => safe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
}
