//! Sessions (RFC 7143 4.4): what the connections of one initiator port on one target share — the
//! command window and the I_T nexus, whose task set (in the SCSI core) holds the session's tasks by
//! ITT — and the connection handles through which a session (or the whole server) closes or warns
//! its connections. A normal session knows of its target only what it needs (`TargetSessions`: the
//! SCSI target and the target's session list), so the session does not depend on the registry that
//! owns it.

pub(crate) mod aborted_io;
pub(crate) mod info;
mod teardown;
pub(crate) mod window;

use crate::limits::SessionSlot;
use crate::params::SessionParams;
use crate::session::info::{ConnectionInfo, SessionInfo};
use crate::session::window::CmdWindow;
use parking_lot::{Mutex, MutexGuard};
use rtgt_scsi::{AbortCause, AbortTask, Nexus, Target, TaskId, Tracked};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A process-wide unique id (connections, tasks).
pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// Asks one connection task to stop.
#[derive(Debug, Default)]
pub(crate) struct ConnControl {
    closing: AtomicBool,
    notify: Notify,
}

impl ConnControl {
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.notify.notify_one();
    }
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }
    pub async fn closed(&self) {
        if !self.is_closing() {
            self.notify.notified().await;
        }
    }
}

/// One connection of a session.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    pub id: u64,
    pub info: ConnectionInfo,
    pub control: Arc<ConnControl>,
}

/// The handle the SCSI core's task set holds for one iSCSI task: aborting it gives back the task's
/// place in the command window and stops its future once spawned (before that the task is still
/// collecting Data-Out, which stops arriving for a task the set no longer has, or is in its first
/// poll on the reader, which looks whether the task is still there before it runs it and drops it
/// there if it was aborted meanwhile).
struct IscsiTask {
    session: Weak<Session>,
    /// None for the session's shared handle of the tasks not spawned.
    spawned: Option<Spawned>,
}

/// A task whose future runs on its own.
struct Spawned {
    /// The future's handle once spawned, and whether an abort came before it was.
    handle: Mutex<(Option<AbortHandle>, bool)>,
    /// Set when the future is dropped or has completed (`Tracked`).
    ended: Arc<AtomicBool>,
}

impl AbortTask for IscsiTask {
    fn abort(&self, _cause: AbortCause) {
        // iSCSI answers an aborted task with nothing, whatever ended it (RFC 7143 4.2.3.3).
        if let Some(spawned) = &self.spawned {
            let mut handle = spawned.handle.lock();
            handle.1 = true;
            if let Some(h) = handle.0.take() {
                h.abort();
            }
        }
        if let Some(s) = self.session.upgrade() {
            s.window.lock().finished();
        }
    }

    /// A spawned future has ended once dropped or completed; one not spawned, once no reader of
    /// the session is in a first poll (the one polling it may be).
    fn ended(&self) -> bool {
        match &self.spawned {
            Some(spawned) => spawned.ended.load(Ordering::Acquire),
            None => {
                // Pairs with the fence in `Session::first_poll`: either the reader sees the task
                // gone from the set, or this sees the reader polling.
                std::sync::atomic::fence(Ordering::SeqCst);
                self.session.upgrade().is_none_or(|s| s.first_polls.load(Ordering::SeqCst) == 0)
            }
        }
    }
}

/// The sessions of one iSCSI target and the SCSI target their I_T nexuses belong to. The iSCSI
/// target (registry) owns it and each of its normal sessions holds it: a session leaves the list
/// and drops its nexus when it ends, and task management reaches its sibling sessions through it.
#[derive(Debug)]
pub(crate) struct TargetSessions {
    pub scsi: Arc<Target>,
    list: Mutex<Vec<Arc<Session>>>,
}

impl TargetSessions {
    pub fn new(scsi: Arc<Target>) -> Self {
        TargetSessions { scsi, list: Mutex::new(Vec::new()) }
    }
    /// Every session now.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.list.lock().clone()
    }
    pub fn find(&self, pick: impl Fn(&Session) -> bool) -> Option<Arc<Session>> {
        self.list.lock().iter().find(|s| pick(s)).cloned()
    }
    /// The list itself, for a login that checks the target's bound and adds its session at once.
    pub fn lock(&self) -> MutexGuard<'_, Vec<Arc<Session>>> {
        self.list.lock()
    }
    fn remove(&self, s: &Arc<Session>) {
        self.list.lock().retain(|x| !Arc::ptr_eq(x, s));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionType {
    Discovery,
    Normal,
}

pub(crate) struct Session {
    pub tsih: u16,
    pub isid: [u8; 6],
    pub initiator_name: String,
    pub kind: SessionType,
    /// None for discovery sessions.
    pub target: Option<Arc<TargetSessions>>,
    pub nexus: Option<Arc<Nexus>>,
    pub params: SessionParams,
    /// The CHAP user the leading login authenticated as.
    pub chap_user: Option<String>,
    pub window: Mutex<CmdWindow>,
    pub conns: Mutex<Vec<ConnHandle>>,
    /// Set once the session is gone from its target: no connection may join it any more.
    pub ended: AtomicBool,
    /// Its place under the daemon's session bound, given back when the session ends.
    pub slot: Mutex<Option<SessionSlot>>,
    /// The abort handle of every task whose future is not spawned (most finish within the
    /// reader's first poll, see `execute`): one per session, so entering a task in the task set
    /// allocates nothing.
    pub not_spawned: Arc<dyn AbortTask>,
    /// How many of the session's commands are in their first poll on a reader (`first_poll`).
    pub first_polls: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tsih", &self.tsih)
            .field("initiator", &self.initiator_name)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Session {
    /// The shared handle of the session's tasks that are not spawned (see `not_spawned`).
    pub fn not_spawned_handle(me: &Weak<Session>) -> Arc<dyn AbortTask> {
        Arc::new(IscsiTask { session: me.clone(), spawned: None })
    }

    /// Run a command's first poll on the reader, unless task management removed the task already
    /// (it then never runs); true when the command completed in it. A command that has to wait
    /// goes on as its own task; one aborted during the poll is dropped here instead. Either way
    /// the session counts the poll meanwhile, so an abort waits for it (`IscsiTask::ended`).
    pub fn first_poll<F>(self: &Arc<Self>, itt: u32, id: u64, mut command: std::pin::Pin<Box<F>>) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.first_polls.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `IscsiTask::ended`.
        std::sync::atomic::fence(Ordering::SeqCst);
        // A task already aborted never runs.
        let waker = std::task::Waker::noop();
        let done =
            !self.has_task(itt, id) || command.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_ready();
        if !done {
            self.spawn_task(itt, id, command);
        }
        self.first_polls.fetch_sub(1, Ordering::SeqCst);
        done
    }

    /// The command's future goes on as its own task; aborting the task stops it.
    fn spawn_task<F>(self: &Arc<Self>, itt: u32, id: u64, command: std::pin::Pin<Box<F>>)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(nexus) = &self.nexus else { return };
        let ended = Arc::new(AtomicBool::new(false));
        let spawned = Spawned { handle: Mutex::new((None, false)), ended: ended.clone() };
        let task = Arc::new(IscsiTask { session: Arc::downgrade(self), spawned: Some(spawned) });
        if !nexus.tasks().set_abort(Self::task_id(itt, id), task.clone()) {
            // Aborted during the first poll: the future goes here, while the poll still counts.
            return;
        }
        let joined = tokio::spawn(Tracked::new(command, ended));
        let Some(spawned) = &task.spawned else { return };
        let mut handle = spawned.handle.lock();
        if handle.1 {
            joined.abort();
        } else {
            handle.0 = Some(joined.abort_handle());
        }
    }

    pub fn info(&self) -> SessionInfo {
        SessionInfo {
            tsih: self.tsih,
            initiator_name: self.initiator_name.clone(),
            isid: self.isid,
            connections: self.conns.lock().iter().map(|c| c.info.clone()).collect(),
            params: self.params.clone(),
            chap_user: self.chap_user.clone(),
        }
    }

    /// Register a task on connection `conn`; its id, or None when the ITT is already in use (RFC
    /// 7143 11.2.1.8: unique per session) or the session has no nexus (discovery).
    pub fn add_task(self: &Arc<Self>, itt: u32, lun: u64, conn: u64) -> Option<u64> {
        let id = self.nexus.as_ref()?.tasks().start_unique(u64::from(itt), lun, conn, self.not_spawned.clone())?;
        self.window.lock().started();
        Some(id.serial)
    }

    fn task_id(itt: u32, id: u64) -> TaskId {
        TaskId { tag: u64::from(itt), serial: id }
    }

    pub fn has_task(&self, itt: u32, id: u64) -> bool {
        self.nexus.as_ref().is_some_and(|n| n.tasks().contains(Self::task_id(itt, id)))
    }

    /// Remove a task that completed; false when task management removed it first (the caller then
    /// sends nothing: an aborted task gets no response, RFC 7143 4.2.3.3).
    pub fn finish_task(&self, itt: u32, id: u64) -> bool {
        let ended = self.nexus.as_ref().is_some_and(|n| n.tasks().end(Self::task_id(itt, id)));
        if ended {
            self.window.lock().finished();
        }
        ended
    }

    /// Abort the tasks with allegiance to connection `conn` (it is gone); returns how many.
    pub fn abort_connection_tasks(&self, conn: u64) -> usize {
        self.nexus.as_ref().map_or(0, |n| n.tasks().abort_channel(conn, AbortCause::Lost))
    }

    /// Abort every task of the session (it ends); returns how many.
    pub fn abort_all_tasks(&self) -> usize {
        self.nexus.as_ref().map_or(0, |n| n.tasks().abort_all(AbortCause::Lost))
    }

    pub fn close_connections(&self) {
        for c in self.conns.lock().iter() {
            c.control.close();
        }
    }

    /// The current ExpCmdSN and MaxCmdSN for outgoing PDUs.
    pub fn window_stamps(&self) -> (u32, u32) {
        let w = self.window.lock();
        (w.exp_cmd_sn(), w.max_cmd_sn())
    }
}

/// The I_T nexus name of an iSCSI initiator port (RFC 7143 4.4.2 / SAM: name ",i,0x" ISID).
pub(crate) fn initiator_port(name: &str, isid: &[u8; 6]) -> String {
    let hex: String = isid.iter().map(|b| format!("{b:02x}")).collect();
    format!("{name},i,0x{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initiator_port_name() {
        assert_eq!(initiator_port("iqn.x", &[0x00, 0x02, 0x3d, 0, 0, 1]), "iqn.x,i,0x00023d000001");
    }
}
