//! The tape drive's command table (SSC-3 with the SPC commands every type shares, and RESERVE and
//! RELEASE, which backup software uses to keep a drive to itself), in opcode order.

use super::medium::PREVENT_ALLOW;
use super::modes::{MODE_SELECT, MODE_SENSE, READ_BLOCK_LIMITS, REPORT_DENSITY_SUPPORT};
use super::position::{ERASE, LOAD_UNLOAD, LOCATE, READ_POSITION, REWIND, SPACE};
use super::rw::{READ6, VERIFY6, WRITE6, WRITE_FILEMARKS};
use crate::opcodes::{op, DeviceOps, OpcodeEntry, OpcodeTable, FF, MEDIUM};
use crate::spc::commands as spc;
use crate::spc::vpd;

static ROWS: &[OpcodeEntry] = &[
    spc::TEST_UNIT_READY,
    op!("REWIND", None, MEDIUM, REWIND, [0x01, 0x01, 0, 0, 0, 0]),
    spc::REQUEST_SENSE,
    op!("READ BLOCK LIMITS", None, 0, READ_BLOCK_LIMITS, [0x05, 0, 0, 0, 0, 0]),
    op!("READ(6)", None, MEDIUM, READ6, [0x08, 0x03, FF, FF, FF, 0]),
    op!("WRITE(6)", None, MEDIUM, WRITE6, [0x0a, 0x01, FF, FF, FF, 0]),
    op!("WRITE FILEMARKS(6)", None, MEDIUM, WRITE_FILEMARKS, [0x10, 0x01, FF, FF, FF, 0]),
    op!("SPACE(6)", None, MEDIUM, SPACE, [0x11, 0x0f, FF, FF, FF, 0]),
    spc::INQUIRY,
    op!("VERIFY(6)", None, MEDIUM, VERIFY6, [0x13, 0x05, FF, FF, FF, 0]),
    op!("MODE SELECT(6)", None, 0, MODE_SELECT, [0x15, 0x11, 0, 0, FF, 0]),
    spc::RESERVE6,
    spc::RELEASE6,
    op!("ERASE(6)", None, MEDIUM, ERASE, [0x19, 0x03, 0, 0, 0, 0]),
    op!("MODE SENSE(6)", None, 0, MODE_SENSE, [0x1a, 0x08, FF, FF, FF, 0]),
    op!("LOAD UNLOAD", None, 0, LOAD_UNLOAD, [0x1b, 0x01, 0, 0, 0x07, 0]),
    op!("PREVENT ALLOW MEDIUM REMOVAL", None, 0, PREVENT_ALLOW, [0x1e, 0, 0, 0, 0x01, 0]),
    op!("LOCATE(10)", None, MEDIUM, LOCATE, [0x2b, 0x07, 0, FF, FF, FF, FF, 0, FF, 0]),
    op!("READ POSITION", None, MEDIUM, READ_POSITION, [0x34, 0x1f, 0, 0, 0, 0, 0, FF, FF, 0]),
    op!("REPORT DENSITY SUPPORT", None, 0, REPORT_DENSITY_SUPPORT, [0x44, 0x01, 0, 0, 0, 0, 0, FF, FF, 0]),
    op!("MODE SELECT(10)", None, 0, MODE_SELECT, [0x55, 0x11, 0, 0, 0, 0, 0, FF, FF, 0]),
    spc::RESERVE10,
    spc::RELEASE10,
    op!("MODE SENSE(10)", None, 0, MODE_SENSE, [0x5a, 0x08, FF, FF, 0, 0, 0, FF, FF, 0]),
    op!("LOCATE(16)", None, MEDIUM, LOCATE, [0x92, 0x1b, 0, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0, 0, 0]),
    spc::REPORT_LUNS,
    spc::REPORT_SUPPORTED_OPCODES,
    spc::REPORT_SUPPORTED_TMF,
];

/// The drive's commands.
pub(crate) static COMMANDS: OpcodeTable = OpcodeTable::new(ROWS);

/// The drive to the shared path.
pub(crate) static OPS: DeviceOps = DeviceOps {
    commands: &COMMANDS,
    mode_pages: &super::modes::MODE_PAGES,
    vpd_pages: &[vpd::SUPPORTED, vpd::SERIAL, vpd::DEVICE_ID],
    state_sense: super::state_sense,
    deferred_error: super::deferred_error,
    settle: super::settle,
    admit: super::admit,
};
