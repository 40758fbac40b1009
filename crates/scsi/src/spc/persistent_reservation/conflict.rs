//! Which commands a nexus that does not hold the persistent reservation may run (SPC-4 5.12.1
//! table "SPC commands that are allowed in the presence of various reservations", SBC-3 4.17
//! table for block commands).
//!
//! Commands are classified by operation code (and service action) here rather than by a flag in
//! the opcode table, so that a command added to the table later is covered by the safe default:
//! it conflicts like a write.

use super::state::PrSnapshot;

/// How a command is treated under a persistent reservation held by someone else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Allowed under every reservation type (INQUIRY, REPORT LUNS, TEST UNIT READY, ...).
    Always,
    /// Reads the medium: allowed under the write exclusive family, for registrants under
    /// registrants-only and all-registrants exclusive access.
    Read,
    /// Writes the medium or the unit's state: allowed only for registrants of the
    /// registrants-only and all-registrants types.
    Write,
}

/// The access class of a CDB. `cdb` is non-empty (the opcode table found it).
pub(crate) fn classify(cdb: &[u8]) -> Access {
    let service_action = cdb.get(1).map_or(0, |b| b & 0x1f);
    match cdb[0] {
        // TEST UNIT READY, REQUEST SENSE, INQUIRY, READ CAPACITY(10), LOG SENSE, PERSISTENT
        // RESERVE IN/OUT (their own rules apply), REPORT LUNS.
        0x00 | 0x03 | 0x12 | 0x25 | 0x4d | 0x5e | 0x5f | 0xa0 => Access::Always,
        // RESERVE/RELEASE(6/10): spc::reserve answers them (SPC-4 5.12.3 exceptions).
        0x16 | 0x17 | 0x56 | 0x57 => Access::Always,
        // READ CAPACITY(16); GET LBA STATUS reads the medium's mapping.
        0x9e if service_action == 0x10 => Access::Always,
        0x9e if service_action == 0x12 => Access::Read,
        // REPORT TARGET PORT GROUPS.
        0xa3 if service_action == 0x0a => Access::Always,
        // Commands that only report the unit's state pass Write Exclusive like reads (what
        // REPORT CAPABILITIES' ALLOW COMMANDS 010b promises): REPORT SUPPORTED OPERATION CODES,
        // REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS, MODE SENSE(6/10), READ BUFFER, RECEIVE
        // DIAGNOSTIC RESULTS, READ ATTRIBUTE.
        0xa3 if matches!(service_action, 0x0c | 0x0d) => Access::Read,
        0x1a | 0x5a | 0x3c | 0x1c | 0x8c => Access::Read,
        // READ MEDIA SERIAL NUMBER.
        0xab if service_action == 0x01 => Access::Always,
        // PREVENT ALLOW MEDIUM REMOVAL with PREVENT 00b only allows (SBC-3 table 13).
        0x1e if cdb.get(4).is_some_and(|b| b & 0x03 == 0) => Access::Always,
        // READ(6/10/12/16), VERIFY(10/12/16), PRE-FETCH(10/16), READ DEFECT DATA(10/12).
        0x08 | 0x28 | 0xa8 | 0x88 | 0x2f | 0xaf | 0x8f | 0x34 | 0x90 | 0x37 | 0xb7 => Access::Read,
        _ => Access::Write,
    }
}

/// Whether `port` may run a command of class `access` under the reservation in `state`.
pub(crate) fn allowed(state: &PrSnapshot, port: &str, access: Access) -> bool {
    let Some(reservation) = &state.reservation else { return true };
    if access == Access::Always || state.is_holder(port) {
        return true;
    }
    let t = reservation.pr_type;
    if (t.registrants_only() || t.all_registrants()) && state.is_registered(port) {
        return true;
    }
    access == Access::Read && !t.exclusive_access()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spc::persistent_reservation::state::{PrRegistration, PrReservation, PrType};

    const HOLDER: &str = "iqn.a,i,0x01";
    const REGISTERED: &str = "iqn.b,i,0x02";
    const STRANGER: &str = "iqn.c,i,0x03";

    fn reserved(pr_type: PrType) -> PrSnapshot {
        let reg = |p: &str, key| PrRegistration { initiator_port: p.into(), key, all_tg_pt: false };
        PrSnapshot {
            generation: 2,
            aptpl: false,
            registrations: vec![reg(HOLDER, 1), reg(REGISTERED, 2)],
            reservation: Some(PrReservation { holder: HOLDER.into(), pr_type }),
        }
    }

    /// SPC-4 / SBC-3 tables: (type, registered read, registered write, stranger read, stranger write).
    #[test]
    fn access_matrix() {
        use PrType::*;
        let rows = [
            (WriteExclusive, true, false, true, false),
            (ExclusiveAccess, false, false, false, false),
            (WriteExclusiveRegistrantsOnly, true, true, true, false),
            (ExclusiveAccessRegistrantsOnly, true, true, false, false),
            (WriteExclusiveAllRegistrants, true, true, true, false),
            (ExclusiveAccessAllRegistrants, true, true, false, false),
        ];
        for (t, rr, rw, sr, sw) in rows {
            let s = reserved(t);
            assert!(allowed(&s, HOLDER, Access::Read) && allowed(&s, HOLDER, Access::Write), "{t:?}");
            assert_eq!(allowed(&s, REGISTERED, Access::Read), rr, "{t:?} registered read");
            assert_eq!(allowed(&s, REGISTERED, Access::Write), rw, "{t:?} registered write");
            assert_eq!(allowed(&s, STRANGER, Access::Read), sr, "{t:?} stranger read");
            assert_eq!(allowed(&s, STRANGER, Access::Write), sw, "{t:?} stranger write");
            assert!(allowed(&s, STRANGER, Access::Always));
        }
    }

    #[test]
    fn no_reservation_allows_everything() {
        let s = PrSnapshot::default();
        assert!(allowed(&s, STRANGER, Access::Write));
    }

    #[test]
    fn classification() {
        assert_eq!(classify(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Access::Read);
        assert_eq!(classify(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0]), Access::Write);
        assert_eq!(classify(&[0x00, 0, 0, 0, 0, 0]), Access::Always);
        assert_eq!(classify(&[0x9e, 0x10]), Access::Always);
        assert_eq!(classify(&[0x9e, 0x12]), Access::Read);
        assert_eq!(classify(&[0x1a, 0, 0x3f, 0, 0xff, 0]), Access::Read);
        assert_eq!(classify(&[0x15, 0x10, 0, 0, 0x18, 0]), Access::Write);
        assert_eq!(classify(&[0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]), Access::Read);
        assert_eq!(classify(&[0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]), Access::Always);
        assert_eq!(classify(&[0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]), Access::Write);
        assert_eq!(classify(&[0x1e, 0, 0, 0, 0, 0]), Access::Always);
        assert_eq!(classify(&[0x1e, 0, 0, 0, 1, 0]), Access::Write);
        assert_eq!(classify(&[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Access::Write);
    }
}
