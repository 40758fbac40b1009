//! The disk's command table (SBC-3/4 with the SPC commands a disk offers), in opcode and service
//! action order. A row names its command's `Handler` (the decoder of its typed fields and the
//! handler, both in the command's file of `sbc/`); to add a command, add its row here and that file.

use crate::lun::LogicalUnit;
use crate::opcodes::{op, DeviceOps, OpcodeEntry, OpcodeTable, FF, MEDIUM, SANITIZE, STANDBY_OK, THIN_ONLY};
use crate::sbc::capacity::{READ_CAPACITY10, READ_CAPACITY16};
use crate::sbc::locked_write::{COMPARE_AND_WRITE, ORWRITE, WRITE_ATOMIC};
use crate::sbc::medium::{PREVENT_ALLOW, START_STOP_UNIT};
use crate::sbc::prefetch::{PRE_FETCH, READ_DEFECT_DATA};
use crate::sbc::provisioning::{GET_LBA_STATUS, UNMAP, WRITE_SAME};
use crate::sbc::rw::{READ, VERIFY, WRITE, WRITE_AND_VERIFY};
use crate::sbc::sync::SYNCHRONIZE_CACHE;
use crate::sbc::{sanitize, sanitize::SANITIZE as SANITIZE_HANDLER};
use crate::sense::Sense;
use crate::spc::commands as spc;
use crate::spc::vpd;

const RW: u16 = MEDIUM;

static ROWS: &[OpcodeEntry] = &[
    spc::TEST_UNIT_READY,
    spc::REQUEST_SENSE,
    op!("READ(6)", None, RW, READ, [0x08, 0x1f, FF, FF, FF, 0]),
    op!("WRITE(6)", None, RW, WRITE, [0x0a, 0x1f, FF, FF, FF, 0]),
    spc::INQUIRY,
    spc::MODE_SELECT6,
    spc::RESERVE6,
    spc::RELEASE6,
    spc::MODE_SENSE6,
    op!("START STOP UNIT", None, 0, START_STOP_UNIT, [0x1b, 0x01, 0, 0x0f, 0xf7, 0]),
    op!("PREVENT ALLOW MEDIUM REMOVAL", None, 0, PREVENT_ALLOW, [0x1e, 0, 0, 0, 0x03, 0]),
    // Also answered in standby (SPC-4 5.15.2.4.4 lets a unit process more than its list): a
    // multipath layer compares every path's capacity before it groups them.
    op!("READ CAPACITY(10)", None, MEDIUM | STANDBY_OK, READ_CAPACITY10, [0x25, 0, FF, FF, FF, FF, 0, 0, 0x01, 0]),
    op!("READ(10)", None, RW, READ, [0x28, 0x1a, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("WRITE(10)", None, RW, WRITE, [0x2a, 0x1a, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("WRITE AND VERIFY(10)", None, RW, WRITE_AND_VERIFY, [0x2e, 0x16, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("VERIFY(10)", None, RW, VERIFY, [0x2f, 0x16, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("PRE-FETCH(10)", None, RW, PRE_FETCH, [0x34, 0x02, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("SYNCHRONIZE CACHE(10)", None, RW, SYNCHRONIZE_CACHE, [0x35, 0x06, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("READ DEFECT DATA(10)", None, RW, READ_DEFECT_DATA, [0x37, 0, 0x1f, 0, 0, 0, 0, FF, FF, 0]),
    op!("WRITE SAME(10)", None, RW, WRITE_SAME, [0x41, 0x08, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("UNMAP", None, RW | THIN_ONLY, UNMAP, [0x42, 0, 0, 0, 0, 0, 0x1f, FF, FF, 0]),
    op!("SANITIZE OVERWRITE", Some(0x01), RW | SANITIZE, SANITIZE_HANDLER, [0x48, 0xa1, 0, 0, 0, 0, 0, FF, FF, 0]),
    op!(
        "SANITIZE BLOCK ERASE",
        Some(0x02),
        RW | THIN_ONLY | SANITIZE,
        SANITIZE_HANDLER,
        [0x48, 0xa2, 0, 0, 0, 0, 0, FF, FF, 0]
    ),
    op!(
        "SANITIZE CRYPTOGRAPHIC ERASE",
        Some(0x03),
        RW | THIN_ONLY | SANITIZE,
        SANITIZE_HANDLER,
        [0x48, 0xa3, 0, 0, 0, 0, 0, FF, FF, 0]
    ),
    op!(
        "SANITIZE EXIT FAILURE MODE",
        Some(0x1f),
        RW | SANITIZE,
        SANITIZE_HANDLER,
        [0x48, 0xbf, 0, 0, 0, 0, 0, FF, FF, 0]
    ),
    spc::MODE_SELECT10,
    spc::RESERVE10,
    spc::RELEASE10,
    spc::MODE_SENSE10,
    spc::PERSISTENT_RESERVE[0],
    spc::PERSISTENT_RESERVE[1],
    spc::PERSISTENT_RESERVE[2],
    spc::PERSISTENT_RESERVE[3],
    spc::PERSISTENT_RESERVE[4],
    spc::PERSISTENT_RESERVE[5],
    spc::PERSISTENT_RESERVE[6],
    spc::PERSISTENT_RESERVE[7],
    spc::PERSISTENT_RESERVE[8],
    spc::PERSISTENT_RESERVE[9],
    spc::PERSISTENT_RESERVE[10],
    spc::PERSISTENT_RESERVE[11],
    spc::EXTENDED_COPY,
    spc::RECEIVE_COPY_RESULTS[0],
    spc::RECEIVE_COPY_RESULTS[1],
    spc::RECEIVE_COPY_RESULTS[2],
    op!("READ(16)", None, RW, READ, [0x88, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!(
        "COMPARE AND WRITE",
        None,
        RW,
        COMPARE_AND_WRITE,
        [0x89, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0, 0, FF, 0x1f, 0]
    ),
    op!("WRITE(16)", None, RW, WRITE, [0x8a, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!("ORWRITE(16)", None, RW, ORWRITE, [0x8b, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!(
        "WRITE AND VERIFY(16)",
        None,
        RW,
        WRITE_AND_VERIFY,
        [0x8e, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!("VERIFY(16)", None, RW, VERIFY, [0x8f, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!("PRE-FETCH(16)", None, RW, PRE_FETCH, [0x90, 0x02, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!(
        "SYNCHRONIZE CACHE(16)",
        None,
        RW,
        SYNCHRONIZE_CACHE,
        [0x91, 0x06, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!("WRITE SAME(16)", None, RW, WRITE_SAME, [0x93, 0x09, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!(
        "WRITE ATOMIC(16)",
        None,
        RW,
        WRITE_ATOMIC,
        [0x9c, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "READ CAPACITY(16)",
        Some(0x10),
        MEDIUM | STANDBY_OK,
        READ_CAPACITY16,
        [0x9e, 0x10, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x01, 0]
    ),
    op!(
        "GET LBA STATUS",
        Some(0x12),
        MEDIUM | THIN_ONLY,
        GET_LBA_STATUS,
        [0x9e, 0x12, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0]
    ),
    spc::REPORT_LUNS,
    spc::REPORT_TARGET_PORT_GROUPS,
    spc::REPORT_SUPPORTED_OPCODES,
    spc::REPORT_SUPPORTED_TMF,
    spc::SET_TARGET_PORT_GROUPS,
    op!("READ(12)", None, RW, READ, [0xa8, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!("WRITE(12)", None, RW, WRITE, [0xaa, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!("WRITE AND VERIFY(12)", None, RW, WRITE_AND_VERIFY, [0xae, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!("VERIFY(12)", None, RW, VERIFY, [0xaf, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!("READ DEFECT DATA(12)", None, RW, READ_DEFECT_DATA, [0xb7, 0x1f, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]),
];

/// The disk's commands.
pub(crate) static COMMANDS: OpcodeTable = OpcodeTable::new(ROWS);

/// The disk to the shared path.
pub(crate) static OPS: DeviceOps = DeviceOps {
    commands: &COMMANDS,
    mode_pages: &super::mode_pages::MODE_PAGES,
    vpd_pages: &[
        vpd::SUPPORTED,
        vpd::SERIAL,
        vpd::DEVICE_ID,
        vpd::THIRD_PARTY_COPY,
        vpd::BLOCK_LIMITS,
        vpd::BLOCK_CHARACTERISTICS,
        vpd::PROVISIONING,
    ],
    state_sense,
    deferred_error: |_, _| None,
    settle: |_| None,
    admit: sanitize::admit,
};

/// REQUEST SENSE with nothing pending: a disk being sanitized or without medium is NOT READY.
fn state_sense(lu: &LogicalUnit) -> Option<Sense> {
    lu.disk().ok().and_then(|d| d.sanitize().sense()).or_else(|| lu.medium().err())
}
