//! The full feature phase (RFC 7143 4.3): one connection's reader and dispatch, and a handler
//! per request: SCSI Command, Data-Out, Task Management, Text (SendTargets), NOP-Out, Logout.

mod cdb;
mod connection;
mod data_out;
mod discovery;
mod execute;
mod logout;
mod nop;
mod pending_text;
mod scsi_command;
mod sense;
mod tmf;

pub(crate) use connection::Conn;

use crate::counters::DigestKind;
use crate::pdu::{Opcode, Pdu, PduError, PduReader};
use crate::session::ConnControl;
use crate::writer::Outgoing;
use connection::{Flow, RejectReason};
use tokio::io::AsyncRead;

/// PDUs the reader takes from its buffer in a row before it polls its other duties.
const FAST_STREAK: u32 = 32;

impl Conn {
    /// Read and dispatch PDUs until the connection ends.
    pub async fn run<R: AsyncRead + Unpin>(&mut self, reader: &mut PduReader<R>, control: &ConnControl) {
        // Discovery sessions have no target and are not probed (nor are they in tgt).
        let mut prober = self.target.as_ref().and_then(|t| nop::Prober::new(t.nop()));
        let mut received: u64 = 0;
        let out = self.out.clone();
        let budget = self.write_budget.clone();
        // The Data-Out timeout's one timer: it never fires later than the first pending write
        // could expire (a write's deadline is at least one timeout after it was armed), and is
        // only looked at while writes are pending.
        let data_out_check = tokio::time::sleep(self.registry.data_out_timeout());
        tokio::pin!(data_out_check);
        // Made once and polled again on every pass through the select (a `Notified` made anew each
        // time would join and leave its waiter list per PDU). Nothing on the data path notifies it.
        let closed = control.closed();
        tokio::pin!(closed);
        // PDUs taken straight from the buffer since the last pass through the select.
        let mut streak = 0u32;
        loop {
            // Fast path: the next PDU is already buffered and nothing else asks for attention (no
            // close, no write waiting for budget, room for answers), so take it without the select.
            // Every FAST_STREAK PDUs the select runs anyway, so the Data-Out timeout and the probe
            // still get their turn on a connection that never goes idle.
            let fast = streak < FAST_STREAK
                && !control.is_closing()
                && self.data_out.awaiting_r2t.is_empty()
                && out.has_room();
            let buffered = if fast { reader.try_read_buffered() } else { None };
            let r = match buffered {
                Some(r) => {
                    streak += 1;
                    r
                }
                None => {
                    streak = 0;
                    // read_pdu keeps partial input in its buffer, so losing the race to a tick loses
                    // nothing. No new request is read while the initiator leaves too many answers
                    // unread.
                    tokio::select! {
                        biased;
                        _ = &mut closed => break,
                        // A write finished with its data: writes waiting for room may get their R2Ts.
                        // Only listened to while some wait: every write's end notifies it, and a
                        // waiter registered meanwhile would wake this task once more per write. A
                        // release while nobody listens leaves a permit, so none is lost.
                        _ = budget.freed(), if !self.data_out.awaiting_r2t.is_empty() => {
                            data_out::admit_waiting(self);
                            continue;
                        }
                        // Ahead of reading: a busy connection must not starve the check.
                        _ = &mut data_out_check, if !self.data_out.pending.is_empty() => {
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
                    }
                }
            };
            received = received.wrapping_add(1);
            let pdu = match r {
                Ok(p) => p,
                Err(PduError::DataDigest) => {
                    self.counters().digest_error(DigestKind::Data);
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
                    if matches!(e, PduError::HeaderDigest) {
                        // 7.8: the header cannot be trusted, not even its length; at ERL 0 the
                        // connection ends.
                        self.counters().digest_error(DigestKind::Header);
                    }
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
