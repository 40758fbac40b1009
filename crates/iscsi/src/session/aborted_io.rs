//! Waiting for aborted commands to stop touching their backing stores. An aborted command's future
//! may still be inside its store when the task set lets it go (a pwrite on another thread, an
//! io_uring request whose drop waits for the kernel), so a task management function is answered,
//! and a new session let in, only once the SCSI target has no aborted task left running: an
//! initiator that retries a write, or reads the blocks, after the answer never has the aborted
//! write land afterwards (SAM-5 7.1; RFC 7143 6.3.5 for a reinstated session's old tasks).
//!
//! The wait is bounded, so a store that never answers cannot stall management for ever: past the
//! bound the caller refuses (TMF FUNCTION REJECTED, login SERVICE UNAVAILABLE) rather than answer
//! as if the tasks were gone, and the initiator escalates or retries later.

use rtgt_scsi::Target;
use std::time::Duration;

/// The longest a task management function or a login waits for aborted commands.
pub(crate) const ABORTED_IO_WAIT: Duration = Duration::from_secs(30);

/// How often the wait looks again; aborts are rare, so a simple poll does.
const RECHECK: Duration = Duration::from_millis(2);

/// Wait until no aborted task of `target` on `lun` (on any LUN: None) is running, at most
/// `limit`; false when it gave up.
pub(crate) async fn aborted_io_ended(target: &Target, lun: Option<u64>, limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while target.aborted_tasks_running(lun) {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                target = %target.name,
                ?lun,
                waited = ?limit,
                "aborted commands are still inside their backing store; the request waiting for them is refused"
            );
            return false;
        }
        tokio::time::sleep(RECHECK).await;
    }
    true
}
