//! The storage array controller (SCC-2, peripheral device type 0Ch) that stands at LUN 0 of a
//! target with no unit of its own there: it has no medium, no block state and no commands beyond
//! the primary ones every type shares, so its table is exactly `spc::commands`' shared group.

use crate::opcodes::{DeviceOps, OpcodeEntry, OpcodeTable};
use crate::spc::commands as spc;
use crate::spc::mode::ModePages;
use crate::spc::vpd::{DEVICE_ID, SERIAL, SUPPORTED};

static ROWS: &[OpcodeEntry] = &[
    spc::TEST_UNIT_READY,
    spc::REQUEST_SENSE,
    spc::INQUIRY,
    spc::MODE_SELECT6,
    spc::MODE_SENSE6,
    spc::MODE_SELECT10,
    spc::MODE_SENSE10,
    spc::REPORT_LUNS,
    spc::REPORT_SUPPORTED_OPCODES,
    spc::REPORT_SUPPORTED_TMF,
];

/// The controller's commands.
pub(crate) static COMMANDS: OpcodeTable = OpcodeTable::new(ROWS);

/// Only the shared control and informational exceptions pages; no block descriptor, and a header
/// with no device-specific bits.
pub(crate) static MODE_PAGES: ModePages = ModePages {
    pages: &[],
    image: |_, _, _, _, _| 12,
    apply: |_, _, _| {},
    device_specific: |_| 0,
    block_descriptors: false,
};

/// The controller to the shared path: nothing to report in REQUEST SENSE, nothing refused while
/// busy.
pub(crate) static OPS: DeviceOps = DeviceOps {
    commands: &COMMANDS,
    mode_pages: &MODE_PAGES,
    vpd_pages: &[SUPPORTED, SERIAL, DEVICE_ID],
    state_sense: |_| None,
    deferred_error: |_, _| None,
    settle: |_| None,
    admit: |_, _| Ok(()),
};
