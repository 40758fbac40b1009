//! Per logical unit statistics: command counts by kind, bytes moved, errors by sense key,
//! reservation conflicts, commands in flight and completion latency histograms.
//!
//! Recorded by `exec` once per command where its status is known; read by whoever exports them
//! (tgtd's /metrics, `tgtadm --op stats`). The command path pays a few relaxed atomic adds and one
//! clock read on each end: nothing here takes a lock or allocates. The counters are sharded: each
//! thread adds to its own cache-line-aligned shard (threads are given shards round robin), so
//! commands of one busy LUN running on every core do not fight over one cache line; readers sum
//! the shards. A `LunStatsSnapshot`'s counters are each exact, though not captured at one instant
//! together.
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What a command does with the medium, for counting. Chosen from the operation code alone (the
/// same for every device type that has these commands).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Read,
    Write,
    Unmap,
    Other,
}

impl CommandKind {
    pub const ALL: [CommandKind; 4] = [CommandKind::Read, CommandKind::Write, CommandKind::Unmap, CommandKind::Other];

    /// READ(6/10/12/16) read; WRITE(6/10/12/16), WRITE AND VERIFY(10/16), WRITE SAME(10/16),
    /// COMPARE AND WRITE and ORWRITE write; UNMAP unmaps; everything else (VERIFY, SYNCHRONIZE
    /// CACHE, INQUIRY, ...) is other.
    pub fn of(opcode: u8) -> Self {
        match opcode {
            0x08 | 0x28 | 0xa8 | 0x88 => CommandKind::Read,
            0x0a | 0x2a | 0xaa | 0x8a | 0x2e | 0x8e | 0x41 | 0x93 | 0x89 | 0x8b => CommandKind::Write,
            0x42 => CommandKind::Unmap,
            _ => CommandKind::Other,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Read => "read",
            CommandKind::Write => "write",
            CommandKind::Unmap => "unmap",
            CommandKind::Other => "other",
        }
    }
}

/// Upper bounds of the latency buckets, in microseconds: 50 µs to 10 s, roughly ×2.5 apart, so
/// both a RAM disk and a struggling network store land in a bucket that tells them apart.
pub const LATENCY_BOUNDS_US: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];

/// A latency histogram with fixed buckets. Each bucket counts only its own range; cumulative
/// counts (what Prometheus wants) are made when reading.
#[derive(Debug, Default)]
struct Histogram {
    /// One per bound, plus one for everything above the last.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    fn record(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = LATENCY_BOUNDS_US.partition_point(|&bound| bound < us);
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// The sum of several shards' histograms.
    fn snapshot<'a>(shards: impl Iterator<Item = &'a Histogram>) -> HistogramSnapshot {
        let mut own = [0u64; LATENCY_BOUNDS_US.len() + 1];
        let mut sum_ns = 0u64;
        for h in shards {
            for (total, bucket) in own.iter_mut().zip(h.buckets.iter()) {
                *total += bucket.load(Ordering::Relaxed);
            }
            sum_ns = sum_ns.wrapping_add(h.sum_ns.load(Ordering::Relaxed));
        }
        let mut cumulative = [0u64; LATENCY_BOUNDS_US.len()];
        let mut running = 0u64;
        for (slot, bucket) in cumulative.iter_mut().zip(own.iter()) {
            running += bucket;
            *slot = running;
        }
        let count = running + own[LATENCY_BOUNDS_US.len()];
        HistogramSnapshot { cumulative, count, sum: Duration::from_nanos(sum_ns) }
    }
}

/// A histogram as read: `cumulative[i]` commands took at most `LATENCY_BOUNDS_US[i]`; `count` is
/// all of them (the +Inf bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub cumulative: [u64; LATENCY_BOUNDS_US.len()],
    pub count: u64,
    pub sum: Duration,
}

/// One shard of a unit's counters: what the threads mapped to it have counted. Aligned to 128
/// bytes (two cache lines, as adjacent-line prefetchers pair them) so no two shards share a line.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard {
    commands: [AtomicU64; 4],
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    /// Indexed by the sense key's value (0..=15).
    errors: [AtomicU64; 16],
    reservation_conflicts: AtomicU64,
    /// Arrivals minus departures, wrapping: a command may arrive on one thread and leave on
    /// another, so one shard's value alone means nothing; the wrapping sum of all is exact.
    in_flight: AtomicU64,
    /// Read and write latency; other kinds are too mixed (INQUIRY next to a 1 GiB VERIFY) for one
    /// histogram to say anything.
    read_latency: Histogram,
    write_latency: Histogram,
}

/// How many shards each unit has: the CPUs the process may use, rounded up to a power of two, at
/// most 64 (past that, threads share shards; a share is still far from one line for all).
fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 64).next_power_of_two())
}

/// This thread's shard index (before reduction modulo the shard count), given on first use.
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SLOT.with(|slot| {
        if slot.get() == usize::MAX {
            slot.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        slot.get()
    })
}

/// Whether commands are counted at all (see `set_counting`).
static COUNTING: AtomicBool = AtomicBool::new(true);

/// Turn counting off (or on again) in the whole process. Only for measuring what counting costs:
/// tgtd turns it off when told to by `RTGT_LUN_STATS=off` (bench/compare's metrics comparison);
/// with it off every counter stays where it was.
pub fn set_counting(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

/// The counters of one logical unit, held by it for its whole life.
#[derive(Debug)]
pub struct LunStats {
    shards: Box<[Shard]>,
}

impl Default for LunStats {
    fn default() -> Self {
        LunStats { shards: (0..shard_count()).map(|_| Shard::default()).collect() }
    }
}

/// How a command ended, as the statistics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// GOOD: `bytes` moved (data-in for a read, data-out taken for a write).
    Good {
        bytes: u64,
    },
    /// CHECK CONDITION with this sense key value.
    CheckCondition {
        sense_key: u8,
    },
    ReservationConflict,
}

/// A command being counted: made when it arrives, consumed by `finish`. Dropped without finishing
/// (the transport abandoned the command), it still leaves the in-flight count.
#[derive(Debug)]
pub struct InFlight<'a> {
    /// None when counting is off.
    stats: Option<&'a LunStats>,
    kind: CommandKind,
    arrived: Option<Instant>,
}

impl LunStats {
    /// The calling thread's shard (the count is a power of two: a mask, no division).
    fn shard(&self) -> &Shard {
        &self.shards[thread_slot() & (self.shards.len() - 1)]
    }

    /// Count a command that has arrived for this unit.
    pub fn start(&self, opcode: u8) -> InFlight<'_> {
        let kind = CommandKind::of(opcode);
        if !COUNTING.load(Ordering::Relaxed) {
            // No clock read either: off means the command path pays nothing but this load.
            return InFlight { stats: None, kind, arrived: None };
        }
        self.shard().in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { stats: Some(self), kind, arrived: Some(Instant::now()) }
    }

    pub fn snapshot(&self) -> LunStatsSnapshot {
        let sum = |field: &dyn Fn(&Shard) -> &AtomicU64| {
            self.shards.iter().fold(0u64, |total, shard| total.wrapping_add(field(shard).load(Ordering::Relaxed)))
        };
        LunStatsSnapshot {
            commands: std::array::from_fn(|i| sum(&|s| &s.commands[i])),
            bytes_read: sum(&|s| &s.bytes_read),
            bytes_written: sum(&|s| &s.bytes_written),
            errors: std::array::from_fn(|i| sum(&|s| &s.errors[i])),
            reservation_conflicts: sum(&|s| &s.reservation_conflicts),
            in_flight: sum(&|s| &s.in_flight),
            read_latency: Histogram::snapshot(self.shards.iter().map(|s| &s.read_latency)),
            write_latency: Histogram::snapshot(self.shards.iter().map(|s| &s.write_latency)),
        }
    }
}

impl InFlight<'_> {
    /// The command's status is known: count it, its bytes or its error, and its latency.
    pub fn finish(self, outcome: Outcome) {
        let (Some(stats), Some(arrived)) = (self.stats, self.arrived) else { return };
        let shard = stats.shard();
        shard.commands[self.kind as usize].fetch_add(1, Ordering::Relaxed);
        match outcome {
            Outcome::Good { bytes } => match self.kind {
                CommandKind::Read => {
                    shard.bytes_read.fetch_add(bytes, Ordering::Relaxed);
                }
                CommandKind::Write => {
                    shard.bytes_written.fetch_add(bytes, Ordering::Relaxed);
                }
                CommandKind::Unmap | CommandKind::Other => {}
            },
            Outcome::CheckCondition { sense_key } => {
                shard.errors[usize::from(sense_key & 0x0f)].fetch_add(1, Ordering::Relaxed);
            }
            Outcome::ReservationConflict => {
                shard.reservation_conflicts.fetch_add(1, Ordering::Relaxed);
            }
        }
        match self.kind {
            CommandKind::Read => shard.read_latency.record(arrived.elapsed()),
            CommandKind::Write => shard.write_latency.record(arrived.elapsed()),
            CommandKind::Unmap | CommandKind::Other => {}
        }
        // `Drop` leaves the in-flight count.
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        // Wraps when this thread's shard saw fewer arrivals than departures; the sum is right.
        if let Some(stats) = self.stats {
            stats.shard().in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// The counters of one unit as read at one scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunStatsSnapshot {
    /// Completed commands, indexed by `CommandKind as usize`.
    pub commands: [u64; 4],
    pub bytes_read: u64,
    pub bytes_written: u64,
    /// CHECK CONDITION statuses, indexed by sense key (6, UNIT ATTENTION, counts the unit
    /// attentions reported).
    pub errors: [u64; 16],
    pub reservation_conflicts: u64,
    pub in_flight: u64,
    pub read_latency: HistogramSnapshot,
    pub write_latency: HistogramSnapshot,
}

impl LunStatsSnapshot {
    pub fn commands(&self, kind: CommandKind) -> u64 {
        self.commands[kind as usize]
    }
}

/// The names Prometheus labels and tgtadm print for sense keys (SPC-4 4.5.6).
pub fn sense_key_name(key: u8) -> &'static str {
    match key & 0x0f {
        0x0 => "no_sense",
        0x1 => "recovered_error",
        0x2 => "not_ready",
        0x3 => "medium_error",
        0x4 => "hardware_error",
        0x5 => "illegal_request",
        0x6 => "unit_attention",
        0x7 => "data_protect",
        0x8 => "blank_check",
        0x9 => "vendor_specific",
        0xa => "copy_aborted",
        0xb => "aborted_command",
        0xd => "volume_overflow",
        0xe => "miscompare",
        _ => "reserved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_kinds_bytes_errors_and_in_flight() {
        let stats = LunStats::default();
        let write = stats.start(0x2a);
        let read = stats.start(0x28);
        assert_eq!(stats.snapshot().in_flight, 2);
        write.finish(Outcome::Good { bytes: 4096 });
        read.finish(Outcome::Good { bytes: 512 });
        stats.start(0x42).finish(Outcome::Good { bytes: 24 });
        stats.start(0x12).finish(Outcome::CheckCondition { sense_key: 0x6 });
        stats.start(0x2a).finish(Outcome::ReservationConflict);
        drop(stats.start(0x00));
        let s = stats.snapshot();
        assert_eq!(s.commands, [1, 2, 1, 1]);
        assert_eq!((s.bytes_read, s.bytes_written), (512, 4096));
        assert_eq!(s.errors[6], 1);
        assert_eq!(s.reservation_conflicts, 1);
        assert_eq!(s.in_flight, 0);
        assert_eq!((s.read_latency.count, s.write_latency.count), (1, 2));
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_bounds_inclusive() {
        let h = Histogram::default();
        h.record(Duration::from_micros(50));
        h.record(Duration::from_micros(51));
        h.record(Duration::from_secs(60));
        let s = Histogram::snapshot(std::iter::once(&h));
        assert_eq!(s.cumulative[0], 1);
        assert_eq!(s.cumulative[1], 2);
        assert_eq!(s.cumulative[LATENCY_BOUNDS_US.len() - 1], 2);
        assert_eq!(s.count, 3);
        assert_eq!(s.sum, Duration::from_micros(60_000_101));
    }

    /// Commands counted on many threads at once, some arriving on one thread and finishing on
    /// another, add up exactly: no count is lost between shards, and in-flight returns to zero.
    #[test]
    fn shards_sum_exactly_across_threads() {
        let stats = std::sync::Arc::new(LunStats::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        stats.start(0x2a).finish(Outcome::Good { bytes: 512 + t + i % 2 });
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        // Arrive here, leave there.
        let arrived = stats.start(0x28);
        assert_eq!(stats.snapshot().in_flight, 1);
        std::thread::scope(|scope| {
            scope.spawn(|| arrived.finish(Outcome::Good { bytes: 4096 }));
        });
        let s = stats.snapshot();
        assert_eq!(s.commands(CommandKind::Write), 8000);
        let bytes: u64 = (0..8u64).map(|t| 1000 * (512 + t) + 500).sum();
        assert_eq!(s.bytes_written, bytes);
        assert_eq!((s.write_latency.count, s.read_latency.count, s.bytes_read), (8000, 1, 4096));
        assert_eq!(s.in_flight, 0);
    }
}
