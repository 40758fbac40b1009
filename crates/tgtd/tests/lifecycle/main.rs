//! tgtd's life: start (foreground and daemonized), stop, refusals at start, and the saved
//! configuration restored after a restart or a crash.

// The shared support lives beside the test binaries (tests/common), not inside this folder.
#[path = "../common/mod.rs"]
mod common;

mod lifecycle;
mod metrics;
mod metrics_iscsi;
mod persistence;
