//! The media changer's command table (SMC-3 with the SPC commands every type shares), in opcode
//! order. EXCHANGE MEDIUM and the volume tag commands are not offered (the device capabilities
//! page says so); REQUEST VOLUME ELEMENT ADDRESS neither. The robot's commands take the SCSI-2
//! LUN field that mtx sends in byte 1.

use super::element_status::READ_ELEMENT_STATUS;
use super::moves::{INITIALIZE_ELEMENT_STATUS, INITIALIZE_WITH_RANGE, MOVE_MEDIUM, POSITION_TO_ELEMENT, PREVENT_ALLOW};
use crate::opcodes::{op, DeviceOps, OpcodeEntry, OpcodeTable, FF, SCSI2_LUN};
use crate::spc::commands as spc;
use crate::spc::vpd;

static ROWS: &[OpcodeEntry] = &[
    spc::TEST_UNIT_READY,
    spc::REQUEST_SENSE,
    op!("INITIALIZE ELEMENT STATUS", None, SCSI2_LUN, INITIALIZE_ELEMENT_STATUS, [0x07, 0, 0, 0, 0, 0]),
    spc::INQUIRY,
    spc::MODE_SELECT6,
    spc::RESERVE6,
    spc::RELEASE6,
    spc::MODE_SENSE6,
    op!("PREVENT ALLOW MEDIUM REMOVAL", None, 0, PREVENT_ALLOW, [0x1e, 0, 0, 0, 0x01, 0]),
    op!("POSITION TO ELEMENT", None, SCSI2_LUN, POSITION_TO_ELEMENT, [0x2b, 0, FF, FF, FF, FF, 0, 0, 0x01, 0]),
    op!(
        "INITIALIZE ELEMENT STATUS WITH RANGE",
        None,
        SCSI2_LUN,
        INITIALIZE_WITH_RANGE,
        [0x37, 0x03, FF, FF, 0, 0, FF, FF, 0, 0]
    ),
    spc::MODE_SELECT10,
    spc::RESERVE10,
    spc::RELEASE10,
    spc::MODE_SENSE10,
    spc::REPORT_LUNS,
    spc::REPORT_SUPPORTED_OPCODES,
    spc::REPORT_SUPPORTED_TMF,
    op!("MOVE MEDIUM", None, SCSI2_LUN, MOVE_MEDIUM, [0xa5, 0, FF, FF, FF, FF, FF, FF, 0, 0, 0x01, 0]),
    op!(
        "READ ELEMENT STATUS",
        None,
        SCSI2_LUN,
        READ_ELEMENT_STATUS,
        [0xb8, 0x1f, FF, FF, FF, FF, 0x03, FF, FF, FF, 0, 0]
    ),
];

/// The changer's commands.
pub(crate) static COMMANDS: OpcodeTable = OpcodeTable::new(ROWS);

/// The changer to the shared path: no medium of its own to be NOT READY about.
pub(crate) static OPS: DeviceOps = DeviceOps {
    commands: &COMMANDS,
    mode_pages: &super::mode_pages::MODE_PAGES,
    vpd_pages: &[vpd::SUPPORTED, vpd::SERIAL, vpd::DEVICE_ID],
    state_sense: |_| None,
    deferred_error: |_, _| None,
    settle: |_| None,
    admit: |_, _| Ok(()),
};
