//! The SCSI target core: targets, logical units, command emulation and sense data.
//!
//! Transports (iSCSI, vhost-user-scsi) hand a `Target` one command at a time through
//! `Target::execute`; this crate decodes the CDB, checks unit attentions, runs the command against the
//! logical unit's backing store and answers with a status, data-in bytes and sense data. It knows
//! nothing of sockets, iSCSI or an async runtime: I/O is `async` only because backing stores are.
//!
//! PUBLIC API CONTRACT (used by the iscsi and tgtd crates; keep these signatures stable):
//! - `Target::new(tid, name)`, `Target::add_lun`, `Target::remove_lun`, `Target::luns`, `Target::lun`
//! - `Target::add_nexus(initiator_port) -> Arc<Nexus>`, `Target::remove_nexus(&Nexus)`
//! - `Target::execute(&nexus, lun, cdb, data_out, &mut data_in).await -> TaskResult`
//! - task management: `Target::abort_task_set`, `Target::clear_task_set`, `Target::lun_reset`,
//!   `Target::target_reset`, `Target::has_lun`
//! - `LogicalUnit::new(LunConfig, Option<Backstore>)`, `LogicalUnit::info() -> LunInfo`

pub mod lun;
pub mod lun_address;
pub mod sense;
pub mod target;

pub use lun::{DeviceType, LogicalUnit, LunConfig, LunInfo};
pub use lun_address::{decode_lun, encode_lun};
pub use sense::{Asc, Sense, SenseFormat, SenseKey};
pub use target::{Nexus, ResetKind, Target, TaskResult, TmfError};

/// SAM-5 status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ScsiStatus {
    Good = 0x00,
    CheckCondition = 0x02,
    ConditionMet = 0x04,
    Busy = 0x08,
    ReservationConflict = 0x18,
    TaskSetFull = 0x28,
    AcaActive = 0x30,
    TaskAborted = 0x40,
}
