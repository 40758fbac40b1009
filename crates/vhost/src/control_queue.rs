//! The control queue (virtio 1.2 5.6.6.2): task management functions and asynchronous notification
//! queries. Task management runs on the epoll thread: it answers the commands it aborts before it
//! answers the function itself, which is the order Linux's virtio_scsi relies on. A function that
//! left an aborted command inside its backing store is answered once the command's future is gone
//! (SAM-5 7.1: after the answer, the aborted commands no longer change the medium), from a task
//! on the runtime, so the epoll thread goes on meanwhile; past `ABORTED_IO_WAIT` it is answered
//! FUNCTION REJECTED instead. Such a deferred answer is held in `DeferredTmfs`: a device reset or a
//! lost VMM discards it unanswered, and stopping the control queue (GET_VRING_BASE) waits for it, so
//! the used index the VMM reads covers every answer there will be.

use crate::connection::{Chain, Connection};
use crate::wire::{ControlRequest, Response, VirtioLun, TMF_REQUEST_LEN};
use parking_lot::Mutex;
use rtgt_scsi::TmfError;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhost_user_backend::{VringRwLock, VringT};
use virtio_bindings::virtio_scsi::*;

/// Serve every message on the control queue.
pub(crate) fn process(conn: &Arc<Connection>, deferred: &Arc<DeferredTmfs>, vring: &VringRwLock) {
    conn.drain_queue(vring, |chain| {
        let (answer, waits_for) = answer(conn, &chain);
        let target = conn.device.target.clone();
        let Some(lun) = waits_for.filter(|&lun| target.aborted_tasks_running(lun)) else {
            return reply(chain, vring, &answer);
        };
        let deferred = deferred.clone();
        let id = deferred.hold(chain, vring.clone());
        conn.device.runtime.spawn(async move {
            let deadline = tokio::time::Instant::now() + ABORTED_IO_WAIT;
            while target.aborted_tasks_running(lun) {
                if !deferred.holds(id) {
                    // Lost with its device: nobody waits for this answer any more.
                    return;
                }
                if tokio::time::Instant::now() >= deadline {
                    tracing::warn!(
                        "aborted commands are still inside their backing store: task management function rejected"
                    );
                    return deferred.answer(id, &[Response::FunctionRejected as u8]);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            deferred.answer(id, &answer);
        });
    });
}

/// Task management functions whose answer waits for the commands they aborted. Like a command
/// (`request_queue`), one lost with its device (reset, queue stopped, VMM gone) is never answered:
/// its buffers may already belong to something else and its ring may have been set up anew. The
/// chain is written and returned under the lock that `discard` takes, so an answer is either
/// complete before a discard or never written.
#[derive(Default)]
pub(crate) struct DeferredTmfs {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, (Chain, VringRwLock)>>,
}

impl DeferredTmfs {
    fn hold(&self, chain: Chain, vring: VringRwLock) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.waiting.lock().insert(id, (chain, vring));
        id
    }

    fn holds(&self, id: u64) -> bool {
        self.waiting.lock().contains_key(&id)
    }

    fn answer(&self, id: u64, answer: &[u8]) {
        let mut waiting = self.waiting.lock();
        if let Some((chain, vring)) = waiting.remove(&id) {
            reply(chain, &vring, answer);
        }
    }

    /// Forget every held function without answering it.
    pub(crate) fn discard(&self) {
        let lost = std::mem::take(&mut *self.waiting.lock());
        if !lost.is_empty() {
            tracing::debug!(count = lost.len(), "task management functions lost with their device");
        }
    }

    /// Wait until every held function is answered; past `deadline` the rest are discarded, so that
    /// nothing is added to the ring after this returns.
    pub(crate) fn wait_answered(&self, deadline: Instant) {
        while !self.waiting.lock().is_empty() {
            if Instant::now() > deadline {
                tracing::warn!("task management functions still waiting when the control queue stopped");
                return self.discard();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The longest a task management function's answer waits for the commands it aborted.
const ABORTED_IO_WAIT: Duration = Duration::from_secs(30);

/// The answer, and what it waits for: the aborted commands on one LUN (`Some(Some(lun))`), on every
/// LUN (`Some(None)`), or nothing.
fn answer(conn: &Arc<Connection>, chain: &Chain) -> (Vec<u8>, Option<Option<u64>>) {
    let mut request = Vec::with_capacity(TMF_REQUEST_LEN);
    if let Ok(reader) = chain.clone().reader(chain.memory()) {
        // Control messages are tiny; anything longer than the longest one is ignored.
        let _ = reader.take(64).read_to_end(&mut request);
    }
    match ControlRequest::parse(&request) {
        Some(ControlRequest::Tmf { subtype, lun, id }) => {
            let scope = match (subtype, VirtioLun::decode(lun)) {
                (VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET, _) | (_, VirtioLun::BadTarget) => None,
                (_, VirtioLun::Lun(lun)) => Some(lun),
            };
            (vec![tmf(conn, subtype, lun, id) as u8], Some(scope))
        }
        // No asynchronous events are reported (event_actual 0): Linux then polls for media changes
        // itself, and unit attentions carry the rest.
        Some(ControlRequest::AsyncNotify { lun, .. }) => {
            let response = match VirtioLun::decode(lun) {
                VirtioLun::Lun(_) => Response::Ok,
                VirtioLun::BadTarget => Response::BadTarget,
            };
            let mut out = vec![0u8; 5];
            out[4] = response as u8;
            (out, None)
        }
        None => {
            tracing::debug!(len = request.len(), "unknown control queue message");
            (vec![Response::Failure as u8], None)
        }
    }
}

/// SAM-5 7: the task management function `subtype` on `lun`, for the guest's nexus.
pub(crate) fn tmf(conn: &Arc<Connection>, subtype: u32, lun: [u8; 8], id: u64) -> Response {
    let VirtioLun::Lun(lun) = VirtioLun::decode(lun) else { return Response::BadTarget };
    let Some(nexus) = conn.nexus.lock().clone() else { return Response::TransportFailure };
    let target = &conn.device.target;
    let done = |result: Result<usize, TmfError>| match result {
        Ok(_) => Response::Ok,
        Err(TmfError::NoSuchLun) => Response::IncorrectLun,
    };
    // SAM-5 7.1: a function addressed to a logical unit that does not exist is answered INCORRECT
    // LOGICAL UNIT NUMBER. ABORT TASK still aborts a task the guest sent before its LUN was removed.
    let found = |found: bool| match (found, target.lun(lun).is_some()) {
        (true, _) => Response::FunctionSucceeded,
        (false, true) => Response::Ok,
        (false, false) => Response::IncorrectLun,
    };
    // The SCSI core's task set aborts the tasks; each is answered (ABORTED or RESET) as it goes.
    match subtype {
        VIRTIO_SCSI_T_TMF_ABORT_TASK => {
            // SAM-5 7.2: FUNCTION COMPLETE whether or not the task was still there.
            let aborted = target.abort_task(&nexus, id, Some(lun));
            if aborted == 0 && target.lun(lun).is_none() {
                Response::IncorrectLun
            } else {
                Response::Ok
            }
        }
        VIRTIO_SCSI_T_TMF_ABORT_TASK_SET => done(target.abort_task_set(&nexus, lun)),
        VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET => done(target.clear_task_set(&nexus, lun)),
        VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET => done(target.lun_reset(lun)),
        VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET => {
            // SAM-5 6.3.4: the nexus loses its tasks and its state (reservations, prevented
            // removals); the guest goes on as a fresh nexus.
            let fresh = target.i_t_nexus_reset(&nexus);
            *conn.nexus.lock() = Some(fresh);
            Response::Ok
        }
        VIRTIO_SCSI_T_TMF_QUERY_TASK => found(nexus.tasks().query_task(id, lun)),
        VIRTIO_SCSI_T_TMF_QUERY_TASK_SET => found(nexus.tasks().query_task_set(lun)),
        // No ACA support (NormACA 0), and unknown functions are refused.
        _ => Response::FunctionRejected,
    }
}

fn reply(chain: Chain, vring: &VringRwLock, answer: &[u8]) {
    let head = chain.head_index();
    let used = match chain.clone().writer(chain.memory()) {
        Ok(mut writer) => {
            let n = answer.len().min(writer.available_bytes());
            let _ = writer.write_all(&answer[..n]);
            writer.bytes_written() as u32
        }
        Err(_) => 0,
    };
    if vring.add_used(head, used).is_ok() && vring.needs_notification().unwrap_or(true) {
        let _ = vring.signal_used_queue();
    }
}
