//! What librbd's operations cost, per image: for each kind of aio call, how many completed, how
//! many failed and how long they took (from submission to the completion's return value), so an
//! operator can tell a slow cluster from a slow target. Read by tgtd's /metrics.
//!
//! Recorded once per librbd call with relaxed atomics; an RBD operation is a network round trip
//! to the OSDs, so sharding these (as the SCSI core's per-LUN counters are) would buy nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The librbd calls the store makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RbdOp {
    Read,
    Write,
    Flush,
    /// rbd_aio_discard and rbd_aio_write_zeroes.
    Discard,
    WriteSame,
    CompareAndWrite,
}

impl RbdOp {
    pub const ALL: [RbdOp; 6] =
        [RbdOp::Read, RbdOp::Write, RbdOp::Flush, RbdOp::Discard, RbdOp::WriteSame, RbdOp::CompareAndWrite];

    pub fn name(self) -> &'static str {
        match self {
            RbdOp::Read => "read",
            RbdOp::Write => "write",
            RbdOp::Flush => "flush",
            RbdOp::Discard => "discard",
            RbdOp::WriteSame => "write_same",
            RbdOp::CompareAndWrite => "compare_and_write",
        }
    }
}

/// Upper bounds of the latency buckets, in microseconds: 100 µs (a cache hit) to 30 s (past
/// librbd's default operation timeout).
pub const RBD_LATENCY_BOUNDS_US: [u64; 14] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 5_000_000, 30_000_000];

#[derive(Debug, Default)]
struct OpCounters {
    /// Each bucket its own range; the last is above every bound.
    buckets: [AtomicU64; RBD_LATENCY_BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
    errors: AtomicU64,
}

#[derive(Debug, Default)]
pub struct RbdOpStats {
    ops: [OpCounters; RbdOp::ALL.len()],
}

/// One kind of operation as read: `cumulative[i]` took at most `RBD_LATENCY_BOUNDS_US[i]`;
/// `count` is every completion, failed ones included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbdOpSnapshot {
    pub op: RbdOp,
    pub cumulative: [u64; RBD_LATENCY_BOUNDS_US.len()],
    pub count: u64,
    pub sum: Duration,
    pub errors: u64,
}

impl RbdOpStats {
    /// An operation of kind `op` completed after `elapsed`; `failed` when librbd returned an error.
    pub fn record(&self, op: RbdOp, elapsed: Duration, failed: bool) {
        let c = &self.ops[op as usize];
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        c.buckets[RBD_LATENCY_BOUNDS_US.partition_point(|&b| b < us)].fetch_add(1, Ordering::Relaxed);
        c.sum_ns.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
        if failed {
            c.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Vec<RbdOpSnapshot> {
        RbdOp::ALL
            .iter()
            .map(|&op| {
                let c = &self.ops[op as usize];
                let mut cumulative = [0u64; RBD_LATENCY_BOUNDS_US.len()];
                let mut running = 0;
                for (slot, bucket) in cumulative.iter_mut().zip(c.buckets.iter()) {
                    running += bucket.load(Ordering::Relaxed);
                    *slot = running;
                }
                RbdOpSnapshot {
                    op,
                    cumulative,
                    count: running + c.buckets[RBD_LATENCY_BOUNDS_US.len()].load(Ordering::Relaxed),
                    sum: Duration::from_nanos(c.sum_ns.load(Ordering::Relaxed)),
                    errors: c.errors.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_latency_and_errors_per_op() {
        let s = RbdOpStats::default();
        s.record(RbdOp::Write, Duration::from_micros(100), false);
        s.record(RbdOp::Write, Duration::from_millis(3), true);
        s.record(RbdOp::Flush, Duration::from_secs(60), true);
        let snap = s.snapshot();
        let write = snap.iter().find(|o| o.op == RbdOp::Write).unwrap();
        assert_eq!((write.count, write.errors, write.cumulative[0]), (2, 1, 1));
        // 3 ms is above 2.5 ms, within 5 ms.
        assert_eq!((write.cumulative[4], write.cumulative[5]), (1, 2));
        assert_eq!(write.sum, Duration::from_micros(3100));
        let flush = snap.iter().find(|o| o.op == RbdOp::Flush).unwrap();
        assert_eq!((flush.count, flush.errors, flush.cumulative[RBD_LATENCY_BOUNDS_US.len() - 1]), (1, 1, 0));
        assert_eq!(snap.iter().find(|o| o.op == RbdOp::Read).unwrap().count, 0);
    }
}
