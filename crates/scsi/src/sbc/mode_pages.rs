//! The disk's mode pages (SBC-3 6.4): read-write error recovery (6.4.9) and caching (6.4.5, WCE
//! changeable), the header's WP and DPOFUA bits (6.4.1) and the block descriptor (6.4.2).

use crate::lun::{LogicalUnit, ModeParams};
use crate::spc::mode::{ModePages, MAX_PAGE};

const RW_ERROR_RECOVERY: u8 = 0x01;
const CACHING: u8 = 0x08;

pub(crate) static MODE_PAGES: ModePages =
    ModePages { pages: &[RW_ERROR_RECOVERY, CACHING], image, apply, device_specific, block_descriptors: true };

fn image(_: &LogicalUnit, code: u8, values: ModeParams, changeable: bool, p: &mut [u8; MAX_PAGE]) -> usize {
    match code {
        CACHING => {
            // WCE (bit 2 of byte 2); RCD stays 0: the read cache is always on.
            if changeable || values.wce {
                p[2] |= 0x04;
            }
            20
        }
        // RW_ERROR_RECOVERY: all zero, nothing changeable.
        _ => 12,
    }
}

fn apply(code: u8, page: &[u8], values: &mut ModeParams) {
    if code == CACHING {
        values.wce = page[2] & 0x04 != 0;
    }
}

/// SBC-3 6.4.1: WP, and DPOFUA since DPO and FUA are honoured.
fn device_specific(lu: &LogicalUnit) -> u8 {
    let wp = if lu.write_protected() { 0x80 } else { 0 };
    wp | 0x10
}
