//! The disk's command table (SBC-3/4 with the SPC commands a disk offers), in opcode and service
//! action order. A row binds its decoder's fields to its handler; to add a command, add its row
//! here and its handler (and decoder) in a file of `sbc/`.

use crate::cdb::{self, Command};
use crate::lun::LogicalUnit;
use crate::opcodes::{io, now, op, DeviceOps, OpcodeEntry, OpcodeTable, Run, FF, MEDIUM, THIN_ONLY};
use crate::sbc::{capacity, locked_write, medium, prefetch, provisioning, rw, sanitize, sync};
use crate::sense::Sense;
use crate::spc::commands as spc;
use crate::spc::vpd;

const READ: Run = io!(|req, Command::Read { range, fua: _ }| rw::read(req.lu, range, req.cdb.len(), req.data_in));
const WRITE: Run = io!(|req, Command::Write { range, fua }| rw::write(req.lu, range, fua, req.cdb.len(), req.data_out));
const VERIFY: Run = io!(|req, Command::Verify { range, bytchk }| rw::verify(
    req.lu,
    range,
    bytchk == 1,
    req.cdb.len(),
    req.data_out,
    req.data_in
));
const WRITE_AND_VERIFY: Run = io!(|req, Command::WriteAndVerify { range, bytchk }| rw::write_and_verify(
    req.lu,
    range,
    bytchk,
    req.cdb.len(),
    req.data_out,
    req.data_in
));
const PRE_FETCH: Run = now!(|req, Command::PreFetch { lba, blocks }| prefetch::prefetch(req.lu, lba, blocks));
const SYNCHRONIZE_CACHE: Run = io!(|req, Command::SynchronizeCache { range }| sync::synchronize_cache(req.lu, range));
const READ_DEFECT_DATA: Run =
    now!(|req, Command::ReadDefectData { twelve, plist, glist, format, alloc_len }| prefetch::read_defect_data(
        twelve,
        plist,
        glist,
        format,
        alloc_len,
        req.data_in
    ));
const WRITE_SAME: Run = io!(|req, Command::WriteSame { range, unmap, ndob }| provisioning::write_same(
    req.lu,
    range,
    unmap,
    ndob,
    req.cdb.len(),
    req.data_out,
    req.data_in
));
const SANITIZE: Run = io!(|req, Command::Sanitize { service_action, immed, ause, param_len }| sanitize::sanitize(
    req.lu,
    sanitize::Request { service_action, immed, ause, param_len },
    req.data_out
));
const READ_CAPACITY16: Run = now!(|req, Command::ReadCapacity16 { alloc_len }| {
    capacity::read_capacity16(req.lu, alloc_len, req.data_in);
    Ok::<(), Sense>(())
});

const RW: u16 = MEDIUM;

static ROWS: &[OpcodeEntry] = &[
    spc::TEST_UNIT_READY,
    spc::REQUEST_SENSE,
    op!("READ(6)", None, RW, cdb::read6, READ, [0x08, 0x1f, FF, FF, FF, 0]),
    op!("WRITE(6)", None, RW, cdb::write6, WRITE, [0x0a, 0x1f, FF, FF, FF, 0]),
    spc::INQUIRY,
    spc::MODE_SELECT6,
    spc::RESERVE6,
    spc::RELEASE6,
    spc::MODE_SENSE6,
    op!(
        "START STOP UNIT",
        None,
        0,
        cdb::start_stop_unit,
        now!(|req, Command::StartStopUnit { power_condition, loej, start }| medium::start_stop_unit(
            req.lu,
            power_condition,
            loej,
            start
        )),
        [0x1b, 0x01, 0, 0x0f, 0xf7, 0]
    ),
    op!(
        "PREVENT ALLOW MEDIUM REMOVAL",
        None,
        0,
        cdb::prevent_allow,
        now!(|req, Command::PreventAllowMediumRemoval { prevent }| medium::prevent_allow(
            req.lu,
            req.ctx.nexus.id,
            prevent
        )),
        [0x1e, 0, 0, 0, 0x03, 0]
    ),
    op!(
        "READ CAPACITY(10)",
        None,
        MEDIUM,
        cdb::read_capacity10,
        now!(|req, Command::ReadCapacity10| {
            capacity::read_capacity10(req.lu, req.data_in);
            Ok::<(), Sense>(())
        }),
        [0x25, 0, FF, FF, FF, FF, 0, 0, 0x01, 0]
    ),
    op!("READ(10)", None, RW, cdb::read10, READ, [0x28, 0x1a, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("WRITE(10)", None, RW, cdb::write10, WRITE, [0x2a, 0x1a, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!(
        "WRITE AND VERIFY(10)",
        None,
        RW,
        cdb::write_verify10,
        WRITE_AND_VERIFY,
        [0x2e, 0x16, FF, FF, FF, FF, 0x1f, FF, FF, 0]
    ),
    op!("VERIFY(10)", None, RW, cdb::verify10, VERIFY, [0x2f, 0x16, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("PRE-FETCH(10)", None, RW, cdb::prefetch10, PRE_FETCH, [0x34, 0x02, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!(
        "SYNCHRONIZE CACHE(10)",
        None,
        RW,
        cdb::sync_cache10,
        SYNCHRONIZE_CACHE,
        [0x35, 0x06, FF, FF, FF, FF, 0x1f, FF, FF, 0]
    ),
    op!(
        "READ DEFECT DATA(10)",
        None,
        RW,
        cdb::read_defect_data10,
        READ_DEFECT_DATA,
        [0x37, 0, 0x1f, 0, 0, 0, 0, FF, FF, 0]
    ),
    op!("WRITE SAME(10)", None, RW, cdb::write_same10, WRITE_SAME, [0x41, 0x08, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!(
        "UNMAP",
        None,
        RW | THIN_ONLY,
        cdb::unmap,
        io!(|req, Command::Unmap { param_len }| provisioning::unmap(req.lu, param_len, req.data_out)),
        [0x42, 0, 0, 0, 0, 0, 0x1f, FF, FF, 0]
    ),
    op!("SANITIZE OVERWRITE", Some(0x01), RW, cdb::sanitize, SANITIZE, [0x48, 0xa1, 0, 0, 0, 0, 0, FF, FF, 0]),
    op!(
        "SANITIZE BLOCK ERASE",
        Some(0x02),
        RW | THIN_ONLY,
        cdb::sanitize,
        SANITIZE,
        [0x48, 0xa2, 0, 0, 0, 0, 0, FF, FF, 0]
    ),
    op!(
        "SANITIZE CRYPTOGRAPHIC ERASE",
        Some(0x03),
        RW | THIN_ONLY,
        cdb::sanitize,
        SANITIZE,
        [0x48, 0xa3, 0, 0, 0, 0, 0, FF, FF, 0]
    ),
    op!("SANITIZE EXIT FAILURE MODE", Some(0x1f), RW, cdb::sanitize, SANITIZE, [0x48, 0xbf, 0, 0, 0, 0, 0, FF, FF, 0]),
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
    op!("READ(16)", None, RW, cdb::read16, READ, [0x88, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!(
        "COMPARE AND WRITE",
        None,
        RW,
        cdb::compare_and_write,
        io!(|req, Command::CompareAndWrite { range, fua }| locked_write::compare_and_write(
            req.lu,
            range,
            fua,
            req.data_out
        )),
        [0x89, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0, 0, FF, 0x1f, 0]
    ),
    op!(
        "WRITE(16)",
        None,
        RW,
        cdb::write16,
        WRITE,
        [0x8a, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "ORWRITE(16)",
        None,
        RW,
        cdb::orwrite16,
        io!(|req, Command::OrWrite { range, fua }| locked_write::orwrite(
            req.lu,
            range,
            fua,
            req.data_out,
            req.data_in
        )),
        [0x8b, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "WRITE AND VERIFY(16)",
        None,
        RW,
        cdb::write_verify16,
        WRITE_AND_VERIFY,
        [0x8e, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "VERIFY(16)",
        None,
        RW,
        cdb::verify16,
        VERIFY,
        [0x8f, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "PRE-FETCH(16)",
        None,
        RW,
        cdb::prefetch16,
        PRE_FETCH,
        [0x90, 0x02, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "SYNCHRONIZE CACHE(16)",
        None,
        RW,
        cdb::sync_cache16,
        SYNCHRONIZE_CACHE,
        [0x91, 0x06, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "WRITE SAME(16)",
        None,
        RW,
        cdb::write_same16,
        WRITE_SAME,
        [0x93, 0x09, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "WRITE ATOMIC(16)",
        None,
        RW,
        cdb::write_atomic16,
        io!(|req, Command::WriteAtomic { range, fua, boundary }| locked_write::write_atomic(
            req.lu,
            range,
            fua,
            boundary,
            req.data_out
        )),
        [0x9c, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "READ CAPACITY(16)",
        Some(0x10),
        MEDIUM,
        cdb::read_capacity16,
        READ_CAPACITY16,
        [0x9e, 0x10, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x01, 0]
    ),
    op!(
        "GET LBA STATUS",
        Some(0x12),
        MEDIUM | THIN_ONLY,
        cdb::get_lba_status,
        now!(|req, Command::GetLbaStatus { lba, alloc_len }| provisioning::get_lba_status(
            req.lu,
            lba,
            alloc_len,
            req.data_in
        )),
        [0x9e, 0x12, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0]
    ),
    spc::REPORT_LUNS,
    spc::REPORT_SUPPORTED_OPCODES,
    spc::REPORT_SUPPORTED_TMF,
    op!("READ(12)", None, RW, cdb::read12, READ, [0xa8, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!("WRITE(12)", None, RW, cdb::write12, WRITE, [0xaa, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!(
        "WRITE AND VERIFY(12)",
        None,
        RW,
        cdb::write_verify12,
        WRITE_AND_VERIFY,
        [0xae, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!("VERIFY(12)", None, RW, cdb::verify12, VERIFY, [0xaf, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!(
        "READ DEFECT DATA(12)",
        None,
        RW,
        cdb::read_defect_data12,
        READ_DEFECT_DATA,
        [0xb7, 0x1f, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
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
    admit: sanitize::admit,
};

/// REQUEST SENSE with nothing pending: a disk being sanitized or without medium is NOT READY.
fn state_sense(lu: &LogicalUnit) -> Option<Sense> {
    lu.disk().ok().and_then(|d| d.sanitize().sense()).or_else(|| lu.medium().err())
}
