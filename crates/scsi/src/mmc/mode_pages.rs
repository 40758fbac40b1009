//! The drive's mode page: MM capabilities and mechanical status (MMC-3 6.3.11, page 2Ah, which
//! MMC-6 keeps for legacy initiators; Linux's sr reads it to learn what the drive can do). Nothing
//! changeable; no block descriptor.

use crate::lun::{LogicalUnit, ModeParams};
use crate::spc::mode::{ModePages, MAX_PAGE};

const CAPABILITIES: u8 = 0x2a;

pub(crate) static MODE_PAGES: ModePages =
    ModePages { pages: &[CAPABILITIES], image, apply: |_, _, _| {}, device_specific, block_descriptors: false };

fn image(_: &LogicalUnit, _code: u8, _values: ModeParams, changeable: bool, p: &mut [u8; MAX_PAGE]) -> usize {
    if !changeable {
        // Reads CD-R, CD-RW and DVD-ROM media; writes nothing.
        p[2] = 0x0b;
        // Lock supported, eject supported, loading mechanism 001b: tray.
        p[6] = 0x29;
        // Obsolete maximum / current read speeds (kB/s): 1x DVD, a figure initiators only display.
        p[8..10].copy_from_slice(&1385u16.to_be_bytes());
        p[14..16].copy_from_slice(&1385u16.to_be_bytes());
    }
    // Page length 1Ch: the fixed part with no write speed descriptors.
    30
}

/// No write protect bit: MMC devices report write protection through the features, not the
/// header (MMC-6 7.2.3).
fn device_specific(_: &LogicalUnit) -> u8 {
    0
}
