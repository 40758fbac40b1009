//! The PDU codec (RFC 7143 section 11): a 48-byte Basic Header Segment read and written in place,
//! additional header segments, the data segment with its padding, and optional CRC32C digests.
//! `bhs` owns the header layout, `codec` the framing on a byte stream, `digest` the CRC32C rules, `error` what can go wrong.

mod bhs;
mod codec;
mod digest;
mod error;

pub use bhs::{off, Bhs, Opcode, BHS_LEN, RESERVED_TAG};
pub use codec::{encode_pdu, pad_len, Pdu, PduReader};
pub use digest::crc32c;
pub use error::PduError;
