//! A unit's sanitize journal: what survives a restart of the daemon. A sanitize operation that was
//! running when the daemon stopped (or crashed) is started again when the unit comes back, so the
//! medium is never left half-sanitized and readable (SBC-4 4.11: a sanitize continues after a power
//! on until it completes); a failed one leaves the unit in the sanitize failure mode again. The
//! daemon provides the storage (`SanitizeJournal`); the SCSI core writes it when an operation
//! starts and when it ends.

use super::sanitize::{self, BLOCK_ERASE, CRYPTOGRAPHIC_ERASE, OVERWRITE};
use super::sanitize_state::Failure;
use crate::lun::LogicalUnit;
use std::sync::Arc;

/// Where the journal entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// Started and not finished.
    Running,
    /// Ended with an error: the unit is in the sanitize failure mode.
    Failed,
}

/// One sanitize operation as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SanitizeRecord {
    pub state: RecordState,
    /// OVERWRITE (0x01), BLOCK ERASE (0x02) or CRYPTOGRAPHIC ERASE (0x03).
    pub service_action: u8,
    /// The AUSE bit of the SANITIZE command.
    pub ause: bool,
    /// For OVERWRITE, one logical block of the pattern; empty otherwise.
    pub pattern: Vec<u8>,
}

/// Storage for one unit's journal, provided by the daemon. `save` replaces the entry atomically.
pub trait SanitizeJournal: Send + Sync + std::fmt::Debug {
    fn save(&self, record: &SanitizeRecord) -> std::io::Result<()>;
    /// Remove the entry (the operation completed, or the failure mode was left).
    fn clear(&self) -> std::io::Result<()>;
    fn load(&self) -> std::io::Result<Option<SanitizeRecord>>;
}

/// What attaching a journal found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalRestore {
    Nothing,
    /// A sanitize operation that had not finished was started again.
    Resumed,
    /// The last sanitize had failed: the unit is in the sanitize failure mode.
    FailureMode,
}

impl LogicalUnit {
    /// Attach the unit's sanitize journal and act on what it holds (see the module's comment). An
    /// entry that does not fit this unit (a pattern of another block size, an unknown service
    /// action) is an error and is left alone.
    pub fn attach_sanitize_journal(
        self: &Arc<Self>,
        journal: Arc<dyn SanitizeJournal>,
    ) -> std::io::Result<JournalRestore> {
        let state = self.sanitize_state();
        state.set_journal(journal.clone());
        let Some(record) = journal.load()? else {
            return Ok(JournalRestore::Nothing);
        };
        let fits = match record.service_action {
            OVERWRITE => record.pattern.len() == self.block_size() as usize,
            BLOCK_ERASE | CRYPTOGRAPHIC_ERASE => record.pattern.is_empty(),
            _ => false,
        };
        if !fits {
            return Err(std::io::Error::other(format!(
                "saved sanitize state does not fit this unit (service action {:#04x}, pattern of {} bytes)",
                record.service_action,
                record.pattern.len()
            )));
        }
        match record.state {
            RecordState::Failed => {
                state.end(Failure::for_ause(record.ause));
                Ok(JournalRestore::FailureMode)
            }
            RecordState::Running => {
                sanitize::start(self, record).map_err(|sense| std::io::Error::other(sense.to_string()))?;
                Ok(JournalRestore::Resumed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use parking_lot::Mutex;

    /// A journal in memory that also remembers every call.
    #[derive(Debug, Default)]
    struct Memory {
        entry: Mutex<Option<SanitizeRecord>>,
        calls: Mutex<Vec<String>>,
    }

    impl SanitizeJournal for Memory {
        fn save(&self, record: &SanitizeRecord) -> std::io::Result<()> {
            self.calls.lock().push(format!("save {:?}", record.state));
            *self.entry.lock() = Some(record.clone());
            Ok(())
        }
        fn clear(&self) -> std::io::Result<()> {
            self.calls.lock().push("clear".into());
            *self.entry.lock() = None;
            Ok(())
        }
        fn load(&self) -> std::io::Result<Option<SanitizeRecord>> {
            Ok(self.entry.lock().clone())
        }
    }

    fn sanitize_cdb(sa: u8, param_len: u16) -> [u8; 10] {
        let l = param_len.to_be_bytes();
        [0x48, sa, 0, 0, 0, 0, 0, l[0], l[1], 0]
    }

    fn wait_until_ready(t: &TestLun) {
        for _ in 0..500 {
            if t.run(&[0, 0, 0, 0, 0, 0]).0.status == crate::ScsiStatus::Good {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the sanitize never ended");
    }

    #[test]
    fn an_operation_is_journalled_while_it_runs_and_cleared_when_it_completes() {
        let t = TestLun::thin(1 << 20);
        let journal = Arc::new(Memory::default());
        assert_eq!(t.lu.attach_sanitize_journal(journal.clone()).unwrap(), JournalRestore::Nothing);
        assert_good(&t.run_out(&sanitize_cdb(0x01, 5), &[0x01, 0, 0, 1, 0x42]).0);
        assert_eq!(*journal.calls.lock(), ["save Running", "clear"]);
        assert_eq!(journal.load().unwrap(), None);
    }

    #[test]
    fn an_unfinished_operation_starts_again_when_the_journal_is_attached() {
        let journal = Arc::new(Memory::default());
        let record =
            SanitizeRecord { state: RecordState::Running, service_action: 0x01, ause: false, pattern: vec![0x77; 512] };
        journal.save(&record).unwrap();
        let t = TestLun::thin(1 << 20);
        assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 9, 0, 0, 1, 0], &[1; 512]).0);
        assert_eq!(t.lu.attach_sanitize_journal(journal.clone()).unwrap(), JournalRestore::Resumed);
        wait_until_ready(&t);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 9, 0, 0, 1, 0]);
        assert_eq!(d, vec![0x77; 512]);
        assert_eq!(journal.load().unwrap(), None);
        // An erase needs no pattern; an entry that does not fit the unit is refused.
        let misfit = SanitizeRecord { pattern: vec![0x77; 100], ..record };
        journal.save(&misfit).unwrap();
        assert!(TestLun::thin(1 << 20).lu.attach_sanitize_journal(journal.clone()).is_err());
    }

    #[test]
    fn a_failed_operation_leaves_the_unit_in_the_failure_mode_after_a_restart() {
        let journal = Arc::new(Memory::default());
        let record =
            SanitizeRecord { state: RecordState::Failed, service_action: 0x02, ause: true, pattern: Vec::new() };
        journal.save(&record).unwrap();
        let t = TestLun::thin(1 << 20);
        assert_eq!(t.lu.attach_sanitize_journal(journal.clone()).unwrap(), JournalRestore::FailureMode);
        assert_sense(&t.run(&[0, 0, 0, 0, 0, 0]).0, 0x03, 0x31, 0x03);
        // AUSE was set: EXIT FAILURE MODE leaves it, and the journal forgets it.
        assert_good(&t.run(&sanitize_cdb(0x1f, 0)).0);
        assert_good(&t.run(&[0, 0, 0, 0, 0, 0]).0);
        assert_eq!(journal.load().unwrap(), None);
    }
}
