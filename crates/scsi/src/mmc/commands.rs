//! The CD/DVD drive's command table (MMC-6 for a read-only drive, with the SPC commands every type
//! shares), in opcode and service action order. Writes have rows so that they fail as a
//! write-protected drive answers (DATA PROTECT), not as an unknown command.

use super::buffer_capacity::READ_BUFFER_CAPACITY;
use super::configuration::GET_CONFIGURATION;
use super::disc_info::{READ_DISC_INFORMATION, READ_TOC, READ_TRACK_INFORMATION};
use super::dvd_structure::READ_DVD_STRUCTURE;
use super::read::{READ, READ_CAPACITY, WRITE};
use super::read_cd::READ_CD;
use super::report_key::REPORT_KEY;
use super::tray::{GET_EVENT_STATUS, MECHANISM_STATUS, PREVENT_ALLOW, SET_CD_SPEED, SET_STREAMING, START_STOP_UNIT};
use crate::opcodes::{op, DeviceOps, OpcodeEntry, OpcodeTable, FF, LOOKS_ONLY, MEDIUM};
use crate::spc::commands as spc;
use crate::spc::vpd;

static ROWS: &[OpcodeEntry] = &[
    spc::TEST_UNIT_READY,
    spc::REQUEST_SENSE,
    spc::INQUIRY,
    spc::MODE_SELECT6,
    spc::MODE_SENSE6,
    op!("START STOP UNIT", None, 0, START_STOP_UNIT, [0x1b, 0x01, 0, 0, 0xf3, 0]),
    op!("PREVENT ALLOW MEDIUM REMOVAL", None, 0, PREVENT_ALLOW, [0x1e, 0, 0, 0, 0x03, 0]),
    op!("READ CAPACITY(10)", None, MEDIUM, READ_CAPACITY, [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    op!("READ(10)", None, MEDIUM, READ, [0x28, 0x18, FF, FF, FF, FF, 0, FF, FF, 0]),
    op!("WRITE(10)", None, MEDIUM, WRITE, [0x2a, 0x18, FF, FF, FF, FF, 0, FF, FF, 0]),
    op!("READ TOC/PMA/ATIP", None, MEDIUM, READ_TOC, [0x43, 0x02, 0x0f, 0, 0, 0, FF, FF, FF, 0]),
    op!("GET CONFIGURATION", None, LOOKS_ONLY, GET_CONFIGURATION, [0x46, 0x03, FF, FF, 0, 0, 0, FF, FF, 0]),
    op!("GET EVENT STATUS NOTIFICATION", None, LOOKS_ONLY, GET_EVENT_STATUS, [0x4a, 0x01, 0, 0, FF, 0, 0, FF, FF, 0]),
    op!("READ DISC INFORMATION", None, MEDIUM, READ_DISC_INFORMATION, [0x51, 0x07, 0, 0, 0, 0, 0, FF, FF, 0]),
    op!("READ TRACK INFORMATION", None, MEDIUM, READ_TRACK_INFORMATION, [0x52, 0x03, FF, FF, FF, FF, 0, FF, FF, 0]),
    spc::MODE_SELECT10,
    spc::MODE_SENSE10,
    op!("READ BUFFER CAPACITY", None, 0, READ_BUFFER_CAPACITY, [0x5c, 0x01, 0, 0, 0, 0, 0, FF, FF, 0]),
    spc::REPORT_LUNS,
    spc::REPORT_SUPPORTED_OPCODES,
    spc::REPORT_SUPPORTED_TMF,
    op!("REPORT KEY", None, 0, REPORT_KEY, [0xa4, 0, FF, FF, FF, FF, 0, FF, FF, FF, FF, 0]),
    op!("READ(12)", None, MEDIUM, READ, [0xa8, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, 0x80, 0]),
    op!("WRITE(12)", None, MEDIUM, WRITE, [0xaa, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, 0x80, 0]),
    op!("READ DVD STRUCTURE", None, MEDIUM, READ_DVD_STRUCTURE, [0xad, 0x0f, FF, FF, FF, FF, FF, FF, FF, FF, 0xc0, 0]),
    op!("SET STREAMING", None, 0, SET_STREAMING, [0xb6, 0, 0, 0, 0, 0, 0, 0, 0x1f, FF, FF, 0]),
    op!("SET CD SPEED", None, 0, SET_CD_SPEED, [0xbb, 0x03, FF, FF, FF, FF, 0, 0, 0, 0, 0, 0]),
    op!("MECHANISM STATUS", None, LOOKS_ONLY, MECHANISM_STATUS, [0xbd, 0, 0, 0, 0, 0, 0, 0, FF, FF, 0, 0]),
    op!("READ CD", None, MEDIUM, READ_CD, [0xbe, 0x1e, FF, FF, FF, FF, FF, FF, FF, 0xfe, 0x07, 0]),
];

/// The drive's commands.
pub(crate) static COMMANDS: OpcodeTable = OpcodeTable::new(ROWS);

/// The drive to the shared path.
pub(crate) static OPS: DeviceOps = DeviceOps {
    commands: &COMMANDS,
    mode_pages: &super::mode_pages::MODE_PAGES,
    vpd_pages: &[vpd::SUPPORTED, vpd::SERIAL, vpd::DEVICE_ID],
    state_sense: super::state_sense,
    deferred_error: |_, _| None,
    settle: |_| None,
    admit: super::admit,
};
