//! SANITIZE (SBC-4 5.30) as a virtual disk can honestly do it: OVERWRITE writes the
//! initialization pattern over every block (the last pass's pattern: earlier passes would land on
//! the same file blocks and leave nothing different behind); BLOCK ERASE and CRYPTOGRAPHIC ERASE
//! (offered on thin-provisioned units only) deallocate every block, so the old data is gone from
//! the backing file and every block reads as zeros (LBPRZ).
//!
//! Once its parameters are checked, a sanitize operation runs on a thread of its own and belongs
//! to the unit, not to the command (SBC-4 4.11): aborting the command, a reset or the initiator
//! going away does not stop it half-way. With IMMED set status is returned at once; without, when
//! the operation ends. While it runs, other commands are answered NOT READY, SANITIZE IN PROGRESS
//! with its progress (SBC-4 4.11.2), so nobody reads a half-sanitized medium. If it fails, the unit
//! stays in the sanitize failure mode (MEDIUM ERROR, SANITIZE COMMAND FAILED) until a sanitize
//! succeeds or, when the failed one had AUSE set, EXIT FAILURE MODE is sent.

use super::sanitize_journal::{JournalRestore, RecordState, SanitizeJournal, SanitizeRecord};
use super::sanitize_state::{failed, Failure};
use super::{check_writable, store_error, Access};
use crate::cdb::{be16, Cdb, Decoded};
use crate::lun::LogicalUnit;
use crate::opcodes::{self, io, Handler, OpcodeEntry, LOOKS_ONLY};
use crate::sense::{Asc, Sense, SenseKey};
use rtgt_backstore::BlockStore;
use std::sync::Arc;

pub(crate) const OVERWRITE: u8 = 0x01;
pub(crate) const BLOCK_ERASE: u8 = 0x02;
pub(crate) const CRYPTOGRAPHIC_ERASE: u8 = 0x03;
pub(crate) const EXIT_FAILURE_MODE: u8 = 0x1f;

/// Bytes written per store call while overwriting.
const CHUNK: usize = 1 << 20;

/// An OVERWRITE saves its progress in the journal at least this often (and at least every 1% of
/// the medium): each save flushes the store and writes a file, so not much more often than that.
const SAVE_EVERY_MAX: u64 = 64 << 20;

/// The PARAMETER LIST LENGTH field (CDB bytes 7-8) is wrong for the service action.
fn bad_length() -> Sense {
    Sense::invalid_cdb_field(7, Some(7))
}

/// Fields of the SANITIZE CDB (SBC-4 5.30.1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request {
    pub service_action: u8,
    pub immed: bool,
    pub ause: bool,
    pub param_len: u16,
}

impl Cdb for Request {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(Request {
            service_action: c[1] & 0x1f,
            immed: c[1] & 0x80 != 0,
            ause: c[1] & 0x20 != 0,
            param_len: be16(c, 7),
        })
    }

    fn decoded(&self) -> Decoded {
        Decoded::params(u32::from(self.param_len))
    }
}

pub(crate) const SANITIZE: Handler = io!(Request, |req, request| sanitize(req.lu, request, req.data_out));

/// SBC-4 4.11.2-3: while a SANITIZE runs only INQUIRY, REPORT LUNS and REQUEST SENSE may look at
/// the unit (their rows say `LOOKS_ONLY`; REQUEST SENSE reports the progress); after a failed one,
/// another SANITIZE may also run.
pub(crate) fn admit(lu: &LogicalUnit, entry: &OpcodeEntry) -> Result<(), Sense> {
    let Ok(state) = lu.disk().map(|d| d.sanitize()) else { return Ok(()) };
    let Some(sense) = state.sense() else { return Ok(()) };
    let retry = entry.has(opcodes::SANITIZE) && state.progress().is_none();
    if entry.has(LOOKS_ONLY) || retry {
        Ok(())
    } else {
        Err(sense)
    }
}

pub(crate) async fn sanitize(lu: &Arc<LogicalUnit>, request: Request, data_out: &[u8]) -> Result<(), Sense> {
    check_writable(lu)?;
    let state = lu.disk()?.sanitize();
    // SBC-4 4.11.3: after a failure in the restricted completion mode only a sanitize that asks
    // for the restricted mode again may end it.
    let restricted = state.failure() == Failure::Restricted;
    if restricted && request.ause {
        return Err(Sense::invalid_cdb_field(1, Some(5)));
    }
    let pattern = match request.service_action {
        OVERWRITE => overwrite_pattern(lu, request.param_len, data_out)?,
        BLOCK_ERASE | CRYPTOGRAPHIC_ERASE => {
            if request.param_len != 0 {
                return Err(bad_length());
            }
            Vec::new()
        }
        EXIT_FAILURE_MODE => {
            if request.param_len != 0 {
                return Err(bad_length());
            }
            if restricted {
                return Err(Sense::invalid_cdb_field(1, Some(4)));
            }
            state.leave_failure();
            return Ok(());
        }
        // The opcode table only dispatches the service actions above.
        _ => return Err(Sense::invalid_cdb_field(1, Some(4))),
    };
    let job = SanitizeRecord {
        state: RecordState::Running,
        service_action: request.service_action,
        ause: request.ause,
        pattern,
        next_lba: 0,
    };
    let finished = start(lu, job)?;
    if request.immed {
        return Ok(());
    }
    finished.await.unwrap_or(Err(failed()))
}

/// Start the sanitize operation `job` on its own thread (a SANITIZE command's, or one an earlier
/// run of the daemon left unfinished). The receiver gets its result.
pub(super) fn start(
    lu: &Arc<LogicalUnit>,
    job: SanitizeRecord,
) -> Result<tokio::sync::oneshot::Receiver<Result<(), Sense>>, Sense> {
    let state = lu.disk()?.sanitize();
    // The dispatcher already turned away commands while a sanitize runs; two SANITIZE commands
    // arriving together are told apart here.
    if !state.try_begin() {
        return Err(Sense::sanitize_in_progress(state.progress().unwrap_or(0)));
    }
    // A resumed operation reports the progress its last run had saved from the start.
    let from = resume_point(lu, &job);
    if from > 0 {
        tracing::info!(lba = from, "resuming sanitize at LBA {from}");
        state.set_progress(from, lu.capacity_blocks());
    }
    // Written before any block changes, so that a crash part-way leaves the unit's journal saying a
    // sanitize must be finished.
    state.journal_save(&job);
    let operation = Operation { lu: lu.clone(), job, outcome: Outcome::Failed };
    let (done, finished) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new().name("sanitize".into()).spawn(move || {
        let result = operation.run();
        // Nobody listens when the command was aborted or IMMED was set.
        let _ = done.send(result);
    });
    if let Err(e) = thread {
        tracing::error!(error = %e, "cannot start a thread for SANITIZE");
        return Err(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE));
    }
    Ok(finished)
}

/// SBC-4 5.30.2: a four-byte header and a pattern of 1..=block size bytes, repeated to fill a block
/// (inverted when the last pass of an INVERT overwrite is an inverted one).
fn overwrite_pattern(lu: &LogicalUnit, param_len: u16, data_out: &[u8]) -> Result<Vec<u8>, Sense> {
    let bs = lu.block_size() as usize;
    let param_len = usize::from(param_len);
    if param_len <= 4 || param_len > bs + 4 {
        return Err(bad_length());
    }
    let params = data_out.get(..param_len).ok_or(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR))?;
    let invert = params[0] & 0x80 != 0;
    let count = params[0] & 0x1f;
    let pattern_len = usize::from(u16::from_be_bytes([params[2], params[3]]));
    if count == 0 || pattern_len == 0 || pattern_len > bs || pattern_len > param_len - 4 {
        return Err(bad_length());
    }
    // With INVERT the pattern alternates between passes; what stays is the last pass's.
    let inverted = invert && count % 2 == 0;
    let pattern = &params[4..4 + pattern_len];
    Ok(pattern.iter().map(|&b| if inverted { !b } else { b }).cycle().take(bs).collect())
}

/// How a sanitize operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Completed,
    /// With an error (or a panic of its thread): the unit enters the sanitize failure mode.
    Failed,
    /// Its unit was deleted: nothing is recorded, so that the same unit added again on the same
    /// medium finishes the job.
    Abandoned,
}

/// A running sanitize operation. However it ends, dropping it records the outcome (in the unit's
/// state and journal) and lets commands in again.
struct Operation {
    lu: Arc<LogicalUnit>,
    job: SanitizeRecord,
    outcome: Outcome,
}

impl Operation {
    fn run(mut self) -> Result<(), Sense> {
        let lu = &*self.lu;
        let job = &self.job;
        let result = pollster::block_on(async {
            match job.service_action {
                OVERWRITE => overwrite(lu, job).await,
                _ => erase(lu).await,
            }
        });
        self.outcome = match &result {
            Ok(()) => Outcome::Completed,
            Err(_) if self.lu.is_removed() => Outcome::Abandoned,
            Err(_) => Outcome::Failed,
        };
        result
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        let Ok(disk) = self.lu.disk() else { return };
        let state = disk.sanitize();
        match self.outcome {
            Outcome::Completed => {
                state.journal_clear();
                state.end(Failure::None);
            }
            Outcome::Failed => {
                state.journal_save(&SanitizeRecord { state: RecordState::Failed, ..self.job.clone() });
                state.end(Failure::for_ause(self.job.ause));
            }
            Outcome::Abandoned => state.end(Failure::None),
        }
    }
}

async fn erase(lu: &LogicalUnit) -> Result<(), Sense> {
    let store = lu.medium()?;
    let size = lu.capacity_blocks() * u64::from(lu.block_size());
    let _held = lu.disk()?.range_locks().lock(0, u64::MAX).await;
    store.unmap(0, size).await.map_err(|e| report(lu, &e))
}

/// Where `job` starts: the block its journal entry says the last run got to, for an OVERWRITE whose
/// entry fits the medium; 0 otherwise (the erases deallocate everything in one call, and a medium
/// that shrank since the entry was saved is overwritten from its beginning).
fn resume_point(lu: &LogicalUnit, job: &SanitizeRecord) -> u64 {
    match job.service_action {
        OVERWRITE if job.next_lba <= lu.capacity_blocks() => job.next_lba,
        _ => 0,
    }
}

async fn overwrite(lu: &LogicalUnit, job: &SanitizeRecord) -> Result<(), Sense> {
    let store = lu.medium()?;
    let block = &job.pattern;
    let bs = block.len();
    let size = lu.capacity_blocks() * bs as u64;
    let blocks_per_chunk = (CHUNK / bs).max(1);
    let chunk: Vec<u8> = block.iter().copied().cycle().take(blocks_per_chunk * bs).collect();
    let save_every = (size / 100).clamp(1, SAVE_EVERY_MAX);
    let _held = lu.disk()?.range_locks().lock(0, u64::MAX).await;
    let mut done = resume_point(lu, job) * bs as u64;
    let mut saved = done;
    while done < size {
        // A unit deleted meanwhile has nobody left to sanitize it for.
        if lu.is_removed() {
            return Err(failed());
        }
        let n = (size - done).min(chunk.len() as u64) as usize;
        store.write_at(done, &chunk[..n], false).await.map_err(|e| report(lu, &e))?;
        done += n as u64;
        lu.disk()?.sanitize().set_progress(done, size);
        // The blocks are flushed before the journal counts them as done, so that a power loss
        // cannot leave old data below the point a resumed run starts from.
        if done - saved >= save_every && done < size {
            store.flush().await.map_err(|e| report(lu, &e))?;
            let progress = SanitizeRecord { next_lba: done / bs as u64, ..job.clone() };
            lu.disk()?.sanitize().journal_save(&progress);
            saved = done;
        }
    }
    store.flush().await.map_err(|e| report(lu, &e))
}

/// Log a store failure (rate-limited like every medium error) and answer the sanitize's failure.
fn report(lu: &LogicalUnit, err: &rtgt_backstore::BackstoreError) -> Sense {
    let _ = store_error(lu, err, Access::Write);
    failed()
}
impl LogicalUnit {
    /// Attach the unit's sanitize journal and act on what it holds (see the module's comment). An
    /// entry that does not fit this unit (a pattern of another block size, an unknown service
    /// action) is an error and is left alone.
    pub fn attach_sanitize_journal(
        self: &Arc<Self>,
        journal: Arc<dyn SanitizeJournal>,
    ) -> std::io::Result<JournalRestore> {
        let state = self.disk().map_err(|_| std::io::Error::other("only a disk has a sanitize journal"))?.sanitize();
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
                start(self, record).map_err(|sense| std::io::Error::other(sense.to_string()))?;
                Ok(JournalRestore::Resumed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Failure;
    use crate::test_util::*;
    use crate::LunConfig;
    use rtgt_backstore::{Backstore, FaultRule, FaultStore, MemoryStore};
    use std::future::Future;

    fn sanitize(sa: u8, param_len: u16) -> [u8; 10] {
        let l = param_len.to_be_bytes();
        [0x48, sa, 0, 0, 0, 0, 0, l[0], l[1], 0]
    }

    #[test]
    fn overwrite_fills_every_block() {
        let t = TestLun::disk(64 << 10); // 128 blocks
        let mut params = vec![0x01, 0, 0, 3];
        params.extend_from_slice(&[1, 2, 3]);
        assert_good(&t.run_out(&sanitize(0x01, 7), &params).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 127, 0, 0, 1, 0]);
        let expected: Vec<u8> = [1u8, 2, 3].iter().copied().cycle().take(512).collect();
        assert_eq!(d, expected);
        // INVERT with two passes leaves the inverted pattern.
        let params = [0x82, 0, 0, 1, 0x0f];
        assert_good(&t.run_out(&sanitize(0x01, 5), &params).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(d, vec![0xf0; 512]);
    }

    #[test]
    fn a_running_sanitize_turns_other_commands_away_with_its_progress() {
        let t = TestLun::thin(64 << 10);
        let state = t.lu.disk().unwrap().sanitize();
        assert!(state.try_begin());
        state.set_progress(1, 4);
        // TEST UNIT READY, READ and a second SANITIZE: NOT READY, SANITIZE IN PROGRESS, with SKSV
        // and the progress (a quarter: 0x3fff) in the sense-key-specific bytes.
        let expect = [0x70, 0, 0x02, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x04, 0x1b, 0, 0x80, 0x3f, 0xff];
        assert_eq!(t.run(&[0, 0, 0, 0, 0, 0]).0.sense.as_deref(), Some(&expect[..]));
        assert_eq!(t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]).0.sense.as_deref(), Some(&expect[..]));
        assert_eq!(t.run_out(&sanitize(0x02, 0), &[]).0.sense.as_deref(), Some(&expect[..]));
        // INQUIRY and REPORT LUNS still work; REQUEST SENSE reports the progress.
        assert_good(&t.run(&[0x12, 0, 0, 0, 36, 0]).0);
        assert_good(&t.run(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0]).0);
        let (r, d) = t.run(&[0x03, 0, 0, 0, 18, 0]);
        assert_good(&r);
        assert_eq!(d, expect);
        state.end(Failure::None);
        assert_good(&t.run(&[0, 0, 0, 0, 0, 0]).0);
    }

    /// A thin unit whose store makes writes wait `delay` or fail as `rules` say.
    fn faulty(rules: &[&str]) -> TestLun {
        let rules = rules.iter().map(|r| FaultRule::parse(r).unwrap()).collect();
        let store = FaultStore::new(Backstore::Memory(MemoryStore::new(4 << 20)), rules, 512);
        let mut config = LunConfig::disk(1, 1);
        config.thin_provisioning = true;
        TestLun::with_store(config, Some(Backstore::Faulty(Box::new(store))), 1)
    }

    fn wait_until_ready(t: &TestLun) -> Vec<Option<Vec<u8>>> {
        let mut seen = Vec::new();
        for _ in 0..500 {
            let r = t.run(&[0, 0, 0, 0, 0, 0]).0;
            if r.status == crate::ScsiStatus::Good {
                return seen;
            }
            seen.push(r.sense);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("the sanitize never ended");
    }

    #[test]
    fn immed_answers_at_once_and_the_operation_outlives_its_command() {
        // 4 MiB in 1 MiB writes of 100 ms each: at least 400 ms of work.
        let t = faulty(&["write:delay=100ms"]);
        let mut params = vec![0x01, 0, 0, 1, 0xa5];
        let started = std::time::Instant::now();
        assert_good(&t.run_out(&sanitize(0x81, 5), &params).0);
        assert!(started.elapsed() < std::time::Duration::from_millis(100), "IMMED waited for the operation");
        let seen = wait_until_ready(&t);
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|s| s.as_deref().map(|s| (s[2], s[12], s[13])) == Some((0x02, 0x04, 0x1b))));
        assert!(started.elapsed() >= std::time::Duration::from_millis(400));
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0x1f, 0xff, 0, 0, 1, 0]);
        assert_eq!(d, vec![0xa5; 512]);
        // Without IMMED the command's own future is what waits; dropping it (an abort, a lost
        // connection) leaves the operation running to its end.
        params[4] = 0x5a;
        let mut data_in = Vec::new();
        let cdb = sanitize(0x01, 5);
        let mut command = Box::pin(t.target.execute(&t.nexus, 1, &cdb, &params, &mut data_in));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(command.as_mut().poll(&mut cx).is_pending());
        drop(command);
        assert!(!wait_until_ready(&t).is_empty());
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(d, vec![0x5a; 512]);
    }

    #[test]
    fn a_failed_sanitize_holds_the_unit_until_it_is_left_as_its_ause_allows() {
        let t = faulty(&["write:eio:lba=4096-4096"]);
        let params = [0x01, 0, 0, 1, 0xff];
        // Without AUSE: restricted completion mode.
        assert_sense(&t.run_out(&sanitize(0x01, 5), &params).0, 0x03, 0x31, 0x03);
        assert_sense(&t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]).0, 0x03, 0x31, 0x03);
        assert_sense(&t.run(&[0, 0, 0, 0, 0, 0]).0, 0x03, 0x31, 0x03);
        assert_good(&t.run(&[0x12, 0, 0, 0, 36, 0]).0);
        let (_, d) = t.run(&[0x03, 0, 0, 0, 18, 0]);
        assert_eq!((d[2], d[12], d[13]), (0x03, 0x31, 0x03));
        // EXIT FAILURE MODE and any sanitize asking for AUSE are refused; a block erase that
        // succeeds ends the failure.
        assert_sense(&t.run(&sanitize(0x1f, 0)).0, 0x05, 0x24, 0x00);
        assert_sense(&t.run(&sanitize(0x22, 0)).0, 0x05, 0x24, 0x00);
        assert_good(&t.run(&sanitize(0x02, 0)).0);
        assert_good(&t.run(&[0, 0, 0, 0, 0, 0]).0);
        // With AUSE: unrestricted, EXIT FAILURE MODE leaves it.
        assert_sense(&t.run_out(&sanitize(0x21, 5), &params).0, 0x03, 0x31, 0x03);
        assert_sense(&t.run(&[0, 0, 0, 0, 0, 0]).0, 0x03, 0x31, 0x03);
        assert_good(&t.run(&sanitize(0x1f, 0)).0);
        assert_good(&t.run(&[0, 0, 0, 0, 0, 0]).0);
    }

    #[test]
    fn overwrite_parameter_checks() {
        let t = TestLun::disk(64 << 10);
        let mut params = vec![0x01, 0, 2, 0];
        params.resize(4 + 512 + 4, 0);
        for len in [0u16, 1, 4, 517] {
            assert_sense(&t.run_out(&sanitize(0x01, len), &params).0, 0x05, 0x24, 0x00);
        }
        // OVERWRITE COUNT 0, pattern length 0, pattern longer than a block.
        for header in [[0x00, 0, 2, 0], [0x01, 0, 0, 0], [0x01, 0, 2, 4]] {
            params[..4].copy_from_slice(&header);
            assert_sense(&t.run_out(&sanitize(0x01, 516), &params).0, 0x05, 0x24, 0x00);
        }
        // Parameter list shorter than announced.
        assert_sense(&t.run_out(&sanitize(0x01, 8), &[1, 0, 0, 4]).0, 0x05, 0x1a, 0x00);
    }

    #[test]
    fn erase_and_exit_failure_mode() {
        let t = TestLun::thin(64 << 10);
        assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[7; 512]).0);
        assert_good(&t.run(&sanitize(0x02, 0)).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(d, vec![0; 512]);
        assert_good(&t.run(&sanitize(0x83, 0)).0); // IMMED crypto erase
        wait_until_ready(&t);
        assert_sense(&t.run_out(&sanitize(0x02, 8), &[0; 8]).0, 0x05, 0x24, 0x00);
        assert_good(&t.run(&sanitize(0x1f, 0)).0);
        assert_sense(&t.run(&sanitize(0x04, 0)).0, 0x05, 0x24, 0x00);
        assert_sense(&t.run(&sanitize(0x42, 0)).0, 0x05, 0x24, 0x00); // reserved bit 6
                                                                      // Block erase is offered on thin units only.
        let plain = TestLun::disk(64 << 10);
        assert_sense(&plain.run(&sanitize(0x02, 0)).0, 0x05, 0x24, 0x00);
        t.lu.set_readonly(true);
        assert_sense(&t.run(&sanitize(0x1f, 0)).0, 0x07, 0x27, 0x00);
    }
}
