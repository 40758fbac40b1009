//! A unit's sanitize journal: what survives a restart of the daemon. A sanitize operation that was
//! running when the daemon stopped (or crashed) is started again when the unit comes back, so the
//! medium is never left half-sanitized and readable (SBC-4 4.11: a sanitize continues after a power
//! on until it completes); a failed one leaves the unit in the sanitize failure mode again. The
//! daemon provides the storage (`SanitizeJournal`); the SCSI core writes it when an operation
//! starts, as an OVERWRITE progresses (so a resumed one continues where the last run got to rather
//! than rewriting the whole medium) and when it ends. The types live here, below the unit; attaching
//! a journal to a unit and resuming from it is `sanitize::attach_sanitize_journal`.

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
    /// For OVERWRITE, the first block not yet known to be written (and flushed): a resumed
    /// operation starts there. 0 for the erases and for entries of versions that did not save it.
    pub next_lba: u64,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::*;
    use parking_lot::Mutex;
    use std::sync::Arc;

    /// A journal in memory that also remembers every call.
    #[derive(Debug, Default)]
    struct Memory {
        entry: Mutex<Option<SanitizeRecord>>,
        calls: Mutex<Vec<String>>,
        saved: Mutex<Vec<SanitizeRecord>>,
    }

    impl SanitizeJournal for Memory {
        fn save(&self, record: &SanitizeRecord) -> std::io::Result<()> {
            self.calls.lock().push(format!("save {:?}", record.state));
            self.saved.lock().push(record.clone());
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
        let record = SanitizeRecord {
            state: RecordState::Running,
            service_action: 0x01,
            ause: false,
            pattern: vec![0x77; 512],
            next_lba: 0,
        };
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
        let record = SanitizeRecord {
            state: RecordState::Failed,
            service_action: 0x02,
            ause: true,
            pattern: Vec::new(),
            next_lba: 0,
        };
        journal.save(&record).unwrap();
        let t = TestLun::thin(1 << 20);
        assert_eq!(t.lu.attach_sanitize_journal(journal.clone()).unwrap(), JournalRestore::FailureMode);
        assert_sense(&t.run(&[0, 0, 0, 0, 0, 0]).0, 0x03, 0x31, 0x03);
        // AUSE was set: EXIT FAILURE MODE leaves it, and the journal forgets it.
        assert_good(&t.run(&sanitize_cdb(0x1f, 0)).0);
        assert_good(&t.run(&[0, 0, 0, 0, 0, 0]).0);
        assert_eq!(journal.load().unwrap(), None);
    }

    /// A thin 4 MiB unit (8192 blocks, four 1 MiB overwrite chunks) whose store follows `rule`.
    fn faulty(rule: &str) -> TestLun {
        use rtgt_backstore::{Backstore, FaultRule, FaultStore, MemoryStore};
        let rules = vec![FaultRule::parse(rule).unwrap()];
        let store = FaultStore::new(Backstore::Memory(MemoryStore::new(4 << 20)), rules, 512);
        let mut config = crate::LunConfig::disk(1, 1);
        config.thin_provisioning = true;
        TestLun::with_store(config, Some(Backstore::Faulty(Box::new(store))), 1)
    }

    fn read_block(t: &TestLun, lba: u32) -> Vec<u8> {
        let l = lba.to_be_bytes();
        let (r, d) = t.run(&[0x28, 0, l[0], l[1], l[2], l[3], 0, 0, 1, 0]);
        assert_good(&r);
        d
    }

    #[test]
    fn an_overwrite_saves_its_progress_and_a_resumed_one_writes_only_what_is_left() {
        // A run cut short (here by a write error in the fourth chunk) has saved how far it got,
        // after each chunk: on 4 MiB, 1% is less than one chunk.
        let t = faulty("write:eio:lba=7000-7000");
        let journal = Arc::new(Memory::default());
        t.lu.attach_sanitize_journal(journal.clone()).unwrap();
        assert_sense(&t.run_out(&sanitize_cdb(0x01, 5), &[0x01, 0, 0, 1, 0x77]).0, 0x03, 0x31, 0x03);
        let saved = journal.saved.lock().clone();
        let running: Vec<u64> = saved.iter().filter(|r| r.state == RecordState::Running).map(|r| r.next_lba).collect();
        assert_eq!(running, [0, 2048, 4096, 6144]);
        let last = saved.iter().rfind(|r| r.state == RecordState::Running).unwrap().clone();
        assert_eq!(last.pattern, vec![0x77; 512]);

        // The daemon comes back with that entry on a medium whose every block holds 0x11, with
        // writes slowed down so the resumed run can be watched: it reports three quarters done from
        // the start, and leaves the blocks below the saved point alone.
        let t = faulty("write:delay=100ms");
        assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0x20, 0, 0], &vec![0x11; 4 << 20]).0);
        let journal = Arc::new(Memory::default());
        *journal.entry.lock() = Some(last);
        assert_eq!(t.lu.attach_sanitize_journal(journal.clone()).unwrap(), JournalRestore::Resumed);
        let sense = t.run(&[0, 0, 0, 0, 0, 0]).0.sense.unwrap();
        assert_eq!((sense[2], sense[12], sense[13], sense[15]), (0x02, 0x04, 0x1b, 0x80));
        let progress = u16::from_be_bytes([sense[16], sense[17]]);
        assert!(progress >= 0xbfff, "progress {progress:#06x} does not start at the saved point");
        wait_until_ready(&t);
        for lba in [0, 6143] {
            assert_eq!(read_block(&t, lba), vec![0x11; 512], "LBA {lba} was written again");
        }
        for lba in [6144, 8191] {
            assert_eq!(read_block(&t, lba), vec![0x77; 512], "LBA {lba} was not overwritten");
        }
        assert_eq!(journal.load().unwrap(), None);
    }
}
