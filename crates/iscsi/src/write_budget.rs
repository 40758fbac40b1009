//! The budget of write data one connection may hold in memory: data received for writes that have
//! not finished yet (still collecting their Data-Out, or running). The target decides how much data
//! it asks for with R2Ts (RFC 7143 10.8), so it paces writes by withholding their R2Ts: a write is
//! admitted to R2Ts only when its whole transfer fits in what is left of the budget. Immediate and
//! unsolicited data arrive unasked; they are counted but cannot be refused (FirstBurstLength bounds
//! them per command). Without this, every command of the CmdSN window could announce a large
//! transfer and have the target buffer all of it at once.

use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::Notify;

/// Write data one connection may hold before new writes wait for their R2Ts: room for a full
/// MAXIMUM TRANSFER LENGTH (64 MiB) write, or many ordinary ones, at a bounded cost per connection.
/// A well-behaved initiator only sees its R2Ts come later, never an error.
pub(crate) const WRITE_DATA_BUDGET: u64 = 64 << 20;

#[derive(Debug, Default)]
struct State {
    /// Bytes reserved by live reservations.
    used: u64,
    /// Reservations admitted to R2Ts and still alive.
    admitted: usize,
}

/// One connection's budget; shared with the tasks that run its writes.
#[derive(Debug)]
pub(crate) struct WriteBudget {
    limit: u64,
    state: Mutex<State>,
    freed: Notify,
}

/// Bytes held against a budget until the write that reserved them is done with its data.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<WriteBudget>,
    bytes: u64,
    admitted: bool,
}

impl WriteBudget {
    pub fn new(limit: u64) -> Arc<WriteBudget> {
        Arc::new(WriteBudget { limit, state: Mutex::new(State::default()), freed: Notify::new() })
    }

    /// Count data that comes unasked (immediate and unsolicited data): it is never refused.
    pub fn unasked(self: &Arc<Self>, bytes: u64) -> Reservation {
        // Most commands carry no data-out (READs): they cost no lock.
        if bytes > 0 {
            self.state.lock().used += bytes;
        }
        Reservation { budget: self.clone(), bytes, admitted: false }
    }

    /// Grow `r` to `total` bytes and admit it to R2Ts, if the growth fits in the budget. A write
    /// is also admitted, whatever its size, when no other write is: then one always progresses,
    /// even when unsolicited data alone has used the budget up.
    pub fn admit(&self, r: &mut Reservation, total: u64) -> bool {
        if r.admitted {
            return true;
        }
        let more = total.saturating_sub(r.bytes);
        let mut s = self.state.lock();
        if s.admitted > 0 && s.used + more > self.limit {
            return false;
        }
        s.used += more;
        s.admitted += 1;
        r.bytes += more;
        r.admitted = true;
        true
    }

    pub fn used(&self) -> u64 {
        self.state.lock().used
    }

    /// Resolves after a reservation was released (a permit is kept if nobody waited).
    pub async fn freed(&self) {
        self.freed.notified().await
    }
}

impl Reservation {
    pub fn is_admitted(&self) -> bool {
        self.admitted
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes == 0 && !self.admitted {
            return;
        }
        let mut s = self.budget.state.lock();
        s.used -= self.bytes;
        if self.admitted {
            s.admitted -= 1;
        }
        drop(s);
        self.budget.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn writes_are_admitted_while_they_fit() {
        let b = WriteBudget::new(64 * MIB);
        let mut first = b.unasked(0);
        let mut second = b.unasked(0);
        let mut third = b.unasked(0);
        assert!(b.admit(&mut first, 40 * MIB));
        assert!(b.admit(&mut second, 24 * MIB));
        // The budget is full: a third write waits, even a small one.
        assert!(!b.admit(&mut third, 512));
        assert_eq!(b.used(), 64 * MIB);
        drop(first);
        assert_eq!(b.used(), 24 * MIB);
        assert!(b.admit(&mut third, 40 * MIB));
        assert!(third.is_admitted());
        drop((second, third));
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn unasked_data_counts_and_is_part_of_the_transfer() {
        let b = WriteBudget::new(64 * MIB);
        let mut w = b.unasked(MIB);
        assert_eq!(b.used(), MIB);
        // The transfer is 8 MiB in all, of which 1 MiB came unsolicited.
        assert!(b.admit(&mut w, 8 * MIB));
        assert_eq!(b.used(), 8 * MIB);
        // Admitting again takes nothing more.
        assert!(b.admit(&mut w, 8 * MIB));
        assert_eq!(b.used(), 8 * MIB);
        drop(w);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn one_write_always_progresses() {
        let b = WriteBudget::new(64 * MIB);
        // Unsolicited data of waiting writes has filled the budget; nothing is admitted.
        let waiting: Vec<Reservation> = (0..80).map(|_| b.unasked(MIB)).collect();
        let mut big = b.unasked(0);
        assert!(b.admit(&mut big, 64 * MIB), "with no write admitted, one goes ahead");
        let mut next = b.unasked(0);
        assert!(!b.admit(&mut next, MIB));
        drop(big);
        assert!(b.admit(&mut next, MIB));
        drop((waiting, next));
        assert_eq!(b.used(), 0);
    }

    #[tokio::test]
    async fn release_wakes_the_waiter() {
        let b = WriteBudget::new(MIB);
        let mut r = b.unasked(0);
        assert!(b.admit(&mut r, MIB));
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.freed().await }
        });
        tokio::task::yield_now().await;
        drop(r);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await.unwrap().unwrap();
    }
}
