//! One connection in full feature phase: the state the handlers share (the session, negotiated
//! parameters, the way to the writer, each handler's own state) and Reject PDUs (RFC 7143 11.17).
//! The reader loop that dispatches to the handlers is the parent module's.

use super::data_out::state::DataOutState;
use super::pending_text::PendingText;
use crate::counters::IscsiCounters;
use crate::params::SessionParams;
use crate::pdu::{Bhs, Opcode, RESERVED_TAG};
use crate::read_budget::{ReadBudget, READ_DATA_BUDGET};
use crate::registry::{IscsiTarget, Registry};
use crate::session::{Session, SessionType};
use crate::splice::PipePool;
use crate::write_budget::{WriteBudget, WRITE_DATA_BUDGET};
use crate::writer::{BufPool, OutSender, Outgoing, Stat};
use bytes::Bytes;
use std::net::SocketAddr;
use std::sync::Arc;

/// Reject reasons (RFC 7143 11.17.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum RejectReason {
    DataDigest = 0x02,
    ProtocolError = 0x04,
    CommandNotSupported = 0x05,
    TaskInProgress = 0x07,
    InvalidPduField = 0x09,
}

/// What the reader does after a PDU.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    Continue,
    Close,
}

pub(crate) struct Conn {
    pub id: u64,
    pub cid: u16,
    pub session: Arc<Session>,
    /// The target logged in to (its NOP settings); None for discovery.
    pub target: Option<Arc<IscsiTarget>>,
    pub params: SessionParams,
    pub out: OutSender,
    pub pool: Arc<BufPool>,
    /// Pipes for READ data spliced to the socket; None where it is copied (see `splice`).
    pub pipes: Option<Arc<PipePool>>,
    pub registry: Arc<Registry>,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// Writes still receiving Data-Out and writes waiting for budget before their R2Ts.
    pub data_out: DataOutState,
    /// Write data this connection holds (pending and running writes).
    pub write_budget: Arc<WriteBudget>,
    /// Read data this connection holds (large READs running or waiting for the socket).
    pub read_budget: Arc<ReadBudget>,
    next_ttt: u32,
    /// A Text Response too long for one PDU, waiting for the initiator's continuation requests.
    pub text: Option<PendingText>,
}

impl Conn {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        cid: u16,
        session: Arc<Session>,
        target: Option<Arc<IscsiTarget>>,
        params: SessionParams,
        out: OutSender,
        pool: Arc<BufPool>,
        registry: Arc<Registry>,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Self {
        let write_budget = WriteBudget::new(WRITE_DATA_BUDGET, registry.write_budget.clone());
        let read_budget = ReadBudget::new(READ_DATA_BUDGET, registry.read_budget.clone());
        Conn {
            id,
            cid,
            session,
            target,
            params,
            out,
            pool,
            pipes: None,
            registry,
            local,
            peer,
            data_out: DataOutState::default(),
            write_budget,
            read_budget,
            next_ttt: 1,
            text: None,
        }
    }

    /// A Target Transfer Tag not equal to the reserved value.
    pub fn new_ttt(&mut self) -> u32 {
        let t = self.next_ttt;
        self.next_ttt = self.next_ttt.wrapping_add(1);
        if self.next_ttt == RESERVED_TAG {
            self.next_ttt = 1;
        }
        t
    }

    pub fn send(&self, bhs: Bhs, data: Bytes, stat: Stat) {
        let _ = self.out.send(Outgoing::Pdu { bhs, data, stat });
    }

    /// Where this connection's events are counted: its target's counters, or the daemon's for a
    /// discovery session.
    pub fn counters(&self) -> &IscsiCounters {
        self.target.as_ref().map_or(&self.registry.untargeted, |t| &t.counters)
    }

    /// Send a Reject carrying the offending header (11.17).
    pub fn reject(&self, reason: RejectReason, rejected: &Bhs) {
        self.counters().reject(reason as u8);
        let mut h = Bhs::new(Opcode::Reject);
        h.0[2] = reason as u8;
        h.set_itt(RESERVED_TAG);
        self.send(h, Bytes::copy_from_slice(&rejected.0), Stat::Advance);
    }

    pub fn is_normal(&self) -> bool {
        self.session.kind == SessionType::Normal
    }
}
