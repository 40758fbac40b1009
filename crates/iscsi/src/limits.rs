//! Daemon-wide bounds on what initiators may hold: how many sessions (normal and discovery) exist at
//! once, how long an admitted write may wait for its Data-Out (`DEFAULT_DATA_OUT_TIMEOUT`,
//! enforced by `data_out::expire`), and how long a connection's socket may take no bytes while
//! the writer has replies for it (`DEFAULT_SEND_TIMEOUT`, enforced by the writer). Per-target bounds (MaxSessions, MaxConnections, MaxQueueCmd, segment and burst sizes) live in
//! the target's `TargetParams`; this is the one that spans every target.
//!
//! A session takes a `SessionSlot` when it is created and gives it back when it ends; a login that
//! finds no free slot is refused with status 0x0302 (out of resources, RFC 7143 11.13.5).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// tgtd's default for `--iscsi max_sessions=`: far above what one host serves in practice, low
/// enough that sessions cannot exhaust the descriptors tgtd raises its limit to.
pub const DEFAULT_MAX_SESSIONS: u32 = 4096;

/// tgtd's default for `--iscsi data_out_timeout=`: how long a write that holds write budget may go
/// without a Data-Out PDU before it is ended. Without it, an initiator that announces a write and
/// never sends its data holds the daemon's write budget, and every other writer's R2Ts, forever.
/// A live initiator answers an R2T in far less; this leaves room for a congested network.
pub const DEFAULT_DATA_OUT_TIMEOUT: Duration = Duration::from_secs(30);

/// tgtd's default for `--iscsi send_timeout=`: how long a connection's socket may accept no bytes
/// while its writer has replies to send before the connection is closed. Without it, an initiator
/// that sends READs and never reads its socket keeps the read budget its replies hold (and its out
/// queue) until its session ends, and other connections' large READs wait on it. A live initiator
/// drains its socket continuously; this leaves room for a congested network or a paused guest.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// A login that takes longer than this is abandoned (unless the registry says otherwise).
pub(crate) const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct SessionLimit {
    max: AtomicU32,
    count: Arc<AtomicU32>,
}

impl Default for SessionLimit {
    fn default() -> Self {
        SessionLimit { max: AtomicU32::new(DEFAULT_MAX_SESSIONS), count: Arc::new(AtomicU32::new(0)) }
    }
}

impl SessionLimit {
    /// Change the bound; sessions above a lowered bound go on, new ones wait for room.
    pub fn set_max(&self, max: u32) {
        self.max.store(max, Ordering::Release);
    }
    pub fn max(&self) -> u32 {
        self.max.load(Ordering::Acquire)
    }
    /// Sessions holding a slot now.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }
    /// Whether a new session would find room now (an early answer for a login; `reserve` decides).
    pub fn has_room(&self) -> bool {
        self.count() < self.max()
    }
    /// Take a slot, or None when `max` sessions exist.
    pub fn reserve(&self) -> Option<SessionSlot> {
        let max = self.max();
        self.count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1)).ok()?;
        Some(SessionSlot { count: self.count.clone() })
    }
}

/// One session's place under the daemon's bound; given back when dropped.
#[derive(Debug)]
pub struct SessionSlot {
    count: Arc<AtomicU32>,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back() {
        let limit = SessionLimit::default();
        limit.set_max(2);
        let a = limit.reserve().expect("first");
        let b = limit.reserve().expect("second");
        assert!(!limit.has_room());
        assert!(limit.reserve().is_none(), "a third session must be refused");
        drop(a);
        assert_eq!(limit.count(), 1);
        let c = limit.reserve().expect("room again after one ended");
        limit.set_max(1);
        assert!(limit.reserve().is_none(), "a lowered bound refuses new sessions");
        drop((b, c));
        assert_eq!(limit.count(), 0);
        assert!(limit.reserve().is_some());
    }
}
