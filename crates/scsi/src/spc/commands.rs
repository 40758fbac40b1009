//! The rows of the primary commands (SPC-4), for the device types to list in their tables.
//!
//! The first group every type offers (the controller's table is exactly that group); the second
//! (reservations, persistent reservations, third-party copy) a type offers when it has the state
//! they act on, which today is the disk. A row names its command's `Handler` (decoder and handler,
//! in the command's handler file), so the table is the whole of what a command needs besides that
//! file.

use crate::cdb::NoFields;
use crate::opcodes::{
    now, op, OpcodeEntry, ALUA_ONLY, ANY_PORT, FF, LOOKS_ONLY, MEDIUM, NO_UA, RESERVATION_OK, STANDBY_OK,
    UNAVAILABLE_OK,
};
use crate::spc::{
    inquiry, mode_cdb, persistent_reservation as pr, report_luns, report_target_port_groups as rtpg, request_sense,
    reserve, rsoc, xcopy,
};

// Offered by every device type.

pub(crate) const TEST_UNIT_READY: OpcodeEntry = op!(
    "TEST UNIT READY",
    None,
    MEDIUM,
    now!(NoFields, |_, NoFields| Ok::<(), crate::sense::Sense>(())),
    [0x00, 0, 0, 0, 0, 0]
);
pub(crate) const REQUEST_SENSE: OpcodeEntry = op!(
    "REQUEST SENSE",
    None,
    NO_UA | RESERVATION_OK | LOOKS_ONLY | UNAVAILABLE_OK | ANY_PORT,
    request_sense::REQUEST_SENSE,
    [0x03, 0x01, 0, 0, FF, 0]
);
pub(crate) const INQUIRY: OpcodeEntry = op!(
    "INQUIRY",
    None,
    NO_UA | RESERVATION_OK | LOOKS_ONLY | UNAVAILABLE_OK | ANY_PORT,
    inquiry::INQUIRY,
    [0x12, 0x01, FF, FF, FF, 0]
);
pub(crate) const MODE_SELECT6: OpcodeEntry =
    op!("MODE SELECT(6)", None, STANDBY_OK, mode_cdb::MODE_SELECT, [0x15, 0x11, 0, 0, FF, 0]);
pub(crate) const MODE_SENSE6: OpcodeEntry =
    op!("MODE SENSE(6)", None, STANDBY_OK, mode_cdb::MODE_SENSE, [0x1a, 0x08, FF, FF, FF, 0]);
pub(crate) const MODE_SELECT10: OpcodeEntry =
    op!("MODE SELECT(10)", None, STANDBY_OK, mode_cdb::MODE_SELECT, [0x55, 0x11, 0, 0, 0, 0, 0, FF, FF, 0]);
pub(crate) const MODE_SENSE10: OpcodeEntry =
    op!("MODE SENSE(10)", None, STANDBY_OK, mode_cdb::MODE_SENSE, [0x5a, 0x18, FF, FF, 0, 0, 0, FF, FF, 0]);
pub(crate) const REPORT_LUNS: OpcodeEntry = op!(
    "REPORT LUNS",
    None,
    NO_UA | RESERVATION_OK | LOOKS_ONLY | UNAVAILABLE_OK | ANY_PORT,
    report_luns::REPORT_LUNS,
    [0xa0, 0, FF, 0, 0, 0, FF, FF, FF, FF, 0, 0]
);
/// Offered by units with asymmetric access (several gateways); listed by the disk.
pub(crate) const REPORT_TARGET_PORT_GROUPS: OpcodeEntry = op!(
    "REPORT TARGET PORT GROUPS",
    Some(0x0a),
    ALUA_ONLY | UNAVAILABLE_OK | ANY_PORT,
    rtpg::REPORT_TARGET_PORT_GROUPS,
    [0xa3, 0xea, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
);
/// Explicit asymmetric access (TPGS 11b): offered by units with port groups, like the report.
pub(crate) const SET_TARGET_PORT_GROUPS: OpcodeEntry = op!(
    "SET TARGET PORT GROUPS",
    Some(0x0a),
    ALUA_ONLY | STANDBY_OK | ANY_PORT,
    super::set_target_port_groups::SET_TARGET_PORT_GROUPS,
    [0xa4, 0x0a, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
);
pub(crate) const REPORT_SUPPORTED_OPCODES: OpcodeEntry = op!(
    "REPORT SUPPORTED OPERATION CODES",
    Some(0x0c),
    STANDBY_OK,
    rsoc::REPORT_SUPPORTED_OPCODES,
    [0xa3, 0x0c, 0x87, FF, FF, FF, FF, FF, FF, FF, 0, 0]
);
pub(crate) const REPORT_SUPPORTED_TMF: OpcodeEntry = op!(
    "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS",
    Some(0x0d),
    STANDBY_OK,
    rsoc::REPORT_SUPPORTED_TMF,
    [0xa3, 0x0d, 0x80, 0, 0, 0, FF, FF, FF, FF, 0, 0]
);

// Offered by types with reservations and a medium to copy (the disk).

pub(crate) const RESERVE6: OpcodeEntry = op!("RESERVE(6)", None, 0, reserve::RESERVE, [0x16, 0, 0, 0, 0, 0]);
pub(crate) const RELEASE6: OpcodeEntry =
    op!("RELEASE(6)", None, RESERVATION_OK, reserve::RELEASE, [0x17, 0, 0, 0, 0, 0]);
pub(crate) const RESERVE10: OpcodeEntry =
    op!("RESERVE(10)", None, 0, reserve::RESERVE, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
pub(crate) const RELEASE10: OpcodeEntry =
    op!("RELEASE(10)", None, RESERVATION_OK, reserve::RELEASE, [0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

macro_rules! pr_in {
    ($name:literal, $sa:literal) => {
        op!($name, Some($sa), STANDBY_OK | ANY_PORT, pr::PR_IN, [0x5e, $sa, 0, 0, 0, 0, 0, FF, FF, 0])
    };
}
macro_rules! pr_out {
    ($name:literal, $sa:literal) => {
        op!($name, Some($sa), STANDBY_OK | ANY_PORT, pr::PR_OUT, [0x5f, $sa, FF, 0, 0, FF, FF, FF, FF, 0])
    };
}

/// PERSISTENT RESERVE IN and OUT, every service action, in table order.
pub(crate) const PERSISTENT_RESERVE: [OpcodeEntry; 12] = [
    pr_in!("PERSISTENT RESERVE IN READ KEYS", 0x00),
    pr_in!("PERSISTENT RESERVE IN READ RESERVATION", 0x01),
    pr_in!("PERSISTENT RESERVE IN REPORT CAPABILITIES", 0x02),
    pr_in!("PERSISTENT RESERVE IN READ FULL STATUS", 0x03),
    pr_out!("PERSISTENT RESERVE OUT REGISTER", 0x00),
    pr_out!("PERSISTENT RESERVE OUT RESERVE", 0x01),
    pr_out!("PERSISTENT RESERVE OUT RELEASE", 0x02),
    pr_out!("PERSISTENT RESERVE OUT CLEAR", 0x03),
    pr_out!("PERSISTENT RESERVE OUT PREEMPT", 0x04),
    pr_out!("PERSISTENT RESERVE OUT PREEMPT AND ABORT", 0x05),
    pr_out!("PERSISTENT RESERVE OUT REGISTER AND IGNORE EXISTING KEY", 0x06),
    pr_out!("PERSISTENT RESERVE OUT REGISTER AND MOVE", 0x07),
];

pub(crate) const EXTENDED_COPY: OpcodeEntry = op!(
    "EXTENDED COPY(LID1)",
    Some(0x00),
    0,
    xcopy::EXTENDED_COPY,
    [0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
);

pub(crate) const RECEIVE_COPY_RESULTS: [OpcodeEntry; 3] = [
    op!(
        "RECEIVE COPY STATUS(LID1)",
        Some(0x00),
        0,
        xcopy::RECEIVE_COPY_RESULTS,
        [0x84, 0x00, FF, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "RECEIVE COPY OPERATING PARAMETERS",
        Some(0x03),
        0,
        xcopy::RECEIVE_COPY_RESULTS,
        [0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "RECEIVE COPY FAILURE DETAILS(LID1)",
        Some(0x04),
        0,
        xcopy::RECEIVE_COPY_RESULTS,
        [0x84, 0x04, FF, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
];
