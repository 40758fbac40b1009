//! The small files tgtd keeps under `--state-dir` (APTPL reservations, sanitize journals): safe
//! names, atomic replacement, removal, and reading a versioned JSON file.

use serde::de::DeserializeOwned;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Replace `path` with `bytes` so that a crash leaves the old or the new content: temporary file,
/// fsync, rename, fsync of the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().ok_or_else(|| io::Error::other("state file has no directory"))?;
    fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    // The rename is durable only once the directory is.
    File::open(dir)?.sync_all()
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
