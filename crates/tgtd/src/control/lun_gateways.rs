//! A LUN on an RBD image served by several gateways (`--bsopts gateway=`) joins the others when it
//! is created or opened late, and its sense format is the unit's, not one gateway's; without the
//! rbd feature there is nothing to join or share.

use rtgt_iscsi::IscsiTarget;
use rtgt_mgmt::MgmtError;
use rtgt_scsi::LogicalUnit;
use std::sync::Arc;

/// A multi-gateway RBD unit joins the other gateways before it serves (see
/// `rbd_gateway::attach`): reservations kept in the cluster (its APTPL file is not used), resets
/// and access state changes reaching every nexus, the forwarding listener. `iscsi` is the target
/// whose sessions a TARGET COLD RESET through another gateway closes (a vhost target has none).
#[cfg(feature = "rbd")]
pub(super) fn join_gateways(
    daemon: &crate::Daemon,
    iscsi: Option<&Arc<IscsiTarget>>,
    scsi: &Arc<rtgt_scsi::Target>,
    unit: &Arc<LogicalUnit>,
    lun: u64,
) -> Result<(), MgmtError> {
    let Some((rbd, _)) = unit.store().and_then(crate::rbd_gateway::gateway_of) else { return Ok(()) };
    let weak = iscsi.map(Arc::downgrade);
    let close = Box::new(move || {
        if let Some(t) = weak.as_ref().and_then(|w| w.upgrade()) {
            t.close_sessions();
        }
    });
    let me = daemon.weak();
    let save = Arc::new(move || {
        let Some(daemon) = me.upgrade() else { return };
        if let Err(err) = daemon.config.save(&daemon) {
            tracing::error!(%err, "saving the state after a change made through another gateway failed");
        }
    });
    crate::rbd_gateway::attach(rbd, unit, scsi, lun, close, save).map_err(super::lun_ops::invalid)
}

#[cfg(not(feature = "rbd"))]
pub(super) fn join_gateways(
    _daemon: &crate::Daemon,
    _iscsi: Option<&Arc<IscsiTarget>>,
    _scsi: &Arc<rtgt_scsi::Target>,
    _unit: &Arc<LogicalUnit>,
    _lun: u64,
) -> Result<(), MgmtError> {
    Ok(())
}

/// `sense_format=` on a LUN several gateways serve (`shared_by_gateways`): the unit's D_SENSE,
/// changed for every gateway as a MODE SELECT changes it, by the owner (this gateway or the one
/// it asks, see `rbd_gateway::mode_change`). What `show` and the saved configuration report is
/// the unit's current value on every gateway (`LogicalUnit::info`).
pub(super) fn set_shared_sense_format(
    target: &rtgt_scsi::Target,
    lun: u64,
    unit: &LogicalUnit,
    on: bool,
) -> Result<(), MgmtError> {
    #[cfg(feature = "rbd")]
    if let Some((_, status)) = unit.store().and_then(crate::rbd_gateway::gateway_of) {
        let set = crate::rbd_gateway::mode_change::set_d_sense(status, target, lun, on);
        return set.map(|_| ()).map_err(|e| super::lun_ops::invalid(format!("sense_format={}: {e}", u8::from(on))));
    }
    let _ = (target, lun, unit, on);
    Err(super::lun_ops::invalid("sense_format: the LUN is not served by several gateways"))
}

/// Whether the LUN's unit is one several gateways serve.
pub(super) fn shared_by_gateways(unit: &LogicalUnit) -> bool {
    #[cfg(feature = "rbd")]
    if unit.store().and_then(crate::rbd_gateway::gateway_of).is_some() {
        return true;
    }
    let _ = unit;
    false
}
