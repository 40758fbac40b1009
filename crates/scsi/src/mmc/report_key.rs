//! REPORT KEY (MMC-6 6.29) on a drive without content protection: it offers neither the DVD CSS
//! nor the CPRM feature (GET CONFIGURATION lists neither), so the key exchange formats (AGIDs,
//! challenges, keys, title keys, ASF) are INVALID FIELD IN CDB, as a drive answers for a field
//! value it does not support. The one format that is the drive's own and not the disc's, the RPC
//! state (08h, which Linux's DVD_LU_SEND_RPC_STATE and Windows' DVD region page ask for), says the
//! drive has no region set and does not enforce region playback control (RPC scheme 00h): an image
//! plays in every region.

use crate::cdb::{be16, Cdb};
use crate::opcodes::{now, Handler};
use crate::sense::Sense;
use crate::spc::truncate;

/// KEY FORMAT 001000b: RPC state.
const RPC_STATE: u8 = 0x08;
/// KEY CLASS 00h: DVD CSS/CPPM and RPC; the others belong to features the drive does not have.
const KEY_CLASS_DVD: u8 = 0x00;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReportKey {
    pub alloc_len: u16,
}

impl Cdb for ReportKey {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        if c[7] != KEY_CLASS_DVD {
            return Err(Sense::invalid_cdb_field(7, Some(7)));
        }
        if c[10] & 0x3f != RPC_STATE {
            return Err(Sense::invalid_cdb_field(10, Some(5)));
        }
        Ok(ReportKey { alloc_len: be16(c, 8) })
    }
}

/// The RPC state: TYPE CODE 00b (no drive region setting), 4 vendor resets and 5 user changes
/// available, REGION MASK FFh (no region chosen), RPC SCHEME 00h (regions not enforced).
fn rpc_state(alloc_len: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0, 6, 0, 0, 4 << 3 | 5, 0xff, 0x00, 0]);
    truncate(out, usize::from(alloc_len));
}

pub(crate) const REPORT_KEY: Handler = now!(ReportKey, |req, ReportKey { alloc_len }| {
    rpc_state(alloc_len, req.data_in);
    Ok::<(), Sense>(())
});
