//! The part of librados' and librbd's C API this engine calls, declared by hand from Debian's
//! librbd-dev headers (`rados/librados.h`, `rbd/librbd.h`, Ceph 16). Only what the engine uses is
//! declared; every handle is an opaque pointer.

use std::ffi::{c_char, c_int, c_void};

pub type RadosT = *mut c_void;
pub type RadosIoctxT = *mut c_void;
pub type RbdImageT = *mut c_void;
pub type RbdCompletionT = *mut c_void;
pub type RbdCallbackT = Option<unsafe extern "C" fn(c: RbdCompletionT, arg: *mut c_void)>;
pub type RadosWriteOpT = *mut c_void;
pub type RadosReadOpT = *mut c_void;
pub type RadosOmapIterT = *mut c_void;
pub type RadosWatchCb2T = Option<
    unsafe extern "C" fn(
        arg: *mut c_void,
        notify_id: u64,
        handle: u64,
        notifier_id: u64,
        data: *mut c_void,
        len: usize,
    ),
>;
pub type RadosWatchErrCbT = Option<unsafe extern "C" fn(arg: *mut c_void, cookie: u64, err: c_int)>;

/// `rados_write_op_create`: succeed whether or not the object exists.
pub const LIBRADOS_CREATE_IDEMPOTENT: c_int = 0;
/// `rados_write_op_create`: fail with EEXIST when the object exists.
pub const LIBRADOS_CREATE_EXCLUSIVE: c_int = 1;

#[link(name = "rados")]
extern "C" {
    pub fn rados_create2(cluster: *mut RadosT, clustername: *const c_char, name: *const c_char, flags: u64) -> c_int;
    pub fn rados_conf_read_file(cluster: RadosT, path: *const c_char) -> c_int;
    pub fn rados_conf_set(cluster: RadosT, option: *const c_char, value: *const c_char) -> c_int;
    pub fn rados_conf_get(cluster: RadosT, option: *const c_char, buf: *mut c_char, len: usize) -> c_int;
    pub fn rados_connect(cluster: RadosT) -> c_int;
    pub fn rados_shutdown(cluster: RadosT);
    pub fn rados_ioctx_create(cluster: RadosT, pool_name: *const c_char, ioctx: *mut RadosIoctxT) -> c_int;
    pub fn rados_ioctx_destroy(io: RadosIoctxT);
    pub fn rados_ioctx_set_namespace(io: RadosIoctxT, nspace: *const c_char);
    pub fn rados_set_pool_full_try(io: RadosIoctxT);
    pub fn rados_ioctx_get_id(io: RadosIoctxT) -> i64;
    pub fn rados_wait_for_latest_osdmap(cluster: RadosT) -> c_int;
    pub fn rados_getaddrs(cluster: RadosT, addrs: *mut *mut c_char) -> c_int;
    pub fn rados_buffer_free(buf: *mut c_char);
    pub fn rados_mon_command(
        cluster: RadosT,
        cmd: *mut *const c_char,
        cmdlen: usize,
        inbuf: *const c_char,
        inbuflen: usize,
        outbuf: *mut *mut c_char,
        outbuflen: *mut usize,
        outs: *mut *mut c_char,
        outslen: *mut usize,
    ) -> c_int;

    // Compound operations on one object: the gateway registry's omap.
    pub fn rados_create_write_op() -> RadosWriteOpT;
    pub fn rados_release_write_op(op: RadosWriteOpT);
    pub fn rados_write_op_create(op: RadosWriteOpT, exclusive: c_int, category: *const c_char);
    pub fn rados_write_op_assert_version(op: RadosWriteOpT, ver: u64);
    pub fn rados_write_op_omap_set2(
        op: RadosWriteOpT,
        keys: *const *const c_char,
        vals: *const *const c_char,
        key_lens: *const usize,
        val_lens: *const usize,
        num: usize,
    );
    pub fn rados_write_op_omap_rm_keys2(
        op: RadosWriteOpT,
        keys: *const *const c_char,
        key_lens: *const usize,
        num: usize,
    );
    pub fn rados_write_op_operate(
        op: RadosWriteOpT,
        io: RadosIoctxT,
        oid: *const c_char,
        mtime: *mut libc::time_t,
        flags: c_int,
    ) -> c_int;
    pub fn rados_create_read_op() -> RadosReadOpT;
    pub fn rados_release_read_op(op: RadosReadOpT);
    pub fn rados_read_op_omap_get_vals2(
        op: RadosReadOpT,
        start_after: *const c_char,
        filter_prefix: *const c_char,
        max_return: u64,
        iter: *mut RadosOmapIterT,
        pmore: *mut u8,
        prval: *mut c_int,
    );
    pub fn rados_read_op_operate(op: RadosReadOpT, io: RadosIoctxT, oid: *const c_char, flags: c_int) -> c_int;
    pub fn rados_omap_get_next2(
        iter: RadosOmapIterT,
        key: *mut *mut c_char,
        val: *mut *mut c_char,
        key_len: *mut usize,
        val_len: *mut usize,
    ) -> c_int;
    pub fn rados_omap_get_end(iter: RadosOmapIterT);
    pub fn rados_get_last_version(io: RadosIoctxT) -> u64;

    // Watch/notify on the registry object: a change is heard at once rather than at the next poll.
    pub fn rados_watch3(
        io: RadosIoctxT,
        oid: *const c_char,
        cookie: *mut u64,
        watchcb: RadosWatchCb2T,
        watcherrcb: RadosWatchErrCbT,
        timeout: u32,
        arg: *mut c_void,
    ) -> c_int;
    pub fn rados_unwatch2(io: RadosIoctxT, cookie: u64) -> c_int;
    pub fn rados_watch_flush(cluster: RadosT) -> c_int;
    pub fn rados_notify2(
        io: RadosIoctxT,
        oid: *const c_char,
        buf: *const c_char,
        buf_len: c_int,
        timeout_ms: u64,
        reply: *mut *mut c_char,
        reply_len: *mut usize,
    ) -> c_int;
    pub fn rados_notify_ack(
        io: RadosIoctxT,
        oid: *const c_char,
        notify_id: u64,
        cookie: u64,
        buf: *const c_char,
        buf_len: c_int,
    ) -> c_int;
}

#[link(name = "rbd")]
extern "C" {
    pub fn rbd_open(io: RadosIoctxT, name: *const c_char, image: *mut RbdImageT, snap_name: *const c_char) -> c_int;
    pub fn rbd_open_read_only(
        io: RadosIoctxT,
        name: *const c_char,
        image: *mut RbdImageT,
        snap_name: *const c_char,
    ) -> c_int;
    pub fn rbd_close(image: RbdImageT) -> c_int;
    pub fn rbd_get_size(image: RbdImageT, size: *mut u64) -> c_int;
    pub fn rbd_get_stripe_unit(image: RbdImageT, stripe_unit: *mut u64) -> c_int;
    pub fn rbd_resize(image: RbdImageT, size: u64) -> c_int;
    pub fn rbd_flush(image: RbdImageT) -> c_int;
    pub fn rbd_get_id(image: RbdImageT, id: *mut c_char, id_len: usize) -> c_int;
    pub fn rbd_metadata_get(image: RbdImageT, key: *const c_char, value: *mut c_char, val_len: *mut usize) -> c_int;

    pub fn rbd_diff_iterate2(
        image: RbdImageT,
        fromsnapname: *const c_char,
        ofs: u64,
        len: u64,
        include_parent: u8,
        whole_object: u8,
        cb: Option<unsafe extern "C" fn(offs: u64, len: usize, exists: c_int, arg: *mut c_void) -> c_int>,
        arg: *mut c_void,
    ) -> c_int;

    pub fn rbd_aio_create_completion(cb_arg: *mut c_void, complete_cb: RbdCallbackT, c: *mut RbdCompletionT) -> c_int;
    pub fn rbd_aio_get_return_value(c: RbdCompletionT) -> isize;
    pub fn rbd_aio_release(c: RbdCompletionT);

    pub fn rbd_aio_read(image: RbdImageT, off: u64, len: usize, buf: *mut c_char, c: RbdCompletionT) -> c_int;
    pub fn rbd_aio_write(image: RbdImageT, off: u64, len: usize, buf: *const c_char, c: RbdCompletionT) -> c_int;
    pub fn rbd_aio_flush(image: RbdImageT, c: RbdCompletionT) -> c_int;
    pub fn rbd_aio_discard(image: RbdImageT, off: u64, len: u64, c: RbdCompletionT) -> c_int;
    pub fn rbd_aio_writesame(
        image: RbdImageT,
        off: u64,
        len: usize,
        buf: *const c_char,
        data_len: usize,
        c: RbdCompletionT,
        op_flags: c_int,
    ) -> c_int;
    pub fn rbd_aio_write_zeroes(
        image: RbdImageT,
        off: u64,
        len: usize,
        c: RbdCompletionT,
        zero_flags: c_int,
        op_flags: c_int,
    ) -> c_int;
    pub fn rbd_aio_compare_and_write(
        image: RbdImageT,
        off: u64,
        len: usize,
        cmp_buf: *const c_char,
        buf: *const c_char,
        c: RbdCompletionT,
        mismatch_off: *mut u64,
        op_flags: c_int,
    ) -> isize;
}
