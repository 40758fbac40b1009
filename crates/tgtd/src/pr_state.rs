//! Persistent reservation state saved for APTPL (SPC-4 5.12.4): one JSON file per logical unit
//! under `<state-dir>/persistent-reservations/<target name>/lun-<n>.json`, written atomically
//! (temporary file, fsync, rename, fsync of the directory) so a crash leaves the old or the new
//! state, never half of one. The SCSI core calls `save` after each change while APTPL is set (and
//! once when it is cleared, which removes the file) and `load` when the LUN is created.

use crate::state::file as state_file;
use rtgt_scsi::{PrPersistence, PrRegistration, PrReservation, PrSnapshot, PrType};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

/// Bumped when the layout changes incompatibly; files of another version are not restored.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    version: u32,
    generation: u32,
    aptpl: bool,
    registrations: Vec<SavedRegistration>,
    reservation: Option<SavedReservation>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedRegistration {
    initiator_port: String,
    key: u64,
    all_tg_pt: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct SavedReservation {
    holder: String,
    /// SPC-4 TYPE code.
    pr_type: u8,
}

/// The APTPL file of one logical unit.
#[derive(Debug, Clone)]
pub struct PrStateFile {
    path: PathBuf,
}

impl PrStateFile {
    pub fn new(state_dir: &Path, target_name: &str, lun: u64) -> Self {
        let path = state_dir
            .join("persistent-reservations")
            .join(state_file::file_name(target_name))
            .join(format!("lun-{lun}.json"));
        PrStateFile { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl PrPersistence for PrStateFile {
    fn save(&self, state: &PrSnapshot) -> io::Result<()> {
        if !state.aptpl {
            // APTPL cleared: nothing may survive a restart.
            return state_file::remove(&self.path);
        }
        let saved = Saved {
            version: VERSION,
            generation: state.generation,
            aptpl: state.aptpl,
            registrations: state
                .registrations
                .iter()
                .map(|r| SavedRegistration {
                    initiator_port: r.initiator_port.clone(),
                    key: r.key,
                    all_tg_pt: r.all_tg_pt,
                })
                .collect(),
            reservation: state
                .reservation
                .as_ref()
                .map(|r| SavedReservation { holder: r.holder.clone(), pr_type: r.pr_type.code() }),
        };
        let bytes = serde_json::to_vec_pretty(&saved).map_err(io::Error::other)?;
        state_file::write_creating_dir(&self.path, &bytes)
    }

    fn load(&self) -> io::Result<Option<PrSnapshot>> {
        let Some(saved) = state_file::read_versioned(&self.path, VERSION, |s: &Saved| s.version)? else {
            return Ok(None);
        };
        let invalid = |what: String| state_file::invalid(&self.path, what);
        let reservation = match saved.reservation {
            None => None,
            Some(r) => {
                let pr_type =
                    PrType::from_code(r.pr_type).ok_or_else(|| invalid(format!("reservation type {}", r.pr_type)))?;
                Some(PrReservation { holder: r.holder, pr_type })
            }
        };
        Ok(Some(PrSnapshot {
            generation: saved.generation,
            aptpl: saved.aptpl,
            registrations: saved
                .registrations
                .into_iter()
                .map(|r| PrRegistration { initiator_port: r.initiator_port, key: r.key, all_tg_pt: r.all_tg_pt })
                .collect(),
            reservation,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn snapshot(aptpl: bool) -> PrSnapshot {
        PrSnapshot {
            generation: 7,
            aptpl,
            registrations: vec![PrRegistration {
                initiator_port: "iqn.1994-05.com.example:h,i,0x00023d000001".into(),
                key: u64::MAX,
                all_tg_pt: true,
            }],
            reservation: Some(PrReservation {
                holder: "iqn.1994-05.com.example:h,i,0x00023d000001".into(),
                pr_type: PrType::ExclusiveAccessRegistrantsOnly,
            }),
        }
    }

    #[test]
    fn save_load_round_trip_and_clear() {
        let dir = tempfile::tempdir().unwrap();
        let file = PrStateFile::new(dir.path(), "iqn.2026-01.x:t/../1", 3);
        assert!(file.path().starts_with(dir.path().join("persistent-reservations")));
        assert!(file.path().ends_with("lun-3.json"));
        assert_eq!(file.load().unwrap(), None);
        file.save(&snapshot(true)).unwrap();
        assert_eq!(file.load().unwrap(), Some(snapshot(true)));
        assert!(!file.path().with_extension("json.tmp").exists());
        // Clearing APTPL removes the file, twice is fine.
        file.save(&snapshot(false)).unwrap();
        file.save(&snapshot(false)).unwrap();
        assert_eq!(file.load().unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = PrStateFile::new(dir.path(), "t", 1);
        fs::create_dir_all(file.path().parent().unwrap()).unwrap();
        for text in
            ["", "{", "{\"version\":2,\"generation\":0,\"aptpl\":true,\"registrations\":[],\"reservation\":null}"]
        {
            fs::write(file.path(), text).unwrap();
            assert_eq!(file.load().unwrap_err().kind(), io::ErrorKind::InvalidData);
        }
        fs::write(
            file.path(),
            "{\"version\":1,\"generation\":0,\"aptpl\":true,\"registrations\":[],\"reservation\":{\"holder\":\"x\",\"pr_type\":2}}",
        )
        .unwrap();
        assert!(file.load().is_err());
    }

    #[test]
    fn names_are_sanitised() {
        use state_file::file_name;
        assert_eq!(file_name("iqn.2026-01.org:x"), "iqn.2026-01.org:x");
        assert_eq!(file_name("../etc"), "_._etc");
        assert_eq!(file_name(""), "_");
    }
}
