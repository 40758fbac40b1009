//! The budget of read data the target holds in memory: the data-in of commands from the moment
//! the SCSI core fills their buffer until the writer has handed it to the socket, per connection
//! and for the whole daemon. The target cannot ask for read data later as it asks for write data
//! (R2T); instead a command whose data-in may be large waits, before the core allocates and fills
//! its buffer, until it fits (`Target::data_in_bound` tells the size from the CDB). It never fails
//! for lack of room. Without this, an initiator could send a CmdSN window of 64 MiB READs and stop
//! reading its socket, and a few sessions would exhaust the daemon's memory.
//!
//! Rules, each there so that something always progresses:
//! - A connection with no read admitted may admit one whatever its size (a READ larger than the
//!   connection's budget goes alone); the daemon likewise when nothing is admitted anywhere.
//! - A connection with no read admitted may always admit one of up to `GUARANTEED_READ` bytes, even
//!   past the daemon's bound: connections that stop reading their sockets while holding the
//!   daemon's budget slow the others' large READs, but never stop a connection's ordinary ones.
//!   The daemon then holds at most its bound, one READ past it, and `GUARANTEED_READ` per
//!   connection.
//! - Commands below `SMALL_READ` bypass the budget (no lock, no atomic; see `needs_budget`).
//!
//! The bytes are given back when the reservation drops: after the writer wrote the data, or with
//! the command when it is aborted, fails, or its connection goes (the reservation travels inside
//! the command's future and then its reply, so every way of dropping them gives the bytes back).

use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;

/// Commands whose data-in bound is below this run without a reservation. What they hold per
/// connection is bounded without it: each is a task of the session's CmdSN window (MaxQueueCmd,
/// 128 by default, an administrator's setting), so a connection holds at most a window of them,
/// 32 MiB at the default; and what they hold once answered is in the connection's out queue, whose
/// bound stops the reader (`out_queue::QUEUE_LIMIT`). (Immediate commands bypass the window's
/// order but not its count of tasks in flight, which closes the window for the others.) This keeps
/// the ordinary 4 KiB READ free of any accounting.
pub(crate) const SMALL_READ: u64 = 256 << 10;

/// Read data one connection may hold: a full MAXIMUM TRANSFER LENGTH READ (it goes alone), or many
/// ordinary ones, at a bounded cost per connection. Sixteen times smaller than the daemon's default
/// bound, so it takes many connections that never read their sockets to fill the daemon's.
pub(crate) const READ_DATA_BUDGET: u64 = 64 << 20;

/// One READ of this size a connection holding no read data may always have, past the daemon's bound
/// (Linux initiators send READs of up to 1280 KiB by default).
pub(crate) const GUARANTEED_READ: u64 = 2 << 20;

/// tgtd's default for `--iscsi read_budget=`: the read data all connections together may hold.
pub const DEFAULT_DAEMON_READ_BUDGET: u64 = 1 << 30;

/// Whether a command whose data-in is at most `bound` bytes takes a reservation.
pub(crate) fn needs_budget(bound: u64) -> bool {
    bound >= SMALL_READ
}

/// The daemon's bytes held and reads admitted, one word so that one compare-and-swap keeps both
/// exact: the low `ADMITTED_BITS` bits count admitted reads, the rest are bytes.
const ADMITTED_BITS: u32 = 20;
const BYTE_ONE: u64 = 1 << ADMITTED_BITS;

fn packed_bytes(word: u64) -> u64 {
    word >> ADMITTED_BITS
}

fn packed_admitted(word: u64) -> u64 {
    word & (BYTE_ONE - 1)
}

/// The daemon's budget, shared by every connection's. Its hot path takes no lock: the bytes and the
/// admitted count are one atomic word. Only a read it refuses takes the `waiting` lock, to be woken
/// when a read anywhere gives its data back.
#[derive(Debug)]
pub struct DaemonReadBudget {
    limit: AtomicU64,
    held: AtomicU64,
    /// Set while `waiting` is not empty, so releases skip the lock when nobody waits.
    any_waiting: AtomicBool,
    waiting: Mutex<Vec<Weak<ReadBudget>>>,
    /// Reads that waited, by the budget that first refused them: the connection's, the daemon's.
    waits: [AtomicU64; 2],
}

impl Default for DaemonReadBudget {
    fn default() -> Self {
        DaemonReadBudget {
            limit: AtomicU64::new(DEFAULT_DAEMON_READ_BUDGET),
            held: AtomicU64::new(0),
            any_waiting: AtomicBool::new(false),
            waiting: Mutex::new(Vec::new()),
            waits: Default::default(),
        }
    }
}

impl DaemonReadBudget {
    /// Change the bound; data held above a lowered bound is not taken back, new reads wait. Reads
    /// waiting look again, so a raised bound lets them in at once.
    pub fn set_limit(&self, bytes: u64) {
        self.limit.store(bytes, Ordering::SeqCst);
        self.wake_waiting();
    }

    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::SeqCst)
    }

    pub fn used(&self) -> u64 {
        packed_bytes(self.held.load(Ordering::Acquire))
    }

    /// Reads that waited for room so far: (for their connection's budget, for the daemon's).
    pub fn waits(&self) -> (u64, u64) {
        (self.waits[0].load(Ordering::Relaxed), self.waits[1].load(Ordering::Relaxed))
    }

    /// Admit `bytes` if they fit, or if nothing is admitted anywhere.
    fn try_admit(&self, bytes: u64) -> bool {
        let limit = self.limit();
        let mut word = self.held.load(Ordering::SeqCst);
        loop {
            if packed_admitted(word) != 0 && packed_bytes(word) + bytes > limit {
                return false;
            }
            match self.held.compare_exchange_weak(word, word + bytes * BYTE_ONE + 1, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
    }

    /// A connection's guaranteed read: counted, never refused.
    fn force(&self, bytes: u64) {
        self.held.fetch_add(bytes * BYTE_ONE + 1, Ordering::SeqCst);
    }

    /// Admit `bytes` for `conn`, or leave `conn` to be woken by the next release anywhere.
    fn admit_or_wait(&self, conn: &Arc<ReadBudget>, bytes: u64) -> bool {
        if self.try_admit(bytes) {
            return true;
        }
        self.waiting.lock().push(Arc::downgrade(conn));
        self.any_waiting.store(true, Ordering::SeqCst);
        // A release between the refusal and the flag saw nobody waiting: look again now the flag
        // is up (the releaser updates `held` before it reads the flag, both SeqCst).
        self.try_admit(bytes)
    }

    fn release(&self, bytes: u64) {
        self.held.fetch_sub(bytes * BYTE_ONE + 1, Ordering::SeqCst);
        self.wake_waiting();
    }

    /// Wake the connections with a read refused by the daemon's budget, to try again.
    fn wake_waiting(&self) {
        if !self.any_waiting.load(Ordering::SeqCst) {
            return;
        }
        let waiting = {
            let mut w = self.waiting.lock();
            self.any_waiting.store(false, Ordering::SeqCst);
            std::mem::take(&mut *w)
        };
        for conn in waiting.iter().filter_map(Weak::upgrade) {
            conn.freed.notify_waiters();
        }
    }
}

#[derive(Debug, Default)]
struct State {
    used: u64,
    admitted: u64,
}

/// One connection's budget; shared with the commands that run its reads.
#[derive(Debug)]
pub(crate) struct ReadBudget {
    limit: u64,
    state: Mutex<State>,
    /// Woken when a read of this connection gives its data back, or one anywhere while this
    /// connection had a read refused by the daemon's budget.
    freed: Notify,
    daemon: Arc<DaemonReadBudget>,
}

/// Read data held against a connection's budget and the daemon's until it drops.
#[derive(Debug)]
pub(crate) struct ReadReservation {
    budget: Arc<ReadBudget>,
    bytes: u64,
}

/// Which budget refused a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    Connection,
    Daemon,
}

impl ReadBudget {
    pub fn new(limit: u64, daemon: Arc<DaemonReadBudget>) -> Arc<ReadBudget> {
        Arc::new(ReadBudget { limit, state: Mutex::new(State::default()), freed: Notify::new(), daemon })
    }

    /// Reserve `bytes`, waiting until they fit (see the module comment). A reservation that fits
    /// at once is ready on the first poll.
    pub async fn admit(self: &Arc<Self>, bytes: u64) -> ReadReservation {
        let first = match self.try_admit(bytes) {
            Ok(r) => return r,
            Err(refused) => refused,
        };
        self.daemon.waits[usize::from(first == Refused::Daemon)].fetch_add(1, Ordering::Relaxed);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a release between the check and the await wakes us.
            freed.as_mut().enable();
            if let Ok(r) = self.try_admit(bytes) {
                return r;
            }
            freed.await;
        }
    }

    fn try_admit(self: &Arc<Self>, bytes: u64) -> Result<ReadReservation, Refused> {
        let mut mine = self.state.lock();
        if mine.admitted != 0 && mine.used + bytes > self.limit {
            return Err(Refused::Connection);
        }
        if mine.admitted == 0 && bytes <= GUARANTEED_READ {
            self.daemon.force(bytes);
        } else if !self.daemon.admit_or_wait(self, bytes) {
            return Err(Refused::Daemon);
        }
        mine.used += bytes;
        mine.admitted += 1;
        Ok(ReadReservation { budget: self.clone(), bytes })
    }

    #[cfg(test)]
    pub fn used(&self) -> u64 {
        self.state.lock().used
    }
}

impl Drop for ReadReservation {
    fn drop(&mut self) {
        let budget = &self.budget;
        {
            let mut s = budget.state.lock();
            s.used -= self.bytes;
            s.admitted -= 1;
        }
        budget.daemon.release(self.bytes);
        budget.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    const MIB: u64 = 1 << 20;

    /// The reservation if it is granted on the first poll.
    fn now(b: &Arc<ReadBudget>, bytes: u64) -> Option<ReadReservation> {
        let mut admit = Box::pin(b.admit(bytes));
        match admit.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        }
    }

    #[test]
    fn reads_are_admitted_while_they_fit_in_the_connection() {
        let b = ReadBudget::new(64 * MIB, Default::default());
        let first = now(&b, 40 * MIB).unwrap();
        let second = now(&b, 24 * MIB).unwrap();
        assert_eq!(b.used(), 64 * MIB);
        assert!(now(&b, 4 * MIB).is_none(), "the connection's budget is full");
        assert_eq!(b.daemon.waits(), (1, 0));
        drop(first);
        let third = now(&b, 40 * MIB).unwrap();
        drop((second, third));
        assert_eq!((b.used(), b.daemon.used()), (0, 0));
    }

    #[test]
    fn a_read_larger_than_every_budget_goes_alone() {
        let daemon = Arc::new(DaemonReadBudget::default());
        daemon.set_limit(8 * MIB);
        let b = ReadBudget::new(4 * MIB, daemon.clone());
        let big = now(&b, 64 * MIB).expect("nothing admitted: it goes");
        assert_eq!(daemon.used(), 64 * MIB);
        assert!(now(&b, 3 * MIB).is_none());
        drop(big);
        assert!(now(&b, 64 * MIB).is_some());
        assert_eq!(daemon.used(), 0);
    }

    #[test]
    fn the_daemon_budget_bounds_every_connection_together() {
        let daemon = Arc::new(DaemonReadBudget::default());
        daemon.set_limit(80 * MIB);
        let a = ReadBudget::new(64 * MIB, daemon.clone());
        let b = ReadBudget::new(64 * MIB, daemon.clone());
        let ra = now(&a, 64 * MIB).unwrap();
        let rb = now(&b, 16 * MIB).unwrap();
        // b has room of its own, but the daemon's is used up.
        assert!(now(&b, 8 * MIB).is_none());
        assert_eq!(daemon.waits(), (0, 1));
        drop(ra);
        let rb2 = now(&b, 8 * MIB).unwrap();
        drop((rb, rb2));
        assert_eq!(daemon.held.load(Ordering::SeqCst), 0, "no byte or admitted count left over");
    }

    #[test]
    fn a_connection_holding_nothing_always_gets_an_ordinary_read() {
        let daemon = Arc::new(DaemonReadBudget::default());
        daemon.set_limit(64 * MIB);
        // Connections that never read their sockets hold the whole daemon budget.
        let stuck: Vec<_> = (0..4).map(|_| ReadBudget::new(64 * MIB, daemon.clone())).collect();
        let held: Vec<_> = stuck.iter().map(|c| now(c, 16 * MIB).unwrap()).collect();
        assert!(now(&stuck[0], 16 * MIB).is_none());
        let fresh = ReadBudget::new(64 * MIB, daemon.clone());
        // A 1 MiB READ goes past the daemon's bound; a second waits, as does a larger first one.
        assert!(now(&fresh, 4 * MIB).is_none());
        let one = now(&fresh, MIB).expect("the guaranteed read");
        assert!(now(&fresh, MIB).is_none());
        assert_eq!(daemon.used(), 65 * MIB);
        drop((one, held));
        assert_eq!(daemon.used(), 0);
    }

    #[tokio::test]
    async fn a_release_wakes_reads_waiting_on_this_and_other_connections() {
        let daemon = Arc::new(DaemonReadBudget::default());
        daemon.set_limit(12 * MIB);
        let a = ReadBudget::new(8 * MIB, daemon.clone());
        let b = ReadBudget::new(64 * MIB, daemon.clone());
        let ra = now(&a, 8 * MIB).unwrap();
        let rb = now(&b, 2 * MIB).unwrap();
        // a's next read waits for a's budget, b's for the daemon's.
        let same = tokio::spawn({
            let a = a.clone();
            async move { a.admit(4 * MIB).await }
        });
        let other = tokio::spawn({
            let b = b.clone();
            async move { b.admit(4 * MIB).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!same.is_finished() && !other.is_finished());
        drop(ra);
        let (same, other) = tokio::time::timeout(Duration::from_secs(5), async { (same.await, other.await) })
            .await
            .expect("both woken");
        drop((same.unwrap(), other.unwrap(), rb));
        assert_eq!(daemon.used(), 0);
    }

    #[tokio::test]
    async fn raising_the_daemon_bound_lets_a_waiting_read_in() {
        let daemon = Arc::new(DaemonReadBudget::default());
        daemon.set_limit(8 * MIB);
        let a = ReadBudget::new(64 * MIB, daemon.clone());
        let b = ReadBudget::new(64 * MIB, daemon.clone());
        let held = now(&a, 8 * MIB).unwrap();
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { b.admit(4 * MIB).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "the daemon's budget is full");
        // Nothing is given back: only the new bound can let it in.
        daemon.set_limit(16 * MIB);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("woken by the new bound");
        drop((got.unwrap(), held));
        assert_eq!(daemon.used(), 0);
    }

    /// Many connections on two threads admit and release 1 MiB and 4 MiB reads against a daemon
    /// bound that fits only a few: the daemon never holds more than its bound plus one guaranteed
    /// read per connection, no waiting read is forgotten, and all is given back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_connections_stay_bounded_and_none_is_left_waiting() {
        let daemon = Arc::new(DaemonReadBudget::default());
        daemon.set_limit(8 * MIB);
        let conns = 8u64;
        let mut tasks = Vec::new();
        for i in 0..conns {
            let conn = ReadBudget::new(64 * MIB, daemon.clone());
            let daemon = daemon.clone();
            tasks.push(tokio::spawn(async move {
                for k in 0..1000u64 {
                    let size = if (i + k) % 3 == 0 { 4 * MIB } else { MIB };
                    let r = tokio::time::timeout(Duration::from_secs(10), conn.admit(size))
                        .await
                        .expect("a waiting read is woken by a release");
                    assert!(daemon.used() <= 8 * MIB + conns * GUARANTEED_READ, "daemon holds {}", daemon.used());
                    tokio::task::yield_now().await;
                    drop(r);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(daemon.held.load(Ordering::SeqCst), 0);
    }
}
