//! A SCSI target device: its logical units, the I_T nexuses connected to it, and unit attentions.
//! SKELETON: signatures are the contract; bodies to be written.

use crate::{LogicalUnit, ScsiStatus};
use std::sync::Arc;

/// One I_T nexus: an initiator port connected to this target (an iSCSI session, a vhost guest).
#[derive(Debug)]
pub struct Nexus {
    /// Unique within the target, never reused while the daemon runs.
    pub id: u64,
    /// The initiator port name, e.g. "iqn.1994-05.com.redhat:abc,i,0x00023d000001".
    pub initiator_port: String,
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

#[derive(Debug)]
pub struct Target {
    pub tid: u32,
    pub name: String,
    // ...
}

impl Target {
    /// A new target with the automatic LUN 0 controller (device type 0x0c, no backing store).
    pub fn new(tid: u32, name: String) -> Arc<Self> {
        let _ = (tid, name);
        todo!()
    }

    /// Add (or, for LUN 0 only, replace the automatic controller with) a logical unit.
    /// Errors with a message when the LUN already exists.
    pub fn add_lun(&self, lun: u64, unit: Arc<LogicalUnit>) -> Result<(), String> {
        let _ = (lun, unit);
        todo!()
    }

    /// Remove a LUN; LUN 0 goes back to being the automatic controller. Errors when absent.
    /// Every nexus gets REPORTED LUNS DATA HAS CHANGED.
    pub fn remove_lun(&self, lun: u64) -> Result<(), String> {
        let _ = lun;
        todo!()
    }

    /// The logical units by LUN, ascending.
    pub fn luns(&self) -> Vec<(u64, Arc<LogicalUnit>)> {
        todo!()
    }

    pub fn lun(&self, lun: u64) -> Option<Arc<LogicalUnit>> {
        let _ = lun;
        todo!()
    }

    pub fn has_lun(&self, lun: u64) -> bool {
        self.lun(lun).is_some()
    }

    /// Register a new I_T nexus; it starts with a POWER ON, RESET unit attention on every LUN.
    pub fn add_nexus(&self, initiator_port: String) -> Arc<Nexus> {
        let _ = initiator_port;
        todo!()
    }

    pub fn remove_nexus(&self, nexus: &Nexus) {
        let _ = nexus;
        todo!()
    }

    /// Run one command. `lun` is the decoded LUN number (see `decode_lun`); `data_out` holds the bytes
    /// the initiator sent (possibly fewer or more than the CDB calls for); `data_in` is cleared and
    /// filled with the response data, already cut to the CDB's allocation length (the transport cuts
    /// it further to its expected transfer length).
    pub async fn execute(&self, nexus: &Nexus, lun: u64, cdb: &[u8], data_out: &[u8], data_in: &mut Vec<u8>) -> TaskResult {
        let _ = (nexus, lun, cdb, data_out, data_in);
        todo!()
    }

    /// ABORT TASK SET: in-flight tasks are the transport's; here only state such as ACA is cleared.
    pub fn abort_task_set(&self, nexus: &Nexus, lun: u64) -> Result<(), TmfError> {
        let _ = (nexus, lun);
        todo!()
    }

    /// CLEAR TASK SET: other nexuses get COMMANDS CLEARED BY ANOTHER INITIATOR.
    pub fn clear_task_set(&self, nexus: &Nexus, lun: u64) -> Result<(), TmfError> {
        let _ = (nexus, lun);
        todo!()
    }

    /// LOGICAL UNIT RESET: every nexus gets a BUS DEVICE RESET unit attention on that LUN.
    pub fn lun_reset(&self, lun: u64) -> Result<(), TmfError> {
        let _ = lun;
        todo!()
    }

    /// TARGET WARM/COLD RESET: every nexus, every LUN gets the reset unit attention.
    pub fn target_reset(&self, kind: ResetKind) {
        let _ = kind;
        todo!()
    }
}
