//! The drive's thread: the commands that use the tape are queued here and run there one at a
//! time, in the order they came, so that their file I/O (a SPACE over a big tape, millions of
//! filemarks) never holds a thread that runs other commands, and a command waiting for the drive
//! is a future that an abort drops. A job whose command ended before its turn is skipped.

use super::state::{flush, internal_failure, Drive, Job, TapeState};
use super::tape_error;
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
