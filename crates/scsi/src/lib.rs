//! The SCSI target core: targets, logical units, command emulation and sense data.
//!
//! Transports (iSCSI, vhost-user-scsi) hand a `Target` one command at a time through
//! `Target::execute`; this crate decodes the CDB, checks unit attentions, runs the command against the
//! logical unit's backing store and answers with a status, data-in bytes and sense data. It knows
//! nothing of sockets, iSCSI or an async runtime: I/O is `async` only because backing stores are.
//!
//! Layout: a device type is a module (`sbc/` the disk, `controller` the LUN 0 storage array
//! controller) behind an `opcodes::DeviceOps`: its command table (`opcodes::OpcodeTable`, one row
//! per command: opcode, service action, name, CDB usage data, flags, decoder and handler), its mode
//! pages (`spc::mode::ModePages`), its VPD pages, its REQUEST SENSE state and what it admits while
//! busy. The unit keeps the type's state (`lun::TypeState`; the disk's is `sbc::state`). `spc/` is
//! shared by every type: the SPC rows the types list in their tables (`spc::commands`), INQUIRY,
//! REPORT LUNS, REQUEST SENSE, reservations, REPORT SUPPORTED OPERATION CODES (answered from the
//! unit's type's table, so it reports exactly what dispatches) and the MODE SENSE/SELECT framework
//! that asks the type for its pages. `exec` runs `Target::execute` and the checks every command
//! goes through (unit attention, decode, reservations, medium) and calls the row's handler, knowing
//! of the command only its row (flags) and what its decoder says (`cdb::Decoded`: the data-out
//! length and whether it is logical blocks); `cdb` holds the field helpers, `Decoded` and the
//! `Cdb` trait every command's typed fields implement; `unit_attention` the per-nexus conditions;
//! `task_set` each nexus's running tasks (entered by the transports with an abort handle), `tmf`
//! the task management functions on them, PREEMPT AND ABORT's included; `sense` the encodings;
//! `range_lock` the per-unit LBA range locks that make COMPARE AND WRITE and ORWRITE atomic against
//! every other write; `mode_page` the administrator's `mode_page=` parameter.
//!
//! Files depend one way (`scripts/check-cycles crates/scsi` keeps it so), from the bottom:
//! - leaves: `sense`, `alua` (the port group states a daemon attaches), `status`, `stats` (per-unit counters), `failure`, `cdb` (field helpers, `Decoded`, the `Cdb` trait), `device_type` (the enum and its fixed facts),
//!   `unit_attention`, `range_lock`, `task_set`, and the state types (`sbc::state`,
//!   `sbc::sanitize_state`, `sbc::sanitize_journal`, `spc::copy_outcome`, the persistent
//!   reservation `state` and `reservations`);
//! - `lun` (the unit with its state; it knows no handler), then `target` (units, nexuses, `Ctx`);
//! - `opcodes` (table machinery, `Request`, `DeviceOps`), then the handlers (`spc/*`, `sbc/*`),
//!   which see the unit, the target and the type's `DeviceOps` only through their `Request`;
//! - the tables (`spc::commands`, `sbc::commands`, `controller`), then `dispatch` (type to
//!   `DeviceOps`), then `exec` and `tmf`.
//!
//! To add a command to a type: one row in the type's table (`sbc/commands.rs`; an SPC command
//! every type offers goes in `spc/commands.rs` and into each table) naming its `Handler`, and one
//! handler file holding the command's typed fields (a struct implementing `cdb::Cdb`: its decoder,
//! and its data-out through `Cdb::decoded`), its handler and the `Handler` made of both by `now!`
//! or `io!` (so decoder and handler cannot disagree). Nothing else changes. The row's
//! usage data is what REPORT SUPPORTED OPERATION CODES reports and what every CDB is checked
//! against; the table tests (`opcodes_tests.rs`) check the order, the usage data and that the
//! decoder and handler agree, and `tests/cdb_sweep.rs` sweeps every reported bit.
//!
//! To add a device type (a CD/DVD `mmc/`, a changer `smc/`, a tape): a module beside `sbc/` with its table (the
//! shared SPC rows plus its own), its `DeviceOps` and its `ModePages`, its state (a `TypeState`
//! variant), a `DeviceType` variant (name, peripheral type, version descriptors, medium) and one
//! arm in `dispatch`. Nothing in `exec` or `spc` names a type.
//!
//! EXTENDED COPY acts for the nexus that sent it: it names source and destination by designator,
//! and only among the logical units of that nexus's own target (`spc::xcopy`), so a copy reaches
//! no unit the initiator could not address itself through the target's ACL and CHAP; and the
//! reservations of other nexuses apply to its reads and writes.
//!
//! Data-out shorter than the CDB's transfer length (WRITE, VERIFY with BYTCHK, WRITE AND VERIFY,
//! ORWRITE): when it is a whole number of logical blocks, those blocks are written or compared and
//! the status is GOOD; when it stops inside a block, every command whose data-out is logical blocks
//! (those, WRITE SAME, COMPARE AND WRITE and WRITE ATOMIC too) fails with ILLEGAL REQUEST, INVALID
//! FIELD IN INFORMATION UNIT and writes nothing (`sbc::check_whole_blocks`). No block is ever
//! written with bytes the initiator did not send, and GOOD never stands for data not written. The transport reports the residual
//! using `TaskResult::data_out_expected`. Parameter lists (MODE SELECT, UNMAP) shorter than their
//! CDB's parameter list length are rejected with PARAMETER LIST LENGTH ERROR.
//!
//! PUBLIC API CONTRACT (used by the iscsi and tgtd crates; keep these signatures stable):
//! - `Target::new(tid, name)`, `Target::add_lun`, `Target::remove_lun`, `Target::luns`, `Target::lun`
//! - `Target::add_nexus(initiator_port) -> Arc<Nexus>`, `Target::remove_nexus(&Nexus)`
//! - `Target::execute(&nexus, lun, cdb, data_out, &mut data_in).await -> TaskResult`
//! - `Target::data_in_bound(lun, cdb, cheap_below)`: the most data-in a command can make the core
//!   hold, known before it runs (`data_in_bound`), for a transport's memory budget
//! - tasks: `Nexus::tasks() -> &TaskSet` (`start`/`start_unique` with an `AbortTask` handle,
//!   `set_abort`, `end`, `abort_channel`, `abort_all`, `query_task`, `query_task_set`)
//! - task management (`task_set`): `Target::abort_task`, `Target::abort_task_set`,
//!   `Target::clear_task_set`, `Target::lun_reset`, `Target::target_reset`,
//!   `Target::i_t_nexus_reset`, `Target::has_lun`
//! - `LogicalUnit::new(LunConfig, Option<Backstore>)`, `LogicalUnit::info() -> LunInfo`
//! - `LunConfig::disk(tid, lun)`, `LunConfig::controller(tid, lun)`: tgt's defaults
//! - `Target::reload_lun_size(lun)`, `Target::capacity_changed(lun)`: online resize
//! - `LogicalUnit::{set_online, set_readonly, flush}` and read accessors
//! - `Target::reconfigure_lun(lun, LunConfig)`, `Target::set_lun_readonly(lun, bool)`: tgt's LUN
//!   parameters on a live unit, with the unit attentions for what changed
//!   (`LogicalUnit::reconfigure` changes the unit and tells nobody)
//! - `LogicalUnit::set_port_groups(Arc<dyn PortGroups>)`: asymmetric access (several gateways)

pub mod alua;
mod cdb;
mod controller;
mod data_in_bound;
mod device_type;
mod dispatch;
mod error_log;
mod exec;
mod failure;
pub mod lun;
pub mod lun_address;
mod lun_config;
pub mod medium_drive;
mod mmc;
pub mod mode_page;
mod opcodes;
mod range_lock;
mod reconfigure;
mod removal_prevention;
mod sbc;
pub mod sense;
pub mod smc;
mod spc;
mod ssc;
pub mod stats;
mod status;
pub mod target;
#[cfg(test)]
mod target_tests;
pub mod task_set;
mod tmf;
mod unit_attention;

pub use alua::{
    AccessState, ForwardFuture, ForwardReply, ForwardRequest, PortGroup, PortGroups, TransferError, TransferFuture,
};
pub use lun::{DeviceType, LogicalUnit, LunConfig, LunInfo, ModeParams, MAX_TRANSFER_BYTES};
pub use lun_address::{decode_lun, encode_lun};
pub use lun_config::Reconfigured;
pub use medium_drive::{DriveResolver, MediumDrive};
pub use mmc::MediumChangeError;
pub use mode_page::{ModePageError, ModePageSpec};
pub use rtgt_backstore::PagePipe;
pub use sbc::sanitize_journal::{JournalRestore, RecordState, SanitizeJournal, SanitizeRecord};
pub use sense::{Asc, FieldPointer, Sense, SenseFormat, SenseKey};
pub use spc::mode_select::ModeChangeError;
pub use spc::mode_state::{ModeSelectedBy, SharedModePages};
pub use spc::persistent_reservation::{
    PersistentReservations, PrEvents, PrPersistence, PrRegistration, PrReservation, PrSnapshot, PrType, SharedPr,
};
pub use spc::reserve_state::{not_written, ReserveHolder, SharedReserve};
pub use ssc::TapeLoadError;
pub use status::ScsiStatus;
pub use target::{Nexus, ResetKind, Target, TaskResult, TmfError};
pub use task_set::{AbortCause, AbortTask, TaskId, TaskSet, Tracked};

#[cfg(test)]
pub(crate) mod test_util {
    //! A logical unit on a memory store inside a target, driven with a tiny executor.

    use crate::{LogicalUnit, LunConfig, Nexus, ScsiStatus, Target, TaskResult};
    use rtgt_backstore::{Backstore, MemoryStore, NullStore};
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    /// Drive a future that never waits (memory and null stores complete inline).
    pub fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = pin!(f);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    /// Target 1 with a disk at LUN 1 and one nexus whose power-on unit attentions are consumed.
    pub struct TestLun {
        pub target: Arc<Target>,
        pub nexus: Arc<Nexus>,
        pub lu: Arc<LogicalUnit>,
        pub lun: u64,
    }

    impl TestLun {
        pub fn with_store(config: LunConfig, store: Option<Backstore>, lun: u64) -> Self {
            let target = Target::new(1, "iqn.2024-01.test:t1".into());
            let lu = Arc::new(LogicalUnit::new(config, store));
            if lun != 0 || lu.device_type() == crate::DeviceType::Disk {
                target.add_lun(lun, lu.clone()).unwrap();
            }
            let nexus = target.add_nexus("iqn.2024-01.test:i1".into());
            let t = TestLun { target, nexus, lu, lun };
            t.clear_ua(&t.nexus);
            t
        }

        pub fn with_config(size: u64, edit: impl FnOnce(&mut LunConfig)) -> Self {
            let mut config = LunConfig::disk(1, 1);
            edit(&mut config);
            Self::with_store(config, Some(Backstore::Memory(MemoryStore::new(size))), 1)
        }

        pub fn disk(size: u64) -> Self {
            Self::with_config(size, |_| {})
        }

        pub fn thin(size: u64) -> Self {
            Self::with_config(size, |c| c.thin_provisioning = true)
        }

        pub fn null(size: u64) -> Self {
            Self::with_store(LunConfig::disk(1, 1), Some(Backstore::Null(NullStore::new(size))), 1)
        }

        /// The automatic controller at LUN 0.
        pub fn controller() -> Self {
            let t = Self::with_store(LunConfig::controller(1, 0), None, 0);
            let lu = t.target.lun(0).unwrap();
            TestLun { lu, ..t }
        }

        /// Consume every pending unit attention of `nexus` on every LUN.
        pub fn clear_ua(&self, nexus: &Nexus) {
            for (lun, _) in self.target.luns() {
                while nexus.unit_attentions.take(lun).is_some() {}
            }
        }

        pub fn run(&self, cdb: &[u8]) -> (TaskResult, Vec<u8>) {
            self.run_out(cdb, &[])
        }

        pub fn run_out(&self, cdb: &[u8], data_out: &[u8]) -> (TaskResult, Vec<u8>) {
            self.run_on(&self.nexus, cdb, data_out)
        }

        pub fn run_on(&self, nexus: &Nexus, cdb: &[u8], data_out: &[u8]) -> (TaskResult, Vec<u8>) {
            let mut data_in = Vec::new();
            let r = block_on(self.target.execute(nexus, self.lun, cdb, data_out, &mut data_in));
            (r, data_in)
        }
    }

    #[track_caller]
    pub fn assert_good(r: &TaskResult) {
        assert_eq!(r.status, ScsiStatus::Good, "sense {:02x?}", r.sense);
        assert_eq!(r.sense, None);
    }

    /// CHECK CONDITION with fixed-format sense carrying this key, ASC and ASCQ.
    #[track_caller]
    pub fn assert_sense(r: &TaskResult, key: u8, asc: u8, ascq: u8) {
        assert_eq!(r.status, ScsiStatus::CheckCondition);
        let s = r.sense.as_deref().expect("sense data");
        assert_eq!(s[0] & 0x7f, 0x70, "fixed format");
        assert_eq!((s[2], s[12], s[13]), (key, asc, ascq), "sense {s:02x?}");
    }
}
