//! `tgtd --metrics ADDR:PORT`: Prometheus' text exposition at `GET /metrics`, off by default.
//!
//! The endpoint is its own task with its own small HTTP/1.0 responder (`http`), bounded so that no
//! scraper, slow or hostile, can hold more than a few connections or keep one past a timeout; the
//! data path never waits on it. What it reports is read from the daemon at each scrape (`collect`):
//! the SCSI core's per-unit counters cost the command path a few relaxed atomic adds.

pub mod collect;
pub mod http;
#[cfg(feature = "rbd")]
mod rbd;
pub mod stats_view;
mod targets;

use crate::Daemon;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What the daemon itself counts (the SCSI core counts per unit, the iSCSI registry its sessions).
#[derive(Debug, Default)]
pub struct DaemonCounters {
    management_ok: AtomicU64,
    management_refused: AtomicU64,
}

impl DaemonCounters {
    /// One management request answered, done or refused.
    pub fn management_request(&self, done: bool) {
        let counter = if done { &self.management_ok } else { &self.management_refused };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// (done, refused) so far.
    pub fn management_requests(&self) -> (u64, u64) {
        (self.management_ok.load(Ordering::Relaxed), self.management_refused.load(Ordering::Relaxed))
    }
}

/// Serve /metrics on `listener` until the daemon stops.
pub async fn serve(listener: tokio::net::TcpListener, daemon: Arc<Daemon>) {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(collect::DaemonCollector { daemon }));
    http::serve(listener, Arc::new(registry)).await
}
