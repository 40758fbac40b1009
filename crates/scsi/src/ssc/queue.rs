//! The drive's thread: the commands that use the tape are queued here and run there one at a
//! time, in the order they came, so that their file I/O (a SPACE over a big tape, millions of
//! filemarks) never holds a thread that runs other commands, and a command waiting for the drive
//! is a future that an abort drops. A job whose command ended before its turn is skipped. A
//! command with IMMED (`TapeState::perform`) answers once it is checked and its operation goes on
//! here, its failure kept as a deferred error.

use super::state::{flush, internal_failure, Drive, Job, TapeState};
use super::tape_error;
use crate::failure::Failure;
use crate::lun::LogicalUnit;
use crate::sense::Sense;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::oneshot;

impl TapeState {
    /// Run `job` with the drive on the drive's thread, once the commands queued before it have
    /// run, and await what it returns. Dropping the future before the job starts (the command was
    /// aborted) leaves the job undone; once started, it runs to its end.
    pub fn run<T: Send + 'static>(
        &self,
        unit: &Arc<LogicalUnit>,
        job: impl FnOnce(&LogicalUnit, &TapeState, &mut Drive) -> T + Send + 'static,
    ) -> impl Future<Output = Result<T, Sense>> + Send + 'static {
        let (done, result) = oneshot::channel();
        let queued = self.submit(unit, move |unit, state, drive| {
            if !done.is_closed() {
                let _ = done.send(job(unit, state, drive));
            }
        });
        async move {
            queued?;
            // A job that panicked dropped its answer.
            result.await.map_err(|_| internal_failure())
        }
    }

    /// Run a command in two steps on the drive's thread, once the commands queued before it have
    /// run: `check`, whose failure is the command's status, and the `operation` it returns (none:
    /// nothing left to do). Without `immed` the status waits for both. With it (SSC-3: status
    /// once the command is validated) the command answers GOOD once `check` passed and the
    /// operation goes on: the commands after it wait for it (`settle`), and its failure becomes
    /// the deferred error of `nexus`. What `check` returns goes to the caller either way.
    pub fn perform<T, Op>(
        &self,
        unit: &Arc<LogicalUnit>,
        nexus: u64,
        immed: bool,
        check: impl FnOnce(&LogicalUnit, &TapeState, &mut Drive) -> Result<(T, Option<Op>), Failure> + Send + 'static,
    ) -> impl Future<Output = Result<T, Failure>> + Send + 'static
    where
        T: Send + 'static,
        Op: FnOnce(&LogicalUnit, &TapeState, &mut Drive) -> Result<(), Failure>,
    {
        let (answer, status) = oneshot::channel::<Result<T, Failure>>();
        let queued = self.submit(unit, move |unit, state, drive| {
            if answer.is_closed() {
                // Aborted before its turn.
                return;
            }
            let (value, operation) = match check(unit, state, drive) {
                Ok(checked) => checked,
                Err(failure) => {
                    let _ = answer.send(Err(failure));
                    return;
                }
            };
            let Some(operation) = operation else {
                let _ = answer.send(Ok(value));
                return;
            };
            if !immed {
                let _ = answer.send(operation(unit, state, drive).map(|()| value));
                return;
            }
            // Marked before the GOOD leaves, so that every later command waits for the operation.
            state.start_immediate();
            let _ = answer.send(Ok(value));
            state.run_immediate(nexus, drive, |drive| operation(unit, state, drive).map_err(sense_of));
        });
        async move {
            queued?;
            // A job that panicked dropped its answer.
            status.await.unwrap_or_else(|_| Err(internal_failure().into()))
        }
    }

    /// Queue `job` for the drive's thread, which runs it with the drive locked.
    pub fn submit(
        &self,
        unit: &Arc<LogicalUnit>,
        job: impl FnOnce(&LogicalUnit, &TapeState, &mut Drive) + Send + 'static,
    ) -> Result<(), Sense> {
        let unit = unit.clone();
        let job: Job = Box::new(move || {
            let Some(state) = unit.tape() else { return };
            let mut drive = state.drive();
            job(&unit, state, &mut drive);
        });
        let mut queue = self.queue();
        let sender = match &*queue {
            Some(sender) => sender,
            None => queue.insert(start_thread()?),
        };
        sender.send(job).map_err(|_| internal_failure())
    }

    /// Take the tape out (what was written made durable first), after the commands queued
    /// before; its path, None when empty.
    pub async fn unload(&self, unit: &Arc<LogicalUnit>) -> Result<Option<PathBuf>, Sense> {
        self.run(unit, |_, state, drive| {
            if let Some(image) = &drive.image {
                image.sync().map_err(|e| tape_error(&e, true))?;
            }
            let image = drive.image.take();
            drive.ready = false;
            drive.dirty = false;
            state.publish(drive);
            Ok(image.map(|i| i.path().to_path_buf()))
        })
        .await?
    }

    /// Make every write so far durable, after the commands queued before.
    pub async fn flush(&self, unit: &Arc<LogicalUnit>) -> Result<(), Sense> {
        self.run(unit, |_, _, drive| flush(drive).map_err(|e| tape_error(&e, true))).await?
    }
}

/// The sense of an immediate operation's failure, for its deferred error: it has no data-in to
/// keep, and no reservation conflict (reservations were checked before the command ran).
fn sense_of(failure: Failure) -> Sense {
    match failure {
        Failure::Sense(sense) | Failure::SenseWithData(sense) => sense,
        Failure::ReservationConflict => internal_failure(),
    }
}

/// The drive's thread: runs the queued jobs in order until the unit (the only sender) is gone. A
/// job that panics ends alone (its command answers HARDWARE ERROR); the drive goes on.
fn start_thread() -> Result<std::sync::mpsc::Sender<Job>, Sense> {
    let (sender, jobs) = std::sync::mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new().name("tape-drive".into()).spawn(move || {
        for job in jobs {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                tracing::error!("a tape drive command panicked");
            }
        }
    });
    match spawned {
        Ok(_) => Ok(sender),
        Err(e) => {
            tracing::error!(error = %e, "cannot start a tape drive's thread");
            Err(internal_failure())
        }
    }
}
