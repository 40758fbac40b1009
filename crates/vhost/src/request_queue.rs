//! The request queues (virtio 1.2 5.6.6.1): SCSI commands. Each command enters the guest's task set
//! with its `InFlight` as abort handle and runs as its own task on the tokio runtime, so a slow
//! read never holds up the commands queued behind it, on the same queue or another. The task waits
//! for room in the device's write budget, copies the data-out (at most MAXIMUM TRANSFER LENGTH:
//! larger chains are refused on the epoll thread), waits for room in its read budget for the
//! data-in the CDB asks for (a READ larger than the guest's buffers is refused on the epoll thread),
//! then writes the response into the chain and adds it to the used ring itself.

use crate::connection::{Chain, Connection};
use crate::read_budget::SMALL_READ;
use crate::wire::{RequestHeader, Response, ResponseHeader, VirtioLun, REQUEST_HEADER_LEN, RESPONSE_HEADER_LEN};
use parking_lot::Mutex;
use rtgt_scsi::{AbortCause, AbortTask, Tracked};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vhost_user_backend::{VringRwLock, VringT};

/// The most data-out one request may carry: the MAXIMUM TRANSFER LENGTH every logical unit
/// advertises (VPD Block Limits) and the iSCSI side's per-command bound.
const MAX_DATA_OUT: usize = rtgt_scsi::MAX_TRANSFER_BYTES as usize;

/// A command whose response has not been written yet. Whoever takes `completion` first (the task
/// when the command ends, or a task management function aborting it) answers the guest.
pub(crate) struct InFlight {
    pub completion: Mutex<Option<(Chain, VringRwLock)>>,
    pub task: Mutex<Option<tokio::task::AbortHandle>>,
    /// Set once the command's future is dropped or has completed (`Tracked`): a task management
    /// function is answered only after that (`control_queue`).
    pub ended: Arc<AtomicBool>,
}

/// The task set aborts a command: it is answered at once, on the thread of the task management
/// function (before the function's own answer, the order Linux's virtio_scsi relies on), and its
/// task stops. A command lost with its device is not answered: guest memory may already belong to
/// something else.
impl AbortTask for InFlight {
    fn abort(&self, cause: AbortCause) {
        let answer = self.completion.lock().take();
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
        let response = match cause {
            AbortCause::Aborted => Response::Aborted,
            AbortCause::Reset => Response::Reset,
            AbortCause::Lost => return,
        };
        if let Some((chain, vring)) = answer {
            complete(chain, &vring, &ResponseHeader::only(response), &[]);
        }
    }

    fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }
}

impl InFlight {
    /// The command's data-out, at most `len` bytes (the guest may have rewritten its descriptors
    /// since they were measured). None when the command was already answered (aborted, or the
    /// device reset) or its buffers cannot be read; the guest then has its answer.
    fn copy_data_out(&self, len: usize) -> Option<Vec<u8>> {
        // Held while copying, so an abort or reset never answers a chain still being read.
        let mut completion = self.completion.lock();
        let (chain, _) = completion.as_ref()?;
        if len == 0 {
            return Some(Vec::new());
        }
        let mut data = Vec::with_capacity(len);
        let copied = chain.clone().reader(chain.memory()).ok().and_then(|mut reader| {
            let mut body = reader.split_at(REQUEST_HEADER_LEN).ok()?;
            body.by_ref().take(len as u64).read_to_end(&mut data).ok()
        });
        if copied.is_some() {
            return Some(data);
        }
        if let Some((chain, vring)) = completion.take() {
            complete(chain, &vring, &ResponseHeader::only(Response::Failure), &[]);
        }
        None
    }
}

/// One request queue kick: start every new command.
pub(crate) fn process(conn: &Arc<Connection>, queue: u16, vring: &VringRwLock) {
    conn.drain_queue(vring, |chain| start_command(conn, queue, vring, chain));
}

fn start_command(conn: &Arc<Connection>, queue: u16, vring: &VringRwLock, chain: Chain) {
    let mut reader = match chain.clone().reader(chain.memory()) {
        Ok(reader) => reader,
        Err(err) => {
            tracing::warn!(%err, "malformed request chain");
            return complete(chain, vring, &ResponseHeader::only(Response::Failure), &[]);
        }
    };
    let mut head = [0u8; REQUEST_HEADER_LEN];
    let header = match reader.read_exact(&mut head) {
        Ok(()) => RequestHeader::parse(&head),
        Err(_) => None,
    };
    let Some(header) = header else {
        // Too short to be a request: nothing can be answered but a failure.
        return complete(chain, vring, &ResponseHeader::only(Response::Failure), &[]);
    };
    let lun = match VirtioLun::decode(header.lun) {
        VirtioLun::Lun(lun) => lun,
        VirtioLun::BadTarget => {
            return complete(chain, vring, &ResponseHeader::only(Response::BadTarget), &[]);
        }
    };
    let Some(nexus) = conn.nexus.lock().clone() else {
        return complete(chain, vring, &ResponseHeader::only(Response::TransportFailure), &[]);
    };
    // What the guest's descriptors add up to is its own say: they may all alias one region.
    // No logical unit takes more data-out for one command than MAXIMUM TRANSFER LENGTH (and
    // Linux never sends more than max_sectors), so a larger chain is refused before anything
    // is sized from it, without running the command: VIRTIO_SCSI_S_OVERRUN (virtio 1.2
    // 5.6.6.1: the CDB's transfer does not match the buffers).
    let data_out_len = reader.available_bytes();
    if data_out_len > MAX_DATA_OUT {
        tracing::info!(data_out_len, "request with more data-out than any command takes refused");
        return complete(chain, vring, &ResponseHeader::only(Response::Overrun), &[]);
    }
    // A READ sizes its data-in from the CDB alone; one that asks for more than the guest's writable
    // room is answered VIRTIO_SCSI_S_OVERRUN (virtio 1.2 5.6.6.1) without running, so nothing is
    // read from the store for data the guest has no room for, and none of its buffer is written:
    // the residual is all of it. (The bound is looked up only when the estimate without the unit
    // does not fit.) Other commands build their data-in from the unit's state and are cut to the
    // room when they answer (`complete`).
    let data_in_room = match chain.clone().writer(chain.memory()) {
        Ok(writer) => writer.available_bytes().saturating_sub(RESPONSE_HEADER_LEN),
        Err(_) => 0,
    } as u64;
    let cheap_below = data_in_room.saturating_add(1).min(SMALL_READ);
    let data_in_bound = conn.device.target.data_in_bound(lun, &header.cdb, cheap_below);
    if data_in_bound > data_in_room {
        tracing::debug!(data_in_bound, data_in_room, "READ larger than its data-in buffers refused");
        let resid = u32::try_from(data_in_room).unwrap_or(u32::MAX);
        return complete(chain, vring, &ResponseHeader { resid, ..ResponseHeader::only(Response::Overrun) }, &[]);
    }
    let entry = Arc::new(InFlight {
        completion: Mutex::new(Some((chain, vring.clone()))),
        task: Mutex::new(None),
        ended: Arc::new(AtomicBool::new(false)),
    });
    // The virtio request id is the task's tag; the queue is its channel (GET_VRING_BASE waits
    // for a queue's tasks).
    let task_id = nexus.tasks().start(header.id, lun, u64::from(queue), entry.clone());
    let target = conn.device.target.clone();
    let device = conn.device.clone();
    let task_entry = entry.clone();
    let ended = entry.ended.clone();
    let command = Box::pin(async move {
        // The data-out is copied only once the device's write budget has room for it; the
        // room comes back when this task ends (answered or aborted).
        let _budget = device.write_budget.reserve(data_out_len).await;
        // Likewise the data-in buffer is allocated only once the read budget has room for what the
        // CDB asks for (taken after the write budget, in the same order by every command).
        let _read = device.read_budget.reserve(data_in_bound).await;
        let Some(data_out) = task_entry.copy_data_out(data_out_len) else {
            nexus.tasks().end(task_id);
            return;
        };
        let mut data_in = Vec::new();
        let result = target.execute(&nexus, lun, &header.cdb, &data_out, &mut data_in).await;
        if let Some((chain, vring)) = task_entry.completion.lock().take() {
            let resid_out = (data_out.len() as u64).saturating_sub(u64::from(result.data_out_expected));
            let response = ResponseHeader {
                resid: resid_out.min(u64::from(u32::MAX)) as u32,
                status: result.status as u8,
                response: Response::Ok,
                sense: result.sense.unwrap_or_default(),
            };
            complete(chain, &vring, &response, &data_in);
        }
        nexus.tasks().end(task_id);
    });
    let handle = conn.device.runtime.spawn(Tracked::new(command, ended));
    *entry.task.lock() = Some(handle.abort_handle());
}

/// Write `header` and as much of `data_in` as the guest gave room for, then return the chain.
pub(crate) fn complete(chain: Chain, vring: &VringRwLock, header: &ResponseHeader, data_in: &[u8]) {
    let head = chain.head_index();
    let used = match chain.clone().writer(chain.memory()) {
        Ok(mut writer) => {
            let room = writer.available_bytes().saturating_sub(RESPONSE_HEADER_LEN);
            let mut header = header.clone();
            let sent = data_in.len().min(room);
            if header.response == Response::Ok && sent < data_in.len() {
                // virtio 1.2 5.6.6.1: the CDB asked for more than the buffers hold.
                header.response = Response::Overrun;
            }
            if header.response == Response::Ok && data_in.len() < room {
                // The guest sizes `room`; a residual past u32 says "all of it", not a wrapped value.
                let unused = u32::try_from(room - data_in.len()).unwrap_or(u32::MAX);
                header.resid = header.resid.saturating_add(unused);
            }
            let written = writer.write_all(&header.encode()).and_then(|()| writer.write_all(&data_in[..sent]));
            if let Err(err) = written {
                tracing::warn!(%err, "cannot write a response to guest memory");
            }
            writer.bytes_written() as u32
        }
        Err(err) => {
            tracing::warn!(%err, "malformed response buffers");
            0
        }
    };
    if let Err(err) = vring.add_used(head, used) {
        tracing::warn!(%err, "cannot return a descriptor chain");
        return;
    }
    if vring.needs_notification().unwrap_or(true) {
        if let Err(err) = vring.signal_used_queue() {
            tracing::debug!(%err, "cannot signal the guest");
        }
    }
}
