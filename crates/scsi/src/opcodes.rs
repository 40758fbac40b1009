//! The machinery of a device type's command table: one row per command (opcode, service action,
//! name, CDB usage data, flags, decoder, handler), the index that finds a row in one array access,
//! and the check of a CDB against its row's usage data.
//!
//! The rows themselves belong to the device types: the shared SPC rows in `spc::commands`, the disk's
//! table in `sbc::commands`, the controller's in `controller`. The same table dispatches, rejects CDBs
//! with bits set outside the usage data (reserved fields, unsupported protection fields) and answers
//! REPORT SUPPORTED OPERATION CODES, so what a unit reports is exactly what it runs.

use crate::cdb::Decoded;
use crate::failure::Failure;
use crate::lun::LogicalUnit;
use crate::sense::Sense;
use crate::spc::mode::ModePages;
use crate::target::Ctx;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Needs the medium: NOT READY when the unit is offline (for a type that has a medium).
pub(crate) const MEDIUM: u16 = 1 << 2;
/// Neither reports nor clears a pending unit attention (SAM-5 5.14).
pub(crate) const NO_UA: u16 = 1 << 3;
/// Allowed while another I_T nexus holds a RESERVE(6/10) reservation (SPC-2 5.5.1, table 10).
pub(crate) const RESERVATION_OK: u16 = 1 << 4;
/// Offered only on thin-provisioned units.
pub(crate) const THIN_ONLY: u16 = 1 << 5;
/// Only looks at the unit: allowed while a SANITIZE runs (SBC-4 4.11.2).
pub(crate) const LOOKS_ONLY: u16 = 1 << 6;
/// A SANITIZE: may run again after a failed one (SBC-4 4.11.3).
pub(crate) const SANITIZE: u16 = 1 << 7;
/// Offered only on units with asymmetric access (`alua::PortGroups` attached).
pub(crate) const ALUA_ONLY: u16 = 1 << 8;
/// Processed while the unit's target port group is in standby (SPC-4 5.15.2.4.4).
pub(crate) const STANDBY_OK: u16 = 1 << 9;
/// Processed while it is unavailable or transitioning (SPC-4 5.15.2.4.5); implies `STANDBY_OK`.
pub(crate) const UNAVAILABLE_OK: u16 = 1 << 10;

/// What decides whether a unit offers a row beside its device type: its provisioning and
/// whether it has asymmetric access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Offer {
    pub thin: bool,
    pub alua: bool,
}

impl Offer {
    /// Every row of a table.
    #[cfg(test)]
    pub const ALL: Offer = Offer { thin: true, alua: true };

    pub fn of(lu: &LogicalUnit) -> Offer {
        Offer { thin: lu.thin_provisioning(), alua: lu.port_groups().is_some() }
    }
}
/// Byte 1 bits 7-5 may hold the LUN field of SCSI-2 CDBs (obsolete; ignored): mtx still fills
/// it in a media changer's commands, and libraries (tgt's too) accept it.
pub(crate) const SCSI2_LUN: u16 = 1 << 11;
/// Answered by whichever port of a multi-port unit receives it, from what every port holds: the
/// inquiry data, the port groups, the persistent reservations kept in common. Everything else a
/// port that does not own the storage sends to the one that does (`alua::PortGroups::forward`),
/// since the owner holds the rest of the unit's state (RESERVE(6) reservations, mode pages, a
/// SANITIZE in progress).
pub(crate) const ANY_PORT: u16 = 1 << 12;

/// One command on its way through a handler: who sent it, its CDB (already checked against the
/// row's usage data and cut to the row's length), the data-out received and the data-in to fill.
pub(crate) struct Request<'a> {
    pub lu: &'a Arc<LogicalUnit>,
    /// What the unit's device type offers (its table, mode pages, VPD pages, state): handlers ask
    /// it here rather than naming the type.
    pub ops: &'static DeviceOps,
    pub ctx: &'a Ctx<'a>,
    pub cdb: &'a [u8],
    pub data_out: &'a [u8],
    pub data_in: &'a mut Vec<u8>,
    /// Where a READ may leave its data instead of `data_in`, when the transport offers it.
    pub pipe: Option<&'a mut rtgt_backstore::PagePipe>,
}

/// What a device type contributes to the shared command path beside the facts its enum knows
/// (`DeviceType`): one static per type beside its table (`sbc::commands::OPS`,
/// `controller::OPS`), found by `dispatch::ops` and handed to every handler in its `Request`.
pub(crate) struct DeviceOps {
    /// Dispatch, CDB checks and REPORT SUPPORTED OPERATION CODES.
    pub commands: &'static OpcodeTable,
    /// Its mode pages and mode parameter header bits, for the shared MODE SENSE/SELECT.
    pub mode_pages: &'static ModePages,
    /// The VPD pages it offers, in page code order (the page builders are in `spc::vpd`).
    pub vpd_pages: &'static [u8],
    /// The unit's own condition for REQUEST SENSE when nothing is pending (SPC-4 6.39).
    pub state_sense: fn(&LogicalUnit) -> Option<Sense>,
    /// The deferred error (SPC-4 4.5.5) pending for a nexus (by id), taken: an immediate command
    /// of that nexus failed after its GOOD. The next command of the nexus (but INQUIRY, REPORT
    /// LUNS and REQUEST SENSE, which returns it as its data) ends with it, unprocessed.
    pub deferred_error: fn(&LogicalUnit, u64) -> Option<Sense>,
    /// A wait for an immediate command that still runs on the unit (None: nothing runs), which
    /// the commands that take a deferred error (and REQUEST SENSE) await first: its deferred
    /// error is known only once it ends. Awaited, so the waiting command holds no thread.
    pub settle: fn(&LogicalUnit) -> Option<Settle>,
    /// Refuse a command (by its row) the unit cannot take in its present state (before
    /// reservation checks, as the sanitize rules require).
    pub admit: fn(&LogicalUnit, &OpcodeEntry) -> Result<(), Sense>,
}

/// A wait for a unit's immediate command to end (`DeviceOps::settle`).
pub(crate) type Settle = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a handler that waits for the backing store returns.
pub(crate) type IoFuture<'r> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'r>>;

/// A row's handler, which decodes the typed fields it takes from `Request::cdb` (the row's
/// decoder accepted that CDB already, so this cannot fail differently). Commands that answer from
/// the unit's state run as plain functions; only those that wait for the backing store pay for a
/// boxed future.
#[derive(Clone, Copy)]
pub(crate) enum Run {
    Now(fn(&mut Request<'_>) -> Result<(), Failure>),
    Io(for<'r> fn(&'r mut Request<'_>) -> IoFuture<'r>),
}

/// A command's decoder and handler, made from one typed fields struct (`cdb::Cdb`) so that they
/// cannot disagree: built by `now!` or `io!` in the command's handler file, named by its rows.
#[derive(Clone, Copy)]
pub(crate) struct Handler {
    /// Check the fields' values and say what the shared path needs (`Decoded`).
    pub decode: fn(&[u8]) -> Result<Decoded, Sense>,
    pub run: Run,
}

/// A handler that answers at once: `now!(Fields, |req, Fields { a, b }| handler(req.lu, a, b))`.
/// The pattern binds the decoded fields; the body returns `Result<(), E>` with `E: Into<Failure>`.
macro_rules! now {
    ($ty:ty, |$req:pat_param, $pat:pat_param| $body:expr) => {
        $crate::opcodes::Handler {
            decode: |cdb| <$ty as $crate::cdb::Cdb>::decode(cdb).map(|c| $crate::cdb::Cdb::decoded(&c)),
            run: $crate::opcodes::Run::Now(|req| {
                let $pat: $ty = <$ty as $crate::cdb::Cdb>::decode(req.cdb)?;
                let $req = req;
                Ok($body?)
            }),
        }
    };
}

/// A handler that waits for the backing store: `io!(Fields, |req, Fields { a }| handler(req.lu, a))`,
/// the body being a future of `Result<(), E>`.
macro_rules! io {
    ($ty:ty, |$req:pat_param, $pat:pat_param| $body:expr) => {
        $crate::opcodes::Handler {
            decode: |cdb| <$ty as $crate::cdb::Cdb>::decode(cdb).map(|c| $crate::cdb::Cdb::decoded(&c)),
            run: $crate::opcodes::Run::Io(|req| {
                Box::pin(async move {
                    let $pat: $ty = <$ty as $crate::cdb::Cdb>::decode(req.cdb)?;
                    let $req = req;
                    // `?` converts a handler's own error type; one that fails with `Failure`
                    // already needs no conversion.
                    #[allow(clippy::needless_question_mark)]
                    let result = Ok($body.await?);
                    result
                })
            }),
        }
    };
}

/// One table row: `op!(name, service action, flags, handler, [usage data])`, the handler (a
/// `Handler`) bringing its decoder.
macro_rules! op {
    ($name:literal, $sa:expr, $flags:expr, $handler:expr, [$($u:expr),+ $(,)?]) => {
        $crate::opcodes::OpcodeEntry {
            opcode: [$($u),+][0],
            service_action: $sa,
            name: $name,
            usage: &[$($u),+],
            flags: $flags,
            decode: $handler.decode,
            run: $handler.run,
        }
    };
}

pub(crate) use {io, now, op};

/// Usage data byte with every bit used.
pub(crate) const FF: u8 = 0xff;

#[derive(Clone, Copy)]
pub(crate) struct OpcodeEntry {
    pub opcode: u8,
    /// Service action in CDB byte 1, bits 4..0, for opcodes that carry one.
    pub service_action: Option<u8>,
    pub name: &'static str,
    /// CDB usage data; its length is the CDB length. Byte 0 is the opcode; for service-action
    /// commands the low five bits of byte 1 hold the service action itself.
    pub usage: &'static [u8],
    pub flags: u16,
    pub decode: fn(&[u8]) -> Result<Decoded, Sense>,
    pub run: Run,
}

impl OpcodeEntry {
    /// Whether a unit of this provisioning and access offers the command.
    pub fn offered(&self, offer: Offer) -> bool {
        (offer.thin || self.flags & THIN_ONLY == 0) && (offer.alua || self.flags & ALUA_ONLY == 0)
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// Check the CDB against the usage data, then decode it.
    pub fn decode(&self, cdb: &[u8]) -> Result<Decoded, Sense> {
        let len = self.usage.len();
        if cdb.len() < len {
            // A CDB shorter than its operation code's length: the field that should be there is missing.
            return Err(Sense::invalid_cdb_field(cdb.len() as u16, None));
        }
        let cdb = &cdb[..len];
        // Every command pays this check, so it is a plain indexed loop over equal-length slices
        // (the iterator chain it replaced cost ~500 instructions per 16-byte CDB).
        let usage = &self.usage[..len];
        let sa_bits = if self.service_action.is_some() { 0x1f } else { 0 };
        let lun_bits = if self.has(SCSI2_LUN) { 0xe0 } else { 0 };
        for i in 1..len.saturating_sub(1) {
            let allowed = if i == 1 { usage[i] | sa_bits | lun_bits } else { usage[i] };
            let stray = cdb[i] & !allowed;
            if stray != 0 {
                return Err(Sense::invalid_cdb_field(i as u16, Some(7 - stray.leading_zeros() as u8)));
            }
        }
        // SAM-5 5.2: CONTROL byte. NACA is not supported (NormACA is 0 in INQUIRY); the vendor-specific
        // bits are ignored.
        if cdb[len - 1] & 0x04 != 0 {
            return Err(Sense::invalid_cdb_field((len - 1) as u16, Some(2)));
        }
        (self.decode)(cdb)
    }
}

pub(crate) enum Lookup {
    Found(&'static OpcodeEntry),
    UnknownOpcode,
    UnknownServiceAction,
}

/// A device type's commands, ordered by opcode then service action (REPORT SUPPORTED OPERATION
/// CODES lists them this way), with the index of the first row of each opcode.
pub(crate) struct OpcodeTable {
    rows: &'static [OpcodeEntry],
    /// Index of the first row for each opcode (`NONE` when unsupported), so that finding a command
    /// costs one array access rather than a scan of the table.
    first: [u8; 256],
}

const NONE: u8 = u8::MAX;

impl OpcodeTable {
    /// Built at compile time; a table too long for the index does not compile.
    pub const fn new(rows: &'static [OpcodeEntry]) -> Self {
        assert!(rows.len() < NONE as usize);
        let mut first = [NONE; 256];
        let mut i = rows.len();
        while i > 0 {
            i -= 1;
            first[rows[i].opcode as usize] = i as u8;
        }
        OpcodeTable { rows, first }
    }

    pub fn rows(&self) -> &'static [OpcodeEntry] {
        self.rows
    }

    /// Whether any row of this opcode carries a service action.
    pub fn has_service_actions(&self, opcode: u8) -> bool {
        self.rows.iter().any(|e| e.opcode == opcode && e.service_action.is_some())
    }

    /// Find the row for a CDB on a unit offering `offer`.
    pub fn lookup(&self, cdb: &[u8], offer: Offer) -> Lookup {
        let Some(&opcode) = cdb.first() else { return Lookup::UnknownOpcode };
        let first = self.first[usize::from(opcode)];
        if first == NONE {
            return Lookup::UnknownOpcode;
        }
        let mut any = false;
        for entry in self.rows[usize::from(first)..].iter().take_while(|e| e.opcode == opcode) {
            if !entry.offered(offer) {
                continue;
            }
            any = true;
            match (entry.service_action, cdb.get(1)) {
                (None, _) => return Lookup::Found(entry),
                // Too short to carry a service action: let the length check report it.
                (Some(_), None) => return Lookup::Found(entry),
                (Some(sa), Some(b1)) if b1 & 0x1f == sa => return Lookup::Found(entry),
                _ => {}
            }
        }
        if any {
            Lookup::UnknownServiceAction
        } else {
            Lookup::UnknownOpcode
        }
    }
}

#[cfg(test)]
#[path = "opcodes_tests.rs"]
mod tests;
