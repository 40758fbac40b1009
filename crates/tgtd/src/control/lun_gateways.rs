//! A LUN on an RBD image served by several gateways (`--bsopts gateway=`) joins the others when it
//! is created or opened late; without the rbd feature there is nothing to join.

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
    crate::rbd_gateway::attach(rbd, unit, scsi, lun, close).map_err(super::lun_ops::invalid)
}

#[cfg(not(feature = "rbd"))]
pub(super) fn join_gateways(
    _iscsi: Option<&Arc<IscsiTarget>>,
    _scsi: &Arc<rtgt_scsi::Target>,
    _unit: &Arc<LogicalUnit>,
    _lun: u64,
) -> Result<(), MgmtError> {
    Ok(())
}
