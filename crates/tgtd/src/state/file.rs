//! The state file on disk: written so that a crash at any moment leaves either the old or the new
//! file, never a torn one (temporary file in the same directory, fsync, rename over, fsync the
//! directory so the rename itself is durable).

use std::fs::{File, OpenOptions};
use std::io::Write;
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
        let tmp = self.dir.join(format!(".{FILE_NAME}.tmp"));
        let err = |source| StateFileError::Write { path: path.clone(), source };
        // 0600: account passwords live in this file. A leftover temporary file from a crash is removed
        // first, so that the mode applies to a file created now.
        let _ = std::fs::remove_file(&tmp);
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(err)?;
        file.write_all(bytes).map_err(err)?;
        file.sync_all().map_err(err)?;
        drop(file);
        std::fs::rename(&tmp, &path).map_err(err)?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(err)
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
