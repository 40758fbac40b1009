//! librbd's asynchronous calls as futures.
//!
//! Every request owns its buffer: librbd reads or fills it on its own threads until the completion
//! callback runs, and a future can be dropped at any await point (a task aborted, a connection
//! gone). If the buffer were the caller's slice, dropping the future would leave librbd writing
//! into freed memory; there is no way to cancel an rbd aio. So a request copies write data in and
//! read data out of a buffer it shares with the callback, and whichever of the two lets go last
//! frees it. Buffers come from a small pool, so a steady load allocates nothing per command beyond
//! the shared request itself.
//!
//! The callback (on a librbd finisher thread) records the return value and wakes the task; it
//! never blocks and never calls back into librbd except to release the completion.

use super::ffi;
use super::in_flight::Admitted;
use parking_lot::Mutex;
use std::cell::UnsafeCell;
use std::ffi::{c_int, c_void};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Buffers larger than this are not kept for reuse (a 64 MiB transfer should not pin 64 MiB).
const POOL_MAX_BUFFER: usize = 4 << 20;
/// Most buffers the pool keeps: enough for a deep queue on one LUN.
const POOL_MAX_COUNT: usize = 128;

/// Reusable request buffers.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufferPool {
    /// A buffer of exactly `len` bytes for librbd to fill (a read).
    fn take(&self, len: usize) -> Vec<u8> {
        let mut buf = self.free.lock().pop().unwrap_or_default();
        // Zero-filled so that the Vec never holds uninitialised bytes; a memset of a few KiB is
        // nothing next to the network round trip the read costs.
        buf.resize(len, 0);
        buf
    }

    fn copy_of(&self, bytes: &[u8]) -> Vec<u8> {
        let mut buf = self.free.lock().pop().unwrap_or_default();
        buf.extend_from_slice(bytes);
        buf
    }

    fn give_back(&self, mut buf: Vec<u8>) {
        if buf.capacity() > POOL_MAX_BUFFER {
            return;
        }
        buf.clear();
        let mut free = self.free.lock();
        if free.len() < POOL_MAX_COUNT {
            free.push(buf);
        }
    }
}

#[derive(Default)]
struct Outcome {
    /// librbd's return value once the completion ran.
    result: Option<isize>,
    waker: Option<Waker>,
}

/// One in-flight operation, shared by the future and librbd's callback.
pub(crate) struct Request {
    outcome: Mutex<Outcome>,
    /// Written or read by librbd through a raw pointer while in flight (see `data_ptr`); touched by
    /// Rust only before submission and after `outcome.result` is set.
    data: UnsafeCell<Vec<u8>>,
    /// Second buffer: COMPARE AND WRITE's data to write (`data` holds the bytes to compare).
    data2: UnsafeCell<Vec<u8>>,
    /// Where librbd stores COMPARE AND WRITE's mismatch offset.
    mismatch: UnsafeCell<u64>,
    pool: Arc<BufferPool>,
    /// The request's share of librados' throttles (`in_flight`), given back when both the future
    /// and librbd's callback are done with the request: a future dropped early does not free it
    /// while librbd still works on the request.
    admitted: Mutex<Option<Admitted>>,
}

// SAFETY: the cells are accessed from Rust only by the request's owner before submission (no other
// reference exists yet) and after completion (the callback's store of `result` under the mutex
// happens-before the owner's load of it, and librbd touched the buffers before calling back);
// everything else is behind the mutex.
unsafe impl Sync for Request {}
// SAFETY: the raw buffers inside are plain owned memory; see the Sync reasoning above.
unsafe impl Send for Request {}

impl Drop for Request {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(self.data.get_mut()));
        self.pool.give_back(std::mem::take(self.data2.get_mut()));
    }
}

impl Request {
    fn build(pool: &Arc<BufferPool>, data: Vec<u8>, data2: Vec<u8>) -> Arc<Request> {
        Arc::new(Request {
            outcome: Mutex::new(Outcome::default()),
            data: UnsafeCell::new(data),
            data2: UnsafeCell::new(data2),
            mismatch: UnsafeCell::new(0),
            pool: pool.clone(),
            admitted: Mutex::new(None),
        })
    }

    /// Keep `admitted` until the request is gone.
    pub(crate) fn hold(&self, admitted: Option<Admitted>) {
        *self.admitted.lock() = admitted;
    }

    /// A request with a zeroed `len`-byte buffer.
    pub(crate) fn new(pool: &Arc<BufferPool>, len: usize) -> Arc<Request> {
        Request::build(pool, pool.take(len), Vec::new())
    }

    /// A request whose buffer holds a copy of `bytes`.
    pub(crate) fn with_data(pool: &Arc<BufferPool>, bytes: &[u8]) -> Arc<Request> {
        Request::build(pool, pool.copy_of(bytes), Vec::new())
    }

    /// A request holding copies of two buffers, `first` and `second` (COMPARE AND WRITE).
    pub(crate) fn with_two(pool: &Arc<BufferPool>, first: &[u8], second: &[u8]) -> Arc<Request> {
        Request::build(pool, pool.copy_of(first), pool.copy_of(second))
    }

    /// The buffer's address and length, for librbd.
    pub(crate) fn data_ptr(&self) -> (*mut u8, usize) {
        // SAFETY: only the pointer is taken (no reference to the bytes is created); the Vec itself is
        // not resized while the request lives.
        let v = unsafe { &mut *self.data.get() };
        (v.as_mut_ptr(), v.len())
    }

    pub(crate) fn data2_ptr(&self) -> (*mut u8, usize) {
        // SAFETY: as in `data_ptr`.
        let v = unsafe { &mut *self.data2.get() };
        (v.as_mut_ptr(), v.len())
    }

    pub(crate) fn mismatch_ptr(&self) -> *mut u64 {
        self.mismatch.get()
    }

    /// The buffer, once the operation completed.
    pub(crate) fn completed_data(&self) -> &[u8] {
        debug_assert!(self.outcome.lock().result.is_some());
        // SAFETY: called only after `Completion` resolved: librbd is done with the buffer and the
        // mutex ordered its writes before this read (see the Sync impl).
        unsafe { &*self.data.get() }
    }

    /// COMPARE AND WRITE's mismatch offset, once the operation completed.
    pub(crate) fn completed_mismatch(&self) -> u64 {
        // SAFETY: as in `completed_data`.
        unsafe { *self.mismatch.get() }
    }
}

/// librbd's completion callback. `arg` is the `Arc<Request>` leaked by `submit`, reclaimed here
/// exactly once.
unsafe extern "C" fn on_complete(c: ffi::RbdCompletionT, arg: *mut c_void) {
    // SAFETY: `arg` came from `Arc::into_raw` in `submit`, and librbd calls this once per completion.
    let req = unsafe { Arc::from_raw(arg as *const Request) };
    // SAFETY: `c` is the live completion this callback belongs to; releasing it here is the last use
    // (librbd keeps its own reference while it runs the callback).
    let result = unsafe {
        let r = ffi::rbd_aio_get_return_value(c);
        ffi::rbd_aio_release(c);
        r
    };
    let waker = {
        let mut outcome = req.outcome.lock();
        outcome.result = Some(result);
        outcome.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Start an operation: create a completion bound to `req` and call `start` with the request and
/// the completion (the actual rbd_aio_* call; it takes the buffers' addresses from the request, so
/// no raw pointer lives across an await and the futures stay `Send`). On success the returned future resolves to librbd's return value.
///
/// When `start` itself fails, librbd did not take the completion in the documented API; but as
/// that cannot be proven for every call, the completion and the request are leaked rather than
/// freed under a callback that might still come (it never does in practice: librbd reports errors
/// through the completion).
pub(crate) fn submit(
    req: &Arc<Request>,
    start: impl FnOnce(&Request, ffi::RbdCompletionT) -> isize,
) -> Result<Completion, c_int> {
    let arg = Arc::into_raw(req.clone()) as *mut c_void;
    let mut c: ffi::RbdCompletionT = std::ptr::null_mut();
    // SAFETY: `c` is a valid out-pointer; `on_complete` matches rbd_callback_t.
    let r = unsafe { ffi::rbd_aio_create_completion(arg, Some(on_complete), &mut c) };
    if r < 0 {
        // SAFETY: no completion exists, so nothing else holds `arg`: reclaim it.
        drop(unsafe { Arc::from_raw(arg as *const Request) });
        return Err(r);
    }
    let r = start(req, c);
    if r < 0 {
        return Err(r as c_int);
    }
    Ok(Completion { req: req.clone() })
}

/// Resolves to librbd's return value for one request.
pub(crate) struct Completion {
    req: Arc<Request>,
}

impl Future for Completion {
    type Output = isize;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<isize> {
        let mut outcome = self.req.outcome.lock();
        if let Some(r) = outcome.result {
            return Poll::Ready(r);
        }
        match &outcome.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => outcome.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_and_bounds_buffers() {
        let pool = Arc::new(BufferPool::default());
        let a = pool.take(4096);
        assert_eq!(a.len(), 4096);
        let cap = a.capacity();
        pool.give_back(a);
        let b = pool.take(512);
        assert_eq!((b.len(), b.capacity()), (512, cap));
        pool.give_back(Vec::with_capacity(POOL_MAX_BUFFER + 1));
        assert_eq!(pool.free.lock().len(), 0);
    }

    #[test]
    fn request_copies_and_returns_its_buffer() {
        let pool = Arc::new(BufferPool::default());
        let req = Request::with_two(&pool, &[1, 2, 3], &[4, 5]);
        assert_eq!(req.data_ptr().1, 3);
        assert_eq!(req.data2_ptr().1, 2);
        drop(req);
        assert_eq!(pool.free.lock().len(), 2);
    }
}
