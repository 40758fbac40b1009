//! `tgtd --metrics ADDR:PORT`: Prometheus' text exposition at `GET /metrics`, off by default.
//!
//! The endpoint is its own task with its own small HTTP/1.0 responder (`http`), bounded so that no
//! scraper, slow or hostile, can hold more than a few connections or keep one past a timeout; the
//! data path never waits on it. What it reports is read from the daemon at each scrape (`collect`):
//! the SCSI core's per-unit counters cost the command path a few relaxed atomic adds.

pub mod collect;
pub mod http;
pub mod stats_view;

use crate::Daemon;
use std::sync::Arc;

/// Serve /metrics on `listener` until the daemon stops.
pub async fn serve(listener: tokio::net::TcpListener, daemon: Arc<Daemon>) {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(collect::DaemonCollector { daemon }));
    http::serve(listener, Arc::new(registry)).await
}
