//! The rows of the primary commands (SPC-4), for the device types to list in their tables.
//!
//! The first group every type offers (the controller's table is exactly that group); the second
//! (reservations, persistent reservations, third-party copy) a type offers when it has the state
//! they act on, which today is the disk. A row binds the decoder's fields to the handler, so the
//! table is the whole of what a command needs besides its handler file.

use crate::cdb::{self, Command};
use crate::opcodes::{now, op, OpcodeEntry, FF, MEDIUM, NO_UA, RESERVATION_OK};
use crate::spc::{inquiry, mode, persistent_reservation as pr, report_luns, request_sense, reserve, rsoc, xcopy};

// Offered by every device type.

pub(crate) const TEST_UNIT_READY: OpcodeEntry = op!(
    "TEST UNIT READY",
    None,
    MEDIUM,
    cdb::test_unit_ready,
    now!(|_, Command::TestUnitReady| Ok::<(), crate::sense::Sense>(())),
    [0x00, 0, 0, 0, 0, 0]
);
pub(crate) const REQUEST_SENSE: OpcodeEntry = op!(
    "REQUEST SENSE",
    None,
    NO_UA | RESERVATION_OK,
    cdb::request_sense,
    now!(|req, Command::RequestSense { desc, alloc_len }| request_sense::run(req, desc, alloc_len)),
    [0x03, 0x01, 0, 0, FF, 0]
);
pub(crate) const INQUIRY: OpcodeEntry = op!(
    "INQUIRY",
    None,
    NO_UA | RESERVATION_OK,
    cdb::inquiry,
    now!(|req, Command::Inquiry { evpd, page_code, alloc_len }| inquiry::inquiry(
        req.lu,
        req.ops.vpd_pages,
        evpd,
        page_code,
        alloc_len,
        req.data_in
    )),
    [0x12, 0x01, FF, FF, FF, 0]
);
const MODE_SELECT: crate::opcodes::Run =
    now!(|req, Command::ModeSelect { ten, pf: _, sp, param_len }| mode::mode_select(
        req.lu,
        req.ctx,
        req.ops.mode_pages,
        ten,
        sp,
        param_len,
        req.data_out
    ));
const MODE_SENSE: crate::opcodes::Run =
    now!(|req, Command::ModeSense { ten, dbd, llbaa, pc, page_code, subpage, alloc_len }| mode::mode_sense(
        req.lu,
        req.ops.mode_pages,
        mode::ModeSenseRequest { ten, dbd, llbaa, pc, page_code, subpage, alloc_len },
        req.data_in
    ));
pub(crate) const MODE_SELECT6: OpcodeEntry =
    op!("MODE SELECT(6)", None, 0, cdb::mode_select6, MODE_SELECT, [0x15, 0x11, 0, 0, FF, 0]);
pub(crate) const MODE_SENSE6: OpcodeEntry =
    op!("MODE SENSE(6)", None, 0, cdb::mode_sense6, MODE_SENSE, [0x1a, 0x08, FF, FF, FF, 0]);
pub(crate) const MODE_SELECT10: OpcodeEntry =
    op!("MODE SELECT(10)", None, 0, cdb::mode_select10, MODE_SELECT, [0x55, 0x11, 0, 0, 0, 0, 0, FF, FF, 0]);
pub(crate) const MODE_SENSE10: OpcodeEntry =
    op!("MODE SENSE(10)", None, 0, cdb::mode_sense10, MODE_SENSE, [0x5a, 0x18, FF, FF, 0, 0, 0, FF, FF, 0]);
pub(crate) const REPORT_LUNS: OpcodeEntry = op!(
    "REPORT LUNS",
    None,
    NO_UA | RESERVATION_OK,
    cdb::report_luns,
    now!(|req, Command::ReportLuns { select_report, alloc_len }| report_luns::run(req, select_report, alloc_len)),
    [0xa0, 0, FF, 0, 0, 0, FF, FF, FF, FF, 0, 0]
);
pub(crate) const REPORT_SUPPORTED_OPCODES: OpcodeEntry = op!(
    "REPORT SUPPORTED OPERATION CODES",
    Some(0x0c),
    0,
    cdb::report_supported_opcodes,
    now!(|req, Command::ReportSupportedOpcodes { rctd, options, opcode, service_action, alloc_len }| {
        let request = rsoc::RsocRequest { rctd, options, opcode, service_action, alloc_len };
        rsoc::report_supported_opcodes(req.lu, req.ops.commands, request, req.data_in)
    }),
    [0xa3, 0x0c, 0x87, FF, FF, FF, FF, FF, FF, FF, 0, 0]
);
pub(crate) const REPORT_SUPPORTED_TMF: OpcodeEntry = op!(
    "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS",
    Some(0x0d),
    0,
    cdb::report_supported_tmf,
    now!(|req, Command::ReportSupportedTmf { repd, alloc_len }| {
        rsoc::report_supported_tmf(repd, alloc_len, req.data_in);
        Ok::<(), crate::sense::Sense>(())
    }),
    [0xa3, 0x0d, 0x80, 0, 0, 0, FF, FF, FF, FF, 0, 0]
);

// Offered by types with reservations and a medium to copy (the disk).

const RESERVE: crate::opcodes::Run = now!(|req, Command::Reserve| reserve::reserve(req.lu, req.ctx.nexus.id));
const RELEASE: crate::opcodes::Run = now!(|req, Command::Release| reserve::release(req.lu, req.ctx.nexus.id));
pub(crate) const RESERVE6: OpcodeEntry = op!("RESERVE(6)", None, 0, cdb::reserve, RESERVE, [0x16, 0, 0, 0, 0, 0]);
pub(crate) const RELEASE6: OpcodeEntry =
    op!("RELEASE(6)", None, RESERVATION_OK, cdb::release, RELEASE, [0x17, 0, 0, 0, 0, 0]);
pub(crate) const RESERVE10: OpcodeEntry =
    op!("RESERVE(10)", None, 0, cdb::reserve, RESERVE, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
pub(crate) const RELEASE10: OpcodeEntry =
    op!("RELEASE(10)", None, RESERVATION_OK, cdb::release, RELEASE, [0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]);

const PR_IN: crate::opcodes::Run =
    now!(|req, Command::PersistentReserveIn { service_action, alloc_len }| pr::reserve_in(
        req.lu,
        service_action,
        alloc_len,
        req.data_in
    ));
const PR_OUT: crate::opcodes::Run =
    now!(|req, Command::PersistentReserveOut { service_action, scope, pr_type, param_len }| pr::reserve_out(
        req.lu,
        req.ctx,
        service_action,
        scope,
        pr_type,
        param_len,
        req.data_out
    ));

macro_rules! pr_in {
    ($name:literal, $sa:literal) => {
        op!($name, Some($sa), 0, pr::decode_in, PR_IN, [0x5e, $sa, 0, 0, 0, 0, 0, FF, FF, 0])
    };
}
macro_rules! pr_out {
    ($name:literal, $sa:literal) => {
        op!($name, Some($sa), 0, pr::decode_out, PR_OUT, [0x5f, $sa, FF, 0, 0, FF, FF, FF, FF, 0])
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
    cdb::extended_copy,
    crate::opcodes::io!(|req, Command::ExtendedCopy { param_len }| xcopy::extended_copy(
        req.lu,
        req.ctx,
        param_len,
        req.data_out,
        req.data_in
    )),
    [0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
);

const RECEIVE_COPY: crate::opcodes::Run =
    now!(|req, Command::ReceiveCopyResults { service_action, list_id, alloc_len }| xcopy::receive_copy_results(
        req.lu,
        req.ctx,
        service_action,
        list_id,
        alloc_len,
        req.data_in
    ));

/// RECEIVE COPY RESULTS, the service actions of LID1 copies.
pub(crate) const RECEIVE_COPY_RESULTS: [OpcodeEntry; 3] = [
    op!(
        "RECEIVE COPY STATUS(LID1)",
        Some(0x00),
        0,
        cdb::receive_copy_results,
        RECEIVE_COPY,
        [0x84, 0x00, FF, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "RECEIVE COPY OPERATING PARAMETERS",
        Some(0x03),
        0,
        cdb::receive_copy_results,
        RECEIVE_COPY,
        [0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "RECEIVE COPY FAILURE DETAILS(LID1)",
        Some(0x04),
        0,
        cdb::receive_copy_results,
        RECEIVE_COPY,
        [0x84, 0x04, FF, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
];
