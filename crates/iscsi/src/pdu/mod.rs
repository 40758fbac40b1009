//! The PDU codec (RFC 7143 section 11): a 48-byte Basic Header Segment read and written in place,
//! additional header segments, the data segment with its padding, and optional CRC32C digests.
//! `bhs` owns the header layout, `codec` the framing on a byte stream, `digest` the CRC32C rules.

use bytes::BytesMut;

mod bhs;
mod codec;
mod digest;

pub use bhs::off;
pub use codec::{encode_pdu, pad_len, PduReader};
pub use digest::crc32c;

pub const BHS_LEN: usize = 48;

/// The "reserved" tag value (RFC 7143 11.2.1.8 and others): no task, no target transfer.
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// Initiator and target opcodes (RFC 7143 11.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    NopOut = 0x00,
    ScsiCommand = 0x01,
    TaskMgmtRequest = 0x02,
    LoginRequest = 0x03,
    TextRequest = 0x04,
    DataOut = 0x05,
    LogoutRequest = 0x06,
    SnackRequest = 0x10,
    NopIn = 0x20,
    ScsiResponse = 0x21,
    TaskMgmtResponse = 0x22,
    LoginResponse = 0x23,
    TextResponse = 0x24,
    DataIn = 0x25,
    LogoutResponse = 0x26,
    R2t = 0x31,
    AsyncMessage = 0x32,
    Reject = 0x3f,
}

/// A Basic Header Segment kept as its wire bytes, with typed accessors for each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bhs(pub [u8; BHS_LEN]);

/// One received or to-be-sent PDU. `data` is the data segment without padding or digest.
#[derive(Debug, Clone)]
pub struct Pdu {
    pub bhs: Bhs,
    pub ahs: Vec<u8>,
    pub data: BytesMut,
}

#[derive(Debug, thiserror::Error)]
pub enum PduError {
    #[error("connection closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("header digest mismatch")]
    HeaderDigest,
    #[error("data digest mismatch")]
    DataDigest,
    #[error("data segment of {len} bytes exceeds the limit of {limit}")]
    DataSegmentTooLong { len: u32, limit: u32 },
    #[error("unknown opcode {0:#04x}")]
    UnknownOpcode(u8),
}
