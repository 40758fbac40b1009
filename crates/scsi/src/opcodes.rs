//! The opcode table: every command this target implements, in one place.
//!
//! Each entry carries the command's CDB usage data (SPC-4 6.35.3: which CDB bits the device server
//! looks at), the device types that accept it, flags for the checks made before it runs, and its
//! decoder. The same table answers REPORT SUPPORTED OPERATION CODES, rejects CDBs with bits set
//! outside the usage data (reserved fields, unsupported protection fields) and dispatches decoding.

use crate::cdb::{self, Command};
use crate::lun::DeviceType;
use crate::sense::Sense;
use crate::spc::persistent_reservation as pr;

/// Accepted by disks (SBC).
pub(crate) const DISK: u16 = 1 << 0;
/// Accepted by the storage array controller at LUN 0.
pub(crate) const CONTROLLER: u16 = 1 << 1;
/// Needs the medium: NOT READY when the unit is offline.
pub(crate) const MEDIUM: u16 = 1 << 2;
/// Neither reports nor clears a pending unit attention (SAM-5 5.14).
pub(crate) const NO_UA: u16 = 1 << 3;
/// Allowed while another I_T nexus holds a RESERVE(6/10) reservation (SPC-2 5.5.1, table 10).
pub(crate) const RESERVATION_OK: u16 = 1 << 4;
/// Offered only on thin-provisioned units.
pub(crate) const THIN_ONLY: u16 = 1 << 5;

const BOTH: u16 = DISK | CONTROLLER;

pub(crate) struct OpcodeEntry {
    pub opcode: u8,
    /// Service action in CDB byte 1, bits 4..0, for opcodes that carry one.
    pub service_action: Option<u8>,
    pub name: &'static str,
    /// CDB usage data; its length is the CDB length. Byte 0 is the opcode; for service-action
    /// commands the low five bits of byte 1 hold the service action itself.
    pub usage: &'static [u8],
    pub flags: u16,
    pub decode: fn(&[u8]) -> Result<Command, Sense>,
}

macro_rules! op {
    ($name:literal, $sa:expr, $flags:expr, $decode:path, [$($u:expr),+ $(,)?]) => {
        OpcodeEntry {
            opcode: [$($u),+][0],
            service_action: $sa,
            name: $name,
            usage: &[$($u),+],
            flags: $flags,
            decode: $decode,
        }
    };
}

const FF: u8 = 0xff;

/// Ordered by opcode, then service action (REPORT SUPPORTED OPERATION CODES lists them this way).
pub(crate) static OPCODES: &[OpcodeEntry] = &[
    op!("TEST UNIT READY", None, BOTH | MEDIUM, cdb::test_unit_ready, [0x00, 0, 0, 0, 0, 0]),
    op!("REQUEST SENSE", None, BOTH | NO_UA | RESERVATION_OK, cdb::request_sense, [0x03, 0x01, 0, 0, FF, 0]),
    op!("READ(6)", None, DISK | MEDIUM, cdb::read6, [0x08, 0x1f, FF, FF, FF, 0]),
    op!("WRITE(6)", None, DISK | MEDIUM, cdb::write6, [0x0a, 0x1f, FF, FF, FF, 0]),
    op!("INQUIRY", None, BOTH | NO_UA | RESERVATION_OK, cdb::inquiry, [0x12, 0x01, FF, FF, FF, 0]),
    op!("MODE SELECT(6)", None, BOTH, cdb::mode_select6, [0x15, 0x11, 0, 0, FF, 0]),
    op!("RESERVE(6)", None, DISK, cdb::reserve, [0x16, 0, 0, 0, 0, 0]),
    op!("RELEASE(6)", None, DISK | RESERVATION_OK, cdb::release, [0x17, 0, 0, 0, 0, 0]),
    op!("MODE SENSE(6)", None, BOTH, cdb::mode_sense6, [0x1a, 0x08, FF, FF, FF, 0]),
    op!("START STOP UNIT", None, DISK, cdb::start_stop_unit, [0x1b, 0x01, 0, 0x0f, 0xf7, 0]),
    op!("PREVENT ALLOW MEDIUM REMOVAL", None, DISK, cdb::prevent_allow, [0x1e, 0, 0, 0, 0x03, 0]),
    op!("READ CAPACITY(10)", None, DISK | MEDIUM, cdb::read_capacity10, [0x25, 0, FF, FF, FF, FF, 0, 0, 0x01, 0]),
    op!("READ(10)", None, DISK | MEDIUM, cdb::read10, [0x28, 0x1a, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("WRITE(10)", None, DISK | MEDIUM, cdb::write10, [0x2a, 0x1a, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!(
        "WRITE AND VERIFY(10)",
        None,
        DISK | MEDIUM,
        cdb::write_verify10,
        [0x2e, 0x16, FF, FF, FF, FF, 0x1f, FF, FF, 0]
    ),
    op!("VERIFY(10)", None, DISK | MEDIUM, cdb::verify10, [0x2f, 0x16, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("PRE-FETCH(10)", None, DISK | MEDIUM, cdb::prefetch10, [0x34, 0x02, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("SYNCHRONIZE CACHE(10)", None, DISK | MEDIUM, cdb::sync_cache10, [0x35, 0x06, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("READ DEFECT DATA(10)", None, DISK | MEDIUM, cdb::read_defect_data10, [0x37, 0, 0x1f, 0, 0, 0, 0, FF, FF, 0]),
    op!("WRITE SAME(10)", None, DISK | MEDIUM, cdb::write_same10, [0x41, 0x08, FF, FF, FF, FF, 0x1f, FF, FF, 0]),
    op!("UNMAP", None, DISK | MEDIUM | THIN_ONLY, cdb::unmap, [0x42, 0, 0, 0, 0, 0, 0x1f, FF, FF, 0]),
    op!("SANITIZE OVERWRITE", Some(0x01), DISK | MEDIUM, cdb::sanitize, [0x48, 0xa1, 0, 0, 0, 0, 0, FF, FF, 0]),
    op!(
        "SANITIZE BLOCK ERASE",
        Some(0x02),
        DISK | MEDIUM | THIN_ONLY,
        cdb::sanitize,
        [0x48, 0xa2, 0, 0, 0, 0, 0, FF, FF, 0]
    ),
    op!(
        "SANITIZE CRYPTOGRAPHIC ERASE",
        Some(0x03),
        DISK | MEDIUM | THIN_ONLY,
        cdb::sanitize,
        [0x48, 0xa3, 0, 0, 0, 0, 0, FF, FF, 0]
    ),
    op!("SANITIZE EXIT FAILURE MODE", Some(0x1f), DISK | MEDIUM, cdb::sanitize, [0x48, 0xbf, 0, 0, 0, 0, 0, FF, FF, 0]),
    op!("MODE SELECT(10)", None, BOTH, cdb::mode_select10, [0x55, 0x11, 0, 0, 0, 0, 0, FF, FF, 0]),
    op!("RESERVE(10)", None, DISK, cdb::reserve, [0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    op!("RELEASE(10)", None, DISK | RESERVATION_OK, cdb::release, [0x57, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    op!("MODE SENSE(10)", None, BOTH, cdb::mode_sense10, [0x5a, 0x18, FF, FF, 0, 0, 0, FF, FF, 0]),
    op!("PERSISTENT RESERVE IN READ KEYS", Some(0x00), DISK, pr::decode_in, [0x5e, 0x00, 0, 0, 0, 0, 0, FF, FF, 0]),
    op!(
        "PERSISTENT RESERVE IN READ RESERVATION",
        Some(0x01),
        DISK,
        pr::decode_in,
        [0x5e, 0x01, 0, 0, 0, 0, 0, FF, FF, 0]
    ),
    op!(
        "PERSISTENT RESERVE IN REPORT CAPABILITIES",
        Some(0x02),
        DISK,
        pr::decode_in,
        [0x5e, 0x02, 0, 0, 0, 0, 0, FF, FF, 0]
    ),
    op!(
        "PERSISTENT RESERVE IN READ FULL STATUS",
        Some(0x03),
        DISK,
        pr::decode_in,
        [0x5e, 0x03, 0, 0, 0, 0, 0, FF, FF, 0]
    ),
    op!("PERSISTENT RESERVE OUT REGISTER", Some(0x00), DISK, pr::decode_out, [0x5f, 0x00, FF, 0, 0, FF, FF, FF, FF, 0]),
    op!("PERSISTENT RESERVE OUT RESERVE", Some(0x01), DISK, pr::decode_out, [0x5f, 0x01, FF, 0, 0, FF, FF, FF, FF, 0]),
    op!("PERSISTENT RESERVE OUT RELEASE", Some(0x02), DISK, pr::decode_out, [0x5f, 0x02, FF, 0, 0, FF, FF, FF, FF, 0]),
    op!("PERSISTENT RESERVE OUT CLEAR", Some(0x03), DISK, pr::decode_out, [0x5f, 0x03, FF, 0, 0, FF, FF, FF, FF, 0]),
    op!("PERSISTENT RESERVE OUT PREEMPT", Some(0x04), DISK, pr::decode_out, [0x5f, 0x04, FF, 0, 0, FF, FF, FF, FF, 0]),
    op!(
        "PERSISTENT RESERVE OUT PREEMPT AND ABORT",
        Some(0x05),
        DISK,
        pr::decode_out,
        [0x5f, 0x05, FF, 0, 0, FF, FF, FF, FF, 0]
    ),
    op!(
        "PERSISTENT RESERVE OUT REGISTER AND IGNORE EXISTING KEY",
        Some(0x06),
        DISK,
        pr::decode_out,
        [0x5f, 0x06, FF, 0, 0, FF, FF, FF, FF, 0]
    ),
    op!(
        "PERSISTENT RESERVE OUT REGISTER AND MOVE",
        Some(0x07),
        DISK,
        pr::decode_out,
        [0x5f, 0x07, FF, 0, 0, FF, FF, FF, FF, 0]
    ),
    op!(
        "EXTENDED COPY(LID1)",
        Some(0x00),
        DISK,
        cdb::extended_copy,
        [0x83, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "RECEIVE COPY STATUS(LID1)",
        Some(0x00),
        DISK,
        cdb::receive_copy_results,
        [0x84, 0x00, FF, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "RECEIVE COPY OPERATING PARAMETERS",
        Some(0x03),
        DISK,
        cdb::receive_copy_results,
        [0x84, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "RECEIVE COPY FAILURE DETAILS(LID1)",
        Some(0x04),
        DISK,
        cdb::receive_copy_results,
        [0x84, 0x04, FF, 0, 0, 0, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "READ(16)",
        None,
        DISK | MEDIUM,
        cdb::read16,
        [0x88, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "COMPARE AND WRITE",
        None,
        DISK | MEDIUM,
        cdb::compare_and_write,
        [0x89, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0, 0, FF, 0x1f, 0]
    ),
    op!(
        "WRITE(16)",
        None,
        DISK | MEDIUM,
        cdb::write16,
        [0x8a, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "ORWRITE(16)",
        None,
        DISK | MEDIUM,
        cdb::orwrite16,
        [0x8b, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "WRITE AND VERIFY(16)",
        None,
        DISK | MEDIUM,
        cdb::write_verify16,
        [0x8e, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "VERIFY(16)",
        None,
        DISK | MEDIUM,
        cdb::verify16,
        [0x8f, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "PRE-FETCH(16)",
        None,
        DISK | MEDIUM,
        cdb::prefetch16,
        [0x90, 0x02, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "SYNCHRONIZE CACHE(16)",
        None,
        DISK | MEDIUM,
        cdb::sync_cache16,
        [0x91, 0x06, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "WRITE SAME(16)",
        None,
        DISK | MEDIUM,
        cdb::write_same16,
        [0x93, 0x09, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "WRITE ATOMIC(16)",
        None,
        DISK | MEDIUM,
        cdb::write_atomic16,
        [0x9c, 0x18, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!(
        "READ CAPACITY(16)",
        Some(0x10),
        DISK | MEDIUM,
        cdb::read_capacity16,
        [0x9e, 0x10, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0x01, 0]
    ),
    op!(
        "GET LBA STATUS",
        Some(0x12),
        DISK | MEDIUM | THIN_ONLY,
        cdb::get_lba_status,
        [0x9e, 0x12, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "REPORT LUNS",
        None,
        BOTH | NO_UA | RESERVATION_OK,
        cdb::report_luns,
        [0xa0, 0, FF, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "REPORT SUPPORTED OPERATION CODES",
        Some(0x0c),
        BOTH,
        cdb::report_supported_opcodes,
        [0xa3, 0x0c, 0x87, FF, FF, FF, FF, FF, FF, FF, 0, 0]
    ),
    op!(
        "REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS",
        Some(0x0d),
        BOTH,
        cdb::report_supported_tmf,
        [0xa3, 0x0d, 0x80, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
    op!("READ(12)", None, DISK | MEDIUM, cdb::read12, [0xa8, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!("WRITE(12)", None, DISK | MEDIUM, cdb::write12, [0xaa, 0x1a, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!(
        "WRITE AND VERIFY(12)",
        None,
        DISK | MEDIUM,
        cdb::write_verify12,
        [0xae, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]
    ),
    op!("VERIFY(12)", None, DISK | MEDIUM, cdb::verify12, [0xaf, 0x16, FF, FF, FF, FF, FF, FF, FF, FF, 0x1f, 0]),
    op!(
        "READ DEFECT DATA(12)",
        None,
        DISK | MEDIUM,
        cdb::read_defect_data12,
        [0xb7, 0x1f, 0, 0, 0, 0, FF, FF, FF, FF, 0, 0]
    ),
];

impl OpcodeEntry {
    /// Whether a unit of this type and provisioning offers the command.
    pub fn offered(&self, device: DeviceType, thin: bool) -> bool {
        let type_flag = match device {
            DeviceType::Disk => DISK,
            DeviceType::Controller => CONTROLLER,
        };
        self.flags & type_flag != 0 && (thin || self.flags & THIN_ONLY == 0)
    }

    pub fn has(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// Check the CDB against the usage data, then decode it.
    pub fn decode(&self, cdb: &[u8]) -> Result<Command, Sense> {
        let len = self.usage.len();
        if cdb.len() < len {
            // A CDB shorter than its operation code's length: the field that should be there is missing.
            return Err(Sense::invalid_cdb_field(cdb.len() as u16, None));
        }
        let cdb = &cdb[..len];
        for (i, (&byte, &usage)) in cdb.iter().zip(self.usage).enumerate().take(len - 1).skip(1) {
            let mut allowed = usage;
            if i == 1 && self.service_action.is_some() {
                allowed |= 0x1f;
            }
            let stray = byte & !allowed;
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

/// Index of the first table entry for each opcode (`NONE` when unsupported), so that finding a
/// command costs one array access rather than a scan of the table.
static FIRST_ENTRY: [u8; 256] = first_entries();
const NONE: u8 = u8::MAX;

const fn first_entries() -> [u8; 256] {
    let mut index = [NONE; 256];
    let mut i = OPCODES.len();
    while i > 0 {
        i -= 1;
        index[OPCODES[i].opcode as usize] = i as u8;
    }
    index
}

/// Find the entry for a CDB on a unit of the given type.
pub(crate) fn lookup(cdb: &[u8], device: DeviceType, thin: bool) -> Lookup {
    let Some(&opcode) = cdb.first() else { return Lookup::UnknownOpcode };
    let first = FIRST_ENTRY[usize::from(opcode)];
    if first == NONE {
        return Lookup::UnknownOpcode;
    }
    let mut any = false;
    for entry in OPCODES[usize::from(first)..].iter().take_while(|e| e.opcode == opcode) {
        if !entry.offered(device, thin) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_found_through_the_index() {
        assert!(OPCODES.len() < usize::from(NONE));
        for e in OPCODES {
            let mut cdb = e.usage.to_vec();
            cdb[1] = e.service_action.unwrap_or(0);
            let dev = if e.has(DISK) { DeviceType::Disk } else { DeviceType::Controller };
            match lookup(&cdb, dev, true) {
                Lookup::Found(found) => assert!(std::ptr::eq(found, e), "{}", e.name),
                _ => panic!("{} not found", e.name),
            }
        }
    }

    #[test]
    fn table_is_sorted_and_well_formed() {
        for pair in OPCODES.windows(2) {
            let a = (pair[0].opcode, pair[0].service_action);
            let b = (pair[1].opcode, pair[1].service_action);
            assert!(a < b, "{} before {}", pair[0].name, pair[1].name);
        }
        for e in OPCODES {
            assert_eq!(e.usage[0], e.opcode, "{}", e.name);
            assert!(matches!(e.usage.len(), 6 | 10 | 12 | 16), "{}", e.name);
            if let Some(sa) = e.service_action {
                assert_eq!(e.usage[1] & 0x1f, sa, "{}", e.name);
            }
        }
    }

    #[test]
    fn reserved_bit_is_pointed_at() {
        let Lookup::Found(e) = lookup(&[0x28], DeviceType::Disk, false) else { panic!() };
        // RDPROTECT = 1 (bit 5 of byte 1).
        let err = e.decode(&[0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap_err();
        assert_eq!(err, Sense::invalid_cdb_field(1, Some(5)));
        // Reserved byte 6 bits 7..5 of READ(10).
        let err = e.decode(&[0x28, 0, 0, 0, 0, 0, 0x80, 0, 1, 0]).unwrap_err();
        assert_eq!(err, Sense::invalid_cdb_field(6, Some(7)));
        // NACA.
        assert!(e.decode(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x04]).is_err());
        // Vendor-specific control bits are ignored.
        assert!(e.decode(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0]).is_ok());
    }

    #[test]
    fn short_cdb_is_an_error_not_a_panic() {
        for e in OPCODES {
            for n in 1..e.usage.len() {
                assert!(e.decode(&e.usage[..n]).is_err(), "{} len {n}", e.name);
            }
        }
    }

    #[test]
    fn device_and_provisioning_filter() {
        assert!(matches!(lookup(&[0x28], DeviceType::Controller, false), Lookup::UnknownOpcode));
        assert!(matches!(lookup(&[0x42], DeviceType::Disk, false), Lookup::UnknownOpcode));
        assert!(matches!(lookup(&[0x42], DeviceType::Disk, true), Lookup::Found(_)));
        assert!(matches!(lookup(&[0x9e, 0x10], DeviceType::Disk, false), Lookup::Found(_)));
        assert!(matches!(lookup(&[0x9e, 0x11], DeviceType::Disk, false), Lookup::UnknownServiceAction));
        assert!(matches!(lookup(&[0x9e, 0x12], DeviceType::Disk, false), Lookup::UnknownServiceAction));
        assert!(matches!(lookup(&[], DeviceType::Disk, false), Lookup::UnknownOpcode));
    }
}
