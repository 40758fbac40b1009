//! The task set (SAM-5 4.6, 8): every task an I_T nexus has running, by tag, with the LUN it is
//! addressed to and the transport's handle to stop it. The task management functions that end
//! them (ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, I_T NEXUS RESET, target
//! reset, I_T nexus loss, PREEMPT AND ABORT) are in `tmf`, implemented once for every transport on
//! these sets; this file knows nothing of targets.
//!
//! The transport runs a task's future (this crate spawns nothing): it enters the task with `start`
//! (or `start_unique`), gives the set an `AbortTask` handle, and calls `end` when the task has its
//! result. `end` returning false means task management took the task first: the transport then
//! answers nothing (an aborted task has no response, SAM-5 5.6). The set calls the handles outside
//! its lock, so a handle may answer the initiator (virtio answers aborted requests itself) before
//! the task management function that aborted them is answered.
//!
//! An aborted task's future may still be touching the backing store when `abort` returns (a write
//! in a pwrite call on another thread, an io_uring request whose drop waits for the kernel). The
//! set keeps the handles of such tasks until they report `ended`, so that a transport can hold the
//! task management function's answer, or a new session, until the aborted tasks can no longer
//! change the medium (SAM-5 7.1; `Target::aborted_tasks_running`).

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

/// Why a task was aborted; a transport whose protocol tells them apart answers accordingly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortCause {
    /// ABORT TASK, ABORT TASK SET, CLEAR TASK SET, PREEMPT AND ABORT.
    Aborted,
    /// LOGICAL UNIT RESET, I_T NEXUS RESET, target reset.
    Reset,
    /// The transport can no longer answer (connection gone, device reset, I_T nexus loss).
    Lost,
}

/// The transport's way to stop one task whose future it runs. Called at most once per task, from
/// whichever thread runs the task management function, never under the task set's lock.
pub trait AbortTask: Send + Sync {
    fn abort(&self, cause: AbortCause);

    /// Whether the aborted task's future is gone (dropped or completed): it touches the backing
    /// store no more. A transport whose futures may outlive `abort` says so here.
    fn ended(&self) -> bool {
        true
    }
}

/// A task's identity in its nexus's task set: the initiator's tag and a serial the set assigned,
/// so a new task reusing an ended one's tag is never mistaken for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId {
    pub tag: u64,
    pub serial: u64,
}

struct Task {
    lun: u64,
    /// The transport's path the task came by (an iSCSI connection, a virtqueue).
    channel: u64,
    abort: Arc<dyn AbortTask>,
}

/// One nexus's running tasks (see the module comment).
#[derive(Default)]
pub struct TaskSet {
    next_serial: AtomicU64,
    tasks: Mutex<BTreeMap<TaskId, Task>>,
    /// Aborted tasks whose futures had not ended when they were aborted (see the module comment).
    stopping: Mutex<Vec<(u64, Arc<dyn AbortTask>)>>,
}

impl std::fmt::Debug for TaskSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskSet").field("tasks", &self.len()).finish()
    }
}

impl TaskSet {
    fn id(&self, tag: u64) -> TaskId {
        TaskId { tag, serial: self.next_serial.fetch_add(1, Ordering::Relaxed) }
    }

    /// Enter a task; several tasks may carry one tag.
    pub fn start(&self, tag: u64, lun: u64, channel: u64, abort: Arc<dyn AbortTask>) -> TaskId {
        let id = self.id(tag);
        self.tasks.lock().insert(id, Task { lun, channel, abort });
        id
    }

    /// Enter a task whose tag must be unique among the running ones (SAM-5 4.6.3 overlapped
    /// commands); None when the tag is in use.
    pub fn start_unique(&self, tag: u64, lun: u64, channel: u64, abort: Arc<dyn AbortTask>) -> Option<TaskId> {
        let mut tasks = self.tasks.lock();
        if Self::with_tag(&tasks, tag).next().is_some() {
            return None;
        }
        let id = self.id(tag);
        tasks.insert(id, Task { lun, channel, abort });
        Some(id)
    }

    fn with_tag(tasks: &BTreeMap<TaskId, Task>, tag: u64) -> impl Iterator<Item = (&TaskId, &Task)> {
        tasks.range(TaskId { tag, serial: 0 }..=TaskId { tag, serial: u64::MAX })
    }

    /// Replace a running task's abort handle (the transport spawned its future); false when the
    /// task is gone already.
    pub fn set_abort(&self, id: TaskId, abort: Arc<dyn AbortTask>) -> bool {
        match self.tasks.lock().get_mut(&id) {
            Some(task) => {
                task.abort = abort;
                true
            }
            None => false,
        }
    }

    /// The task completed; false when task management ended it first (then nothing is answered).
    pub fn end(&self, id: TaskId) -> bool {
        self.tasks.lock().remove(&id).is_some()
    }

    pub fn contains(&self, id: TaskId) -> bool {
        self.tasks.lock().contains_key(&id)
    }

    pub fn len(&self) -> usize {
        self.tasks.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// QUERY TASK (SAM-5 7.8): whether a task with this tag runs on `lun`.
    pub fn query_task(&self, tag: u64, lun: u64) -> bool {
        Self::with_tag(&self.tasks.lock(), tag).any(|(_, t)| t.lun == lun)
    }

    /// The LUN of a running task carrying `tag` (the first one, should several carry it).
    pub fn lun_of(&self, tag: u64) -> Option<u64> {
        Self::with_tag(&self.tasks.lock(), tag).map(|(_, t)| t.lun).next()
    }

    /// QUERY TASK SET (SAM-5 7.9): whether any task runs on `lun`.
    pub fn query_task_set(&self, lun: u64) -> bool {
        self.tasks.lock().values().any(|t| t.lun == lun)
    }

    /// Whether any task that came by `channel` still runs.
    pub fn on_channel(&self, channel: u64) -> bool {
        self.tasks.lock().values().any(|t| t.channel == channel)
    }

    /// Abort the tasks `pick` selects; returns how many. The handles run after the lock is let go.
    fn abort_where(&self, cause: AbortCause, pick: impl Fn(&TaskId, &Task) -> bool) -> usize {
        let picked: Vec<(u64, Arc<dyn AbortTask>)> = {
            let mut tasks = self.tasks.lock();
            let ids: Vec<TaskId> = tasks.iter().filter(|(id, t)| pick(id, t)).map(|(id, _)| *id).collect();
            let picked: Vec<_> = ids.iter().filter_map(|id| tasks.remove(id)).map(|t| (t.lun, t.abort)).collect();
            if !picked.is_empty() {
                // Listed as stopping while they leave the table, under its lock: another thread
                // that finds the table empty (a login ending the same session, a second abort)
                // must find them here, or it answers while their I/O still runs. Those that ended
                // go at the next look, so the list stays as short as what still runs.
                let mut stopping = self.stopping.lock();
                stopping.retain(|(_, a)| !a.ended());
                stopping.extend(picked.iter().cloned());
            }
            picked
        };
        for (_, abort) in &picked {
            abort.abort(cause);
        }
        picked.len()
    }

    /// Whether some task this set aborted, on `lun` or on any LUN, may still be touching the
    /// backing store.
    pub fn stopping(&self, lun: Option<u64>) -> bool {
        let mut stopping = self.stopping.lock();
        stopping.retain(|(_, a)| !a.ended());
        stopping.iter().any(|(l, _)| lun.is_none_or(|want| *l == want))
    }

    /// How many aborted tasks are kept as possibly still running.
    #[cfg(test)]
    pub(crate) fn stopping_kept(&self) -> usize {
        self.stopping.lock().len()
    }

    /// ABORT TASK's selection: the tasks carrying `tag`, on `lun` when one is named.
    pub fn abort_task(&self, tag: u64, lun: Option<u64>) -> usize {
        self.abort_where(AbortCause::Aborted, |id, t| id.tag == tag && lun.is_none_or(|l| t.lun == l))
    }

    /// The tasks on `lun`.
    pub(crate) fn abort_lun(&self, lun: u64, cause: AbortCause) -> usize {
        self.abort_where(cause, |_, t| t.lun == lun)
    }

    /// The tasks that came by `channel` (its connection is gone, its queue reset).
    pub fn abort_channel(&self, channel: u64, cause: AbortCause) -> usize {
        self.abort_where(cause, |_, t| t.channel == channel)
    }

    /// Every task of the nexus.
    pub fn abort_all(&self, cause: AbortCause) -> usize {
        self.abort_where(cause, |_, _| true)
    }
}

/// A task's future that tells when it has been dropped or has completed, for an `AbortTask`
/// handle's `ended`: only then has it stopped touching the backing store (a store's future may
/// wait for its request in its drop, as io_uring's does, or be inside a pwrite on another thread
/// when the abort comes).
pub struct Tracked<F> {
    future: Option<Pin<Box<F>>>,
    ended: Arc<AtomicBool>,
}

impl<F> Tracked<F> {
    /// `ended` is set once `future` is gone.
    pub fn new(future: Pin<Box<F>>, ended: Arc<AtomicBool>) -> Self {
        Tracked { future: Some(future), ended }
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(future) = self.future.as_mut() else { panic!("a tracked future polled after it completed") };
        let poll = future.as_mut().poll(cx);
        if poll.is_ready() {
            self.future = None;
            self.ended.store(true, Ordering::Release);
        }
        poll
    }
}

impl<F> Drop for Tracked<F> {
    fn drop(&mut self) {
        // The future first, then the word that it is gone.
        self.future = None;
        self.ended.store(true, Ordering::Release);
    }
}

#[cfg(test)]
#[path = "task_set_tests.rs"]
pub(crate) mod tests;
