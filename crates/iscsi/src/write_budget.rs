//! The budget of write data the target holds in memory: data received for writes that have not
//! finished yet (still collecting their Data-Out, or running), per connection and for the whole
//! daemon. The target decides how much data it asks for with R2Ts (RFC 7143 10.8), so it paces
//! writes by withholding their R2Ts: a write is admitted to R2Ts only when its whole transfer fits
//! in what is left of its connection's budget and of the daemon's. Immediate and unsolicited data
//! arrive unasked; they are counted but cannot be refused (FirstBurstLength bounds them per
//! command). Without this, every command of the CmdSN window could announce a large transfer and
//! have the target buffer all of it at once, and many connections could each do so.

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;

/// Write data one connection may hold before new writes wait for their R2Ts: room for a full
/// MAXIMUM TRANSFER LENGTH (64 MiB) write, or many ordinary ones, at a bounded cost per connection.
/// A well-behaved initiator only sees its R2Ts come later, never an error.
pub(crate) const WRITE_DATA_BUDGET: u64 = 64 << 20;

/// tgtd's default for `--iscsi write_budget=`: the write data all connections together may hold
/// (sixteen connections' full budgets).
pub const DEFAULT_DAEMON_WRITE_BUDGET: u64 = 1 << 30;

#[derive(Debug, Default)]
struct State {
    /// Bytes reserved by live reservations.
    used: u64,
    /// Reservations admitted to R2Ts and still alive.
    admitted: usize,
}

impl State {
    /// Whether `more` bytes may be admitted under `limit`: when they fit, or when no write is
    /// admitted at all (then one always progresses, even when unsolicited data alone has used the
    /// budget up, or the write is larger than the budget).
    fn fits(&self, more: u64, limit: u64) -> bool {
        self.admitted == 0 || self.used + more <= limit
    }

    fn admit(&mut self, more: u64) {
        self.used += more;
        self.admitted += 1;
    }

    /// A reservation of `bytes` (admitted or not) is given back.
    fn release(&mut self, bytes: u64, admitted: bool) {
        self.used -= bytes;
        if admitted {
            self.admitted -= 1;
        }
    }
}

/// The daemon's bytes held and writes admitted, packed in one word so that one compare-and-swap
/// keeps both exact (see `DaemonWriteBudget`): the low `ADMITTED_BITS` bits count admitted
/// reservations, the rest are bytes.
const ADMITTED_BITS: u32 = 20;
const ADMITTED_ONE: u64 = 1;
const BYTE_ONE: u64 = 1 << ADMITTED_BITS;

fn packed_bytes(word: u64) -> u64 {
    word >> ADMITTED_BITS
}

fn packed_admitted(word: u64) -> u64 {
    word & (BYTE_ONE - 1)
}

/// The daemon's budget, shared by every connection's. It is the one piece of write accounting
/// every connection touches, so its hot path takes no lock: the bytes held and the admitted count
/// are one atomic word. Only a write the daemon's budget refuses takes the `waiting` lock, to be
/// woken when some write anywhere gives its data back.
#[derive(Debug)]
pub struct DaemonWriteBudget {
    limit: AtomicU64,
    held: AtomicU64,
    /// Set while `waiting` is not empty, so releases skip the lock when nobody waits.
    any_waiting: AtomicBool,
    /// Connections with a write refused here, woken when any write gives its data back.
    waiting: Mutex<Vec<Weak<WriteBudget>>>,
    /// Writes whose R2Ts had to wait, by the budget that first refused them: the connection's, the
    /// daemon's. Each write counts once, however often it is tried again.
    waits: [AtomicU64; 2],
}

impl Default for DaemonWriteBudget {
    fn default() -> Self {
        DaemonWriteBudget {
            limit: AtomicU64::new(DEFAULT_DAEMON_WRITE_BUDGET),
            held: AtomicU64::new(0),
            any_waiting: AtomicBool::new(false),
            waiting: Mutex::new(Vec::new()),
            waits: Default::default(),
        }
    }
}

impl DaemonWriteBudget {
    /// Change the bound; data held above a lowered bound is not taken back, new writes wait. A
    /// raised bound lets the writes it refused try again at once, not at the next release.
    pub fn set_limit(&self, bytes: u64) {
        self.limit.store(bytes, Ordering::SeqCst);
        self.wake_waiting();
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Acquire)
    }

    pub fn used(&self) -> u64 {
        packed_bytes(self.held.load(Ordering::Acquire))
    }

    /// Count bytes that arrived unasked (never refused).
    fn add_unasked(&self, bytes: u64) {
        self.held.fetch_add(bytes * BYTE_ONE, Ordering::SeqCst);
    }

    /// Admit `more` bytes if they fit (`State::fits`'s rule, on the daemon's totals).
    fn try_admit(&self, more: u64) -> bool {
        let limit = self.limit();
        let mut word = self.held.load(Ordering::SeqCst);
        loop {
            let fits = packed_admitted(word) == 0 || packed_bytes(word) + more <= limit;
            if !fits {
                return false;
            }
            match self.held.compare_exchange_weak(
                word,
                word + more * BYTE_ONE + ADMITTED_ONE,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
    }

    /// Admit `more` bytes for `conn`, or leave `conn` to be woken by the next release anywhere.
    fn admit_or_wait(&self, conn: &Arc<WriteBudget>, more: u64) -> bool {
        if self.try_admit(more) {
            return true;
        }
        self.waiting.lock().push(Arc::downgrade(conn));
        self.any_waiting.store(true, Ordering::SeqCst);
        // A release between the refusal and the flag saw nobody waiting and woke nobody: look
        // again now the flag is up (the releaser updates `held` before it reads the flag, both
        // SeqCst, so one of the two sees the other). A write admitted here leaves a stale entry
        // in `waiting`, which only costs that connection one spurious look at its queue.
        self.try_admit(more)
    }

    /// A reservation of `bytes` (admitted or not) is given back; wakes the connections waiting.
    fn release(&self, bytes: u64, admitted: bool) {
        let delta = bytes * BYTE_ONE + if admitted { ADMITTED_ONE } else { 0 };
        self.held.fetch_sub(delta, Ordering::SeqCst);
        self.wake_waiting();
    }

    /// Wake the connections with a write this budget refused, so they try again.
    fn wake_waiting(&self) {
        if !self.any_waiting.load(Ordering::SeqCst) {
            return;
        }
        let waiting = {
            let mut w = self.waiting.lock();
            self.any_waiting.store(false, Ordering::SeqCst);
            std::mem::take(&mut *w)
        };
        for other in waiting.iter().filter_map(Weak::upgrade) {
            other.freed.notify_one();
        }
    }

    /// Writes that waited for their R2Ts so far: (for their connection's budget, for the daemon's).
    pub fn waits(&self) -> (u64, u64) {
        (self.waits[0].load(Ordering::Relaxed), self.waits[1].load(Ordering::Relaxed))
    }

    fn count_wait(&self, r: &mut Reservation, daemons: bool) {
        if !r.waited {
            r.waited = true;
            self.waits[usize::from(daemons)].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One connection's budget; shared with the tasks that run its writes.
#[derive(Debug)]
pub(crate) struct WriteBudget {
    limit: u64,
    state: Mutex<State>,
    freed: Notify,
    daemon: Arc<DaemonWriteBudget>,
}

/// Bytes held against a connection's budget and the daemon's until the write that reserved them
/// is done with its data.
#[derive(Debug)]
pub(crate) struct Reservation {
    budget: Arc<WriteBudget>,
    bytes: u64,
    admitted: bool,
    /// Refused at least once (counted in `DaemonWriteBudget::waits`).
    waited: bool,
}

impl WriteBudget {
    pub fn new(limit: u64, daemon: Arc<DaemonWriteBudget>) -> Arc<WriteBudget> {
        Arc::new(WriteBudget { limit, state: Mutex::new(State::default()), freed: Notify::new(), daemon })
    }

    /// Count data that comes unasked (immediate and unsolicited data): it is never refused.
    pub fn unasked(self: &Arc<Self>, bytes: u64) -> Reservation {
        // Most commands carry no data-out (READs): they cost no lock.
        if bytes > 0 {
            self.state.lock().used += bytes;
            self.daemon.add_unasked(bytes);
        }
        Reservation { budget: self.clone(), bytes, admitted: false, waited: false }
    }

    /// Grow `r` to `total` bytes and admit it to R2Ts, if the growth fits in this connection's
    /// budget and in the daemon's (see `State::fits`). A write refused by the daemon's budget is
    /// tried again when a write anywhere gives its data back (`freed` resolves).
    pub fn admit(self: &Arc<Self>, r: &mut Reservation, total: u64) -> bool {
        if r.admitted {
            return true;
        }
        let more = total.saturating_sub(r.bytes);
        let mut mine = self.state.lock();
        if !mine.fits(more, self.limit) {
            drop(mine);
            self.daemon.count_wait(r, false);
            return false;
        }
        if !self.daemon.admit_or_wait(self, more) {
            drop(mine);
            self.daemon.count_wait(r, true);
            return false;
        }
        mine.admit(more);
        r.bytes += more;
        r.admitted = true;
        true
    }

    pub fn used(&self) -> u64 {
        self.state.lock().used
    }

    /// Resolves after a reservation of this connection was released, or one anywhere while this
    /// connection had a write refused by the daemon's budget (a permit is kept if nobody waited).
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
        let budget = &self.budget;
        budget.state.lock().release(self.bytes, self.admitted);
        budget.daemon.release(self.bytes, self.admitted);
        budget.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn writes_are_admitted_while_they_fit() {
        let b = WriteBudget::new(64 * MIB, Default::default());
        let mut first = b.unasked(0);
        let mut second = b.unasked(0);
        let mut third = b.unasked(0);
        assert!(b.admit(&mut first, 40 * MIB));
        assert!(b.admit(&mut second, 24 * MIB));
        // The budget is full: a third write waits, even a small one.
        assert!(!b.admit(&mut third, 512));
        assert!(!b.admit(&mut third, 512));
        assert_eq!(b.daemon.waits(), (1, 0), "one write that waited, counted once");
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
        let b = WriteBudget::new(64 * MIB, Default::default());
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
        let b = WriteBudget::new(64 * MIB, Default::default());
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
        let b = WriteBudget::new(MIB, Default::default());
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

    #[test]
    fn the_daemon_budget_bounds_every_connection_together() {
        let daemon = Arc::new(DaemonWriteBudget::default());
        daemon.set_limit(80 * MIB);
        let a = WriteBudget::new(64 * MIB, daemon.clone());
        let b = WriteBudget::new(64 * MIB, daemon.clone());
        let (mut wa, mut wb, mut wb2) = (a.unasked(0), b.unasked(0), b.unasked(MIB));
        assert!(a.admit(&mut wa, 64 * MIB));
        // b has room of its own, but the daemon has 15 MiB left: 24 MiB waits, 15 MiB more goes.
        assert!(!b.admit(&mut wb, 24 * MIB));
        assert_eq!(daemon.used(), 65 * MIB);
        assert!(b.admit(&mut wb2, 16 * MIB));
        assert_eq!((daemon.used(), a.used(), b.used()), (80 * MIB, 64 * MIB, 16 * MIB));
        drop(wa);
        assert_eq!(daemon.used(), 16 * MIB);
        assert!(b.admit(&mut wb, 24 * MIB));
        drop((wb, wb2));
        assert_eq!((daemon.used(), b.used()), (0, 0));
        // wb waited once for the daemon's budget, however often it was tried.
        assert_eq!(daemon.waits(), (0, 1));
    }

    #[tokio::test]
    async fn a_release_on_another_connection_wakes_a_write_the_daemon_refused() {
        let daemon = Arc::new(DaemonWriteBudget::default());
        daemon.set_limit(MIB);
        let a = WriteBudget::new(64 * MIB, daemon.clone());
        let b = WriteBudget::new(64 * MIB, daemon.clone());
        let mut wa = a.unasked(0);
        assert!(a.admit(&mut wa, MIB));
        let mut wb = b.unasked(0);
        assert!(!b.admit(&mut wb, MIB));
        // The wake-up is kept even though b is not waiting yet.
        drop(wa);
        tokio::time::timeout(std::time::Duration::from_secs(5), b.freed()).await.unwrap();
        assert!(b.admit(&mut wb, MIB));
    }

    #[tokio::test]
    async fn a_raised_daemon_budget_wakes_a_write_it_refused() {
        let daemon = Arc::new(DaemonWriteBudget::default());
        daemon.set_limit(MIB);
        let a = WriteBudget::new(64 * MIB, daemon.clone());
        let b = WriteBudget::new(64 * MIB, daemon.clone());
        let mut wa = a.unasked(0);
        assert!(a.admit(&mut wa, MIB));
        let mut wb = b.unasked(0);
        assert!(!b.admit(&mut wb, MIB));
        // a's write is still held: only the new bound can let b's in.
        daemon.set_limit(2 * MIB);
        tokio::time::timeout(std::time::Duration::from_secs(5), b.freed()).await.expect("woken by the raised bound");
        assert!(b.admit(&mut wb, MIB));
        drop((wa, wb));
        assert_eq!(daemon.used(), 0);
    }

    /// Many connections on several threads admit and release against a daemon budget that fits
    /// only a few of their writes: the daemon never holds more than its bound, every refused
    /// write is woken by some release (none waits forever), and all is given back at the end.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_connections_stay_within_the_daemon_budget_and_none_is_left_waiting() {
        let daemon = Arc::new(DaemonWriteBudget::default());
        daemon.set_limit(4 * MIB);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let conn = WriteBudget::new(64 * MIB, daemon.clone());
            let daemon = daemon.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..2000 {
                    let mut r = conn.unasked(0);
                    while !conn.admit(&mut r, MIB) {
                        tokio::time::timeout(std::time::Duration::from_secs(10), conn.freed())
                            .await
                            .expect("a refused write is woken by a release");
                    }
                    assert!(daemon.used() <= 4 * MIB, "daemon holds {} bytes", daemon.used());
                    tokio::task::yield_now().await;
                    drop(r);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(daemon.used(), 0);
        assert_eq!(daemon.held.load(Ordering::SeqCst), 0, "no admitted count left over");
    }
}
