//! Logout (RFC 7143 11.14-11.15): close the session, close a connection (this one or another by
//! CID), or remove a connection for recovery, which ERL 0 does not support. The response goes out
//! before the connection closes.

use crate::full_feature::connection::{Conn, Flow, RejectReason};
use crate::pdu::{Bhs, Opcode, Pdu};
use crate::writer::{Outgoing, Stat};
use bytes::Bytes;

const CLOSE_SESSION: u8 = 0;
const CLOSE_CONNECTION: u8 = 1;
const REMOVE_FOR_RECOVERY: u8 = 2;

const CLOSED: u8 = 0;
const CID_NOT_FOUND: u8 = 1;
const RECOVERY_NOT_SUPPORTED: u8 = 2;

pub(crate) fn on_logout(conn: &mut Conn, pdu: Pdu) -> Flow {
    let b = &pdu.bhs;
    if !conn.session.window.lock().admit(b.cmd_sn(), b.immediate()) {
        return Flow::Continue;
    }
    let reason = b.flags() & 0x7f;
    let cid = b.cid();
    let (response, flow) = match reason {
        CLOSE_SESSION => (CLOSED, Some(true)),
        CLOSE_CONNECTION if cid == conn.cid => (CLOSED, Some(false)),
        CLOSE_CONNECTION => {
            let other = conn.session.conns.lock().iter().find(|c| c.info.cid == cid).cloned();
            match other {
                Some(c) => {
                    c.control.close();
                    (CLOSED, None)
                }
                None => (CID_NOT_FOUND, None),
            }
        }
        REMOVE_FOR_RECOVERY => (RECOVERY_NOT_SUPPORTED, None),
        _ => {
            conn.reject(RejectReason::InvalidPduField, b);
            return Flow::Continue;
        }
    };
    let mut h = Bhs::new(Opcode::LogoutResponse);
    h.0[2] = response;
    h.set_itt(b.itt());
    // Time2Wait and Time2Retain stay 0: there is nothing to reconnect to at ERL 0.
    conn.send(h, Bytes::new(), Stat::Advance);
    match flow {
        Some(whole_session) => {
            let _ = conn.out.send(Outgoing::Close);
            if whole_session {
                // Other connections of the session go too; ours ends when `run` returns.
                let me = conn.id;
                for c in conn.session.conns.lock().iter().filter(|c| c.id != me) {
                    c.control.close();
                }
            }
            Flow::Close
        }
        None => Flow::Continue,
    }
}
