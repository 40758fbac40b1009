//! iSCSI over TCP (RFC 7143): the PDU codec, login and negotiation, discovery, sessions and the full
//! feature phase, bridged to the SCSI core's `Target`.
//!
//! PUBLIC API CONTRACT used by tgtd (keep stable):
//! - `Registry` holds the iSCSI targets (`IscsiTarget`) by tid and the portals to advertise.
//! - `IscsiServer::new(Arc<Registry>)`, `server.listen(addr).await -> io::Result<SocketAddr>` binds a
//!   portal and serves it until `server.shutdown().await`, which asks every session to log out (or
//!   closes it) and waits briefly for in-flight commands.
//! - `IscsiTarget::sessions() -> Vec<SessionInfo>` for `tgtadm --op show`.
//!
//! Inside: `pdu` (framing), `text` and `negotiate` (keys), `login`, `connection` (reader and
//! dispatch) with `writer` (responses), `scsi_command`, `tmf`, `nop`, `logout`, `discovery`,
//! `session` and `window` (CmdSN), `registry`, `server`.

pub mod params;
pub mod pdu;
pub mod registry;
pub mod server;
pub mod text;

mod connection;
mod discovery;
mod login;
mod logout;
mod negotiate;
mod nop;
mod scsi_command;
mod session;
mod tmf;
mod window;
mod writer;

pub use params::{Digest, SessionParams, TargetParams};
pub use registry::{AclRule, ConnectionInfo, IscsiTarget, Registry, SessionInfo};
pub use server::IscsiServer;
