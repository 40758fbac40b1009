//! An RBD LUN served by several gateways (`--bsopts gateway=NAME;tpg=N`): the same identity on
//! every gateway, derived from the image, and the target port groups the SCSI core reports,
//! read from the backing store's view of the image's gateway registry.

pub(crate) mod forward;
pub(crate) mod mode_change;
pub(crate) mod mode_params;
mod peer_event;
pub(crate) mod reservations;
pub(crate) mod reserve;
pub(crate) mod resets;

use rtgt_backstore::rbd::{GatewayStatus, LocalState, MemberState, SharedObject};
use rtgt_backstore::{Backstore, RbdStore};
use rtgt_scsi::{
    AccessState, Asc, ForwardFuture, ForwardRequest, LogicalUnit, LunConfig, PortGroup, PortGroups, Target,
    TransferError, TransferFuture,
};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Writes the daemon's saved configuration again (`--state-dir`), for a change this gateway did
/// not see as a management request.
pub(crate) type SaveConfig = Arc<dyn Fn() + Send + Sync>;

/// How long SET TARGET PORT GROUPS or `alua_owner=` waits for the new owner: a handoff takes a
/// flush and two registry writes; a busy cluster may take seconds.
pub(crate) const OWNERSHIP_MOVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Run `job`, which blocks for the cluster's round trips, off the runtime's workers: on its
/// blocking pool when there is a runtime, else on a thread of its own named `name`.
pub(crate) fn run_blocking(job: Box<dyn FnOnce() + Send>, name: &str) -> std::io::Result<()> {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            drop(runtime.spawn_blocking(job));
            Ok(())
        }
        Err(_) => std::thread::Builder::new().name(name.into()).spawn(job).map(|_| ()),
    }
}

/// What a multi-gateway LUN needs once built, before it serves (LUN `lun` of `target`): its
/// persistent reservations, its RESERVE(6) holder and its changed mode parameters in the cluster,
/// its resets passed to every gateway, and ASYMMETRIC ACCESS STATE CHANGED to every nexus
/// whenever a gateway's access state changes (SPC-4 5.15.2.3), and CAPACITY DATA HAS CHANGED to
/// every nexus when the image was resized by anyone (`rbd resize`, another gateway), noticed
/// within a heartbeat.
/// `close` drops this gateway's connections to the target (a TARGET COLD RESET through another);
/// `save` writes this gateway's saved configuration again (an administrator's change of the
/// unit's sense format made through another gateway).
pub(crate) fn attach(
    store: &RbdStore,
    unit: &Arc<LogicalUnit>,
    target: &Arc<Target>,
    lun: u64,
    close: resets::CloseSessions,
    save: SaveConfig,
) -> Result<(), String> {
    reservations::attach(store, unit, target, lun)?;
    reserve::attach(store, unit, target, lun)?;
    mode_params::attach(store, unit, target, lun, save.clone())?;
    resets::attach(store, unit, target, lun, close)?;
    if let Some(status) = store.gateway() {
        forward::listen(status, status.portal(), unit, target, lun, save)?;
        let weak = Arc::downgrade(target);
        status.on_change(Box::new(move || {
            if let Some(t) = weak.upgrade() {
                t.access_state_changed(lun);
            }
        }));
        let weak = Arc::downgrade(target);
        status.on_beat(Box::new(move || {
            if let Some(t) = weak.upgrade() {
                // The unit is in the target once it serves; before that there is nothing to tell.
                if t.has_lun(lun) {
                    if let Err(e) = t.reload_lun_size(lun) {
                        tracing::warn!(lun, "re-reading the image's size failed: {e}");
                    }
                }
            }
        }));
    }
    Ok(())
}

/// The store's gateway membership, if it is an RBD image with one.
pub(crate) fn gateway_of(store: &Backstore) -> Option<(&RbdStore, &Arc<GatewayStatus>)> {
    match store.engine() {
        Backstore::Rbd(r) => r.gateway().map(|g| (r, g)),
        _ => None,
    }
}

/// Default identity of a multi-gateway LUN: every gateway names the image the same way, so the
/// T10 vendor ID designator, the NAA derived from it and the serial number agree whatever the
/// target or LUN number (explicit `scsi_id=`/`scsi_sn=` parameters still win, applied after).
pub(crate) fn identity(config: &mut LunConfig, store: &RbdStore) {
    config.scsi_id = format!("IET     rbd.{}", store.unit_id());
    config.scsi_sn = format!("rbd.{}", store.unit_id());
}

/// The SCSI core's view of the gateways: one target port group per gateway, numbered by its
/// `tpg=`, whose one port has the same number as its relative target port identifier. The
/// owner's group is active/optimized; the other live gateways' active/non-optimized, since they
/// forward to the owner what only it serves (`forward`).
/// A reset or CLEAR TASK SET through this gateway is announced on the unit's shared reset object
/// (`resets`), set once the unit is attached.
#[derive(Debug)]
pub(crate) struct GatewayPortGroups(pub Arc<GatewayStatus>, Arc<forward::Forwarder>, OnceLock<Arc<SharedObject>>);

impl GatewayPortGroups {
    pub(crate) fn new(status: Arc<GatewayStatus>) -> Self {
        let forwarder = forward::Forwarder::new(status.clone());
        GatewayPortGroups(status, forwarder, OnceLock::new())
    }

    fn set_resets(&self, object: Arc<SharedObject>) {
        let _ = self.2.set(object);
    }

    /// Announce `event` on the reset object, and note this gateway acted on it.
    fn announce(&self, event: resets::Event) {
        if let Some(object) = self.2.get() {
            if let Some(version) = resets::announce(object, event) {
                self.1.acted_on(peer_event::PeerEvent::Reset(version));
            }
        }
    }
}

/// Note that this gateway acted on `event`, when `unit` is a multi-gateway unit (whose forwarder
/// then knows it need not wait for an abort of its own of a command the owner aborted for it).
fn acted_on(unit: &LogicalUnit, event: peer_event::PeerEvent) {
    let groups = unit.port_groups().map(|g| -> &dyn std::any::Any { g.as_ref() });
    if let Some(groups) = groups.and_then(|g| g.downcast_ref::<GatewayPortGroups>()) {
        groups.1.acted_on(event);
    }
}

impl PortGroups for GatewayPortGroups {
    fn relative_port(&self) -> u16 {
        self.0.tpg()
    }

    fn group(&self) -> u16 {
        self.0.tpg()
    }

    fn local_state(&self) -> AccessState {
        match self.0.local_state() {
            LocalState::Active => AccessState::ActiveOptimized,
            LocalState::Standby => AccessState::ActiveNonOptimized,
            LocalState::Unavailable => AccessState::Unavailable,
        }
    }

    fn forward(&self, request: ForwardRequest) -> Option<ForwardFuture> {
        match self.0.local_state() {
            LocalState::Active => None,
            // Unavailable never gets here: the core refused the command by its state.
            LocalState::Standby | LocalState::Unavailable => Some(self.1.forward(request)),
        }
    }

    fn reset_elsewhere(&self, asc: Asc) {
        self.announce(resets::Event::Reset(asc));
    }

    fn clear_task_set_elsewhere(&self) {
        self.announce(resets::Event::TaskSetCleared);
    }

    fn explicit(&self) -> bool {
        true
    }

    fn transfer(&self, group: u16) -> TransferFuture {
        let status = self.0.clone();
        Box::pin(async move {
            let moved = tokio::task::spawn_blocking(move || status.move_ownership(group, OWNERSHIP_MOVE_TIMEOUT)).await;
            match moved {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => {
                    tracing::warn!(group, "SET TARGET PORT GROUPS: {e}");
                    Err(TransferError::Failed)
                }
                Err(_) => Err(TransferError::Failed),
            }
        })
    }

    fn groups(&self) -> Vec<PortGroup> {
        let mut groups: Vec<PortGroup> = self
            .0
            .others()
            .into_iter()
            .map(|m| PortGroup {
                id: m.tpg,
                // A gateway whose lease lapsed cannot be reached for this unit at all.
                state: match m.state {
                    MemberState::Owner => AccessState::ActiveOptimized,
                    MemberState::Standby => AccessState::ActiveNonOptimized,
                    MemberState::Lost => AccessState::Offline,
                },
                relative_ports: vec![m.tpg],
            })
            .collect();
        let me = self.0.tpg();
        groups.push(PortGroup { id: me, state: self.local_state(), relative_ports: vec![me] });
        groups.sort_by_key(|g| g.id);
        groups
    }
}
