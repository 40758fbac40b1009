//! iSCSI over TCP (RFC 7143): the PDU codec, login and negotiation, discovery, sessions and the full
//! feature phase, bridged to the SCSI core's `Target`.
//!
//! PUBLIC API CONTRACT used by tgtd (keep stable):
//! - `Registry` holds the iSCSI targets (`IscsiTarget`) by tid and the portals to advertise.
//! - `IscsiServer::new(Arc<Registry>)`, `server.listen(addr).await -> io::Result<SocketAddr>` binds a
//!   portal and serves it until `server.shutdown().await`, which asks every session to log out (or
//!   closes it) and waits briefly for in-flight commands.
//! - `IscsiTarget::sessions() -> Vec<SessionInfo>` for `tgtadm --op show`; `close_session(tsih)`
//!   and `close_connection(tsih, cid)` force them out.
//! - CHAP accounts: `Registry::{add_account, delete_account, accounts, account}`;
//!   `IscsiTarget::{bind_account, unbind_account, accounts}` (the caller checks the account exists);
//!   discovery sessions: `Registry::{bind_discovery_account, unbind_discovery_account,
//!   discovery_accounts}` (tgt's tid 0, kept apart because tid 0 may be a real target here).
//! - `Registry::set_offline(bool)` / `is_offline()`: offline refuses new logins (status 0x0301);
//!   `IscsiTarget::set_offline(bool)` / `is_offline()` does the same for one target.
//! - `IscsiTarget::set_nop(NopParams)` / `nop()`: NOP-In probing of idle connections (tgt's
//!   nop_interval and nop_count), read by each connection when it enters full feature phase.
//! - `IscsiServer::unlisten(addr) -> bool` stops one portal; `IscsiServer::portals()` lists them.
//! - `Registry::set_login_timeout(Duration)` / `login_timeout()`: how long a login may take before
//!   the connection is dropped (default 30 s).
//! - `Registry::set_data_out_timeout(Duration)` / `data_out_timeout()`: how long a write holding
//!   write budget may go without Data-Out before it ends with INITIATOR RESPONSE TIMEOUT (default 30 s).
//! - `Registry::set_send_timeout(Duration)` / `send_timeout()`: how long a connection's socket may
//!   accept no bytes while replies wait for it before the connection is closed (default 30 s).
//! - `Registry::set_read_budget(bytes)` / `read_budget()` / `read_data_held()` /
//!   `read_budget_waits()`: the daemon-wide bound on read data held until it is sent.
//! - `Registry::set_max_sessions(n)` / `max_sessions()` / `session_count()`: the daemon-wide bound on
//!   sessions (logins past it get 0x0302); a target's own bound is its `MaxSessions` parameter.
//! - `IscsiTarget::counters()` / `Registry::untargeted_counters()`: logins accepted and refused by
//!   reason, CHAP failures, digest errors, Rejects and send timeouts (`counters`), for /metrics;
//!   `Registry::write_budget_waits()`: writes whose R2Ts waited for budget.
//!
//! Inside, one folder per phase of a connection's life: `pdu/` (framing); `login/` (the state
//! machine, `negotiate` for keys, `auth` with `chap` and `auth_guard` for the security stage,
//! `establish` for creating, reinstating or joining the session); `session/` (the session, its
//! CmdSN `window`, its `teardown`, and the `info` tgtadm shows; a session reaches its target only
//! through `TargetSessions`, so `registry` depends on `session` and not the other way); `full_feature/` (the reader and dispatch over one
//! `connection`, one handler per request: `scsi_command`, `data_out` with its own `state`, `tmf`,
//! `discovery` (Text), `nop`, `logout`; `execute` runs a command, `sense` builds the sense data iSCSI
//! answers with itself). Beside them: `text` (key=value), `params`, `limits`, `accounts`,
//! `registry`, `counters` (what monitoring reads), `server`, `writer` (responses) with `outgoing` (what is queued), `out_queue`, `send_timeout`, `write_budget` and `read_budget`.

pub mod accounts;
pub mod counters;
pub mod limits;
pub mod params;
pub mod pdu;
pub mod read_budget;
pub mod registry;
pub mod server;
pub mod text;
pub mod write_budget;

mod full_feature;
#[doc(hidden)]
pub mod fuzzing;
mod login;
mod out_queue;
mod outgoing;
mod send_timeout;
mod session;
pub mod splice;
mod writer;

pub use accounts::{AccountError, AccountInfo, BoundAccounts};
pub use login::chap;
pub use params::{Digest, SessionParams, TargetParams};
pub use registry::{AclRule, ConnectionInfo, IscsiTarget, Registry, SessionInfo, TargetVisibility};
pub use server::IscsiServer;
