//! Sessions (RFC 7143 4.4): what the connections of one initiator port on one target share — the
//! command window, the task table used by task management, the I_T nexus — and the connection
//! handles through which a session (or the whole server) closes or warns its connections.

use crate::limits::SessionSlot;
use crate::params::SessionParams;
use crate::registry::{ConnectionInfo, IscsiTarget, SessionInfo};
use crate::window::CmdWindow;
use parking_lot::Mutex;
use rtgt_scsi::Nexus;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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

/// A task the session knows: running, or still receiving its Data-Out.
#[derive(Debug)]
pub(crate) struct TaskEntry {
    pub id: u64,
    pub lun: u64,
    /// The connection the task has allegiance to.
    pub conn: u64,
    pub abort: Option<AbortHandle>,
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
    pub target: Option<Arc<IscsiTarget>>,
    pub nexus: Option<Arc<Nexus>>,
    pub params: SessionParams,
    /// The CHAP user the leading login authenticated as.
    pub chap_user: Option<String>,
    pub window: Mutex<CmdWindow>,
    pub tasks: Mutex<HashMap<u32, TaskEntry>>,
    pub conns: Mutex<Vec<ConnHandle>>,
    /// Set once the session is gone from its target: no connection may join it any more.
    pub ended: AtomicBool,
    /// Its place under the daemon's session bound, given back when the session ends.
    pub slot: Mutex<Option<SessionSlot>>,
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

    /// Register a task; false when the ITT is already in use (RFC 7143 11.2.1.8: unique per session).
    pub fn add_task(&self, itt: u32, entry: TaskEntry) -> bool {
        let mut tasks = self.tasks.lock();
        if tasks.contains_key(&itt) {
            return false;
        }
        tasks.insert(itt, entry);
        drop(tasks);
        self.window.lock().started();
        true
    }

    pub fn has_task(&self, itt: u32, id: u64) -> bool {
        self.tasks.lock().get(&itt).is_some_and(|t| t.id == id)
    }

    pub fn set_abort_handle(&self, itt: u32, id: u64, h: AbortHandle) {
        if let Some(t) = self.tasks.lock().get_mut(&itt) {
            if t.id == id {
                t.abort = Some(h);
            }
        }
    }

    /// Remove a task that completed; false when task management removed it first (the caller then
    /// sends nothing: an aborted task gets no response, RFC 7143 4.2.3.3).
    pub fn finish_task(&self, itt: u32, id: u64) -> bool {
        let mut tasks = self.tasks.lock();
        match tasks.get(&itt) {
            Some(t) if t.id == id => {
                tasks.remove(&itt);
                drop(tasks);
                self.window.lock().finished();
                true
            }
            _ => false,
        }
    }

    /// Abort the tasks `pick` selects; returns how many.
    pub fn abort_tasks(&self, mut pick: impl FnMut(u32, &TaskEntry) -> bool) -> usize {
        let mut tasks = self.tasks.lock();
        let itts: Vec<u32> = tasks.iter().filter(|(itt, t)| pick(**itt, t)).map(|(itt, _)| *itt).collect();
        for itt in &itts {
            if let Some(t) = tasks.remove(itt) {
                if let Some(h) = t.abort {
                    h.abort();
                }
            }
        }
        drop(tasks);
        let mut w = self.window.lock();
        for _ in &itts {
            w.finished();
        }
        itts.len()
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
