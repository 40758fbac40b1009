//! RESERVE(6/10) and RELEASE(6/10) (SPC-2 7.21, 7.24): a simple whole-unit reservation held by one
//! I_T nexus. Other nexuses get RESERVATION CONFLICT for commands not allowed under a reservation
//! (the opcode table's RESERVATION_OK flag). Cleared by RELEASE from the holder, by the holder's
//! nexus going away, and by logical unit or target reset.
//!
//! With persistent reservations (SPC-4 5.12.3): while any I_T nexus is registered, RESERVE and
//! RELEASE from every nexus end in RESERVATION CONFLICT, so the two schemes never mix. (The other
//! direction, PERSISTENT RESERVE from a nexus other than the RESERVE holder, conflicts through the
//! opcode table like any command without RESERVATION_OK.)

use crate::cdb::NoFields;
use crate::failure::Failure;
use crate::lun::LogicalUnit;
use crate::opcodes::{now, Handler};

pub(crate) fn reserve(lu: &LogicalUnit, nexus_id: u64) -> Result<(), Failure> {
    if lu.persistent_reservations().has_registrations() {
        return Err(Failure::ReservationConflict);
    }
    if lu.try_reserve(nexus_id) {
        Ok(())
    } else {
        Err(Failure::ReservationConflict)
    }
}

/// Releasing a reservation one does not hold is not an error (SPC-2 7.24).
pub(crate) fn release(lu: &LogicalUnit, nexus_id: u64) -> Result<(), Failure> {
    if lu.persistent_reservations().has_registrations() {
        return Err(Failure::ReservationConflict);
    }
    lu.release_reservation(nexus_id);
    Ok(())
}

pub(crate) const RESERVE: Handler = now!(NoFields, |req, NoFields| reserve(req.lu, req.ctx.nexus.id));
pub(crate) const RELEASE: Handler = now!(NoFields, |req, NoFields| release(req.lu, req.ctx.nexus.id));

#[cfg(test)]
mod tests {
    use crate::test_util::*;
    use crate::ScsiStatus;

    #[test]
    fn reservation_conflicts_for_others_only() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        assert_good(&t.run(&[0x16, 0, 0, 0, 0, 0]).0);
        let (r, _) = t.run_on(&other, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[]);
        assert_eq!(r.status, ScsiStatus::ReservationConflict);
        assert_eq!(r.sense, None);
        assert_good(&t.run_on(&other, &[0x12, 0, 0, 0, 36, 0], &[]).0);
        assert_eq!(t.run_on(&other, &[0x56, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[]).0.status, ScsiStatus::ReservationConflict);
        // RELEASE by a non-holder succeeds and changes nothing.
        assert_good(&t.run_on(&other, &[0x17, 0, 0, 0, 0, 0], &[]).0);
        assert_eq!(t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0.status, ScsiStatus::ReservationConflict);
        assert_good(&t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]).0);
        assert_good(&t.run(&[0x17, 0, 0, 0, 0, 0]).0);
        assert_good(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0);
    }

    #[test]
    fn lun_reset_releases() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        assert_good(&t.run(&[0x16, 0, 0, 0, 0, 0]).0);
        t.target.lun_reset(1).unwrap();
        t.clear_ua(&other);
        assert_good(&t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]).0);
    }
}
