//! The task management functions (SAM-5 7) on a target: they end tasks through each nexus's task
//! set (`task_set`) and reset units and unit attentions through the target. PERSISTENT RESERVE OUT
//! with PREEMPT AND ABORT ends the preempted nexuses' tasks here too.

use crate::alua::AccessState;
use crate::sense::Asc;
use crate::target::{Nexus, ResetKind, Target, TmfError};
use crate::task_set::AbortCause;
use std::sync::Arc;

/// The task management functions (SAM-5 7). Tasks are aborted before the logical unit's state is
/// reset, so none of them runs on into the reset unit.
impl Target {
    /// ABORT TASK (SAM-5 7.2): the nexus's tasks carrying `tag`, on `lun` when the transport names
    /// one. Returns how many were aborted (0: the task had completed or never existed).
    pub fn abort_task(&self, nexus: &Nexus, tag: u64, lun: Option<u64>) -> usize {
        nexus.tasks.abort_task(tag, lun)
    }

    /// ABORT TASK SET (SAM-5 7.3): the nexus's own tasks on `lun`. No ACA support (NormACA 0),
    /// so there is no other state to clear.
    pub fn abort_task_set(&self, nexus: &Nexus, lun: u64) -> Result<usize, TmfError> {
        self.lun(lun).ok_or(TmfError::NoSuchLun)?;
        Ok(nexus.tasks.abort_lun(lun, AbortCause::Aborted))
    }

    /// CLEAR TASK SET (SAM-5 7.4): with TST 000b (one task set for all nexuses) every nexus's
    /// tasks on `lun` go; the other nexuses get COMMANDS CLEARED BY ANOTHER INITIATOR.
    /// A unit with several ports (gateways) has its set cleared on every one of them before this
    /// returns. The port that serves the storage clears last, so the others end the tasks they
    /// had forwarded to it first, without an answer; one it ends first (the clear came through
    /// another port) is not answered either (`PortGroups::forward`).
    pub fn clear_task_set(&self, nexus: &Nexus, lun: u64) -> Result<usize, TmfError> {
        let unit = self.lun(lun).ok_or(TmfError::NoSuchLun)?;
        let groups = unit.port_groups();
        let owner = groups.is_some_and(|g| g.local_state() == AccessState::ActiveOptimized);
        if let Some(groups) = groups.filter(|_| owner) {
            groups.clear_task_set_elsewhere();
        }
        let aborted = self.nexuses().iter().map(|n| n.tasks.abort_lun(lun, AbortCause::Aborted)).sum();
        self.unit_attention_others(nexus, lun, Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR);
        if let Some(groups) = groups.filter(|_| !owner) {
            groups.clear_task_set_elsewhere();
        }
        Ok(aborted)
    }

    /// Another port of the multi-port unit `lun` cleared the unit's task set
    /// (`PortGroups::clear_task_set_elsewhere`): every nexus's tasks on `lun` here go, and every
    /// nexus here is told COMMANDS CLEARED BY ANOTHER INITIATOR (the nexus that asked is on the
    /// other port); nothing is told onwards.
    pub fn task_set_cleared_by_peer(&self, lun: u64) -> Result<usize, TmfError> {
        self.lun(lun).ok_or(TmfError::NoSuchLun)?;
        let aborted = self.nexuses().iter().map(|n| n.tasks.abort_lun(lun, AbortCause::Aborted)).sum();
        self.unit_attention_all(lun, Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR);
        Ok(aborted)
    }

    /// LOGICAL UNIT RESET (SAM-5 7.7): every nexus's tasks on `lun` go, the unit's state is reset
    /// and every nexus gets BUS DEVICE RESET FUNCTION OCCURRED (SAM-5 6.6).
    /// A unit with several ports (gateways) is reset on every one of them before this returns.
    pub fn lun_reset(&self, lun: u64) -> Result<usize, TmfError> {
        let aborted = self.reset_by_peer(lun, Asc::BUS_DEVICE_RESET_FUNCTION_OCCURRED)?;
        if let Some(groups) = self.lun(lun).as_ref().and_then(|u| u.port_groups()) {
            groups.reset_elsewhere(Asc::BUS_DEVICE_RESET_FUNCTION_OCCURRED);
        }
        Ok(aborted)
    }

    /// Another port of the multi-port unit `lun` was reset (`PortGroups::reset_elsewhere`): the
    /// same here, for this port's nexuses, with unit attention `asc`, and nothing told onwards.
    pub fn reset_by_peer(&self, lun: u64, asc: Asc) -> Result<usize, TmfError> {
        let unit = self.lun(lun).ok_or(TmfError::NoSuchLun)?;
        let aborted = self.nexuses().iter().map(|n| n.tasks.abort_lun(lun, AbortCause::Reset)).sum();
        unit.reset();
        self.unit_attention_all(lun, asc);
        Ok(aborted)
    }

    /// TARGET WARM/COLD RESET: every task of every nexus goes, every unit is reset, and every
    /// nexus gets the reset unit attention on every LUN. Returns how many tasks were aborted.
    pub fn target_reset(&self, kind: ResetKind) -> usize {
        let aborted = self.nexuses().iter().map(|n| n.tasks.abort_all(AbortCause::Reset)).sum();
        self.reset_units(kind);
        aborted
    }

    /// I_T NEXUS RESET (SAM-5 7.6, 6.3.4): the nexus loses its tasks and its state (reservations,
    /// prevented removals); the same initiator port goes on as the returned fresh nexus, which is
    /// told I_T NEXUS LOSS OCCURRED on every LUN (not the power-on a new nexus starts with).
    pub fn i_t_nexus_reset(&self, nexus: &Nexus) -> Arc<Nexus> {
        nexus.tasks.abort_all(AbortCause::Reset);
        self.remove_nexus(nexus);
        let fresh = self.add_nexus(nexus.initiator_port.clone());
        for (lun, _) in self.luns() {
            // A reset condition replaces the one pending for the LUN.
            fresh.unit_attentions.add(lun, Asc::I_T_NEXUS_LOSS_OCCURRED);
        }
        fresh
    }

    /// PREEMPT AND ABORT (SPC-4 5.12.11.2.6): the tasks of `preempted` on `lun` go; a nexus that
    /// lost any is told COMMANDS CLEARED BY ANOTHER INITIATOR besides its REGISTRATIONS PREEMPTED.
    /// Persistent reservation changes that another server of `lun` made (a gateway of several):
    /// every nexus of an initiator port named gets its unit attention, and PREEMPT AND ABORT
    /// aborts the preempted ports' tasks on `lun` here too. Returns the tasks aborted.
    pub fn reservation_events(&self, lun: u64, events: &crate::PrEvents) -> usize {
        let mut aborted = 0;
        for nexus in self.nexuses() {
            for (port, asc) in &events.notices {
                if crate::spc::persistent_reservation::same_port(port, &nexus.initiator_port) {
                    nexus.unit_attentions.add(lun, *asc);
                }
            }
            if events.aborted.iter().any(|p| crate::spc::persistent_reservation::same_port(p, &nexus.initiator_port)) {
                aborted += self.preempt_and_abort(&nexus, lun);
            }
        }
        aborted
    }

    pub(crate) fn preempt_and_abort(&self, preempted: &Nexus, lun: u64) -> usize {
        let aborted = preempted.tasks.abort_lun(lun, AbortCause::Aborted);
        if aborted > 0 {
            preempted.unit_attentions.add(lun, Asc::COMMANDS_CLEARED_BY_ANOTHER_INITIATOR);
        }
        aborted
    }
}
