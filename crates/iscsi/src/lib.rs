//! iSCSI over TCP (RFC 7143): the PDU codec, login and negotiation, discovery, sessions and the full
//! feature phase, bridged to the SCSI core's `Target`.
//!
//! PUBLIC API CONTRACT used by tgtd (keep stable):
//! - `Registry` holds the iSCSI targets (`IscsiTarget`) by tid and the portals to advertise.
//! - `IscsiServer::new(Arc<Registry>)`, `server.listen(addr).await -> io::Result<SocketAddr>` binds a
//!   portal and serves it until `server.shutdown().await`, which asks every session to log out (or
//!   closes it) and waits briefly for in-flight commands.
//! - `IscsiTarget::sessions() -> Vec<SessionInfo>` for `tgtadm --op show`.

pub mod pdu;
pub mod params;
pub mod registry;
pub mod server;

pub use params::{Digest, SessionParams};
pub use registry::{AclRule, IscsiTarget, Registry, SessionInfo, ConnectionInfo};
pub use server::IscsiServer;
