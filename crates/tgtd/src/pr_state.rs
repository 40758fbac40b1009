//! Persistent reservation state saved for APTPL (SPC-4 5.12.4): one JSON file per logical unit
//! under `<state-dir>/persistent-reservations/<target name>/lun-<n>.json`, written atomically
//! (temporary file, fsync, rename, fsync of the directory) so a crash leaves the old or the new
//! state, never half of one. The SCSI core calls `save` after each change while APTPL is set (and
//! once when it is cleared, which removes the file) and `load` when the LUN is created.
//!
//! The file names the backing store it was written for, as the sanitize journal does: the file
//! outlives the LUN on purpose (fencing agents rely on registrations surviving a delete and
//! re-create), but a LUN created on another file or image is another disk, and must not inherit
//! the old one's registrations and reservation (the file is reported and removed instead). A file
//! from an earlier rtgt, which named no store, is accepted once and rewritten at once naming the
//! store of the LUN that loaded it, so an upgrade does not drop the registrations a cluster holds.

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
    /// The LUN's backing store (path or image spec); absent in files of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backing_store: Option<String>,
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
    backing_store: String,
}

impl PrStateFile {
    pub fn new(state_dir: &Path, target_name: &str, lun: u64, backing_store: &str) -> Self {
        let path = state_dir
            .join("persistent-reservations")
            .join(state_file::file_name(target_name))
            .join(format!("lun-{lun}.json"));
        PrStateFile { path, backing_store: backing_store.to_string() }
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
            backing_store: Some(self.backing_store.clone()),
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
        match &saved.backing_store {
            Some(other) if *other != self.backing_store => {
                let other = other.clone();
                state_file::remove(&self.path)?;
                return Err(invalid(format!(
                    "written for backing store {other:?}, not {:?}: removed, its registrations belong to another disk",
                    self.backing_store
                )));
            }
            Some(_) => {}
            None => tracing::warn!(
                path = %self.path.display(),
                backing_store = %self.backing_store,
                "APTPL file of an earlier version names no backing store: restored, and bound to this one from now on"
            ),
        }
        let legacy = saved.backing_store.is_none();
        let reservation = match saved.reservation {
            None => None,
            Some(r) => {
                let pr_type =
                    PrType::from_code(r.pr_type).ok_or_else(|| invalid(format!("reservation type {}", r.pr_type)))?;
                Some(PrReservation { holder: r.holder, pr_type })
            }
        };
        let snapshot = PrSnapshot {
            generation: saved.generation,
            aptpl: saved.aptpl,
            registrations: saved
                .registrations
                .into_iter()
                .map(|r| PrRegistration { initiator_port: r.initiator_port, key: r.key, all_tg_pt: r.all_tg_pt })
                .collect(),
            reservation,
        };
        if legacy {
            // Bound now, so a later LUN on another store cannot take it over.
            self.save(&snapshot)?;
        }
        Ok(Some(snapshot))
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
        let file = PrStateFile::new(dir.path(), "iqn.2026-01.x:t/../1", 3, "/srv/disk.img");
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
        let file = PrStateFile::new(dir.path(), "t", 1, "/srv/disk.img");
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
        assert_eq!(file_name("../etc"), "%2E.%2Fetc");
        assert_eq!(file_name(""), "%");
        // Two targets whose names differ only where the old scheme wrote '_' keep apart.
        let a = PrStateFile::new(Path::new("/s"), "x/y", 1, "");
        let b = PrStateFile::new(Path::new("/s"), "x_y", 1, "");
        assert_ne!(a.path(), b.path());
    }

    #[test]
    fn a_lun_on_another_backing_store_does_not_inherit_the_registrations() {
        let dir = tempfile::tempdir().unwrap();
        let old = PrStateFile::new(dir.path(), "iqn.2026-01.x:t", 1, "/srv/old.img");
        old.save(&snapshot(true)).unwrap();
        let text = fs::read_to_string(old.path()).unwrap();
        assert!(text.contains("\"backing_store\": \"/srv/old.img\""), "{text}");
        let new = PrStateFile::new(dir.path(), "iqn.2026-01.x:t", 1, "/srv/new.img");
        let err = new.load().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("/srv/old.img"), "{err}");
        assert!(!new.path().exists(), "the other disk's file is removed");
        assert_eq!(old.load().unwrap(), None, "and nothing comes back for the old store either");
    }

    #[test]
    fn a_file_of_an_earlier_version_is_accepted_once_and_bound_to_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let first = PrStateFile::new(dir.path(), "t", 1, "/srv/a.img");
        first.save(&snapshot(true)).unwrap();
        // What rtgt wrote before files named their store.
        let mut value: serde_json::Value = serde_json::from_slice(&fs::read(first.path()).unwrap()).unwrap();
        value.as_object_mut().unwrap().remove("backing_store");
        fs::write(first.path(), serde_json::to_vec(&value).unwrap()).unwrap();
        assert_eq!(first.load().unwrap(), Some(snapshot(true)));
        assert!(fs::read_to_string(first.path()).unwrap().contains("/srv/a.img"), "rewritten naming the store");
        let other = PrStateFile::new(dir.path(), "t", 1, "/srv/b.img");
        assert!(other.load().is_err(), "bound to the first store now");
    }
}
