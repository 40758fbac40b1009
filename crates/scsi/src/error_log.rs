//! Rate limiting of backing-store failure logs: a failing disk under an initiator that retries
//! would otherwise write one line per command. The first failure of a unit is logged at once; after
//! that at most one line per `QUIET` period, carrying how many failures it stood for.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

/// Least time between two logged failures of one unit.
pub(crate) const QUIET: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_logged: Option<Instant>,
    /// Failures since the last logged one.
    suppressed: u64,
}

impl ErrorLog {
    /// Whether to log a failure that happens `now`: Some(number of failures left unlogged since
    /// the previous line), or None to stay quiet.
    pub(crate) fn admit(&self, now: Instant) -> Option<u64> {
        let mut s = self.state.lock();
        match s.last_logged {
            Some(at) if now.saturating_duration_since(at) < QUIET => {
                s.suppressed += 1;
                None
            }
            _ => {
                s.last_logged = Some(now);
                Some(std::mem::take(&mut s.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_one_line_then_one_per_quiet_period_with_the_count() {
        let log = ErrorLog::default();
        let t0 = Instant::now();
        assert_eq!(log.admit(t0), Some(0));
        for i in 1..=100 {
            assert_eq!(log.admit(t0 + Duration::from_millis(i * 10)), None);
        }
        assert_eq!(log.admit(t0 + QUIET), Some(100));
        assert_eq!(log.admit(t0 + QUIET + Duration::from_secs(1)), None);
        assert_eq!(log.admit(t0 + QUIET * 3), Some(1));
    }
}
