//! The engine against a real cluster: `CEPH_CONF` must name one (scripts/rbd-test starts the
//! throwaway cluster from ../shared/ceph). Each test makes its own image with the `rbd` tool.

use super::*;
use std::future::Future;
use std::pin::pin;
use std::process::Command;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll, Wake, Waker};

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Run a future on this thread, parking between polls (librbd wakes it from its own threads).
pub(super) fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

pub(super) fn conf() -> String {
    std::env::var("CEPH_CONF").expect("CEPH_CONF must name a running cluster (see scripts/rbd-test)")
}

pub(super) fn rbd(args: &[&str]) {
    let out = Command::new("rbd").arg("-c").arg(conf()).args(args).output().expect("run rbd");
    assert!(out.status.success(), "rbd {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A fresh image of `size` MiB with a name unique to this process and call.
pub(super) fn image(size_mib: u32) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!("unit-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    rbd(&["create", "--size", &size_mib.to_string(), &format!("rbd/{name}")]);
    name
}

pub(super) fn open(name: &str, extra: &str) -> RbdStore {
    RbdStore::open(&format!("rbd/{name}"), &format!("conf={};id=admin;{extra}", conf()), false).unwrap()
}

#[test]
fn reads_back_writes_flushes_and_zeroes() {
    let name = image(16);
    let s = open(&name, "");
    assert_eq!(s.size(), 16 << 20);
    assert!(s.volatile_cache(), "librbd's cache is on by default");
    let data: Vec<u8> = (0..65536u32).map(|i| (i * 7 + 3) as u8).collect();
    block_on(s.write_at(4 << 20, &data, true)).unwrap();
    let mut back = vec![0u8; data.len()];
    block_on(s.read_at(4 << 20, &mut back)).unwrap();
    assert_eq!(back, data);
    block_on(s.flush()).unwrap();
    // Unmapped ranges read back as zeros, including a piece smaller than librbd's discard unit.
    block_on(s.unmap((4 << 20) + 512, 1024)).unwrap();
    block_on(s.read_at(4 << 20, &mut back)).unwrap();
    assert!(back[512..1536].iter().all(|&b| b == 0));
    assert_eq!(&back[..512], &data[..512]);
    assert_eq!(&back[1536..], &data[1536..]);
    // Ranges past the end fail without reaching librbd.
    let err = block_on(s.read_at((16 << 20) - 512, &mut back)).unwrap_err();
    assert!(matches!(err, BackstoreError::OutOfRange { .. }), "{err}");
}

#[test]
fn write_same_repeats_the_pattern() {
    let name = image(8);
    let s = open(&name, "");
    let pattern: Vec<u8> = (0..512u32).map(|i| i as u8 ^ 0x5a).collect();
    block_on(s.write_same(8192, 512 * 40, &pattern)).unwrap();
    let mut back = vec![0u8; 512 * 42];
    block_on(s.read_at(7680, &mut back)).unwrap();
    assert!(back[..512].iter().all(|&b| b == 0));
    for block in back[512..512 * 41].chunks(512) {
        assert_eq!(block, &pattern[..]);
    }
    assert!(back[512 * 41..].iter().all(|&b| b == 0));
    // A zero pattern deallocates.
    block_on(s.write_same(8192, 512 * 40, &[0u8; 512])).unwrap();
    block_on(s.read_at(7680, &mut back)).unwrap();
    assert!(back.iter().all(|&b| b == 0));
}

#[test]
fn compare_and_write_is_atomic_and_reports_the_miscompare() {
    let name = image(12);
    let s = open(&name, "");
    let old = vec![0x11u8; 512];
    let new = vec![0x22u8; 512];
    block_on(s.write_at(1 << 20, &old, false)).unwrap();
    block_on(s.compare_and_write(1 << 20, &old, &new)).unwrap();
    let mut back = vec![0u8; 512];
    block_on(s.read_at(1 << 20, &mut back)).unwrap();
    assert_eq!(back, new);
    // Expecting `new` except one byte: nothing is written and the byte is named.
    let mut expected = new.clone();
    expected[300] = 0x33;
    let err = block_on(s.compare_and_write(1 << 20, &expected, &old)).unwrap_err();
    assert!(matches!(err, BackstoreError::Miscompare { offset: 300 }), "{err}");
    block_on(s.read_at(1 << 20, &mut back)).unwrap();
    assert_eq!(back, new, "nothing written on a miscompare");
    // Larger requests, here across the 4 MiB object boundary, take the fallback path and give the
    // same answers.
    let at = (4 << 20) - 1024;
    let (old, new) = (vec![0x44u8; 2048], vec![0x55u8; 2048]);
    block_on(s.write_at(at, &old, false)).unwrap();
    block_on(s.compare_and_write(at, &old, &new)).unwrap();
    let mut expected = new.clone();
    expected[1500] = 0;
    let err = block_on(s.compare_and_write(at, &expected, &old)).unwrap_err();
    assert!(matches!(err, BackstoreError::Miscompare { offset: 1500 }), "{err}");
}

#[test]
fn resize_is_followed_and_snapshots_are_read_only() {
    let name = image(4);
    let s = open(&name, "cache=off");
    assert!(!s.volatile_cache(), "cache=off means writes are durable when acknowledged");
    block_on(s.write_at(0, &[0xabu8; 4096], true)).unwrap();
    // Grown by another client: reload_size picks it up.
    rbd(&["resize", "--size", "6", &format!("rbd/{name}")]);
    assert_eq!(s.reload_size().unwrap(), 6 << 20);
    assert_eq!(s.size(), 6 << 20);
    s.resize(8 << 20).unwrap();
    assert_eq!(s.size(), 8 << 20);
    rbd(&["snap", "create", &format!("rbd/{name}@one")]);
    block_on(s.write_at(0, &[0xcdu8; 4096], true)).unwrap();
    let snap = RbdStore::open(&format!("rbd/{name}@one"), &format!("conf={}", conf()), false).unwrap();
    assert!(snap.readonly());
    let mut back = vec![0u8; 4096];
    block_on(snap.read_at(0, &mut back)).unwrap();
    assert!(back.iter().all(|&b| b == 0xab), "the snapshot keeps the data it was taken with");
    let err = block_on(snap.write_at(0, &back, false)).unwrap_err();
    assert!(err.to_string().contains("Read-only"), "{err}");
}

#[test]
fn dropped_requests_are_safe() {
    let name = image(4);
    let s = open(&name, "");
    // Start many reads and writes, poll each once, drop them all: librbd finishes into buffers the
    // requests own, not into the dropped futures' slices.
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    for i in 0..64u64 {
        let mut buf = vec![0u8; 65536];
        let mut read = pin!(s.read_at(i * 65536, &mut buf));
        let _ = read.as_mut().poll(&mut cx);
        let data = vec![i as u8; 65536];
        let mut write = pin!(s.write_at(i * 65536, &data, false));
        let _ = write.as_mut().poll(&mut cx);
    }
    block_on(s.flush()).unwrap();
    let mut back = vec![0u8; 65536];
    block_on(s.read_at(63 * 65536, &mut back)).unwrap();
    assert!(back.iter().all(|&b| b == 63));
}

#[test]
fn open_errors_name_the_problem() {
    let c = conf();
    let err = RbdStore::open("rbd/no-such-image", &format!("conf={c}"), false).unwrap_err();
    assert!(
        matches!(&err, BackstoreError::Open { source, .. } if source.raw_os_error() == Some(libc::ENOENT)),
        "{err}"
    );
    let err = RbdStore::open("nopool/x", &format!("conf={c}"), false).unwrap_err();
    assert!(err.to_string().contains("opening the pool"), "{err}");
    let err =
        RbdStore::open("rbd/x", &format!("conf={c};key=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==;timeout=3"), false)
            .unwrap_err();
    assert!(err.to_string().contains("connecting"), "{err}");
    assert!(RbdStore::open("rbd/x", "colour=red", false).is_err());
}

#[test]
fn miscompare_offsets_read_either_way() {
    assert_eq!(mismatch_in_range(300, 1 << 20, 512), 300);
    assert_eq!(mismatch_in_range((1 << 20) + 300, 1 << 20, 512), 300);
    assert_eq!(mismatch_in_range(7, 0, 512), 7);
    assert_eq!(mismatch_in_range(u64::MAX, 0, 512), 511);
}

#[test]
fn a_blocklisted_client_gets_errors_not_hangs() {
    let name = image(4);
    let s = open(&name, "timeout=5");
    block_on(s.write_at(0, &[1u8; 4096], true)).unwrap();
    // The image's watcher is this client: `rbd status` names its address.
    let out = Command::new("rbd").arg("-c").arg(conf()).args(["status", &format!("rbd/{name}")]).output().unwrap();
    let status = String::from_utf8_lossy(&out.stdout).into_owned();
    let addr = status
        .split_whitespace()
        .find_map(|w| w.strip_prefix("watcher="))
        .unwrap_or_else(|| panic!("no watcher in {status}"))
        .to_string();
    let out = Command::new("ceph").arg("-c").arg(conf()).args(["osd", "blocklist", "add", &addr]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The monitors committed the entry; the OSD may not have that map yet when the write arrives
    // (it ran the write when the cluster was busy). With the latest map the client's write makes
    // the OSD catch up first, as a gateway's takeover does.
    s.image.get().cluster().wait_for_latest_osdmap().unwrap();
    let started = std::time::Instant::now();
    let err = block_on(s.write_at(0, &[2u8; 4096], true)).unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "took {:?}", started.elapsed());
    assert!(matches!(err, BackstoreError::Io { .. }), "{err}");
    eprintln!("blocklisted: {err} after {:?}", started.elapsed());
    let _ = Command::new("ceph").arg("-c").arg(conf()).args(["osd", "blocklist", "rm", &addr]).output();
}

#[test]
fn allocation_follows_objects() {
    let name = image(16);
    let s = open(&name, "");
    let mib = 1u64 << 20;
    assert_eq!(s.allocation(0, 16 * mib).unwrap(), (false, 16 * mib), "a new image holds nothing");
    // One write allocates its whole 4 MiB object.
    block_on(s.write_at(5 * mib, &[1u8; 4096], false)).unwrap();
    assert_eq!(s.allocation(0, 16 * mib).unwrap(), (false, 4 * mib));
    assert_eq!(s.allocation(4 * mib, 12 * mib).unwrap(), (true, 4 * mib));
    assert_eq!(s.allocation(6 * mib, 10 * mib).unwrap(), (true, 2 * mib));
    assert_eq!(s.allocation(8 * mib, 8 * mib).unwrap(), (false, 8 * mib));
    // Zeroing the whole object deallocates it again.
    block_on(s.unmap(4 * mib, 4 * mib)).unwrap();
    assert_eq!(s.allocation(0, 16 * mib).unwrap(), (false, 16 * mib));
}

// The shared engine suite (crate::engine_suite) on a fresh 4 MiB image per case.
crate::engine_suite::engine_suite!(engine, crate::engine_suite::Traits::BYTES, || ((), open(&image(4), "")));

#[test]
fn requests_start_in_the_caller_unless_the_cache_would_wait_there() {
    // The default: librbd dispatches in the submitting thread, and the store admits requests.
    let inline = open(&image(8), "");
    assert!(inline.image.get().dispatches_inline());
    assert!(inline.in_flight.is_some());
    let data = vec![0x3cu8; 8192];
    block_on(inline.write_at(0, &data, false)).unwrap();
    let mut back = vec![0u8; data.len()];
    block_on(inline.read_at(0, &mut back)).unwrap();
    assert_eq!(back, data);
    // Asked for librbd's own thread.
    let queued = open(&image(8), "dispatch=queued");
    assert!(!queued.image.get().dispatches_inline());
    assert!(queued.in_flight.is_none());
    // The image's own settings ask for write-back caching, whose object cacher waits in the caller:
    // queued, whatever the options said.
    let name = image(8);
    rbd(&["config", "image", "set", &format!("rbd/{name}"), "rbd_cache_policy", "writeback"]);
    let cached = open(&name, "dispatch=inline");
    assert!(!cached.image.get().dispatches_inline());
    assert!(cached.in_flight.is_none());
    block_on(cached.write_at(4096, &data, true)).unwrap();
    block_on(cached.read_at(4096, &mut back)).unwrap();
    assert_eq!(back, data);
}
