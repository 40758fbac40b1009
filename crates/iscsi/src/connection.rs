//! One connection after login: the reader task that takes PDUs off the socket and dispatches them
//! by opcode, the per-connection state the handlers share, Reject PDUs (RFC 7143 11.17), and the
//! cleanup when the connection ends (ERL 0: a session without connections ends with it).

use crate::data_out::PendingWrite;
use crate::params::SessionParams;
use crate::pdu::{Bhs, Opcode, Pdu, PduError, PduReader, RESERVED_TAG};
use crate::registry::Registry;
use crate::session::{ConnControl, Session, SessionType};
use crate::write_budget::{WriteBudget, WRITE_DATA_BUDGET};
use crate::writer::{BufPool, OutSender, Outgoing, Stat};
use crate::{data_out, discovery, logout, nop, scsi_command, tmf};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncRead;

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
    pub params: SessionParams,
    pub out: OutSender,
    pub pool: Arc<BufPool>,
    pub registry: Arc<Registry>,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// Writes still receiving Data-Out, by ITT.
    pub pending: HashMap<u32, PendingWrite>,
    /// Write data this connection holds (pending and running writes), and the writes waiting,
    /// oldest first, for room in it before their first R2T (ITT and task id).
    pub write_budget: Arc<WriteBudget>,
    pub awaiting_r2t: VecDeque<(u32, u64)>,
    next_ttt: u32,
    /// A Text Response too long for one PDU, waiting for the initiator's continuation requests.
    pub text: Option<discovery::PendingText>,
}

impl Conn {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: u64,
        cid: u16,
        session: Arc<Session>,
        params: SessionParams,
        out: OutSender,
        pool: Arc<BufPool>,
        registry: Arc<Registry>,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Self {
        let write_budget = WriteBudget::new(WRITE_DATA_BUDGET, registry.write_budget.clone());
        Conn {
            id,
            cid,
            session,
            params,
            out,
            pool,
            registry,
            local,
            peer,
            pending: HashMap::new(),
            write_budget,
            awaiting_r2t: VecDeque::new(),
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

    /// Send a Reject carrying the offending header (11.17).
    pub fn reject(&self, reason: RejectReason, rejected: &Bhs) {
        let mut h = Bhs::new(Opcode::Reject);
        h.0[2] = reason as u8;
        h.set_itt(RESERVED_TAG);
        self.send(h, Bytes::copy_from_slice(&rejected.0), Stat::Advance);
    }

    pub fn is_normal(&self) -> bool {
        self.session.kind == SessionType::Normal
    }

    /// Read and dispatch PDUs until the connection ends.
    pub async fn run<R: AsyncRead + Unpin>(&mut self, reader: &mut PduReader<R>, control: &ConnControl) {
        // Discovery sessions have no target and are not probed (nor are they in tgt).
        let mut prober = self.session.target.as_ref().and_then(|t| nop::Prober::new(t.nop()));
        let mut received: u64 = 0;
        let out = self.out.clone();
        let budget = self.write_budget.clone();
        // The Data-Out timeout's one timer: it never fires later than the first pending write
        // could expire (a write's deadline is at least one timeout after it was armed), and is
        // only looked at while writes are pending.
        let data_out_check = tokio::time::sleep(self.registry.data_out_timeout());
        tokio::pin!(data_out_check);
        loop {
            // read_pdu keeps partial input in its buffer, so losing the race to a tick loses nothing.
            // No new request is read while the initiator leaves too many answers unread.
            let r = tokio::select! {
                biased;
                _ = control.closed() => break,
                // A write finished with its data: writes waiting for room may get their R2Ts.
                _ = budget.freed() => {
                    data_out::admit_waiting(self);
                    continue;
                }
                // Ahead of reading: a busy connection must not starve the check.
                _ = &mut data_out_check, if !self.pending.is_empty() => {
                    let next = data_out::expire(self, tokio::time::Instant::now());
                    data_out_check.as_mut().reset(next);
                    continue;
                }
                r = async {
                    out.room().await;
                    reader.read_pdu().await
                } => r,
                _ = probe_tick(&mut prober) => {
                    let flow = prober.as_mut().map_or(Flow::Continue, |p| p.on_tick(self, received));
                    if flow == Flow::Close {
                        break;
                    }
                    continue;
                }
            };
            received = received.wrapping_add(1);
            let pdu = match r {
                Ok(p) => p,
                Err(PduError::DataDigest) => {
                    // 7.8: the PDU is discarded. Its data cannot be recovered at ERL 0, so a command or
                    // Data-Out ends the connection; anything else just gets the Reject.
                    let h = reader.last_header().clone();
                    self.reject(RejectReason::DataDigest, &h);
                    let op = h.opcode_raw();
                    if op == Opcode::ScsiCommand as u8 || op == Opcode::DataOut as u8 {
                        break;
                    }
                    continue;
                }
                Err(PduError::DataSegmentTooLong { len, limit }) => {
                    // More than our MaxRecvDataSegmentLength (RFC 7143 13.12): a protocol error. The
                    // segment is not read, so the stream is out of step and the connection ends;
                    // the Reject tells the initiator why.
                    tracing::info!(peer = %self.peer, len, limit, "data segment over the limit: connection ends");
                    self.reject(RejectReason::ProtocolError, &reader.last_header().clone());
                    break;
                }
                Err(e) => {
                    tracing::debug!(peer = %self.peer, "connection ends: {e}");
                    break;
                }
            };
            if self.handle(pdu) == Flow::Close {
                break;
            }
        }
        let _ = self.out.send(Outgoing::Close);
    }

    fn handle(&mut self, pdu: Pdu) -> Flow {
        let normal = self.is_normal();
        match pdu.bhs.opcode() {
            Ok(Opcode::NopOut) => nop::on_nop_out(self, pdu),
            Ok(Opcode::TextRequest) => discovery::on_text(self, pdu),
            Ok(Opcode::LogoutRequest) => logout::on_logout(self, pdu),
            Ok(Opcode::ScsiCommand) if normal => scsi_command::on_command(self, pdu),
            Ok(Opcode::DataOut) if normal => data_out::on_data_out(self, pdu),
            Ok(Opcode::TaskMgmtRequest) if normal => tmf::on_tmf(self, pdu),
            // ERL 0: no SNACK support (7.1.4.1); a Login Request after login is a protocol error.
            Ok(Opcode::SnackRequest) | Ok(Opcode::LoginRequest) => {
                self.reject(RejectReason::ProtocolError, &pdu.bhs);
                Flow::Continue
            }
            // Discovery sessions may only use Text, NOP and Logout (4.3); target opcodes and unknown
            // opcodes are not supported.
            _ => {
                self.reject(RejectReason::CommandNotSupported, &pdu.bhs);
                Flow::Continue
            }
        }
    }
}

/// The prober's next tick; never, when probing is off.
async fn probe_tick(prober: &mut Option<nop::Prober>) {
    match prober {
        Some(p) => p.tick().await,
        None => std::future::pending().await,
    }
}

/// After `run`: leave the session; the last connection ends it (ERL 0 has no connection recovery).
pub(crate) fn leave_session(conn: &Conn) {
    let session = &conn.session;
    // Tasks with allegiance to this connection cannot complete any more.
    let id = conn.id;
    session.abort_connection_tasks(id);
    let mut conns = session.conns.lock();
    conns.retain(|c| c.id != id);
    let empty = conns.is_empty();
    drop(conns);
    if empty {
        crate::login::end_session(session);
    }
}
