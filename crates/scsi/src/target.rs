//! A SCSI target device: its logical units, the I_T nexuses connected to it, unit attentions, and
//! unit attentions. The path every command takes (`Target::execute`) is in `exec`, the task
//! management functions in `tmf`: both sit above the handlers, which see the target through `Ctx`.

use crate::lun::{LogicalUnit, LunConfig};
use crate::sense::Asc;
use crate::task_set::{AbortCause, TaskSet};
use crate::unit_attention::UnitAttentions;
use crate::ScsiStatus;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// One I_T nexus: an initiator port connected to this target (an iSCSI session, a vhost guest).
pub struct Nexus {
    /// Unique within the target, never reused while the daemon runs.
    pub id: u64,
    /// The initiator port name, e.g. "iqn.1994-05.com.redhat:abc,i,0x00023d000001".
    pub initiator_port: String,
    /// For a nexus standing here for one that reached the unit through another port (its
    /// commands forwarded here): that port's RELATIVE TARGET PORT IDENTIFIER. None: this port.
    pub relative_port: Option<u16>,
    pub(crate) unit_attentions: UnitAttentions,
    /// The tasks this nexus has running (the transport enters them, task management ends them).
    pub(crate) tasks: TaskSet,
}

impl std::fmt::Debug for Nexus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nexus").field("id", &self.id).field("initiator_port", &self.initiator_port).finish()
    }
}

impl Nexus {
    /// The nexus's running tasks: the transport enters and ends its tasks here.
    pub fn tasks(&self) -> &TaskSet {
        &self.tasks
    }
    /// Establish unit attention `asc` for `lun` on this nexus (a loss another port of the unit
    /// assumed for it, say).
    pub fn add_unit_attention(&self, lun: u64, asc: Asc) {
        self.unit_attentions.add(lun, asc);
    }

    /// Take the unit attention the next command to `lun` would report (tests, tools).
    pub fn take_unit_attention(&self, lun: u64) -> Option<Asc> {
        self.unit_attentions.take(lun)
    }
}

/// What a command produced besides its data-in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskResult {
    pub status: ScsiStatus,
    /// Sense data, already encoded in the logical unit's format (fixed or descriptor), when status is
    /// CHECK CONDITION.
    pub sense: Option<Vec<u8>>,
    /// How many data-out bytes the CDB called for (0 for commands that move no data out). The
    /// transport compares it with the initiator's expected transfer length to report residuals.
    pub data_out_expected: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetKind {
    Warm,
    Cold,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TmfError {
    #[error("no such logical unit")]
    NoSuchLun,
}

/// Who is asking, passed to the commands that affect other nexuses or the LUN inventory.
pub(crate) struct Ctx<'a> {
    pub target: &'a Target,
    pub nexus: &'a Nexus,
    pub lun: u64,
}

#[derive(Debug)]
pub struct Target {
    pub tid: u32,
    pub name: String,
    luns: RwLock<BTreeMap<u64, Arc<LogicalUnit>>>,
    nexuses: Mutex<Vec<Arc<Nexus>>>,
    /// Removed nexuses (session ended, I_T NEXUS RESET) with aborted tasks still stopping.
    retired: Mutex<Vec<Arc<Nexus>>>,
    next_nexus_id: AtomicU64,
}

impl Target {
    /// A new target with the automatic LUN 0 controller (device type 0x0c, no backing store).
    pub fn new(tid: u32, name: String) -> Arc<Self> {
        let mut luns = BTreeMap::new();
        luns.insert(0, Arc::new(LogicalUnit::new(LunConfig::controller(tid, 0), None)));
        Arc::new(Target {
            tid,
            name,
            luns: RwLock::new(luns),
            nexuses: Mutex::new(Vec::new()),
            retired: Mutex::new(Vec::new()),
            next_nexus_id: AtomicU64::new(1),
        })
    }

    fn is_automatic_controller(&self, lun: u64, unit: &LogicalUnit) -> bool {
        lun == 0 && unit.device_type() == crate::DeviceType::Controller && unit.store().is_none()
    }

    /// Add (or, for LUN 0 only, replace the automatic controller with) a logical unit.
    /// Errors with a message when the LUN already exists.
    pub fn add_lun(&self, lun: u64, unit: Arc<LogicalUnit>) -> Result<(), String> {
        {
            let mut luns = self.luns.write();
            if let Some(existing) = luns.get(&lun) {
                if !self.is_automatic_controller(lun, existing) {
                    return Err(format!("logical unit {lun} already exists in target {}", self.tid));
                }
            }
            luns.insert(lun, unit);
        }
        // SAM-5 5.14 / SPC-4 6.33: the new unit starts fresh for every nexus, the others learn that
        // the inventory changed.
        self.inventory_changed(lun, true);
        Ok(())
    }

    /// Remove a LUN; LUN 0 goes back to being the automatic controller. Errors when absent.
    /// Every nexus gets REPORTED LUNS DATA HAS CHANGED.
    pub fn remove_lun(&self, lun: u64) -> Result<(), String> {
        {
            let mut luns = self.luns.write();
            match luns.get(&lun) {
                Some(existing) if !self.is_automatic_controller(lun, existing) => {}
                _ => return Err(format!("logical unit {lun} does not exist in target {}", self.tid)),
            }
            if let Some(unit) = luns.get(&lun) {
                unit.mark_removed();
            }
            if lun == 0 {
                luns.insert(0, Arc::new(LogicalUnit::new(LunConfig::controller(self.tid, 0), None)));
            } else {
                luns.remove(&lun);
            }
        }
        for nexus in self.nexuses.lock().iter() {
            nexus.unit_attentions.forget(lun);
        }
        self.inventory_changed(lun, lun == 0);
        Ok(())
    }

    /// After `changed` was added or removed: REPORTED LUNS DATA HAS CHANGED on every other LUN for
    /// every nexus, and a power-on condition on `changed` itself when it now holds a new unit.
    fn inventory_changed(&self, changed: u64, new_unit: bool) {
        let luns: Vec<u64> = self.luns.read().keys().copied().collect();
        for nexus in self.nexuses.lock().iter() {
            for &lun in &luns {
                if lun == changed {
                    if new_unit {
                        nexus.unit_attentions.add(lun, Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET);
                    }
                } else {
                    nexus.unit_attentions.add(lun, Asc::REPORTED_LUNS_DATA_HAS_CHANGED);
                }
            }
        }
    }

    /// The logical units by LUN, ascending.
    pub fn luns(&self) -> Vec<(u64, Arc<LogicalUnit>)> {
        self.luns.read().iter().map(|(&n, u)| (n, u.clone())).collect()
    }

    pub fn lun(&self, lun: u64) -> Option<Arc<LogicalUnit>> {
        self.luns.read().get(&lun).cloned()
    }

    pub fn has_lun(&self, lun: u64) -> bool {
        self.lun(lun).is_some()
    }

    /// The disk of this target whose Device Identification page carries this designator (type
    /// and bytes), for EXTENDED COPY. Only this target's units are searched: a copy may name no
    /// unit that the issuing nexus could not address itself (the same target, so the same ACL
    /// and CHAP), never a unit of another target of the daemon (the hole of CVE-2020-28374 in
    /// LIO). The identity is read at lookup time, so a changed SCSI ID is followed. Two disks
    /// answering to one designator (an administrator gave both the same scsi_id) make it name
    /// neither: a copy must never guess which unit to overwrite.
    pub(crate) fn disk_by_designator(&self, designator_type: u8, designator: &[u8]) -> Option<Arc<LogicalUnit>> {
        let luns = self.luns.read();
        let mut matching = luns
            .values()
            .filter(|u| u.device_type() == crate::DeviceType::Disk && u.has_designator(designator_type, designator));
        let first = matching.next()?;
        match matching.next() {
            Some(_) => None,
            None => Some(first.clone()),
        }
    }

    /// Register a new I_T nexus; it starts with a POWER ON, RESET unit attention on every LUN.
    pub fn add_nexus(&self, initiator_port: String) -> Arc<Nexus> {
        let nexus = Arc::new(Nexus {
            id: self.next_nexus_id.fetch_add(1, Ordering::Relaxed),
            initiator_port,
            relative_port: None,
            unit_attentions: UnitAttentions::default(),
            tasks: TaskSet::default(),
        });
        for &lun in self.luns.read().keys() {
            nexus.unit_attentions.add(lun, Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET);
        }
        self.nexuses.lock().push(nexus.clone());
        nexus
    }

    /// The nexus that stands, on this port, for initiator port `initiator_port` whose commands
    /// another port of a unit, `relative_port`, forwards here (`execute_forwarded`): the one
    /// registered already, else a new one. It starts with no unit attention: the originating port
    /// reports its own nexus's. Being in the target's list, task management and PREEMPT AND ABORT
    /// reach its tasks as any nexus's. One per (initiator port, relative port), so that a
    /// reservation held through it is found again by its commands.
    pub fn proxy_nexus(&self, initiator_port: &str, relative_port: u16) -> Arc<Nexus> {
        let mut nexuses = self.nexuses.lock();
        let found =
            nexuses.iter().find(|n| n.relative_port == Some(relative_port) && n.initiator_port == initiator_port);
        if let Some(n) = found {
            return n.clone();
        }
        let nexus = Arc::new(Nexus {
            id: self.next_nexus_id.fetch_add(1, Ordering::Relaxed),
            initiator_port: initiator_port.to_string(),
            relative_port: Some(relative_port),
            unit_attentions: UnitAttentions::default(),
            tasks: TaskSet::default(),
        });
        nexuses.push(nexus.clone());
        nexus
    }

    /// The newest nexus of initiator port `initiator_port` through this target's own port.
    pub fn local_nexus(&self, initiator_port: &str) -> Option<Arc<Nexus>> {
        let nexuses = self.nexuses.lock();
        nexuses.iter().rev().find(|n| n.relative_port.is_none() && n.initiator_port == initiator_port).cloned()
    }

    /// The nexus is gone (I_T nexus loss, SAM-5 6.3.4): its tasks still running are aborted, its
    /// reservations and medium removal preventions are released.
    pub fn remove_nexus(&self, nexus: &Nexus) {
        nexus.tasks.abort_all(AbortCause::Lost);
        {
            // Retired before it leaves `nexuses`, both under `retired`'s lock (taken first, as in
            // `aborted_tasks_running`): a look at both never misses its stopping tasks.
            let mut retired = self.retired.lock();
            retired.retain(|n| n.tasks.stopping(None));
            let mut nexuses = self.nexuses.lock();
            if let Some(i) = nexuses.iter().position(|n| n.id == nexus.id) {
                let removed = nexuses.remove(i);
                if removed.tasks.stopping(None) {
                    retired.push(removed);
                }
            }
        }
        for unit in self.luns.read().values() {
            unit.forget_nexus(nexus.id);
        }
    }

    /// Whether a task aborted on this target, on `lun` or on any LUN, on any nexus (removed ones
    /// too), may still be touching a backing store. A transport answers a task management
    /// function, or lets a new session in, only once this is false (SAM-5 7.1: once a function's
    /// response is delivered, the tasks it aborted no longer affect the medium), or once it stops
    /// waiting.
    pub fn aborted_tasks_running(&self, lun: Option<u64>) -> bool {
        let mut retired = self.retired.lock();
        retired.retain(|n| n.tasks.stopping(None));
        retired.iter().any(|n| n.tasks.stopping(lun)) || self.nexuses().iter().any(|n| n.tasks.stopping(lun))
    }

    /// How many removed nexuses are kept for their stopping tasks.
    #[cfg(test)]
    pub(crate) fn retired_kept(&self) -> usize {
        self.retired.lock().len()
    }

    /// The registered nexuses.
    pub fn nexuses(&self) -> Vec<Arc<Nexus>> {
        self.nexuses.lock().clone()
    }

    /// Establish a unit attention for `lun` on every nexus except `except`.
    pub(crate) fn unit_attention_others(&self, except: &Nexus, lun: u64, asc: Asc) {
        for nexus in self.nexuses.lock().iter().filter(|n| n.id != except.id) {
            nexus.unit_attentions.add(lun, asc);
        }
    }

    pub(crate) fn unit_attention_all(&self, lun: u64, asc: Asc) {
        for nexus in self.nexuses.lock().iter() {
            nexus.unit_attentions.add(lun, asc);
        }
    }

    /// Another server of `lun`'s unit changed its mode parameters (MODE SELECT there, or through
    /// this port and forwarded there): MODE PARAMETERS CHANGED to every nexus through this port
    /// except those of initiator port `except`, the one whose MODE SELECT came through here.
    /// Nexuses standing for other ports' initiators are skipped: their own ports tell them.
    pub fn mode_parameters_changed(&self, lun: u64, except: Option<&str>) {
        let nexuses = self.nexuses.lock();
        for nexus in nexuses.iter().filter(|n| n.relative_port.is_none()) {
            if Some(nexus.initiator_port.as_str()) != except {
                nexus.unit_attentions.add(lun, Asc::MODE_PARAMETERS_CHANGED);
            }
        }
    }

    /// Re-read the capacity of `lun`'s backing store (online resize). When it changed, every nexus
    /// gets CAPACITY DATA HAS CHANGED (SBC-3 4.10) on that LUN. Returns the new size in bytes.
    pub fn reload_lun_size(&self, lun: u64) -> Result<u64, String> {
        let unit = self.lun(lun).ok_or_else(|| format!("logical unit {lun} does not exist"))?;
        let Some(store) = unit.store() else { return Ok(0) };
        let before = rtgt_backstore::BlockStore::size(store);
        let after = rtgt_backstore::BlockStore::reload_size(store).map_err(|e| e.to_string())?;
        if after != before {
            self.unit_attention_all(lun, Asc::CAPACITY_DATA_HAS_CHANGED);
        }
        Ok(after)
    }

    /// Tell every nexus that an asymmetric access state of `lun` changed (SPC-4 5.15.2.3).
    pub fn access_state_changed(&self, lun: u64) {
        self.unit_attention_all(lun, Asc::ASYMMETRIC_ACCESS_STATE_CHANGED);
    }

    /// Tell every nexus that `lun`'s capacity changed (for stores resized by other means).
    pub fn capacity_changed(&self, lun: u64) {
        self.unit_attention_all(lun, Asc::CAPACITY_DATA_HAS_CHANGED);
    }

    /// Reset every unit and give every nexus the reset unit attention on every LUN (target reset).
    pub(crate) fn reset_units(&self, kind: ResetKind) {
        // SAM-5 6.6: a hard reset reports POWER ON, RESET, OR BUS DEVICE RESET OCCURRED; a cold
        // reset is a power-on (POWER ON OCCURRED).
        let asc = match kind {
            ResetKind::Warm => Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET,
            ResetKind::Cold => Asc::POWER_ON_OCCURRED,
        };
        let luns = self.luns();
        for (_, unit) in &luns {
            unit.reset();
        }
        for nexus in self.nexuses.lock().iter() {
            for (lun, _) in &luns {
                nexus.unit_attentions.add(*lun, asc);
            }
        }
        // A unit this target shares with other ports (gateways) is reset there too.
        for (_, unit) in &luns {
            if let Some(groups) = unit.port_groups() {
                groups.reset_elsewhere(asc);
            }
        }
    }
}
