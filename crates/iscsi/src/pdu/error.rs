//! What can go wrong reading a PDU.

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
