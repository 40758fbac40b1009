//! How much an image may have in flight inside librados when requests are dispatched inline.
//!
//! With `rbd_non_blocking_aio = false` (`dispatch=inline`, the default) librbd runs a request's
//! dispatch in the thread that submits it, a runtime worker, instead of queueing it for its own
//! thread: one thread wake-up less per command. librados then applies its throttles in that
//! thread too, and they block: past `objecter_inflight_ops` operations or
//! `objecter_inflight_op_bytes` bytes in flight, the submitting thread sleeps until others
//! complete, and with it every connection that worker serves. So the store admits requests
//! itself, asynchronously, and keeps well below both limits: a request waits as a future, never
//! as a thread.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The share of librados' throttles the store's requests may fill: the rest is left to librbd's
/// own traffic (header watch, locks, a write-around cache's requests still in flight after they
/// were acknowledged).
const SHARE_DIVISOR: u64 = 2;

/// Bytes are counted in units of this size, so that permits fit the semaphore's 32-bit counts.
const BYTE_UNIT: u64 = 1024;

/// librados' defaults, for a configuration that cannot be read.
pub(crate) const DEFAULT_INFLIGHT_OPS: u64 = 1024;
pub(crate) const DEFAULT_INFLIGHT_BYTES: u64 = 100 << 20;

/// The image's admission limits and what is in flight under them.
#[derive(Debug)]
pub(crate) struct InFlight {
    ops: Arc<Semaphore>,
    units: Arc<Semaphore>,
    ops_limit: u32,
    units_limit: u32,
    /// librbd splits a request at these boundaries: one object operation per piece.
    stripe_unit: u64,
}

/// What one request holds until librbd completed it (dropped with the request).
#[derive(Debug)]
pub(crate) struct Admitted {
    _ops: OwnedSemaphorePermit,
    _units: Option<OwnedSemaphorePermit>,
}

impl InFlight {
    /// Limits from librados' throttles (`objecter_inflight_ops`, `objecter_inflight_op_bytes`), less
    /// what a write-around cache may have in flight (`cache_bytes`), for an image whose requests
    /// split at `stripe_unit` bytes.
    pub(crate) fn new(objecter_ops: u64, objecter_bytes: u64, cache_bytes: u64, stripe_unit: u64) -> InFlight {
        let ops_limit = (objecter_ops / SHARE_DIVISOR).clamp(1, u64::from(u32::MAX >> 4)) as u32;
        let bytes = objecter_bytes.saturating_sub(cache_bytes) / SHARE_DIVISOR;
        let units_limit = (bytes / BYTE_UNIT).clamp(1, u64::from(u32::MAX >> 4)) as u32;
        InFlight {
            ops: Arc::new(Semaphore::new(ops_limit as usize)),
            units: Arc::new(Semaphore::new(units_limit as usize)),
            ops_limit,
            units_limit,
            stripe_unit: stripe_unit.max(512),
        }
    }

    /// The object operations a request over `len` bytes at `offset` becomes (one per stripe unit
    /// it touches), and the byte units of data it carries (`data`: reads and writes; discards and
    /// zeroing carry none). A request larger than the limits counts as the whole limit: it then
    /// goes alone, which is the best the store can do.
    fn cost(&self, offset: u64, len: u64, data: bool) -> (u32, u32) {
        let first = offset / self.stripe_unit;
        let last = offset.saturating_add(len.max(1) - 1) / self.stripe_unit;
        let ops = (last - first + 1).min(u64::from(self.ops_limit)) as u32;
        let units = if data { len.div_ceil(BYTE_UNIT).min(u64::from(self.units_limit)) as u32 } else { 0 };
        (ops, units)
    }

    /// Wait (as a future) until the request fits, then hold its share until the returned value is
    /// dropped. Operations first, then bytes, always in that order, so two requests never hold
    /// one each while waiting for the other.
    pub(crate) async fn admit(&self, offset: u64, len: u64, data: bool) -> Admitted {
        let (ops, units) = self.cost(offset, len, data);
        // The semaphores are never closed: acquiring cannot fail.
        let ops = self.ops.clone().acquire_many_owned(ops).await.expect("never closed");
        let units = match units {
            0 => None,
            n => Some(self.units.clone().acquire_many_owned(n).await.expect("never closed")),
        };
        Admitted { _ops: ops, _units: units }
    }

    #[cfg(test)]
    fn available(&self) -> (usize, usize) {
        (self.ops.available_permits(), self.units.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MIB: u64 = 1 << 20;

    #[test]
    fn limits_are_half_of_librados_less_the_cache() {
        let f = InFlight::new(1024, 100 * MIB, 24 * MIB, 4 * MIB);
        assert_eq!(f.ops_limit, 512);
        assert_eq!(f.units_limit as u64, 38 * MIB / BYTE_UNIT);
        // A cache as large as the throttle still leaves one unit.
        assert_eq!(InFlight::new(1, 10, 100, 4096).units_limit, 1);
    }

    #[test]
    fn a_request_costs_one_operation_per_stripe_unit_it_touches() {
        let f = InFlight::new(1024, 100 * MIB, 0, 4 * MIB);
        assert_eq!(f.cost(0, 4096, true), (1, 4));
        assert_eq!(f.cost(4 * MIB - 512, 1024, true), (2, 1));
        assert_eq!(f.cost(0, 8 * MIB, true), (2, 8192));
        assert_eq!(f.cost(MIB, 8 * MIB, false), (3, 0));
        // Larger than every limit: the whole limit, never more.
        assert_eq!(f.cost(0, 1 << 40, true), (512, f.units_limit));
    }

    #[tokio::test]
    async fn requests_wait_as_futures_until_earlier_ones_complete() {
        let f = Arc::new(InFlight::new(4, 8 * BYTE_UNIT * SHARE_DIVISOR, 0, 4 * MIB));
        let a = f.admit(0, 4 * BYTE_UNIT, true).await;
        let b = f.admit(0, 4 * BYTE_UNIT, true).await;
        assert_eq!(f.available(), (0, 0));
        // No room: the third waits, without blocking the thread (this test runs on one thread).
        let waiting = tokio::spawn({
            let f = f.clone();
            async move { f.admit(0, 4 * BYTE_UNIT, true).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(a);
        let c = tokio::time::timeout(Duration::from_secs(2), waiting).await.unwrap().unwrap();
        drop((b, c));
        assert_eq!(f.available(), (2, 8));
    }

    #[tokio::test]
    async fn a_request_over_the_limit_still_goes_alone() {
        let f = InFlight::new(4, 8 * BYTE_UNIT * SHARE_DIVISOR, 0, 4096);
        let huge = tokio::time::timeout(Duration::from_secs(2), f.admit(0, 1 << 30, true)).await.unwrap();
        assert_eq!(f.available(), (0, 0));
        drop(huge);
        assert_eq!(f.available(), (2, 8));
    }

    #[tokio::test]
    async fn discards_count_operations_only() {
        let f = InFlight::new(64, 8 * BYTE_UNIT * SHARE_DIVISOR, 0, 4096);
        let d = f.admit(0, 16 * 4096, false).await;
        assert_eq!(f.available(), (16, 8));
        drop(d);
    }
}
