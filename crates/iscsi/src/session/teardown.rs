//! The end of a session (RFC 7143 ERL 0: a session without connections ends with its last one):
//! its tasks are aborted, its connections closed, and it leaves its target, its I_T nexus and its
//! place under the daemon's session bound. Called by login (reinstatement, a failed final response),
//! by the reader when a connection ends, and by the target when tgtadm forces a session out.

use crate::session::Session;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Session {
    /// A connection of this session ended (its reader stopped): the tasks with allegiance to it
    /// cannot complete any more, and the last connection takes the session with it.
    pub(crate) fn leave(self: &Arc<Self>, conn_id: u64) {
        self.abort_connection_tasks(conn_id);
        self.end_if_alone(conn_id);
    }

    /// Take connection `conn_id` off the session and end the session if it was the last one; also
    /// undoes a login whose final response could not be sent.
    pub(crate) fn end_if_alone(self: &Arc<Self>, conn_id: u64) {
        let mut conns = self.conns.lock();
        conns.retain(|c| c.id != conn_id);
        let empty = conns.is_empty();
        drop(conns);
        if empty {
            self.end();
        }
    }

    /// Take the session off its target: abort its tasks, close its connections, drop its nexus.
    pub(crate) fn end(self: &Arc<Self>) {
        if self.ended.swap(true, Ordering::AcqRel) {
            return;
        }
        self.abort_all_tasks();
        self.close_connections();
        if let Some(t) = &self.target {
            t.remove(self);
            if let Some(n) = &self.nexus {
                t.scsi.remove_nexus(n);
            }
        }
        self.slot.lock().take();
    }
}
