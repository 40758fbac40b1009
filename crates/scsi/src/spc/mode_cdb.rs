//! MODE SENSE(6/10) and MODE SELECT(6/10) as rows see them: their typed fields and handlers. The
//! pages themselves are `mode`'s, which the opcode machinery names (`DeviceOps::mode_pages`), so
//! the rows' side lives here rather than there.

use super::mode::{self, ModeSenseRequest};
use crate::cdb::{be16, Cdb, Decoded};
use crate::opcodes::{io, now, Handler};
use crate::sense::Sense;

impl Cdb for ModeSenseRequest {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let ten = c.len() == 10;
        Ok(ModeSenseRequest {
            ten,
            dbd: c[1] & 0x08 != 0,
            llbaa: ten && c[1] & 0x10 != 0,
            pc: c[2] >> 6,
            page_code: c[2] & 0x3f,
            subpage: c[3],
            alloc_len: if ten { be16(c, 7) } else { u16::from(c[4]) },
        })
    }
}

/// MODE SELECT(6/10)'s fields (SPC-4 6.9, 6.10); PF is accepted either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModeSelect {
    pub ten: bool,
    pub sp: bool,
    pub param_len: u16,
}

impl Cdb for ModeSelect {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let ten = c.len() == 10;
        Ok(ModeSelect { ten, sp: c[1] & 0x01 != 0, param_len: if ten { be16(c, 7) } else { u16::from(c[4]) } })
    }

    fn decoded(&self) -> Decoded {
        Decoded::params(u32::from(self.param_len))
    }
}

pub(crate) const MODE_SENSE: Handler =
    now!(ModeSenseRequest, |req, request| mode::mode_sense(req.lu, req.ops.mode_pages, request, req.data_in));
pub(crate) const MODE_SELECT: Handler =
    io!(ModeSelect, |req, ModeSelect { ten, sp, param_len }| super::mode_select::mode_select(
        req.lu,
        req.ctx,
        req.ops.mode_pages,
        ten,
        sp,
        param_len,
        req.data_out
    ));
