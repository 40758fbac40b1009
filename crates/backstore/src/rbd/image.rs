//! Connecting to a cluster and opening an image: the blocking half of the engine, run once when
//! a LUN is created (on the management thread, never on a runtime worker).

use super::ffi;
use super::options::{Dispatch, ImagePath, Key, RbdOptions, DEFAULT_TIMEOUT_SECS};
use crate::BackstoreError;
use std::ffi::{c_char, c_int, CString};
use std::io;

fn cstring(s: &str) -> Result<CString, BackstoreError> {
    CString::new(s).map_err(|_| BackstoreError::BadOption(format!("'{s}' contains NUL")))
}

/// A librados/librbd return code as an `io::Error`.
pub(crate) fn errno(r: i64) -> io::Error {
    io::Error::from_raw_os_error(i32::try_from(-r).unwrap_or(libc::EIO))
}

fn open_error(path: &ImagePath, what: &str, r: c_int) -> BackstoreError {
    let source = errno(i64::from(r));
    BackstoreError::Open { path: format!("rbd:{path} ({what})"), source }
}

/// An open image and the cluster connection it lives on. Closing (Drop) flushes librbd's cache,
/// waits for in-flight requests and disconnects: it may block.
pub(crate) struct Image {
    cluster: ffi::RadosT,
    ioctx: ffi::RadosIoctxT,
    pub(crate) handle: ffi::RbdImageT,
}

// SAFETY: librados cluster/ioctx handles and librbd image handles are documented as usable from
// any thread, and librbd's aio entry points lock the image internally, so concurrent calls from
// several runtime workers are allowed.
unsafe impl Send for Image {}
// SAFETY: see Send.
unsafe impl Sync for Image {}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image").finish_non_exhaustive()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        // SAFETY: each handle is non-null only if it was opened, and is released exactly once, in the
        // reverse order of opening (the image needs the ioctx, the ioctx the cluster).
        unsafe {
            if !self.handle.is_null() {
                ffi::rbd_close(self.handle);
            }
            if !self.ioctx.is_null() {
                ffi::rados_ioctx_destroy(self.ioctx);
            }
            if !self.cluster.is_null() {
                ffi::rados_shutdown(self.cluster);
            }
        }
    }
}

impl Image {
    fn conf_set(&self, path: &ImagePath, name: &str, value: &str) -> Result<(), BackstoreError> {
        let (n, v) = (cstring(name)?, cstring(value)?);
        // SAFETY: the cluster handle is live and not yet connected; both strings are NUL-terminated.
        let r = unsafe { ffi::rados_conf_set(self.cluster, n.as_ptr(), v.as_ptr()) };
        if r < 0 {
            return Err(open_error(path, &format!("setting {name}"), r));
        }
        Ok(())
    }

    /// A configuration value as librados resolved it (file, environment, our settings).
    pub(crate) fn conf_get(&self, name: &str) -> Option<String> {
        let n = cstring(name).ok()?;
        let mut buf = [0 as c_char; 256];
        // SAFETY: the buffer's length is passed; librados NUL-terminates within it on success.
        let r = unsafe { ffi::rados_conf_get(self.cluster, n.as_ptr(), buf.as_mut_ptr(), buf.len()) };
        if r < 0 {
            return None;
        }
        // SAFETY: success means a NUL-terminated string inside `buf`.
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        Some(s.to_string_lossy().into_owned())
    }

    /// A setting as librbd applies it to this image: the image's own override (once it is open),
    /// else the client configuration.
    pub(crate) fn effective(&self, name: &str) -> Option<String> {
        self.image_override(name).or_else(|| self.conf_get(name))
    }

    /// Whether librbd's cache makes a request wait for room in the thread that submits it:
    /// write-back and write-through caching go through librbd's object cacher, which waits there
    /// when too much is dirty or in flight; write-around (librbd's default policy) queues instead.
    pub(crate) fn cache_waits_in_submitter(&self) -> bool {
        let enabled = self.effective("rbd_cache");
        let policy = self.effective("rbd_cache_policy");
        enabled.as_deref() != Some("false") && matches!(policy.as_deref(), Some("writeback" | "writethrough"))
    }

    /// Whether librbd starts requests in the submitting thread (`rbd_non_blocking_aio` false,
    /// ours or the administrator's).
    pub(crate) fn dispatches_inline(&self) -> bool {
        self.effective("rbd_non_blocking_aio").as_deref() == Some("false")
    }

    /// A numeric setting as librbd applies it, or `default`.
    pub(crate) fn effective_u64(&self, name: &str, default: u64) -> u64 {
        self.effective(name).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
    }

    /// The size of the pieces librbd splits a request into (one object operation each): the
    /// stripe unit, which is the object size unless the image uses fancy striping.
    pub(crate) fn stripe_unit(&self) -> Result<u64, io::Error> {
        let mut unit = 0u64;
        // SAFETY: live image, out-pointer to a local.
        let r = unsafe { ffi::rbd_get_stripe_unit(self.handle, &mut unit) };
        if r < 0 {
            return Err(errno(i64::from(r)));
        }
        Ok(unit)
    }

    /// A per-image configuration override (`rbd config image set`), stored as image metadata.
    /// None before the image is open.
    pub(crate) fn image_override(&self, name: &str) -> Option<String> {
        if self.handle.is_null() {
            return None;
        }
        let key = cstring(&format!("conf_{name}")).ok()?;
        let mut buf = [0 as c_char; 128];
        let mut len = buf.len();
        // SAFETY: live image; `len` holds the buffer's size and receives the value's.
        let r = unsafe { ffi::rbd_metadata_get(self.handle, key.as_ptr(), buf.as_mut_ptr(), &mut len) };
        if r < 0 {
            return None;
        }
        // SAFETY: success writes a NUL-terminated value of at most `len` bytes into `buf`.
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        Some(s.to_string_lossy().into_owned())
    }

    /// Connect and open. `readonly` opens even a writable image read-only.
    pub(crate) fn open(path: &ImagePath, opts: &RbdOptions, readonly: bool) -> Result<Image, BackstoreError> {
        let mut image =
            Image { cluster: std::ptr::null_mut(), ioctx: std::ptr::null_mut(), handle: std::ptr::null_mut() };
        let cluster_name = cstring(opts.cluster.as_deref().unwrap_or("ceph"))?;
        let user = cstring(&format!("client.{}", opts.id.as_deref().unwrap_or("admin")))?;
        // SAFETY: out-pointer to our field; both names are NUL-terminated.
        let r = unsafe { ffi::rados_create2(&mut image.cluster, cluster_name.as_ptr(), user.as_ptr(), 0) };
        if r < 0 {
            image.cluster = std::ptr::null_mut();
            return Err(open_error(path, "creating the cluster handle", r));
        }
        let conf = opts.conf.as_deref().map(cstring).transpose()?;
        // SAFETY: live handle; a null path means librados' default search.
        let r =
            unsafe { ffi::rados_conf_read_file(image.cluster, conf.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())) };
        if r < 0 {
            return Err(open_error(path, "reading the configuration", r));
        }
        match &opts.key {
            Key::FromConfig => {}
            Key::Inline(key) => image.conf_set(path, "key", key)?,
            Key::Keyring(file) => image.conf_set(path, "keyring", file)?,
        }
        image.set_timeouts(path, opts.timeout)?;
        if let Some(cache) = opts.cache {
            image.conf_set(path, "rbd_cache", if cache { "true" } else { "false" })?;
        }
        // The image's own overrides are checked once it is open (`RbdStore::open` reopens queued
        // if they turn on a cache that waits in the submitting thread).
        if opts.dispatch == Dispatch::Inline && !image.cache_waits_in_submitter() {
            image.conf_set(path, "rbd_non_blocking_aio", "false")?;
        }
        // SAFETY: live, configured handle.
        let r = unsafe { ffi::rados_connect(image.cluster) };
        if r < 0 {
            return Err(open_error(path, "connecting to the cluster", r));
        }
        let pool = cstring(&path.pool)?;
        // SAFETY: connected handle, NUL-terminated pool name, out-pointer to our field.
        let r = unsafe { ffi::rados_ioctx_create(image.cluster, pool.as_ptr(), &mut image.ioctx) };
        if r < 0 {
            image.ioctx = std::ptr::null_mut();
            return Err(open_error(path, "opening the pool", r));
        }
        // A full cluster or a pool over its quota: without this librados holds every write until
        // the cluster has room again, and the initiator sees a timeout much later; with it the OSD
        // answers at once with ENOSPC (or EDQUOT), which becomes SPACE ALLOCATION FAILED.
        // SAFETY: live ioctx; librbd copies its flags into the contexts it derives from it.
        unsafe { ffi::rados_set_pool_full_try(image.ioctx) };
        if let Some(ns) = &opts.namespace {
            let ns = cstring(ns)?;
            // SAFETY: live ioctx; librados copies the name.
            unsafe { ffi::rados_ioctx_set_namespace(image.ioctx, ns.as_ptr()) };
        }
        let name = cstring(&path.image)?;
        let snap = path.snapshot.as_deref().map(cstring).transpose()?;
        let snap_ptr = snap.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        // SAFETY: live ioctx, NUL-terminated names, out-pointer to our field.
        let r = unsafe {
            if readonly || snap.is_some() {
                ffi::rbd_open_read_only(image.ioctx, name.as_ptr(), &mut image.handle, snap_ptr)
            } else {
                ffi::rbd_open(image.ioctx, name.as_ptr(), &mut image.handle, snap_ptr)
            }
        };
        if r < 0 {
            image.handle = std::ptr::null_mut();
            return Err(open_error(path, "opening the image", r));
        }
        Ok(image)
    }

    /// librados waits forever for an OSD or a monitor by default; a LUN must fail instead. The
    /// configuration's own values win unless `timeout=` was given.
    fn set_timeouts(&self, path: &ImagePath, timeout: Option<u32>) -> Result<(), BackstoreError> {
        let secs = timeout.unwrap_or(DEFAULT_TIMEOUT_SECS).to_string();
        for name in ["rados_osd_op_timeout", "rados_mon_op_timeout", "client_mount_timeout"] {
            let current = self.conf_get(name).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            // client_mount_timeout defaults to 300 s: treat that like "unset".
            let unset = current <= 0.0 || (name == "client_mount_timeout" && current >= 300.0);
            if timeout.is_some() || unset {
                self.conf_set(path, name, &secs)?;
            }
        }
        Ok(())
    }

    /// The cluster connection the image lives on (the registry uses the same client, so that
    /// fencing it fences both).
    pub(crate) fn cluster(&self) -> super::rados::Cluster {
        super::rados::Cluster(self.cluster)
    }

    /// The image's id (stable for its life, unlike its name) and its pool's id.
    pub(crate) fn ids(&self) -> Result<(String, i64), io::Error> {
        let mut buf = [0 as c_char; 64];
        // SAFETY: live image; the buffer's length is passed.
        let r = unsafe { ffi::rbd_get_id(self.handle, buf.as_mut_ptr(), buf.len()) };
        if r < 0 {
            return Err(errno(i64::from(r)));
        }
        // SAFETY: success writes a NUL-terminated id into `buf`.
        let id = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned();
        // SAFETY: live ioctx.
        let pool = unsafe { ffi::rados_ioctx_get_id(self.ioctx) };
        Ok((id, pool))
    }

    /// Wait until every write issued so far is on the OSDs (blocking).
    pub(crate) fn flush_blocking(&self) -> Result<(), io::Error> {
        // SAFETY: live image.
        let r = unsafe { ffi::rbd_flush(self.handle) };
        if r < 0 {
            return Err(errno(i64::from(r)));
        }
        Ok(())
    }

    pub(crate) fn size(&self) -> Result<u64, io::Error> {
        let mut size = 0u64;
        // SAFETY: live image, out-pointer to a local.
        let r = unsafe { ffi::rbd_get_size(self.handle, &mut size) };
        if r < 0 {
            return Err(errno(i64::from(r)));
        }
        Ok(size)
    }

    pub(crate) fn resize(&self, size: u64) -> Result<(), io::Error> {
        // SAFETY: live image.
        let r = unsafe { ffi::rbd_resize(self.handle, size) };
        if r < 0 {
            return Err(errno(i64::from(r)));
        }
        Ok(())
    }

    /// Whether `offset` lies in allocated data and how far from `offset` that stays so (at most
    /// `len`), from the image's allocated extents at object granularity (librbd's diff against
    /// nothing, answered from the object map where the image has one). Blocking: one metadata read.
    pub(crate) fn allocation(&self, offset: u64, len: u64) -> Result<(bool, u64), io::Error> {
        let mut run = AllocationRun { offset, pos: offset, allocated: None };
        // SAFETY: live image; `run` outlives the synchronous call, and `on_extent` is the only user
        // of the pointer, on this thread or while this call waits.
        let r = unsafe {
            ffi::rbd_diff_iterate2(
                self.handle,
                std::ptr::null(),
                offset,
                len,
                1,
                1,
                Some(on_extent),
                &mut run as *mut AllocationRun as *mut std::ffi::c_void,
            )
        };
        if r < 0 && r != -libc::ECANCELED {
            return Err(errno(i64::from(r)));
        }
        Ok(match run.allocated {
            Some(allocated) => (allocated, (run.pos - offset).min(len)),
            None => (false, len),
        })
    }
}

/// The run of allocated or deallocated bytes that starts at `offset`, built from the extents
/// librbd reports in ascending order (only allocated ones: the gaps are deallocated).
struct AllocationRun {
    offset: u64,
    /// Where the run reaches so far.
    pos: u64,
    allocated: Option<bool>,
}

/// rbd_diff_iterate2's callback: extend the run, or stop (ECANCELED) once it ends.
unsafe extern "C" fn on_extent(offs: u64, len: usize, exists: c_int, arg: *mut std::ffi::c_void) -> c_int {
    // SAFETY: `arg` is the `AllocationRun` that `allocation` passed and keeps alive.
    let run = unsafe { &mut *(arg as *mut AllocationRun) };
    let end = offs.saturating_add(len as u64);
    if exists == 0 || end <= run.pos {
        return 0;
    }
    match run.allocated {
        None if offs > run.offset => {
            // A gap before the first extent: the run is deallocated up to it.
            run.allocated = Some(false);
            run.pos = offs;
            -libc::ECANCELED
        }
        None => {
            run.allocated = Some(true);
            run.pos = end;
            0
        }
        Some(true) if offs <= run.pos => {
            run.pos = end;
            0
        }
        _ => -libc::ECANCELED,
    }
}
