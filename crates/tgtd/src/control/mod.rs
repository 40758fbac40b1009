//! The management socket server: receives `rtgt_mgmt::Request`s from tgtadm and applies them to the
//! `Daemon`. SKELETON.

use crate::Daemon;
use std::sync::Arc;
use tokio::net::UnixListener;

/// Serve management requests on `listener` until the daemon stops.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) {
    let _ = (listener, daemon);
    todo!()
}
