//! Portals: accept loops, one task per connection, and shutdown.
//! SKELETON.

use crate::Registry;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug)]
pub struct IscsiServer {
    pub registry: Arc<Registry>,
}

impl IscsiServer {
    pub fn new(registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(IscsiServer { registry })
    }
    /// Bind a portal and serve it in the background; returns the bound address (port 0 resolved).
    pub async fn listen(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let _ = addr;
        todo!()
    }
    /// Stop accepting, ask every session to log out, close what remains.
    pub async fn shutdown(&self) {
        todo!()
    }
}
