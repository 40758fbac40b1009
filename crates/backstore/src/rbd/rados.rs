//! The librados calls the gateway registry makes, wrapped safely: an object's omap read whole
//! with its version, a compound omap update guarded by that version, watch/notify on the object,
//! the client's own address, and monitor commands (the blocklist). Blocking; called from the
//! registry's own thread, never from a runtime worker.

use super::ffi;
use super::image::errno;
use parking_lot::{Condvar, Mutex};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A registry holds a few keys per gateway; more than this many is not a registry of ours.
const MAX_KEYS: u64 = 4096;

fn cstring(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn check(r: c_int) -> io::Result<()> {
    if r < 0 {
        Err(errno(i64::from(r)))
    } else {
        Ok(())
    }
}

/// A cluster connection owned elsewhere (the image's: fencing that client fences the image's
/// writes and the registry's together). Valid while the `Image` it came from lives.
#[derive(Clone, Copy)]
pub(crate) struct Cluster(pub(crate) ffi::RadosT);

// SAFETY: librados cluster handles may be used from any thread.
unsafe impl Send for Cluster {}
// SAFETY: see Send.
unsafe impl Sync for Cluster {}

impl Cluster {
    /// This client's address as the blocklist names it (`ip:port/nonce`).
    pub(crate) fn address(&self) -> io::Result<String> {
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: live cluster; librados allocates the string, freed below.
        check(unsafe { ffi::rados_getaddrs(self.0, &mut out) })?;
        if out.is_null() {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        // SAFETY: a NUL-terminated string from librados, freed once after copying.
        let text = unsafe { CStr::from_ptr(out) }.to_string_lossy().into_owned();
        // SAFETY: allocated by librados for us.
        unsafe { ffi::rados_buffer_free(out) };
        Ok(legacy_address(&text))
    }

    /// Wait until this client has the cluster's latest OSD map: operations sent after it carry
    /// that epoch, so no OSD runs them under an older map (one without a blocklist entry just added).
    pub(crate) fn wait_for_latest_osdmap(&self) -> io::Result<()> {
        // SAFETY: live cluster.
        check(unsafe { ffi::rados_wait_for_latest_osdmap(self.0) })
    }

    /// Send one JSON command to the monitors; their status text on failure.
    pub(crate) fn mon_command(&self, json: &str) -> Result<String, (io::Error, String)> {
        let cmd = cstring(json).map_err(|e| (e, String::new()))?;
        let mut cmds = [cmd.as_ptr()];
        let (mut outbuf, mut outbuf_len, mut outs, mut outs_len) =
            (std::ptr::null_mut(), 0usize, std::ptr::null_mut(), 0usize);
        // SAFETY: one NUL-terminated command; the out-pointers receive buffers librados allocates.
        let r = unsafe {
            ffi::rados_mon_command(
                self.0,
                cmds.as_mut_ptr(),
                1,
                std::ptr::null(),
                0,
                &mut outbuf,
                &mut outbuf_len,
                &mut outs,
                &mut outs_len,
            )
        };
        let take = |p: *mut c_char, len: usize| {
            if p.is_null() {
                return String::new();
            }
            // SAFETY: librados returned `len` bytes at `p`; freed once after copying.
            let s = String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(p as *const u8, len) }).into_owned();
            // SAFETY: allocated by librados for us.
            unsafe { ffi::rados_buffer_free(p) };
            s
        };
        let (out, status) = (take(outbuf, outbuf_len), take(outs, outs_len));
        if r < 0 {
            return Err((errno(i64::from(r)), status));
        }
        Ok(out)
    }
}

/// `[v2:127.0.0.1:0/123,v1:127.0.0.1:0/123]` or `v2:127.0.0.1:0/123`: the blocklist takes the
/// plain `127.0.0.1:0/123` (the nonce is what tells this client from the next one).
fn legacy_address(text: &str) -> String {
    let first = text.trim_start_matches('[').trim_end_matches(']').split(',').next().unwrap_or("");
    let plain = first.strip_prefix("v2:").or_else(|| first.strip_prefix("v1:")).or_else(|| first.strip_prefix("any:"));
    plain.unwrap_or(first).to_string()
}

/// An I/O context of its own on a pool (and namespace) of a `Cluster`.
pub(crate) struct Pool {
    cluster: Cluster,
    io: ffi::RadosIoctxT,
}

// SAFETY: an ioctx may be used from any thread; the registry uses each from one at a time.
unsafe impl Send for Pool {}
// SAFETY: see Send; the watch callback only acks through it.
unsafe impl Sync for Pool {}

impl Drop for Pool {
    fn drop(&mut self) {
        // SAFETY: created by `open`, destroyed once.
        unsafe { ffi::rados_ioctx_destroy(self.io) };
    }
}

impl Pool {
    pub(crate) fn open(cluster: Cluster, pool: &str, namespace: Option<&str>) -> io::Result<Pool> {
        let name = cstring(pool)?;
        let mut io = std::ptr::null_mut();
        // SAFETY: connected cluster, NUL-terminated name, out-pointer to a local.
        check(unsafe { ffi::rados_ioctx_create(cluster.0, name.as_ptr(), &mut io) })?;
        let pool = Pool { cluster, io };
        if let Some(ns) = namespace {
            let ns = cstring(ns)?;
            // SAFETY: live ioctx; librados copies the name.
            unsafe { ffi::rados_ioctx_set_namespace(pool.io, ns.as_ptr()) };
        }
        Ok(pool)
    }

    /// Every omap key and value of `oid`, and the object's version (0 and nothing when the
    /// object does not exist).
    pub(crate) fn omap(&self, oid: &str) -> io::Result<(BTreeMap<String, String>, u64)> {
        let oid = cstring(oid)?;
        // SAFETY: a new op, released below on every path.
        let op = unsafe { ffi::rados_create_read_op() };
        let (mut iter, mut more, mut rval) = (std::ptr::null_mut(), 0u8, 0 as c_int);
        // SAFETY: the out-pointers are locals that outlive the operation.
        unsafe {
            ffi::rados_read_op_omap_get_vals2(op, c"".as_ptr(), c"".as_ptr(), MAX_KEYS, &mut iter, &mut more, &mut rval)
        };
        // SAFETY: live op and ioctx.
        let r = unsafe { ffi::rados_read_op_operate(op, self.io, oid.as_ptr(), 0) };
        // SAFETY: live ioctx, read just after the operation on this thread.
        let version = unsafe { ffi::rados_get_last_version(self.io) };
        let mut map = BTreeMap::new();
        let result = if r == -libc::ENOENT {
            Ok((map, 0))
        } else if r < 0 || rval < 0 {
            Err(errno(i64::from(if r < 0 { r } else { rval })))
        } else {
            loop {
                let (mut k, mut v, mut klen, mut vlen) = (std::ptr::null_mut(), std::ptr::null_mut(), 0, 0);
                // SAFETY: a live iterator; the strings stay valid until the next call.
                let r = unsafe { ffi::rados_omap_get_next2(iter, &mut k, &mut v, &mut klen, &mut vlen) };
                if r < 0 || k.is_null() {
                    break;
                }
                // SAFETY: librados returned these lengths for these pointers.
                let (key, value) = unsafe {
                    (
                        std::slice::from_raw_parts(k as *const u8, klen),
                        if v.is_null() { &[][..] } else { std::slice::from_raw_parts(v as *const u8, vlen) },
                    )
                };
                map.insert(String::from_utf8_lossy(key).into_owned(), String::from_utf8_lossy(value).into_owned());
            }
            if more != 0 {
                Err(io::Error::from_raw_os_error(libc::E2BIG))
            } else {
                Ok((map, version))
            }
        };
        // SAFETY: the iterator (if any) and the op are released once.
        unsafe {
            if !iter.is_null() {
                ffi::rados_omap_get_end(iter);
            }
            ffi::rados_release_read_op(op);
        }
        result
    }

    /// Set and remove omap keys of `oid` in one atomic operation, creating the object if needed;
    /// with `version`, only if the object is still at that version (ERANGE or EOVERFLOW if not).
    pub(crate) fn update(
        &self,
        oid: &str,
        set: &[(String, String)],
        remove: &[String],
        version: Option<u64>,
    ) -> io::Result<()> {
        let oid = cstring(oid)?;
        // SAFETY: a new op, released below.
        let op = unsafe { ffi::rados_create_write_op() };
        let set_keys: Vec<*const c_char> = set.iter().map(|(k, _)| k.as_ptr() as *const c_char).collect();
        let set_vals: Vec<*const c_char> = set.iter().map(|(_, v)| v.as_ptr() as *const c_char).collect();
        let set_klens: Vec<usize> = set.iter().map(|(k, _)| k.len()).collect();
        let set_vlens: Vec<usize> = set.iter().map(|(_, v)| v.len()).collect();
        let rm_keys: Vec<*const c_char> = remove.iter().map(|k| k.as_ptr() as *const c_char).collect();
        let rm_lens: Vec<usize> = remove.iter().map(String::len).collect();
        // SAFETY: every pointer and length array lives until the operation has run (below); the
        // keys and values are passed with their lengths, not as C strings.
        let r = unsafe {
            match version {
                Some(v) => ffi::rados_write_op_assert_version(op, v),
                None => ffi::rados_write_op_create(op, ffi::LIBRADOS_CREATE_IDEMPOTENT, std::ptr::null()),
            }
            if !set.is_empty() {
                ffi::rados_write_op_omap_set2(
                    op,
                    set_keys.as_ptr(),
                    set_vals.as_ptr(),
                    set_klens.as_ptr(),
                    set_vlens.as_ptr(),
                    set.len(),
                );
            }
            if !remove.is_empty() {
                ffi::rados_write_op_omap_rm_keys2(op, rm_keys.as_ptr(), rm_lens.as_ptr(), remove.len());
            }
            let r = ffi::rados_write_op_operate(op, self.io, oid.as_ptr(), std::ptr::null_mut(), 0);
            ffi::rados_release_write_op(op);
            r
        };
        check(r)
    }

    /// Tell the object's watchers that it changed; waits at most `timeout` for their acks.
    pub(crate) fn notify(&self, oid: &str, timeout: Duration) -> io::Result<()> {
        self.notify_with(oid, &[], timeout)
    }

    /// Set omap key `key` of `oid` to `value` if the object is still at `version` (0: if it does
    /// not exist yet). `Ok(None)` when another client changed it first; the object's new version.
    pub(crate) fn set_if(&self, oid: &str, key: &str, value: &[u8], version: u64) -> io::Result<Option<u64>> {
        let c_oid = cstring(oid)?;
        // SAFETY: a new op, released below.
        let op = unsafe { ffi::rados_create_write_op() };
        let (k, v) = (key.as_ptr() as *const c_char, value.as_ptr() as *const c_char);
        let (klen, vlen) = (key.len(), value.len());
        // SAFETY: the key and value (passed with their lengths) live until the operation has run.
        let (r, new_version) = unsafe {
            if version == 0 {
                ffi::rados_write_op_create(op, ffi::LIBRADOS_CREATE_EXCLUSIVE, std::ptr::null());
            } else {
                ffi::rados_write_op_assert_version(op, version);
            }
            ffi::rados_write_op_omap_set2(op, &k, &v, &klen, &vlen, 1);
            let r = ffi::rados_write_op_operate(op, self.io, c_oid.as_ptr(), std::ptr::null_mut(), 0);
            ffi::rados_release_write_op(op);
            (r, ffi::rados_get_last_version(self.io))
        };
        match r {
            // ERANGE/EOVERFLOW: another version; EEXIST: created by another meanwhile.
            _ if r == -libc::ERANGE || r == -libc::EOVERFLOW || r == -libc::EEXIST => Ok(None),
            _ if r < 0 => Err(errno(i64::from(r))),
            _ => Ok(Some(new_version)),
        }
    }

    /// `notify` with a payload for the watchers (see `Watch`).
    pub(crate) fn notify_with(&self, oid: &str, payload: &[u8], timeout: Duration) -> io::Result<()> {
        let oid = cstring(oid)?;
        let len = c_int::try_from(payload.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
        let (mut reply, mut reply_len) = (std::ptr::null_mut(), 0usize);
        // SAFETY: live ioctx; the reply buffer librados allocates is freed below.
        let r = unsafe {
            ffi::rados_notify2(
                self.io,
                oid.as_ptr(),
                payload.as_ptr() as *const c_char,
                len,
                timeout.as_millis() as u64,
                &mut reply,
                &mut reply_len,
            )
        };
        if !reply.is_null() {
            // SAFETY: allocated by librados for us.
            unsafe { ffi::rados_buffer_free(reply) };
        }
        // A watcher that did not ack in time (a gateway that just died) is not our failure.
        if r == -libc::ETIMEDOUT {
            return Ok(());
        }
        check(r)
    }
}

/// Wakes the registry's thread: a notification arrived, the watch broke, or it is time to stop.
#[derive(Default)]
pub(crate) struct Wake {
    pending: Mutex<bool>,
    cond: Condvar,
}

impl Wake {
    pub(crate) fn wake(&self) {
        *self.pending.lock() = true;
        self.cond.notify_all();
    }

    /// Sleep until woken or `timeout` passes; true when woken.
    pub(crate) fn wait(&self, timeout: Duration) -> bool {
        let mut pending = self.pending.lock();
        if !*pending {
            let _ = self.cond.wait_for(&mut pending, timeout);
        }
        std::mem::replace(&mut *pending, false)
    }
}

/// What a watch calls: with a notification's payload (before acknowledging it, so a notifier
/// knows the watcher acted on it), or with `None` when the watch broke.
pub(crate) type OnEvent = Box<dyn Fn(Option<&[u8]>) + Send + Sync>;

/// What the watch callbacks reach through their `arg`.
struct WatchCtx {
    pool: Pool,
    oid: CString,
    on_event: OnEvent,
    broken: AtomicBool,
}

/// A watch on one object; unwatched on drop.
pub(crate) struct Watch {
    ctx: Box<WatchCtx>,
    cookie: u64,
}

unsafe extern "C" fn on_notify(arg: *mut c_void, notify_id: u64, handle: u64, _: u64, data: *mut c_void, len: usize) {
    // SAFETY: `arg` is the boxed `WatchCtx`, alive until after rados_unwatch2 and the flush.
    let ctx = unsafe { &*(arg as *const WatchCtx) };
    let payload = if data.is_null() || len == 0 {
        &[][..]
    } else {
        // SAFETY: librados passes `len` bytes at `data`, valid during this callback.
        unsafe { std::slice::from_raw_parts(data as *const u8, len) }
    };
    (ctx.on_event)(Some(payload));
    // SAFETY: live ioctx and object name; an empty ack.
    unsafe { ffi::rados_notify_ack(ctx.pool.io, ctx.oid.as_ptr(), notify_id, handle, std::ptr::null(), 0) };
}

unsafe extern "C" fn on_watch_error(arg: *mut c_void, _cookie: u64, _err: c_int) {
    // SAFETY: as in `on_notify`.
    let ctx = unsafe { &*(arg as *const WatchCtx) };
    ctx.broken.store(true, Ordering::Release);
    (ctx.on_event)(None);
}

impl Watch {
    /// Watch `oid` (which must exist) on an ioctx of its own; a notification or an error wakes `wake`.
    /// `timeout` is how long the OSD keeps the watch of a client that stopped answering.
    pub(crate) fn new(
        cluster: Cluster,
        pool: &str,
        namespace: Option<&str>,
        oid: &str,
        wake: Arc<Wake>,
        timeout: Duration,
    ) -> io::Result<Watch> {
        Self::with(cluster, pool, namespace, oid, Box::new(move |_| wake.wake()), timeout)
    }

    /// Watch `oid`, calling `on_event` for each notification and for a broken watch.
    pub(crate) fn with(
        cluster: Cluster,
        pool: &str,
        namespace: Option<&str>,
        oid: &str,
        on_event: OnEvent,
        timeout: Duration,
    ) -> io::Result<Watch> {
        let ctx = Box::new(WatchCtx {
            pool: Pool::open(cluster, pool, namespace)?,
            oid: cstring(oid)?,
            on_event,
            broken: AtomicBool::new(false),
        });
        let mut cookie = 0u64;
        let arg = &*ctx as *const WatchCtx as *mut c_void;
        // SAFETY: the context is boxed (a stable address) and outlives the watch (see Drop).
        check(unsafe {
            ffi::rados_watch3(
                ctx.pool.io,
                ctx.oid.as_ptr(),
                &mut cookie,
                Some(on_notify),
                Some(on_watch_error),
                timeout.as_secs().max(1) as u32,
                arg,
            )
        })?;
        Ok(Watch { ctx, cookie })
    }

    /// The OSD dropped the watch (a disconnection): make a new one.
    pub(crate) fn is_broken(&self) -> bool {
        self.ctx.broken.load(Ordering::Acquire)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // SAFETY: the watch was registered with this cookie; after the flush no callback runs, so
        // the context may go.
        unsafe {
            ffi::rados_unwatch2(self.ctx.pool.io, self.cookie);
            ffi::rados_watch_flush(self.ctx.pool.cluster.0);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_as_the_blocklist_takes_them() {
        assert_eq!(super::legacy_address("[v2:127.0.0.1:0/3361,v1:127.0.0.1:0/3361]"), "127.0.0.1:0/3361");
        assert_eq!(super::legacy_address("v1:10.0.0.1:0/77"), "10.0.0.1:0/77");
        assert_eq!(super::legacy_address("127.0.0.1:0/5"), "127.0.0.1:0/5");
    }
}
