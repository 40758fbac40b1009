//! The rtgt daemon as a library: the running state (`Daemon`), the management socket server, and
//! start-up helpers. `main.rs` is a thin shell around it, and the integration tests in `tests/` drive
//! the real binary.

pub mod control;
pub mod daemon;
pub mod isns;
pub mod metrics;
pub mod pr_state;
#[cfg(feature = "rbd")]
mod rbd_gateway;
pub mod sanitize_journal;
pub mod state;
pub mod targets;
pub mod vhost;

pub use daemon::Daemon;
#[cfg(feature = "rbd")]
pub use rbd_gateway::resets::set_peer_event_delay;
