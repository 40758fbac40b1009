//! What the handlers queue for a connection's writer: PDUs with how they use StatSN, and SCSI
//! command outcomes for the writer to render. A leaf shared by the queue and the writer.

use crate::pdu::Bhs;
use crate::read_budget::ReadReservation;
use crate::splice::ConnPipe;
use bytes::Bytes;

/// How a PDU uses the connection's StatSN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stat {
    /// Carries StatSN and consumes it (responses).
    Advance,
    /// Carries the next StatSN without consuming it (R2T, NOP-In with reserved ITT, Async).
    Current,
}

/// Residual flags and count (RFC 7143 11.4.5): 0x04 overflow (O), 0x02 underflow (U).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Residual {
    pub flags: u8,
    pub count: u32,
}

pub(crate) const RESIDUAL_OVERFLOW: u8 = 0x04;
pub(crate) const RESIDUAL_UNDERFLOW: u8 = 0x02;

/// The outcome of a SCSI command, rendered by the writer as Data-In PDUs and/or a SCSI Response.
#[derive(Debug)]
pub(crate) struct ScsiReply {
    pub itt: u32,
    pub lun: [u8; 8],
    /// Read data; only `send_len` bytes of it go out. Returned to the pool afterwards.
    pub data: Vec<u8>,
    /// The read data in a pipe instead (then `data` is empty), spliced to the socket.
    pub pipe: Option<ConnPipe>,
    pub send_len: usize,
    pub status: u8,
    pub sense: Option<Vec<u8>>,
    pub residual: Residual,
    /// The read budget the data holds: given back when the reply drops, once the writer has
    /// handed the data to the socket (or the connection ended first).
    pub held: Option<ReadReservation>,
}

#[derive(Debug)]
pub(crate) enum Outgoing {
    Pdu {
        bhs: Bhs,
        data: Bytes,
        stat: Stat,
    },
    Scsi(ScsiReply),
    /// Flush what came before, then shut the socket down.
    Close,
}
