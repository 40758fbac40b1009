//! Persistent reservations (SPC-4 5.12, 6.15, 6.16): PERSISTENT RESERVE IN and OUT, the conflict
//! check every command passes, and the hook that saves the state when APTPL is set.
//!
//! Layout: `state` holds the registrations and reservation and the rules of each service action;
//! `conflict` says which commands a non-holder may run; `pr_in` and `pr_out` speak the commands'
//! formats; `transport_id` the iSCSI TransportIDs. This module knows no files: the daemon attaches
//! a `PrPersistence` to a logical unit and the state is saved through it.
//!
//! One target port per target (the iSCSI target portal group), so an I_T nexus is named by its
//! initiator port ("iqn...,i,0x<ISID>"); registrations outlive the nexus (SPC-4 5.12.2) and
//! apply again when the same initiator port logs in.

mod conflict;
pub(crate) mod pr_in;
mod pr_out;
mod reservations;
#[cfg(test)]
mod shared_tests;
mod state;
#[cfg(test)]
mod tests;
mod transport_id;

pub(crate) use conflict::Access;
pub use reservations::{PersistentReservations, PrEvents, PrPersistence, SharedPr};
pub(crate) use state::same_port;
pub use state::{PrRegistration, PrReservation, PrSnapshot, PrType};

use crate::cdb::{be16, Cdb, Decoded};
use crate::failure::Failure;
use crate::lun::LogicalUnit;
use crate::opcodes::{io, Handler};
use crate::sense::Sense;
use crate::target::Ctx;
use std::sync::Arc;

/// PERSISTENT RESERVE IN CDB (SPC-4 6.15.1): service action and ALLOCATION LENGTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrIn {
    pub service_action: u8,
    pub alloc_len: u16,
}

impl Cdb for PrIn {
    fn decode(cdb: &[u8]) -> Result<Self, Sense> {
        Ok(PrIn { service_action: cdb[1] & 0x1f, alloc_len: be16(cdb, 7) })
    }
}

/// PERSISTENT RESERVE OUT CDB (SPC-4 6.16.1): service action, SCOPE, TYPE, PARAMETER LIST LENGTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PrOut {
    pub service_action: u8,
    pub scope: u8,
    pub pr_type: u8,
    pub param_len: u32,
}

impl Cdb for PrOut {
    fn decode(cdb: &[u8]) -> Result<Self, Sense> {
        Ok(PrOut {
            service_action: cdb[1] & 0x1f,
            scope: cdb[2] >> 4,
            pr_type: cdb[2] & 0x0f,
            param_len: u32::from_be_bytes([cdb[5], cdb[6], cdb[7], cdb[8]]),
        })
    }

    fn decoded(&self) -> Decoded {
        Decoded::params(self.param_len)
    }
}

// These handlers fail with a `Failure` (RESERVATION CONFLICT is not a sense), which `io!`'s
// conversion of the error then leaves as it is.
#[allow(clippy::needless_question_mark)]
pub(crate) const PR_IN: Handler =
    io!(PrIn, |req, PrIn { service_action, alloc_len }| reserve_in(req.lu, service_action, alloc_len, req.data_in));
#[allow(clippy::needless_question_mark)]
pub(crate) const PR_OUT: Handler = io!(PrOut, |req, PrOut { service_action, scope, pr_type, param_len }| reserve_out(
    req.lu,
    req.ctx,
    pr_out::ProutCdb { service_action, scope, pr_type, param_len },
    req.data_out
));

/// The conflict check of every command on a logical unit (after decoding, SPC-4 5.12.1).
pub(crate) fn check(lu: &LogicalUnit, ctx: &Ctx<'_>, cdb: &[u8]) -> Result<(), Failure> {
    lu.persistent_reservations().check(&ctx.nexus.initiator_port, cdb)
}

/// PERSISTENT RESERVE IN. A shared state is read from the store first (off the command threads).
pub(crate) async fn reserve_in(
    lu: &Arc<LogicalUnit>,
    service_action: u8,
    alloc_len: u16,
    data_in: &mut Vec<u8>,
) -> Result<(), Failure> {
    let pr = lu.persistent_reservations();
    let unit = lu.clone();
    pr.off_runtime(move || unit.persistent_reservations().refresh()).await?;
    let ptpl_capable = pr.persistence().is_some() || pr.is_shared();
    let caps = pr_in::Capabilities { ptpl_capable, relative_port: lu.relative_target_port() };
    pr_in::reserve_in(&pr.snapshot(), caps, service_action, alloc_len, data_in)?;
    Ok(())
}

/// PERSISTENT RESERVE OUT: the change is computed and committed off the command threads (a shared
/// state waits for the store and the other servers), then this target's nexuses are told.
pub(crate) async fn reserve_out(
    lu: &Arc<LogicalUnit>,
    ctx: &Ctx<'_>,
    cdb: pr_out::ProutCdb,
    data_out: &[u8],
) -> Result<(), Failure> {
    let pr = lu.persistent_reservations();
    let me = ctx.nexus.initiator_port.clone();
    let aptpl_supported = pr.persistence().is_some() || pr.is_shared();
    let port = lu.relative_target_port();
    // Owned for the worker: a parameter list is a few dozen bytes (SPEC_I_PT's a few KiB at most,
    // bounded by what the transport accepted).
    let params = data_out.to_vec();
    let unit = lu.clone();
    let outcome = pr
        .off_runtime(move || {
            unit.persistent_reservations().update(
                |state| pr_out::reserve_out(state, &me, &cdb, &params, aptpl_supported, port),
                |outcome| PrEvents { notices: outcome.notices.clone(), aborted: outcome.aborted.clone() },
            )
        })
        .await?;
    // Unit attentions go to every nexus of each port named, never to the sender's own nexus.
    for nexus in ctx.target.nexuses() {
        if nexus.id == ctx.nexus.id {
            continue;
        }
        for (port, asc) in &outcome.notices {
            if state::same_port(port, &nexus.initiator_port) {
                nexus.unit_attentions.add(ctx.lun, *asc);
            }
        }
    }
    if !outcome.aborted.is_empty() {
        // SPC-4 5.12.11.2.6: the preempted nexuses lose their tasks on this LUN (aborted without a
        // response, TAS 0; see `Target::preempt_and_abort`).
        for nexus in ctx.target.nexuses() {
            if nexus.id == ctx.nexus.id || !outcome.aborted.iter().any(|p| state::same_port(p, &nexus.initiator_port)) {
                continue;
            }
            let aborted = ctx.target.preempt_and_abort(&nexus, ctx.lun);
            tracing::debug!(nexus = nexus.id, aborted, lun = ctx.lun, "PREEMPT AND ABORT");
        }
    }
    Ok(())
}
