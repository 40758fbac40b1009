//! The RBD part of /metrics (built with the `rbd` feature): for each LUN on an RBD image, the
//! latency and errors of librbd's calls by kind (`rtgt_backstore::rbd::op_stats`), labelled as the
//! LUN's own series are (tid, target, lun) plus the kind of call.

use super::collect::counter;
use crate::Daemon;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use rtgt_backstore::rbd::op_stats::{RbdOpSnapshot, RBD_LATENCY_BOUNDS_US};
use rtgt_backstore::Backstore;

type Labels = Vec<(&'static str, String)>;

fn rbd_luns(daemon: &Daemon) -> Vec<(Labels, Vec<RbdOpSnapshot>)> {
    let mut luns = Vec::new();
    for entry in daemon.targets.all() {
        for (lun, unit) in entry.scsi.luns() {
            if let Some(Backstore::Rbd(store)) = unit.store() {
                let labels = vec![
                    ("tid", entry.scsi.tid.to_string()),
                    ("target", entry.scsi.name.clone()),
                    ("lun", lun.to_string()),
                ];
                luns.push((labels, store.op_stats().snapshot()));
            }
        }
    }
    luns
}

fn with_op(labels: &Labels, op: &RbdOpSnapshot) -> Labels {
    let mut all = labels.clone();
    all.push(("op", op.op.name().to_string()));
    all
}

pub(super) fn encode(daemon: &Daemon, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    let luns = rbd_luns(daemon);
    let mut metric = encoder.encode_descriptor(
        "rtgt_rbd_op_latency_seconds",
        "Time from submitting a librbd call to its completion, by kind of call.",
        None,
        MetricType::Histogram,
    )?;
    for (labels, ops) in &luns {
        for op in ops {
            // The encoder wants each bucket's own count and sums them itself.
            let mut buckets = Vec::with_capacity(RBD_LATENCY_BOUNDS_US.len() + 1);
            let mut below = 0;
            for (&bound, &cumulative) in RBD_LATENCY_BOUNDS_US.iter().zip(op.cumulative.iter()) {
                buckets.push((bound as f64 / 1e6, cumulative - below));
                below = cumulative;
            }
            buckets.push((f64::INFINITY, op.count - below));
            metric.encode_family(&with_op(labels, op))?.encode_histogram::<NoLabelSet>(
                op.sum.as_secs_f64(),
                op.count,
                &buckets,
                None,
            )?;
        }
    }
    let mut metric = encoder.encode_descriptor(
        "rtgt_rbd_op_errors",
        "librbd calls that returned an error (a timeout, a blocklisted client, ...), by kind of call.",
        None,
        MetricType::Counter,
    )?;
    for (labels, ops) in &luns {
        for op in ops {
            counter(&mut metric, &with_op(labels, op), op.errors)?;
        }
    }
    Ok(())
}
