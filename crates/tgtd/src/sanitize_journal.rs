//! The sanitize journal of a logical unit (see `rtgt_scsi::SanitizeJournal`): one JSON file under
//! `<state-dir>/sanitize/<target name>/lun-<n>.json`, written atomically, present only while a
//! sanitize runs or after one failed. It names the backing store it was written for: a LUN added
//! again on another file or image does not inherit a sanitize that was meant for the old one (the
//! entry is reported and removed instead).

use crate::state::file::{self as state_file, file_name, write_creating_dir};
use rtgt_scsi::{RecordState, SanitizeJournal, SanitizeRecord};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Bumped when the layout changes incompatibly; files of another version are not acted on.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    version: u32,
    backing_store: String,
    /// "running" or "failed".
    state: String,
    service_action: u8,
    ause: bool,
    /// One block of the OVERWRITE pattern, in hex; empty for the erases.
    pattern: String,
    /// Where a resumed OVERWRITE starts. Absent from the files of earlier versions (whose
    /// operations therefore start again from the beginning), hence no new VERSION.
    #[serde(default)]
    next_lba: u64,
}

#[derive(Debug, Clone)]
pub struct SanitizeJournalFile {
    path: PathBuf,
    backing_store: String,
}

impl SanitizeJournalFile {
    pub fn new(state_dir: &Path, target_name: &str, lun: u64, backing_store: &str) -> Self {
        let path = state_dir.join("sanitize").join(file_name(target_name)).join(format!("lun-{lun}.json"));
        SanitizeJournalFile { path, backing_store: backing_store.to_string() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [_, _] => u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok(),
            _ => None,
        })
        .collect()
}

impl SanitizeJournal for SanitizeJournalFile {
    fn save(&self, record: &SanitizeRecord) -> io::Result<()> {
        let saved = Saved {
            version: VERSION,
            backing_store: self.backing_store.clone(),
            state: match record.state {
                RecordState::Running => "running",
                RecordState::Failed => "failed",
            }
            .to_string(),
            service_action: record.service_action,
            ause: record.ause,
            pattern: hex(&record.pattern),
            next_lba: record.next_lba,
        };
        let bytes = serde_json::to_vec_pretty(&saved).map_err(io::Error::other)?;
        write_creating_dir(&self.path, &bytes)
    }

    fn clear(&self) -> io::Result<()> {
        state_file::remove(&self.path)
    }

    fn load(&self) -> io::Result<Option<SanitizeRecord>> {
        let Some(saved) = state_file::read_versioned(&self.path, VERSION, |s: &Saved| s.version)? else {
            return Ok(None);
        };
        let invalid = |what: String| state_file::invalid(&self.path, what);
        if saved.backing_store != self.backing_store {
            let other = saved.backing_store;
            self.clear()?;
            return Err(invalid(format!(
                "written for backing store {other}, not {}: removed, nothing to finish here",
                self.backing_store
            )));
        }
        let state = match saved.state.as_str() {
            "running" => RecordState::Running,
            "failed" => RecordState::Failed,
            other => return Err(invalid(format!("state {other:?}"))),
        };
        let pattern = unhex(&saved.pattern).ok_or_else(|| invalid("pattern is not hex".into()))?;
        Ok(Some(SanitizeRecord {
            state,
            service_action: saved.service_action,
            ause: saved.ause,
            pattern,
            next_lba: saved.next_lba,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_clears_and_refuses_another_backing_store() {
        let dir = tempfile::tempdir().unwrap();
        let file = SanitizeJournalFile::new(dir.path(), "iqn.2026-12.t:a/b", 3, "/srv/disk.img");
        assert!(file.path().ends_with("sanitize/iqn.2026-12.t:a%2Fb/lun-3.json"));
        assert_eq!(file.load().unwrap(), None);
        let record = SanitizeRecord {
            state: RecordState::Running,
            service_action: 1,
            ause: true,
            pattern: vec![0, 0xa5, 0xff],
            next_lba: 6144,
        };
        file.save(&record).unwrap();
        assert_eq!(file.load().unwrap(), Some(record.clone()));
        // The progress is in the file as a plain number; a file of an earlier version, without it,
        // resumes from the beginning.
        let text = std::fs::read_to_string(file.path()).unwrap();
        assert!(text.contains("\"next_lba\": 6144"), "{text}");
        std::fs::write(file.path(), text.replace(",\n  \"next_lba\": 6144", "")).unwrap();
        assert_eq!(file.load().unwrap(), Some(SanitizeRecord { next_lba: 0, ..record.clone() }));
        let failed = SanitizeRecord { state: RecordState::Failed, ..record };
        file.save(&failed).unwrap();
        assert_eq!(file.load().unwrap(), Some(failed.clone()));
        file.clear().unwrap();
        file.clear().unwrap();
        assert_eq!(file.load().unwrap(), None);

        file.save(&failed).unwrap();
        let elsewhere = SanitizeJournalFile::new(dir.path(), "iqn.2026-12.t:a/b", 3, "/srv/other.img");
        let err = elsewhere.load().unwrap_err();
        assert!(err.to_string().contains("/srv/disk.img"), "{err}");
        assert!(!file.path().exists());

        assert_eq!(unhex("0a5"), None);
        assert_eq!(unhex("zz"), None);
        std::fs::write(file.path(), b"{\"version\": 1}").unwrap();
        assert_eq!(file.load().unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
