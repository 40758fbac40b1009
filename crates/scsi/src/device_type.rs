//! The device types, and what each contributes to the shared command path: its command table, its
//! idea of "not ready" and the commands it lets run while busy.
//!
//! A type is a module (`sbc` for the disk, `controller` for LUN 0) and a variant here; the shared
//! machinery (`exec`, `spc`) asks the type through these methods and never names a type itself.

use crate::cdb::Command;
use crate::lun::LogicalUnit;
use crate::opcodes::OpcodeTable;
use crate::sense::Sense;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// SBC disk (peripheral device type 0x00).
    Disk,
    /// Storage array controller (0x0c): the automatic LUN 0.
    Controller,
}

impl DeviceType {
    /// The name tgt uses (`--device-type disk`, "Type: disk" / "Type: controller" in show).
    pub fn name(self) -> &'static str {
        match self {
            DeviceType::Disk => "disk",
            DeviceType::Controller => "controller",
        }
    }

    /// SPC-4 6.6.2 PERIPHERAL DEVICE TYPE.
    pub fn peripheral_type(self) -> u8 {
        match self {
            DeviceType::Disk => 0x00,
            DeviceType::Controller => 0x0c,
        }
    }

    /// The type's commands: dispatch, CDB checks and REPORT SUPPORTED OPERATION CODES.
    pub(crate) fn commands(self) -> &'static OpcodeTable {
        match self {
            DeviceType::Disk => &crate::sbc::commands::COMMANDS,
            DeviceType::Controller => &crate::controller::COMMANDS,
        }
    }

    /// The type's mode pages and mode parameter header bits, for the shared MODE SENSE/SELECT.
    pub(crate) fn mode_pages(self) -> &'static crate::spc::mode::ModePages {
        match self {
            DeviceType::Disk => &crate::sbc::mode_pages::MODE_PAGES,
            DeviceType::Controller => &crate::controller::MODE_PAGES,
        }
    }

    /// SPC-4 7.5 version descriptors of the standard INQUIRY data: SAM-5, SPC-4 and the type's
    /// command set (no version claimed).
    pub(crate) fn version_descriptors(self) -> &'static [u16] {
        match self {
            // SBC-3.
            DeviceType::Disk => &[0x00a0, 0x0460, 0x04c0],
            // SCC-2.
            DeviceType::Controller => &[0x00a0, 0x0460, 0x01e0],
        }
    }

    /// The VPD pages the type offers, in page code order (the page builders are in `spc::vpd`).
    pub(crate) fn vpd_pages(self) -> &'static [u8] {
        use crate::spc::vpd::*;
        match self {
            DeviceType::Disk => {
                &[SUPPORTED, SERIAL, DEVICE_ID, THIRD_PARTY_COPY, BLOCK_LIMITS, BLOCK_CHARACTERISTICS, PROVISIONING]
            }
            DeviceType::Controller => &[SUPPORTED, SERIAL, DEVICE_ID],
        }
    }

    /// A new unit's type-specific state.
    pub(crate) fn new_state(self) -> crate::lun::TypeState {
        match self {
            DeviceType::Disk => crate::lun::TypeState::Disk(Default::default()),
            DeviceType::Controller => crate::lun::TypeState::Controller,
        }
    }

    /// Whether the type has a medium that can be absent (commands flagged MEDIUM then fail with
    /// NOT READY); the controller has none.
    pub(crate) fn has_medium(self) -> bool {
        self == DeviceType::Disk
    }

    /// The unit's own condition for REQUEST SENSE when nothing is pending (SPC-4 6.39): a disk
    /// being sanitized or without medium is NOT READY.
    pub(crate) fn state_sense(self, lu: &LogicalUnit) -> Option<Sense> {
        match self {
            DeviceType::Disk => lu.disk().ok().and_then(|d| d.sanitize().sense()).or_else(|| lu.medium().err()),
            DeviceType::Controller => None,
        }
    }

    /// Refuse a decoded command the unit cannot take in its present state (before reservation
    /// checks, as the sanitize rules require).
    pub(crate) fn admit(self, lu: &LogicalUnit, command: &Command) -> Result<(), Sense> {
        match self {
            DeviceType::Disk => crate::sbc::sanitize::admit(lu, command),
            DeviceType::Controller => Ok(()),
        }
    }
}
