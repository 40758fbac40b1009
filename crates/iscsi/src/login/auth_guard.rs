//! Server-wide defences around CHAP: the challenges seen recently (ours and the initiators'), so
//! that a challenge reflected from another connection or replayed is refused, and the throttle that
//! delays the answer to repeated authentication failures from one address. Both are bounded.

use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How many challenges are remembered.
const RECENT_CHALLENGES: usize = 4096;

/// Challenges seen lately, kept as digests (a fixed 16 bytes each, whatever the challenge length).
#[derive(Debug, Default)]
pub(crate) struct RecentChallenges {
    inner: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    order: VecDeque<[u8; 16]>,
    set: HashSet<[u8; 16]>,
}

impl RecentChallenges {
    /// Record a challenge; false when it was already there.
    pub fn remember(&self, challenge: &[u8]) -> bool {
        let d = Sha256::digest(challenge);
        let mut key = [0u8; 16];
        key.copy_from_slice(&d[..16]);
        let mut r = self.inner.lock();
        if !r.set.insert(key) {
            return false;
        }
        r.order.push_back(key);
        if r.order.len() > RECENT_CHALLENGES {
            if let Some(old) = r.order.pop_front() {
                r.set.remove(&old);
            }
        }
        true
    }
}

/// Failures older than this are forgotten.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// The longest delay before a failure answer.
const MAX_DELAY: Duration = Duration::from_secs(8);
/// Addresses tracked at once; past this the stalest are dropped.
const MAX_TRACKED: usize = 4096;

/// Delays the answer to repeated authentication failures from one address: none for the first,
/// then 1 s, 2 s, 4 s, up to 8 s, forgotten after a minute without failures. Keyed by address, not
/// by initiator name, since the name is whatever the client claims.
#[derive(Debug, Default)]
pub(crate) struct FailureThrottle {
    inner: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailureThrottle {
    /// Count a failure from `ip` and return how long to wait before answering it.
    pub fn failure(&self, ip: IpAddr) -> Duration {
        self.failure_at(ip, Instant::now())
    }

    fn failure_at(&self, ip: IpAddr, now: Instant) -> Duration {
        let mut m = self.inner.lock();
        if m.len() >= MAX_TRACKED && !m.contains_key(&ip) {
            m.retain(|_, (_, last)| now.duration_since(*last) < FAILURE_WINDOW);
            if m.len() >= MAX_TRACKED {
                if let Some(oldest) = m.iter().min_by_key(|(_, (_, last))| *last).map(|(k, _)| *k) {
                    m.remove(&oldest);
                }
            }
        }
        let e = m.entry(ip).or_insert((0, now));
        if now.duration_since(e.1) >= FAILURE_WINDOW {
            e.0 = 0;
        }
        e.0 = e.0.saturating_add(1);
        e.1 = now;
        delay_for(e.0)
    }
}

fn delay_for(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let secs = 1u64 << (failures - 2).min(3);
    Duration::from_secs(secs).min(MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_are_remembered_and_bounded() {
        let r = RecentChallenges::default();
        assert!(r.remember(b"one"));
        assert!(!r.remember(b"one"));
        for i in 0..RECENT_CHALLENGES as u32 {
            assert!(r.remember(&i.to_be_bytes()));
        }
        // "one" was the oldest and has been pushed out.
        assert!(r.remember(b"one"));
        assert_eq!(r.inner.lock().order.len(), RECENT_CHALLENGES);
    }

    #[test]
    fn delays_grow_then_cap_then_reset() {
        let t = FailureThrottle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        let t0 = Instant::now();
        let secs: Vec<u64> = (0..6).map(|i| t.failure_at(ip, t0 + Duration::from_secs(i)).as_secs()).collect();
        assert_eq!(secs, vec![0, 1, 2, 4, 8, 8]);
        assert_eq!(t.failure_at(other, t0), Duration::ZERO);
        // A quiet minute forgets the count.
        assert_eq!(t.failure_at(ip, t0 + Duration::from_secs(5 + 60)), Duration::ZERO);
    }

    #[test]
    fn tracked_addresses_are_bounded() {
        let t = FailureThrottle::default();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 10) {
            t.failure_at(IpAddr::from(i.to_be_bytes()), t0);
        }
        assert!(t.inner.lock().len() <= MAX_TRACKED);
    }
}
