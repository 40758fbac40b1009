//! `--mode portal` (listen on one more address, or one less, at run time) and `--mode lld` (the
//! iSCSI driver, always running in rtgt).

use crate::Daemon;
use rtgt_mgmt::{ErrorCode, LldOp, LldTarget, LldView, MgmtError, PortalOp, PortalView, Reply};

/// rtgt serves every portal as one portal group.
const TPGT: u16 = 1;

pub(crate) fn apply(daemon: &Daemon, op: PortalOp) -> Result<Reply, MgmtError> {
    match op {
        PortalOp::Show => Ok(Reply::PortalList(
            daemon.iscsi.portals().into_iter().rev().map(|address| PortalView { address, tpgt: TPGT }).collect(),
        )),
        PortalOp::New { address } => {
            // A concrete port already served is a duplicate; port 0 always means "a new one".
            if address.port() != 0 && daemon.iscsi.portals().contains(&address) {
                return Err(MgmtError::with_message(ErrorCode::InvalidRequest, format!("portal {address} exists")));
            }
            // Management requests run on the blocking pool, outside the runtime's workers.
            let handle = tokio::runtime::Handle::try_current()
                .map_err(|_| MgmtError::with_message(ErrorCode::Unsupported, "no runtime to listen with"))?;
            handle.block_on(daemon.iscsi.listen(address)).map_err(|e| {
                MgmtError::with_message(ErrorCode::InvalidRequest, format!("cannot listen on {address}: {e}"))
            })?;
            Ok(Reply::Done)
        }
        PortalOp::Delete { address } => {
            if daemon.iscsi.unlisten(address) {
                Ok(Reply::Done)
            } else {
                Err(MgmtError::with_message(ErrorCode::InvalidRequest, format!("no portal {address}")))
            }
        }
    }
}

pub(crate) fn apply_lld(daemon: &Daemon, op: LldOp) -> Result<Reply, MgmtError> {
    match op {
        LldOp::Show => Ok(Reply::LldList(vec![
            LldView {
                name: "iscsi".to_string(),
                state: "ready".to_string(),
                targets: daemon
                    .targets
                    .iscsi_targets()
                    .iter()
                    .map(|t| LldTarget { tid: t.tid(), name: t.name().to_string() })
                    .collect(),
            },
            LldView {
                name: "vhost".to_string(),
                state: "ready".to_string(),
                targets: daemon
                    .targets
                    .vhost_targets()
                    .iter()
                    .map(|c| LldTarget { tid: c.target().tid, name: c.target().name.clone() })
                    .collect(),
            },
        ])),
        // As tgt 1.0.85: the driver runs from start-up, so starting it is a no-op, and it cannot be
        // stopped while the daemon runs ("this driver is busy").
        LldOp::Start => Ok(Reply::Done),
        LldOp::Stop => Err(MgmtError::with_message(
            ErrorCode::DriverActive,
            "the iSCSI driver stops with the daemon (system delete)",
        )),
    }
}
