//! The changer's mode pages (SMC-3 7.3), built from the configured layout: element address
//! assignment (1Dh: first address and number of elements of each type), transport geometry (1Eh:
//! ROTATE when cartridges have two sides) and device capabilities (1Fh: every present type stores
//! cartridges and every move between present types is allowed; EXCHANGE MEDIUM is not offered).
//! Nothing is changeable and there is no block descriptor.
//!
//! The first two always describe the library as it is: an administrator's `mode_page` for them
//! (tgt's examples give all-zero ones, which tgt then overwrites as elements are added) is dropped
//! (`DERIVED`); one for 1Fh replaces the built-in page, as for any page.

use super::library::ElementType;
use crate::lun::{LogicalUnit, ModeParams};
use crate::spc::mode::{ModePages, MAX_PAGE};

use super::state::{ELEMENT_ADDRESS_ASSIGNMENT, TRANSPORT_GEOMETRY};

const DEVICE_CAPABILITIES: u8 = 0x1f;

pub(crate) static MODE_PAGES: ModePages = ModePages {
    pages: &[ELEMENT_ADDRESS_ASSIGNMENT, TRANSPORT_GEOMETRY, DEVICE_CAPABILITIES],
    image,
    apply: |_, _, _| {},
    device_specific: |_| 0,
    block_descriptors: false,
};

fn image(lu: &LogicalUnit, code: u8, _values: ModeParams, changeable: bool, p: &mut [u8; MAX_PAGE]) -> usize {
    let len = match code {
        ELEMENT_ADDRESS_ASSIGNMENT => 20,
        TRANSPORT_GEOMETRY => 4,
        _ => 20,
    };
    let Some(changer) = lu.changer() else { return len };
    if changeable {
        return len;
    }
    let library = changer.library();
    match code {
        ELEMENT_ADDRESS_ASSIGNMENT => {
            for (i, kind) in ElementType::ALL.into_iter().enumerate() {
                let (first, count) = library.span(kind);
                p[2 + 4 * i..4 + 4 * i].copy_from_slice(&first.to_be_bytes());
                p[4 + 4 * i..6 + 4 * i].copy_from_slice(&count.to_be_bytes());
            }
        }
        TRANSPORT_GEOMETRY => p[2] = u8::from(library.two_sided),
        _ => {
            // Bit 0 transport, 1 storage, 2 import/export, 3 data transfer, in the StorXX byte and
            // in each source type's byte of allowed destinations.
            let present = ElementType::ALL
                .into_iter()
                .enumerate()
                .filter(|(_, k)| library.span(*k).1 > 0)
                .fold(0u8, |bits, (i, _)| bits | 1 << i);
            p[2] = present;
            for i in 0..4 {
                if present & 1 << i != 0 {
                    p[4 + i] = present;
                }
            }
        }
    }
    len
}
