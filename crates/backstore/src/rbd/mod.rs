//! Ceph RBD images as backing stores (cargo feature `rbd`), through librbd's asynchronous C API.
//!
//! Layout: `ffi` declares the C functions, `options` parses the image path and `--bsopts`,
//! `image` connects and opens (blocking, done once per LUN), `aio` turns a librbd completion
//! into a future, `op_stats` counts each librbd call's latency and errors for /metrics. Every I/O here is submitted with an rbd_aio_* call and awaited; no runtime thread
//! ever waits for the cluster. librbd starts each request in the submitting thread
//! (`dispatch=inline`, see `options::Dispatch`) and `in_flight` keeps librados' throttles from
//! ever making that thread wait.
//!
//! Durability: librbd's cache (on by default) acknowledges writes before any OSD has them, so a
//! FUA write is followed by rbd_aio_flush, and SYNCHRONIZE CACHE is rbd_aio_flush. With the
//! cache off (`cache=off`, `rbd_cache = false` in the configuration or on the image) writes are
//! acknowledged only once on the OSDs, FUA costs nothing, and `volatile_cache()` says so, which
//! is what the caching mode page's WCE reports.
//!
//! Several gateways (`gateway=`, `tpg=`): the store joins the image's gateway registry
//! (`gateway`) on the image's own cluster client, and leaves it when dropped or asked to
//! (`leave_gateway`), after every write has reached the OSDs. Fenced by another gateway, it opens
//! the image again on a new client and serves from that (`slot`).
//!
//! Errors keep librbd's errno: ETIMEDOUT when `rados_osd_op_timeout` expires (an unreachable
//! cluster), ESHUTDOWN when this client was blocklisted, EROFS for a snapshot, ENOENT for a missing
//! image at open.

mod aio;
mod ffi;
mod gateway;
mod image;
mod in_flight;
pub mod op_stats;
mod options;
mod rados;
mod slot;
#[cfg(test)]
mod tests;

pub use gateway::{
    GatewayOptions, GatewayStatus, Listener, LocalState, Member, MemberState, SharedObject, SharedUpdate,
    SHARED_NOTIFY_TIMEOUT,
};
pub use options::{Dispatch, ImagePath, Key, RbdOptions, DEFAULT_POOL, DEFAULT_TIMEOUT_SECS};

use crate::{check_range, BackstoreError, BlockStore, ErrorKind};
use aio::{submit, BufferPool, Request};
use image::{errno, Image};
use in_flight::{Admitted, InFlight};
use op_stats::{RbdOp, RbdOpStats};
use slot::ImageSlot;
use std::ffi::c_char;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

// The runtime moves command futures between worker threads: the engine's futures must be Send.
#[allow(dead_code)]
fn futures_are_send(s: &RbdStore, buf: &'static mut [u8]) {
    fn send<T: Send>(_: T) {}
    send(s.read_at(0, buf));
    send(s.write_at(0, &[], true));
    send(s.flush());
    send(s.unmap(0, 0));
    send(s.write_same(0, 0, &[]));
    send(s.compare_and_write(0, &[], &[]));
}

/// An open RBD image.
#[derive(Debug)]
pub struct RbdStore {
    /// Membership among several gateways; left before the image closes.
    gateway: parking_lot::Mutex<Option<gateway::Gateway>>,
    status: Option<Arc<GatewayStatus>>,
    /// `<pool id>.<image id>`: the same on every gateway, for the unit's identity.
    unit_id: String,
    /// Replaced when a fenced gateway reconnects (see `slot`): each librbd call holds the image
    /// it was submitted to until it completed.
    image: Arc<ImageSlot>,
    path: ImagePath,
    /// `path` as text, for `show` (which prints a path).
    display: std::path::PathBuf,
    /// The `--bsopts` as given, to reopen the image after a restart.
    options: String,
    size: AtomicU64,
    readonly: bool,
    volatile_cache: bool,
    pool: Arc<BufferPool>,
    /// Admission to librados' throttles, when librbd dispatches in the submitting thread (boxed:
    /// the enum of stores stays small).
    in_flight: Option<Box<InFlight>>,
    /// Latency and errors of every librbd call, for /metrics (boxed: the enum of stores stays small).
    op_stats: Box<RbdOpStats>,
}

/// The only size librbd's compare-and-write accepts (see `compare_and_write`).
const ATOMIC_COMPARE_BYTES: usize = 512;

/// librbd 16 reports a miscompare's offset from the start of the request; later versions document
/// it as an image offset. Requests are sector-aligned, so the two readings never overlap when the
/// request does not start at 0 (where they agree).
fn mismatch_in_range(reported: u64, offset: u64, len: usize) -> u64 {
    let len = len as u64;
    let at = if reported < len { reported } else { reported.saturating_sub(offset) };
    at.min(len.saturating_sub(1))
}

/// The result of one aio call: a negative errno becomes an error naming the operation.
fn check(op: ErrorKind, offset: u64, r: isize) -> Result<usize, BackstoreError> {
    if r < 0 {
        return Err(BackstoreError::io(op, offset, errno(r as i64)));
    }
    Ok(r as usize)
}

impl RbdStore {
    /// Connect to the cluster and open `path` (`[pool/]image[@snapshot]`; a snapshot is read-only).
    /// Blocks for up to the connection timeout: call it off the async runtime.
    pub fn open(path: &str, options: &str, readonly: bool) -> Result<RbdStore, BackstoreError> {
        let path = ImagePath::parse(path)?;
        let mut opts = RbdOptions::parse(options)?;
        let readonly = readonly || path.snapshot.is_some();
        let mut image = Image::open(&path, &opts, readonly)?;
        if opts.dispatch == Dispatch::Inline && image.cache_waits_in_submitter() {
            // The image's own settings turn on a cache that waits in the submitting thread: let
            // librbd's thread do that waiting (closing blocks; this runs off the runtime).
            tracing::info!(image = %path, "librbd's cache policy waits in the caller: requests dispatched queued");
            opts.dispatch = Dispatch::Queued;
            drop(image);
            image = Image::open(&path, &opts, readonly)?;
        }
        let in_flight = image.dispatches_inline().then(|| Box::new(Self::throttle_share(&image)));
        // Without a gateway the image is never replaced: the slot just holds it.
        let slot = Arc::new(ImageSlot::new(image, path.clone(), opts.clone(), readonly));
        let image = slot.get();
        let open_err = |what: &str, source| BackstoreError::Open { path: format!("rbd:{path} ({what})"), source };
        let size = image.size().map_err(|e| open_err("reading the size", e))?;
        let volatile_cache = !readonly && Self::cache_is_volatile(&image);
        let (image_id, pool_id) = image.ids().map_err(|e| open_err("reading the image id", e))?;
        let gateway = match &opts.gateway {
            Some(_) if readonly => {
                return Err(BackstoreError::BadOption(format!(
                    "rbd:{path}: a gateway of several serves a writable image"
                )))
            }
            Some(g) => Some(
                gateway::Gateway::join(slot.clone(), opts.namespace.as_deref(), &image_id, g.clone())
                    .map_err(|e| open_err("joining the gateway registry", e))?,
            ),
            None => None,
        };
        Ok(RbdStore {
            status: gateway.as_ref().map(|g| g.status().clone()),
            gateway: parking_lot::Mutex::new(gateway),
            unit_id: format!("{pool_id}.{image_id}"),
            image: slot,
            display: path.to_string().into(),
            options: options.to_string(),
            path,
            size: AtomicU64::new(size),
            readonly,
            volatile_cache,
            pool: Arc::new(BufferPool::default()),
            in_flight,
            op_stats: Box::default(),
        })
    }

    /// The share of librados' throttles this image's requests may fill (see `in_flight`): the
    /// limits as configured, less what a write-around cache may still have in flight after it
    /// acknowledged.
    fn throttle_share(image: &Image) -> InFlight {
        let cache = if image.effective("rbd_cache").as_deref() == Some("false") {
            0
        } else {
            image.effective_u64("rbd_cache_max_dirty", 0)
        };
        InFlight::new(
            image.effective_u64("objecter_inflight_ops", in_flight::DEFAULT_INFLIGHT_OPS),
            image.effective_u64("objecter_inflight_op_bytes", in_flight::DEFAULT_INFLIGHT_BYTES),
            cache,
            // Unknown, count as if every 4 KiB were its own object operation.
            image.stripe_unit().unwrap_or(4096),
        )
    }

    /// Wait for room for a request over `len` bytes at `offset` (`data`: it carries that many
    /// bytes) when librbd dispatches inline; nothing to wait for otherwise.
    async fn admit(&self, offset: u64, len: u64, data: bool) -> Option<Admitted> {
        match &self.in_flight {
            Some(f) => Some(f.admit(offset, len, data).await),
            None => None,
        }
    }

    /// Whether librbd acknowledges writes from its cache: the image's own override if it has one,
    /// else the client configuration; the write-through policy keeps nothing volatile.
    fn cache_is_volatile(image: &Image) -> bool {
        let enabled = image.effective("rbd_cache");
        let policy = image.effective("rbd_cache_policy");
        enabled.as_deref() != Some("false") && policy.as_deref() != Some("writethrough")
    }

    /// How librbd's calls on this image went: latency and errors per kind of call.
    pub fn op_stats(&self) -> &RbdOpStats {
        &self.op_stats
    }

    /// Await a submitted librbd call and record how long it took and whether it failed.
    async fn timed(&self, op: RbdOp, done: impl std::future::Future<Output = isize>) -> isize {
        let started = std::time::Instant::now();
        let r = done.await;
        // A miscompare is COMPARE AND WRITE's answer, not a failure of the cluster.
        let failed = r < 0 && !(op == RbdOp::CompareAndWrite && r == -(libc::EILSEQ as isize));
        self.op_stats.record(op, started.elapsed(), failed);
        r
    }

    /// This gateway's view of the image's gateways, when several serve it.
    pub fn gateway(&self) -> Option<&Arc<GatewayStatus>> {
        self.status.as_ref()
    }

    /// State shared with the image's other gateways: the object `rtgt.<kind>.<image id>` (`kind`:
    /// letters and digits), whose changes reach `listener` on every gateway (see
    /// `gateway::shared`). `None` without a gateway. Blocking (a few cluster round trips).
    pub fn share(&self, kind: &str, listener: Listener) -> Option<std::io::Result<Arc<SharedObject>>> {
        let gateway = self.gateway.lock();
        let g = gateway.as_ref()?;
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Some(Err(std::io::Error::from_raw_os_error(libc::EINVAL)));
        }
        let image_id = self.unit_id.split_once('.').map_or("", |(_, id)| id);
        let oid = format!("rtgt.{kind}.{image_id}");
        Some(g.share(oid, listener))
    }

    /// `<pool id>.<image id>`: names the image for as long as it exists, whatever its name, and
    /// is the same on every gateway (the logical unit's identity is derived from it).
    pub fn unit_id(&self) -> &str {
        &self.unit_id
    }

    /// Leave the gateway registry (a clean stop): stop serving, wait until every write issued is
    /// on the OSDs, then remove this gateway's entry and its ownership so that the next gateway
    /// takes over at once. Blocking; does nothing the second time or without a gateway.
    pub fn leave_gateway(&self) {
        let mut gateway = self.gateway.lock();
        let Some(mut g) = gateway.take() else { return };
        g.status().set_local(LocalState::Unavailable);
        if let Err(e) = self.image.get().flush_blocking() {
            tracing::warn!(image = %self.path, "flush before leaving the gateway registry failed: {e}");
        }
        g.leave();
    }

    /// The image as `pool/image[@snapshot]`.
    pub fn image_path(&self) -> &ImagePath {
        &self.path
    }

    /// What `show` prints as the backing store: `pool/image[@snapshot]`.
    pub fn display_path(&self) -> &std::path::Path {
        &self.display
    }

    /// The options the store was opened with (`conf=...;id=...`), for the saved configuration.
    pub fn options(&self) -> &str {
        &self.options
    }

    /// Snapshots, and images opened read-only, refuse writes.
    pub fn readonly(&self) -> bool {
        self.readonly
    }

    /// True when writes can be acknowledged before they are on the OSDs (librbd's cache).
    pub fn volatile_cache(&self) -> bool {
        self.volatile_cache
    }

    /// Grow or shrink the image itself (tests, and a future management operation). Blocking.
    pub fn resize(&self, size: u64) -> Result<(), BackstoreError> {
        self.image.get().resize(size).map_err(|e| BackstoreError::io(ErrorKind::Size, size, e))?;
        self.reload_size().map(|_| ())
    }

    /// Deallocate a range with rbd_aio_discard. Unlike `unmap` this promises nothing about what
    /// later reads return: librbd may skip pieces smaller than its discard granularity.
    pub async fn discard(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        self.write_check(ErrorKind::Unmap, offset, len)?;
        let req = Request::new(&self.pool, 0);
        req.hold(self.admit(offset, len, false).await);
        let image = self.image.get();
        // SAFETY: live image; no buffer involved.
        let done = submit(&req, |_, c| unsafe { ffi::rbd_aio_discard(image.handle, offset, len, c) } as isize)
            .map_err(|r| BackstoreError::io(ErrorKind::Unmap, offset, errno(i64::from(r))))?;
        check(ErrorKind::Unmap, offset, self.timed(RbdOp::Discard, done).await).map(|_| ())
    }

    fn write_check(&self, op: ErrorKind, offset: u64, len: u64) -> Result<(), BackstoreError> {
        if self.readonly {
            return Err(BackstoreError::io(op, offset, std::io::Error::from_raw_os_error(libc::EROFS)));
        }
        check_range(op, offset, len, self.size())
    }

    async fn flush_cache(&self) -> Result<(), BackstoreError> {
        let image = self.image.get();
        let req = Request::new(&self.pool, 0);
        // SAFETY: live image; the completion belongs to `req` (see `aio::submit`).
        let done = submit(&req, |_, c| unsafe { ffi::rbd_aio_flush(image.handle, c) } as isize)
            .map_err(|r| BackstoreError::io(ErrorKind::Flush, 0, errno(i64::from(r))))?;
        check(ErrorKind::Flush, 0, self.timed(RbdOp::Flush, done).await).map(|_| ())
    }

    /// Zero a range, deallocating whole objects (librbd's write_zeroes is a discard that also
    /// zeroes partial objects, unlike rbd_aio_discard, which may skip small pieces).
    async fn write_zeroes(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        let len_usize =
            usize::try_from(len).map_err(|_| BackstoreError::out_of_range(ErrorKind::Unmap, offset, len))?;
        let req = Request::new(&self.pool, 0);
        req.hold(self.admit(offset, len, false).await);
        let image = self.image.get();
        // SAFETY: live image; no buffer involved.
        let done = submit(&req, |_, c| unsafe { ffi::rbd_aio_write_zeroes(image.handle, offset, len_usize, c, 0, 0) }
            as isize)
        .map_err(|r| BackstoreError::io(ErrorKind::Unmap, offset, errno(i64::from(r))))?;
        check(ErrorKind::Unmap, offset, self.timed(RbdOp::Discard, done).await).map(|_| ())
    }
}

impl Drop for RbdStore {
    fn drop(&mut self) {
        self.leave_gateway();
    }
}

impl BlockStore for RbdStore {
    fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError> {
        check_range(ErrorKind::Read, offset, buf.len() as u64, self.size())?;
        if buf.is_empty() {
            return Ok(());
        }
        let req = Request::new(&self.pool, buf.len());
        req.hold(self.admit(offset, buf.len() as u64, true).await);
        let image = self.image.get();
        let done = submit(&req, |r, c| {
            let (ptr, len) = r.data_ptr();
            // SAFETY: `ptr` points to `len` bytes owned by the request, which lives until the callback.
            unsafe { ffi::rbd_aio_read(image.handle, offset, len, ptr as *mut c_char, c) as isize }
        })
        .map_err(|r| BackstoreError::io(ErrorKind::Read, offset, errno(i64::from(r))))?;
        let n = check(ErrorKind::Read, offset, self.timed(RbdOp::Read, done).await)?;
        if n != buf.len() {
            return Err(BackstoreError::io(ErrorKind::Read, offset, std::io::Error::from_raw_os_error(libc::EIO)));
        }
        buf.copy_from_slice(req.completed_data());
        Ok(())
    }

    async fn write_at(&self, offset: u64, buf: &[u8], fua: bool) -> Result<(), BackstoreError> {
        self.write_check(ErrorKind::Write, offset, buf.len() as u64)?;
        if !buf.is_empty() {
            let req = Request::with_data(&self.pool, buf);
            req.hold(self.admit(offset, buf.len() as u64, true).await);
            let image = self.image.get();
            let done = submit(&req, |r, c| {
                let (ptr, len) = r.data_ptr();
                // SAFETY: `ptr` points to `len` bytes owned by the request, which lives until the callback.
                unsafe { ffi::rbd_aio_write(image.handle, offset, len, ptr as *const c_char, c) as isize }
            })
            .map_err(|r| BackstoreError::io(ErrorKind::Write, offset, errno(i64::from(r))))?;
            check(ErrorKind::Write, offset, self.timed(RbdOp::Write, done).await)?;
        }
        if fua && self.volatile_cache {
            // A failed flush fails this write: report it at the write's offset.
            self.flush_cache().await.map_err(|e| match e {
                BackstoreError::Io { source, .. } => BackstoreError::io(ErrorKind::Write, offset, source),
                other => other,
            })?;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), BackstoreError> {
        if self.readonly {
            return Ok(());
        }
        self.flush_cache().await
    }

    async fn unmap(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        self.write_check(ErrorKind::Unmap, offset, len)?;
        if len == 0 {
            return Ok(());
        }
        self.write_zeroes(offset, len).await
    }

    async fn write_same(&self, offset: u64, len: u64, pattern: &[u8]) -> Result<(), BackstoreError> {
        self.write_check(ErrorKind::Write, offset, len)?;
        if len == 0 {
            return Ok(());
        }
        if pattern.is_empty() || !len.is_multiple_of(pattern.len() as u64) {
            return Err(BackstoreError::out_of_range(ErrorKind::Write, offset, len));
        }
        if pattern.iter().all(|&b| b == 0) {
            return self.write_zeroes(offset, len).await;
        }
        let len_usize =
            usize::try_from(len).map_err(|_| BackstoreError::out_of_range(ErrorKind::Write, offset, len))?;
        let req = Request::with_data(&self.pool, pattern);
        // librbd may expand the pattern into whole writes: count the bytes written.
        req.hold(self.admit(offset, len, true).await);
        let image = self.image.get();
        let done = submit(&req, |r, c| {
            let (ptr, plen) = r.data_ptr();
            // SAFETY: the pattern lives in the request until the callback ran.
            unsafe {
                ffi::rbd_aio_writesame(image.handle, offset, len_usize, ptr as *const c_char, plen, c, 0) as isize
            }
        })
        .map_err(|r| BackstoreError::io(ErrorKind::Write, offset, errno(i64::from(r))))?;
        check(ErrorKind::Write, offset, self.timed(RbdOp::WriteSame, done).await).map(|_| ())
    }

    async fn compare_and_write(&self, offset: u64, expected: &[u8], data: &[u8]) -> Result<(), BackstoreError> {
        self.write_check(ErrorKind::Write, offset, data.len() as u64)?;
        if expected.len() != data.len() {
            return Err(BackstoreError::BadOption("compare and write buffers differ in length".into()));
        }
        if data.is_empty() {
            return Ok(());
        }
        // librbd (Ceph 16) compares and writes atomically one aligned 512-byte sector at a time and
        // answers EINVAL to anything larger; larger requests fall back to read, compare, write,
        // which is atomic only against writers the SCSI layer keeps out. A LUN that advertises a
        // MAXIMUM COMPARE AND WRITE LENGTH of one 512-byte block always gets the atomic call.
        if data.len() != ATOMIC_COMPARE_BYTES || !offset.is_multiple_of(ATOMIC_COMPARE_BYTES as u64) {
            return crate::compare_then_write(self, offset, expected, data).await;
        }
        let req = Request::with_two(&self.pool, expected, data);
        let len = data.len();
        req.hold(self.admit(offset, len as u64, true).await);
        let image = self.image.get();
        let done = submit(&req, |r, c| {
            let (cmp, len) = r.data_ptr();
            let (buf, _) = r.data2_ptr();
            // SAFETY: both buffers and the mismatch slot live in the request until the callback ran.
            unsafe {
                ffi::rbd_aio_compare_and_write(
                    image.handle,
                    offset,
                    len,
                    cmp as *const c_char,
                    buf as *const c_char,
                    c,
                    r.mismatch_ptr(),
                    0,
                )
            }
        })
        .map_err(|r| BackstoreError::io(ErrorKind::Write, offset, errno(i64::from(r))))?;
        let r = self.timed(RbdOp::CompareAndWrite, done).await;
        if r == -(libc::EILSEQ as isize) {
            return Err(BackstoreError::Miscompare {
                offset: mismatch_in_range(req.completed_mismatch(), offset, len),
            });
        }
        check(ErrorKind::Write, offset, r).map(|_| ())
    }

    /// From the image's object map: deallocated means no object holds the range. This blocks for
    /// one metadata read (GET LBA STATUS is rare; the trait's query is synchronous).
    fn allocation(&self, offset: u64, len: u64) -> Result<(bool, u64), BackstoreError> {
        check_range(ErrorKind::Read, offset, len, self.size())?;
        if len == 0 {
            return Ok((true, 0));
        }
        self.image.get().allocation(offset, len).map_err(|e| BackstoreError::io(ErrorKind::Read, offset, e))
    }

    fn reload_size(&self) -> Result<u64, BackstoreError> {
        let size = self.image.get().size().map_err(|e| BackstoreError::io(ErrorKind::Size, 0, e))?;
        self.size.store(size, Ordering::Relaxed);
        Ok(size)
    }
}
