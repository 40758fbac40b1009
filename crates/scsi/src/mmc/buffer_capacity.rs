//! READ BUFFER CAPACITY (MMC-6 6.18) on a drive that never writes: its buffer holds no data waiting
//! to be written, so it is reported empty, all of it blank (BLOCK 0, in bytes) or available
//! (BLOCK 1, in 2048-byte blocks). Burning tools ask it before anything else; an answer that adds
//! up keeps them from dividing by a zero-sized buffer before the profile tells them the drive
//! cannot write.

use super::BLOCK_SIZE;
use crate::cdb::{be16, Cdb};
use crate::opcodes::{now, Handler};
use crate::sense::Sense;
use crate::spc::truncate;

/// The buffer's size in bytes: a figure for tools to display, as the capabilities page's speeds are.
const BUFFER_BYTES: u32 = 2 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadBufferCapacity {
    /// BLOCK: report the available length in blocks rather than the buffer in bytes.
    pub block: bool,
    pub alloc_len: u16,
}

impl Cdb for ReadBufferCapacity {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(ReadBufferCapacity { block: c[1] & 0x01 != 0, alloc_len: be16(c, 7) })
    }
}

/// Twelve bytes either way: DATA LENGTH 10, then the buffer's length and its blank length (bytes),
/// or the BLOCK bit and the available length (blocks).
fn read_buffer_capacity(c: ReadBufferCapacity, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 10, 0]);
    if c.block {
        out.extend_from_slice(&[0x01, 0, 0, 0, 0]);
        out.extend_from_slice(&(BUFFER_BYTES / BLOCK_SIZE).to_be_bytes());
    } else {
        out.push(0);
        out.extend_from_slice(&BUFFER_BYTES.to_be_bytes());
        out.extend_from_slice(&BUFFER_BYTES.to_be_bytes());
    }
    truncate(out, usize::from(c.alloc_len));
}

pub(crate) const READ_BUFFER_CAPACITY: Handler = now!(ReadBufferCapacity, |req, c| {
    read_buffer_capacity(c, req.data_in);
    Ok::<(), Sense>(())
});
