//! Fault injection, a testing aid: a store wrapping another that makes chosen operations fail with
//! EIO or ENOSPC, stop part-way (a short transfer) or wait (a latency spike), so that the error paths
//! above it (sense data, retries, logging, other LUNs staying served) can be driven end to end
//! through the real daemon. Nothing turns it on but an explicit `fault=` option.
//!
//! Rules are written `OPS:EFFECT[:lba=FIRST[-LAST]][:every=N]`, one per `fault=` option:
//! - OPS: `read`, `write`, `flush`, `unmap`, several joined by `+`, or `all`;
//! - EFFECT: `eio`, `enospc`, `short` (read and write only: the transfer stops part-way, before the
//!   rule's first block, or half-way without `lba=`), `delay=DURATION` (`250ms`, `2s`: the
//!   operation waits before it is issued, so an aborted command's operation never happens), or
//!   `stall=DURATION` (the operation counts as issued at once and completes DURATION late: an
//!   aborted command cannot recall it, dropping its future waits out the stall and then performs
//!   it, as dropping an io_uring request waits for the kernel);
//! - `lba=`: only operations touching these logical blocks (inclusive, in the LUN's block size;
//!   a flush touches every block);
//! - `every=N`: only the Nth, 2Nth, ... of the operations the rule matches (default: all of them).
//!
//! Delays and stalls of every matching rule add up; then the first matching error rule decides the
//! outcome.

use crate::{BackstoreError, BlockStore, ErrorKind};
use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

const SYNTAX: &str = "expected OPS:EFFECT[:lba=FIRST[-LAST]][:every=N], OPS read|write|flush|unmap (joined by +) \
                      or all, EFFECT eio|enospc|short|delay=DURATION|stall=DURATION";

/// The kinds of operation a rule can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    Read,
    Write,
    Flush,
    Unmap,
}

impl FaultOp {
    fn bit(self) -> u8 {
        1 << self as u8
    }

    fn name(self) -> &'static str {
        match self {
            FaultOp::Read => "read",
            FaultOp::Write => "write",
            FaultOp::Flush => "flush",
            FaultOp::Unmap => "unmap",
        }
    }

    fn kind(self) -> ErrorKind {
        match self {
            FaultOp::Read => ErrorKind::Read,
            FaultOp::Write => ErrorKind::Write,
            FaultOp::Flush => ErrorKind::Flush,
            FaultOp::Unmap => ErrorKind::Unmap,
        }
    }
}

/// What a rule does to the operations it selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Eio,
    NoSpace,
    Short,
    /// Wait before the operation is issued (an aborted command's operation never happens).
    Delay(Duration),
    /// The operation is issued at once and completes this late, even if its command is aborted.
    Stall(Duration),
}

/// One parsed `fault=` rule, with its count of matched operations (for `every=`).
#[derive(Debug)]
pub struct FaultRule {
    ops: u8,
    effect: Effect,
    /// Inclusive logical block range.
    lbas: Option<(u64, u64)>,
    every: u64,
    matched: AtomicU64,
}

impl FaultRule {
    /// Parse one rule; the error names the rule and the expected syntax.
    pub fn parse(text: &str) -> Result<FaultRule, BackstoreError> {
        let bad = |why: String| BackstoreError::BadOption(format!("fault '{text}': {why} ({SYNTAX})"));
        let mut parts = text.split(':');
        let ops_text = parts.next().unwrap_or_default();
        let mut ops = 0u8;
        for op in ops_text.split('+') {
            ops |= match op.trim() {
                "read" => FaultOp::Read.bit(),
                "write" => FaultOp::Write.bit(),
                "flush" => FaultOp::Flush.bit(),
                "unmap" => FaultOp::Unmap.bit(),
                "all" => 0x0f,
                other => return Err(bad(format!("unknown operation '{other}'"))),
            };
        }
        let effect = match parts.next().map(str::trim) {
            Some("eio") => Effect::Eio,
            Some("enospc") => Effect::NoSpace,
            Some("short") => Effect::Short,
            Some(e) if e.starts_with("delay=") => Effect::Delay(parse_duration(&e[6..]).map_err(bad)?),
            Some(e) if e.starts_with("stall=") => Effect::Stall(parse_duration(&e[6..]).map_err(bad)?),
            Some(other) => return Err(bad(format!("unknown effect '{other}'"))),
            None => return Err(bad("no effect".into())),
        };
        if effect == Effect::Short && ops & (FaultOp::Flush.bit() | FaultOp::Unmap.bit()) != 0 {
            return Err(bad("'short' applies to read and write only".into()));
        }
        let mut rule = FaultRule { ops, effect, lbas: None, every: 1, matched: AtomicU64::new(0) };
        for modifier in parts {
            let (key, value) = modifier.split_once('=').ok_or_else(|| bad(format!("'{modifier}' is not key=value")))?;
            let number = |v: &str| v.trim().parse::<u64>().map_err(|_| bad(format!("'{v}' is not a number")));
            match key.trim() {
                "lba" => {
                    let (first, last) = match value.split_once('-') {
                        Some((a, b)) => (number(a)?, number(b)?),
                        None => (number(value)?, number(value)?),
                    };
                    if first > last {
                        return Err(bad(format!("LBA range {first}-{last} is empty")));
                    }
                    rule.lbas = Some((first, last));
                }
                "every" => {
                    rule.every = number(value)?;
                    if rule.every == 0 {
                        return Err(bad("every=0 would never fire".into()));
                    }
                }
                other => return Err(bad(format!("unknown modifier '{other}'"))),
            }
        }
        Ok(rule)
    }

    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Whether the rule fires for this operation on bytes `[offset, offset + len)`; counts the
    /// match for `every=`. Returns the first byte the fault is reported at.
    fn fires(&self, op: FaultOp, offset: u64, len: u64, block_size: u64) -> Option<u64> {
        if self.ops & op.bit() == 0 {
            return None;
        }
        let at = match (self.lbas, op) {
            (None, _) | (_, FaultOp::Flush) => offset,
            (Some((first, last)), _) => {
                let start = first.saturating_mul(block_size);
                let end = last.saturating_add(1).saturating_mul(block_size);
                if offset >= end || offset.saturating_add(len) <= start {
                    return None;
                }
                offset.max(start)
            }
        };
        let n = self.matched.fetch_add(1, Ordering::Relaxed) + 1;
        n.is_multiple_of(self.every).then_some(at)
    }
}

/// The rule in the syntax `fault=` takes, normalised (what `tgtadm --op show` lists, so that a
/// rule left on a production LUN is seen).
impl std::fmt::Display for FaultRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ops == 0x0f {
            f.write_str("all")?;
        } else {
            let all = [FaultOp::Read, FaultOp::Write, FaultOp::Flush, FaultOp::Unmap];
            let chosen: Vec<&str> = all.iter().filter(|op| self.ops & op.bit() != 0).map(|op| op.name()).collect();
            f.write_str(&chosen.join("+"))?;
        }
        match self.effect {
            Effect::Eio => f.write_str(":eio")?,
            Effect::NoSpace => f.write_str(":enospc")?,
            Effect::Short => f.write_str(":short")?,
            Effect::Delay(d) if d.as_millis() % 1000 == 0 => write!(f, ":delay={}s", d.as_secs())?,
            Effect::Delay(d) => write!(f, ":delay={}ms", d.as_millis())?,
            Effect::Stall(d) if d.as_millis() % 1000 == 0 => write!(f, ":stall={}s", d.as_secs())?,
            Effect::Stall(d) => write!(f, ":stall={}ms", d.as_millis())?,
        }
        match self.lbas {
            Some((first, last)) if first == last => write!(f, ":lba={first}")?,
            Some((first, last)) => write!(f, ":lba={first}-{last}")?,
            None => {}
        }
        if self.every != 1 {
            write!(f, ":every={}", self.every)?;
        }
        Ok(())
    }
}

/// `250ms`, `2s`, or a bare number of milliseconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (digits, scale) = if let Some(ms) = t.strip_suffix("ms") {
        (ms, 1)
    } else if let Some(s) = t.strip_suffix('s') {
        (s, 1000)
    } else {
        (t, 1)
    };
    let n: u64 = digits.parse().map_err(|_| format!("'{text}' is not a duration"))?;
    Ok(Duration::from_millis(n.saturating_mul(scale)))
}

/// A store whose operations go through `rules` before reaching `inner`.
#[derive(Debug)]
pub struct FaultStore<S> {
    inner: S,
    rules: Vec<FaultRule>,
    block_size: u64,
}

/// What happens to one operation.
struct Decision {
    delay: Duration,
    stall: Duration,
    fault: Fault,
}

impl<S: BlockStore> FaultStore<S> {
    /// `block_size` is the LUN's logical block size: rules name logical blocks.
    pub fn new(inner: S, rules: Vec<FaultRule>, block_size: u32) -> Self {
        FaultStore { inner, rules, block_size: u64::from(block_size.max(1)) }
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    pub fn rules(&self) -> &[FaultRule] {
        &self.rules
    }

    fn decide(&self, op: FaultOp, offset: u64, len: u64) -> Decision {
        let mut decision = Decision { delay: Duration::ZERO, stall: Duration::ZERO, fault: None };
        for rule in &self.rules {
            let Some(at) = rule.fires(op, offset, len, self.block_size) else { continue };
            match rule.effect {
                Effect::Delay(d) => decision.delay += d,
                Effect::Stall(d) => decision.stall += d,
                effect if decision.fault.is_none() => decision.fault = Some((effect, at, rule.lbas.is_some())),
                _ => {}
            }
        }
        decision
    }

    /// How many bytes a short transfer moves: with an LBA range, those before its first block
    /// (none when the request starts inside it); without, half the request in whole blocks.
    fn short_length(&self, offset: u64, len: u64, at: u64, ranged: bool) -> u64 {
        if ranged {
            return at - offset;
        }
        len / 2 / self.block_size * self.block_size
    }
}

fn os_error(op: FaultOp, at: u64, errno: i32) -> BackstoreError {
    BackstoreError::io(op.kind(), at, std::io::Error::from_raw_os_error(errno))
}

/// The error of an EIO or ENOSPC effect; None for the others.
fn error_of(effect: Effect, op: FaultOp, at: u64) -> Option<BackstoreError> {
    match effect {
        Effect::Eio => Some(os_error(op, at, libc::EIO)),
        Effect::NoSpace => Some(os_error(op, at, libc::ENOSPC)),
        Effect::Short | Effect::Delay(_) | Effect::Stall(_) => None,
    }
}

/// The operations once their faults are decided and their waits are over.
impl<S: BlockStore> FaultStore<S> {
    async fn read_now(&self, fault: Fault, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError> {
        match fault {
            None => self.inner.read_at(offset, buf).await,
            Some((Effect::Short, at, ranged)) => {
                let done = self.short_length(offset, buf.len() as u64, at, ranged);
                if done > 0 {
                    self.inner.read_at(offset, &mut buf[..done as usize]).await?;
                }
                Err(BackstoreError::Short { op: ErrorKind::Read, offset, done })
            }
            Some((effect, at, _)) => Err(error_of(effect, FaultOp::Read, at).expect("an error effect")),
        }
    }

    async fn write_now(&self, fault: Fault, offset: u64, buf: &[u8], fua: bool) -> Result<(), BackstoreError> {
        match fault {
            None => self.inner.write_at(offset, buf, fua).await,
            Some((Effect::Short, at, ranged)) => {
                let done = self.short_length(offset, buf.len() as u64, at, ranged);
                if done > 0 {
                    self.inner.write_at(offset, &buf[..done as usize], fua).await?;
                }
                Err(BackstoreError::Short { op: ErrorKind::Write, offset, done })
            }
            Some((effect, at, _)) => Err(error_of(effect, FaultOp::Write, at).expect("an error effect")),
        }
    }

    async fn flush_now(&self, fault: Fault) -> Result<(), BackstoreError> {
        match fault.and_then(|(effect, at, _)| error_of(effect, FaultOp::Flush, at)) {
            Some(err) => Err(err),
            None => self.inner.flush().await,
        }
    }

    async fn unmap_now(&self, fault: Fault, offset: u64, len: u64) -> Result<(), BackstoreError> {
        match fault.and_then(|(effect, at, _)| error_of(effect, FaultOp::Unmap, at)) {
            Some(err) => Err(err),
            None => self.inner.unmap(offset, len).await,
        }
    }
}

impl<S: BlockStore> BlockStore for FaultStore<S> {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError> {
        let decision = self.decide(FaultOp::Read, offset, buf.len() as u64);
        sleep(decision.delay).await;
        // A stalled read dropped early has no one to give its data to: nothing to perform.
        sleep(decision.stall).await;
        self.read_now(decision.fault, offset, buf).await
    }

    async fn write_at(&self, offset: u64, buf: &[u8], fua: bool) -> Result<(), BackstoreError> {
        let decision = self.decide(FaultOp::Write, offset, buf.len() as u64);
        sleep(decision.delay).await;
        let fault = decision.fault;
        let issued =
            Issued::new(FaultOp::Write, decision.stall, || drop(drive(self.write_now(fault, offset, buf, fua))));
        sleep(decision.stall).await;
        issued.completed(self.write_now(fault, offset, buf, fua)).await
    }

    async fn flush(&self) -> Result<(), BackstoreError> {
        let decision = self.decide(FaultOp::Flush, 0, self.size());
        sleep(decision.delay).await;
        let fault = decision.fault;
        let issued = Issued::new(FaultOp::Flush, decision.stall, || drop(drive(self.flush_now(fault))));
        sleep(decision.stall).await;
        issued.completed(self.flush_now(fault)).await
    }

    async fn unmap(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        let decision = self.decide(FaultOp::Unmap, offset, len);
        sleep(decision.delay).await;
        let fault = decision.fault;
        let issued = Issued::new(FaultOp::Unmap, decision.stall, || drop(drive(self.unmap_now(fault, offset, len))));
        sleep(decision.stall).await;
        issued.completed(self.unmap_now(fault, offset, len)).await
    }

    fn reload_size(&self) -> Result<u64, BackstoreError> {
        self.inner.reload_size()
    }

    fn allocation(&self, offset: u64, len: u64) -> Result<(bool, u64), BackstoreError> {
        self.inner.allocation(offset, len)
    }
}

/// The error effect a rule decided, the byte it is reported at, and whether the rule had an LBA
/// range.
type Fault = Option<(Effect, u64, bool)>;

/// A stalled operation, issued when the stall began. If its future is dropped before the stall
/// is over (its command aborted), the drop waits out the rest of the stall on the dropping
/// thread and then performs the operation, so the store changes whatever became of the command,
/// as with a request a device holds; only dropping the future tells its caller that it ended.
///
/// A stall logs when it is issued and when it has ended (either way), so that a test through the
/// daemon knows the operation is held in the store, and that it ended before some answer.
struct Issued<F: FnOnce()> {
    op: FaultOp,
    until: Instant,
    perform: Option<F>,
}

impl<F: FnOnce()> Issued<F> {
    fn new(op: FaultOp, stall: Duration, perform: F) -> Self {
        if !stall.is_zero() {
            tracing::info!("fault injection: {} stalled for {stall:?}", op.name());
        }
        Issued { op, until: Instant::now() + stall, perform: (!stall.is_zero()).then_some(perform) }
    }

    /// The stall is over: the caller performs the operation itself (`operation`).
    async fn completed<T>(mut self, operation: impl Future<Output = T>) -> T {
        let stalled = self.perform.take().is_some();
        let result = operation.await;
        if stalled {
            tracing::info!("fault injection: stalled {} ended", self.op.name());
        }
        result
    }
}

impl<F: FnOnce()> Drop for Issued<F> {
    fn drop(&mut self) {
        if let Some(perform) = self.perform.take() {
            std::thread::sleep(self.until.saturating_duration_since(Instant::now()));
            perform();
            tracing::info!("fault injection: stalled {} ended (its command was dropped)", self.op.name());
        }
    }
}

/// Run an operation to its end on this thread (a stalled operation whose future was dropped).
/// The engines under faults complete inline or on their own threads; this polls until then.
fn drive<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Wait `delay` without blocking the caller's thread and without needing a particular runtime (the
/// stores are driven by tokio in the daemon and by plain executors in tests): a helper thread sleeps
/// and wakes the task. One thread per delayed operation is fine for a testing aid.
async fn sleep(delay: Duration) {
    if delay.is_zero() {
        return;
    }
    Sleep { delay, shared: None }.await
}

/// Whether the delay elapsed, and the waker to call when it does.
type Alarm = Arc<Mutex<(bool, Option<Waker>)>>;

struct Sleep {
    delay: Duration,
    shared: Option<Alarm>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let delay = self.delay;
        let shared = self.shared.get_or_insert_with(|| {
            let shared: Alarm = Arc::new(Mutex::new((false, None)));
            let theirs = shared.clone();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                let waker = {
                    let mut state = theirs.lock();
                    state.0 = true;
                    state.1.take()
                };
                if let Some(w) = waker {
                    w.wake();
                }
            });
            shared
        });
        let mut state = shared.lock();
        if state.0 {
            return Poll::Ready(());
        }
        state.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
#[path = "fault_tests.rs"]
mod tests;
