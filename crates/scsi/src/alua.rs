//! Asymmetric logical unit access (SPC-4 5.15): what a logical unit served through several target
//! ports in several target port groups tells initiators about each group's access state.
//!
//! The core only asks: the daemon attaches a `PortGroups` to a unit (`LogicalUnit::set_port_groups`)
//! when the unit is one of several gateways' views of the same storage, and answers for the group
//! states from wherever it keeps them (the gateway registry in the cluster). A unit without one
//! has no ALUA: TPGS 00b, REPORT TARGET PORT GROUPS not offered, every command admitted.

use crate::sense::{Asc, Sense, SenseKey};

/// A target port group's asymmetric access state (SPC-4 6.37, table 166).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessState {
    ActiveOptimized,
    ActiveNonOptimized,
    Standby,
    Unavailable,
    Offline,
    Transitioning,
}

impl AccessState {
    /// The ASYMMETRIC ACCESS STATE code.
    pub fn code(self) -> u8 {
        match self {
            AccessState::ActiveOptimized => 0x0,
            AccessState::ActiveNonOptimized => 0x1,
            AccessState::Standby => 0x2,
            AccessState::Unavailable => 0x3,
            AccessState::Offline => 0xe,
            AccessState::Transitioning => 0xf,
        }
    }

    /// Whether media access and the other commands of the active states are processed.
    pub fn is_active(self) -> bool {
        matches!(self, AccessState::ActiveOptimized | AccessState::ActiveNonOptimized)
    }

    /// The NOT READY sense a command refused in this state gets (SPC-4 5.15.2.4).
    pub fn refusal(self) -> Sense {
        let asc = match self {
            AccessState::Standby => Asc::TARGET_PORT_IN_STANDBY_STATE,
            AccessState::Transitioning => Asc::ASYMMETRIC_ACCESS_STATE_TRANSITION,
            // Offline never reaches a command through its own port; treated as unavailable.
            _ => Asc::TARGET_PORT_IN_UNAVAILABLE_STATE,
        };
        Sense::new(SenseKey::NotReady, asc)
    }
}

/// One target port group as REPORT TARGET PORT GROUPS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortGroup {
    /// TARGET PORT GROUP identifier (nonzero).
    pub id: u16,
    pub state: AccessState,
    /// The RELATIVE TARGET PORT IDENTIFIERs of the group's ports.
    pub relative_ports: Vec<u16>,
}

/// Why a transfer of the active group (SET TARGET PORT GROUPS) was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferError {
    /// Only implicit asymmetric access (TPGS 01b).
    Unsupported,
    /// Tried, and the group did not become active.
    Failed,
}

/// The transfer's completion, awaited by the command.
pub type TransferFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), TransferError>> + Send>>;

/// The daemon's answer for a unit's target port groups. Called on the command path: `local_state`
/// is asked for every command and must not block (an atomic load); `groups` only for REPORT
/// TARGET PORT GROUPS.
pub trait PortGroups: std::any::Any + Send + Sync + std::fmt::Debug {
    /// The RELATIVE TARGET PORT IDENTIFIER of the port this daemon serves the unit through.
    fn relative_port(&self) -> u16;
    /// The TARGET PORT GROUP of that port.
    fn group(&self) -> u16;
    /// That group's access state now.
    fn local_state(&self) -> AccessState;
    /// Every group, this one included, in identifier order.
    fn groups(&self) -> Vec<PortGroup>;
    /// Whether SET TARGET PORT GROUPS may change the states (TPGS 11b rather than 01b).
    fn explicit(&self) -> bool {
        false
    }
    /// Make `group` the active one (the others stand by); completes once it is.
    fn transfer(&self, group: u16) -> TransferFuture {
        let _ = group;
        Box::pin(std::future::ready(Err(TransferError::Unsupported)))
    }
    /// A command this port cannot serve itself (not the owner of the storage) but another port of
    /// the unit can: `Some` sends it there and completes with that port's answer; `None` means
    /// this port serves it (or refuses it by its state). Asked once per command, after the
    /// nexus's unit attention, the CDB's decoding and the state's admission. A command the other
    /// port's task management ended is one this port's ends too (a reset, CLEAR TASK SET or
    /// PREEMPT AND ABORT of the unit reaches every port): the future then waits for that abort,
    /// which drops it unanswered, rather than complete.
    fn forward(&self, request: ForwardRequest) -> Option<ForwardFuture> {
        let _ = request;
        None
    }
    /// The unit was reset through this port (LOGICAL UNIT RESET, a target reset): have every
    /// other port of the unit do the same to its own nexuses and state (`Target::reset_by_peer`)
    /// with unit attention `asc`, before this returns, so the reset is complete on every port
    /// when its function is. May block while the others are told.
    fn reset_elsewhere(&self, asc: crate::sense::Asc) {
        let _ = asc;
    }
    /// CLEAR TASK SET through this port (SAM-5 7.4; TST 000b, so the unit has one task set on
    /// all its ports): have every other port abort its nexuses' tasks on the unit and tell them
    /// COMMANDS CLEARED BY ANOTHER INITIATOR (`Target::task_set_cleared_by_peer`), before this
    /// returns, so the set is clear on every port when the function completes. May block.
    fn clear_task_set_elsewhere(&self) {}
}

/// A command sent to the port that serves the storage, for the initiator port that sent it here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRequest {
    /// The originating initiator port (name and ISID): the nexus the command is run for there.
    pub initiator_port: String,
    /// The relative target port it arrived through (this port).
    pub relative_port: u16,
    pub cdb: Vec<u8>,
    pub data_out: Vec<u8>,
}

/// The other port's answer: status, sense in the unit's format, data-in already cut to the
/// CDB's allocation length, and the data-out length the CDB called for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardReply {
    pub status: crate::status::ScsiStatus,
    pub sense: Option<Vec<u8>>,
    pub data_out_expected: u32,
    pub data_in: Vec<u8>,
}

/// A forwarded command's completion: the answer, or why there is none (the other port could not
/// be reached, or went away with the command in flight; the command is failed, never replayed).
pub type ForwardFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<ForwardReply, Sense>> + Send>>;

/// Which commands a state admits, by the row flags `opcodes::STANDBY_OK` and
/// `opcodes::UNAVAILABLE_OK` (SPC-4 5.15.2.4.4 and 5.15.2.4.5).
pub(crate) fn admits(state: AccessState, standby_ok: bool, unavailable_ok: bool) -> Result<(), Sense> {
    let admitted = match state {
        AccessState::ActiveOptimized | AccessState::ActiveNonOptimized => true,
        AccessState::Standby => standby_ok,
        AccessState::Unavailable | AccessState::Offline | AccessState::Transitioning => unavailable_ok,
    };
    if admitted {
        Ok(())
    } else {
        Err(state.refusal())
    }
}
