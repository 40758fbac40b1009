//! START STOP UNIT (SBC-3 5.25) and PREVENT ALLOW MEDIUM REMOVAL (SBC-3 5.13): load and eject on
//! removable units, and the per-nexus prevention of removal.

use crate::cdb::Cdb;
use crate::lun::LogicalUnit;
use crate::opcodes::{now, Handler};
use crate::sense::{Asc, Sense};

pub(crate) fn start_stop_unit(lu: &LogicalUnit, power_condition: u8, loej: bool, start: bool) -> Result<(), Sense> {
    // A POWER CONDITION other than START_VALID (0) makes START and LOEJ ignored; we have no power
    // states to enter.
    if power_condition != 0 || !loej || !lu.config().removable {
        return Ok(());
    }
    // Loading and ejecting are both refused while removal is prevented (libiscsi expects
    // MEDIUM REMOVAL PREVENTED for either, as tgt answers).
    if lu.disk()?.removal_prevented() {
        return Err(Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED));
    }
    lu.set_online(start);
    Ok(())
}

pub(crate) fn prevent_allow(lu: &LogicalUnit, nexus_id: u64, prevent: u8) -> Result<(), Sense> {
    match prevent {
        0 => lu.disk()?.set_prevent(nexus_id, false),
        1 => lu.disk()?.set_prevent(nexus_id, true),
        // 10b and 11b are obsolete in SBC-3.
        _ => return Err(Sense::invalid_cdb_field(4, Some(1))),
    }
    Ok(())
}

/// START STOP UNIT's fields (SBC-3 5.25).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StartStop {
    pub power_condition: u8,
    pub loej: bool,
    pub start: bool,
}

impl Cdb for StartStop {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(StartStop { power_condition: c[4] >> 4, loej: c[4] & 0x02 != 0, start: c[4] & 0x01 != 0 })
    }
}

/// PREVENT ALLOW MEDIUM REMOVAL's PREVENT field (SBC-3 5.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PreventAllow {
    pub prevent: u8,
}

impl Cdb for PreventAllow {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(PreventAllow { prevent: c[4] & 0x03 })
    }
}

pub(crate) const START_STOP_UNIT: Handler =
    now!(StartStop, |req, StartStop { power_condition, loej, start }| start_stop_unit(
        req.lu,
        power_condition,
        loej,
        start
    ));
pub(crate) const PREVENT_ALLOW: Handler =
    now!(PreventAllow, |req, PreventAllow { prevent }| prevent_allow(req.lu, req.ctx.nexus.id, prevent));

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    const TUR: [u8; 6] = [0, 0, 0, 0, 0, 0];

    #[test]
    fn eject_and_load_removable() {
        let t = TestLun::with_config(1 << 20, |c| c.removable = true);
        assert_good(&t.run(&[0x1e, 0, 0, 0, 1, 0]).0);
        assert_sense(&t.run(&[0x1b, 0, 0, 0, 0x02, 0]).0, 0x05, 0x53, 0x02);
        assert!(t.lu.info().prevent_removal);
        assert_good(&t.run(&[0x1e, 0, 0, 0, 0, 0]).0);
        assert_good(&t.run(&[0x1b, 0, 0, 0, 0x02, 0]).0);
        assert_sense(&t.run(&TUR).0, 0x02, 0x3a, 0x00);
        assert_good(&t.run(&[0x1e, 0, 0, 0, 1, 0]).0);
        assert_sense(&t.run(&[0x1b, 0, 0, 0, 0x03, 0]).0, 0x05, 0x53, 0x02);
        assert_good(&t.run(&[0x1e, 0, 0, 0, 0, 0]).0);
        assert_sense(&t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]).0, 0x02, 0x3a, 0x00);
        // INQUIRY still works without medium.
        assert_good(&t.run(&[0x12, 0, 0, 0, 36, 0]).0);
        assert_good(&t.run(&[0x1b, 0, 0, 0, 0x03, 0]).0);
        assert_good(&t.run(&TUR).0);
    }

    #[test]
    fn fixed_disk_ignores_loej_and_power_conditions() {
        let t = TestLun::disk(1 << 20);
        assert_good(&t.run(&[0x1b, 0, 0, 0, 0x02, 0]).0);
        assert_good(&t.run(&[0x1b, 0x01, 0, 0, 0x30, 0]).0);
        assert_good(&t.run(&TUR).0);
        assert_sense(&t.run(&[0x1e, 0, 0, 0, 2, 0]).0, 0x05, 0x24, 0x00);
    }
}
