//! One test suite for every storage engine: each case is a generic function over `BlockStore`, and
//! `engine_suite!` makes one `#[test]` per case for a store. The file, io_uring, memory and null
//! stores are instantiated at the end of this file; the RBD store in `rbd/tests.rs` (it needs the
//! cluster scripts/rbd-test starts). A new engine adds one `engine_suite!` line; a new promise of
//! `BlockStore` adds one case function and one line in the macro.

use crate::{BackstoreError, BlockStore};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// What the store keeps: written data, or nothing (the null store reads zeros whatever was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keeps {
    Data,
    Nothing,
}

/// What a store promises, as far as the suite's cases differ.
#[derive(Debug, Clone, Copy)]
pub struct Traits {
    pub keeps: Keeps,
    /// The unit offsets and lengths must be multiples of: 1 for byte-addressed stores, 512 for a
    /// file opened O_DIRECT (the SCSI layer only ever asks for whole logical blocks).
    pub granule: u64,
}

impl Traits {
    pub const BYTES: Traits = Traits { keeps: Keeps::Data, granule: 1 };
    pub const DIRECT: Traits = Traits { keeps: Keeps::Data, granule: 512 };
    pub const NULL: Traits = Traits { keeps: Keeps::Nothing, granule: 1 };
}

/// Every store of the suite has this capacity: 4 MiB, small enough to be quick, large enough for
/// offsets past the first megabyte.
pub const SIZE: u64 = 4 << 20;

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drive a future on this thread. Engines that complete inline are ready at the first poll; those
/// that complete on other threads (librbd) wake us; a ring that is reaped when polled (io_uring) is
/// polled again after a short park, so one runner serves every engine.
pub fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park_timeout(Duration::from_millis(1));
    }
}

/// Drive several futures at once on this thread until all are done (operations in flight together).
fn join_all<T>(futures: Vec<Pin<Box<dyn Future<Output = T> + '_>>>) -> Vec<T> {
    let mut slots: Vec<_> = futures.into_iter().map(|f| (Some(f), None)).collect();
    block_on(std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, out) in slots.iter_mut() {
            if let Some(f) = future {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => {
                        *out = Some(v);
                        *future = None;
                    }
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    }));
    slots.into_iter().map(|(_, out)| out.expect("every future finished")).collect()
}

/// Bytes that differ at every position and between seeds, so a misplaced write shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8 | 1).collect()
}

fn read<S: BlockStore>(store: &S, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0xeeu8; len];
    block_on(store.read_at(offset, &mut buf)).unwrap_or_else(|e| panic!("read {len} at {offset}: {e}"));
    buf
}

/// What a read of data written as `written` must give back.
fn expected(keeps: Keeps, written: &[u8]) -> Vec<u8> {
    match keeps {
        Keeps::Data => written.to_vec(),
        Keeps::Nothing => vec![0; written.len()],
    }
}

fn out_of_range(result: Result<(), BackstoreError>, what: &str) {
    match result {
        Err(BackstoreError::OutOfRange { .. }) => {}
        other => panic!("{what}: expected OutOfRange, got {other:?}"),
    }
}

pub fn size_is_the_capacity<S: BlockStore>(store: &S, _traits: Traits) {
    assert_eq!(store.size(), SIZE);
    assert_eq!(store.reload_size().unwrap(), SIZE, "nothing changed the store");
}

/// Aligned and unaligned offsets and lengths, at the start, across the first megabyte, at the end.
pub fn reads_give_back_writes_at_every_offset<S: BlockStore>(store: &S, traits: Traits) {
    let keeps = traits.keeps;
    let places: &[(u64, u64)] = &[
        (0, 512),
        (512, 4096),
        (8192, 65536),
        (600_003, 1),
        ((1 << 20) - 7, 1000),
        ((2 << 20) + 511, 131_073),
        (SIZE - 512, 512),
        (SIZE - 1, 1),
    ];
    for (i, &(offset, len)) in places.iter().enumerate() {
        // On a store of whole blocks, the block the place starts in and enough whole blocks.
        let g = traits.granule;
        let (offset, len) = (offset / g * g, (len.div_ceil(g) * g).min(SIZE - offset / g * g) as usize);
        let data = pattern(len, i as u8);
        block_on(store.write_at(offset, &data, false)).unwrap_or_else(|e| panic!("write {len} at {offset}: {e}"));
        assert!(read(store, offset, len) == expected(keeps, &data), "{len} bytes at {offset}");
    }
    // Each write touched only its own bytes: the first ones are still whole after the others.
    assert!(read(store, 0, 512) == expected(keeps, &pattern(512, 0)), "the first write was disturbed");
    // Bytes nobody wrote read as zeros.
    assert!(read(store, 3 << 20, 4096).iter().all(|&b| b == 0), "unwritten bytes are not zero");
}

pub fn writes_and_reads_past_the_end_are_refused<S: BlockStore>(store: &S, traits: Traits) {
    let keeps = traits.keeps;
    let last = pattern(512, 9);
    block_on(store.write_at(SIZE - 512, &last, false)).unwrap();
    out_of_range(block_on(store.write_at(SIZE - 512, &[1u8; 1024], false)), "write across the end");
    out_of_range(block_on(store.write_at(SIZE, &[1u8; 1], false)), "write at the end");
    out_of_range(block_on(store.write_at(u64::MAX - 10, &[1u8; 512], false)), "write whose end overflows");
    let mut buf = vec![0u8; 1024];
    out_of_range(block_on(store.read_at(SIZE - 512, &mut buf)), "read across the end");
    out_of_range(block_on(store.read_at(u64::MAX - 10, &mut buf)), "read whose end overflows");
    out_of_range(block_on(store.unmap(SIZE - 512, 1024)), "unmap across the end");
    // A refused write changed nothing.
    assert!(read(store, SIZE - 512, 512) == expected(keeps, &last), "a refused write touched the last block");
}

pub fn fua_writes_and_flush_complete<S: BlockStore>(store: &S, traits: Traits) {
    let keeps = traits.keeps;
    let data = pattern(8192, 3);
    block_on(store.write_at(1 << 20, &data, true)).unwrap();
    block_on(store.flush()).unwrap();
    assert!(read(store, 1 << 20, 8192) == expected(keeps, &data));
    // A flush with nothing written since is fine too.
    block_on(store.flush()).unwrap();
}

/// Unmapped and zero-written ranges read as zeros; the bytes around them stay.
pub fn unmap_and_write_zeroes_read_back_zeros<S: BlockStore>(store: &S, traits: Traits) {
    let keeps = traits.keeps;
    let data = pattern(64 << 10, 5);
    block_on(store.write_at(0, &data, false)).unwrap();
    block_on(store.unmap(16 << 10, 16 << 10)).unwrap();
    let back = read(store, 0, 64 << 10);
    assert!(back[16 << 10..32 << 10].iter().all(|&b| b == 0), "unmapped bytes are not zero");
    assert!(back[..16 << 10] == expected(keeps, &data[..16 << 10]), "bytes before the unmap changed");
    assert!(back[32 << 10..] == expected(keeps, &data[32 << 10..]), "bytes after the unmap changed");
    // WRITE SAME of a zero block (how an initiator writes zeros).
    block_on(store.write_same(40 << 10, 8 << 10, &[0u8; 512])).unwrap();
    let back = read(store, 0, 64 << 10);
    assert!(back[40 << 10..48 << 10].iter().all(|&b| b == 0), "zero-written bytes are not zero");
    assert!(back[48 << 10..] == expected(keeps, &data[48 << 10..]), "bytes after WRITE SAME changed");
    block_on(store.unmap(0, 0)).unwrap();
}

/// COMPARE AND WRITE writes on a match and reports the first differing byte otherwise.
pub fn compare_and_write_compares<S: BlockStore>(store: &S, traits: Traits) {
    let keeps = traits.keeps;
    let old = pattern(4096, 7);
    let new = pattern(4096, 8);
    block_on(store.write_at(12288, &old, false)).unwrap();
    let current = expected(keeps, &old);
    block_on(store.compare_and_write(12288, &current, &new)).unwrap();
    let now = expected(keeps, &new);
    assert!(read(store, 12288, 4096) == now);
    let mut wrong = now.clone();
    wrong[100] ^= 0xff;
    match block_on(store.compare_and_write(12288, &wrong, &old)) {
        Err(BackstoreError::Miscompare { offset: 100 }) => {}
        other => panic!("expected a miscompare at byte 100, got {other:?}"),
    }
    assert!(read(store, 12288, 4096) == now, "a miscompare wrote");
}

/// Many operations in flight together on this thread, then from several threads at once: each
/// lands in its own place.
pub fn concurrent_operations_each_land_in_place<S: BlockStore + Sync>(store: &S, traits: Traits) {
    let keeps = traits.keeps;
    const N: usize = 32;
    const LEN: usize = 4096 + 512;
    let blocks: Vec<Vec<u8>> = (0..N).map(|i| pattern(LEN, i as u8)).collect();
    let at = |i: usize| (i * 2 * LEN) as u64;
    let writes = blocks
        .iter()
        .enumerate()
        .map(|(i, data)| {
            Box::pin(store.write_at(at(i), data, i % 4 == 0))
                as Pin<Box<dyn Future<Output = Result<(), BackstoreError>>>>
        })
        .collect();
    for result in join_all(writes) {
        result.unwrap();
    }
    let mut buffers: Vec<Vec<u8>> = (0..N).map(|_| vec![0xeeu8; LEN]).collect();
    let reads = buffers
        .iter_mut()
        .enumerate()
        .map(|(i, buf)| {
            Box::pin(store.read_at(at(i), buf)) as Pin<Box<dyn Future<Output = Result<(), BackstoreError>>>>
        })
        .collect();
    for result in join_all(reads) {
        result.unwrap();
    }
    for (i, buf) in buffers.iter().enumerate() {
        assert!(*buf == expected(keeps, &blocks[i]), "in-flight operation {i}");
    }
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            scope.spawn(move || {
                for round in 0..8u8 {
                    let offset = (2 << 20) + u64::from(t) * (64 << 10) + u64::from(round) * 4096;
                    let data = pattern(4096, t.wrapping_mul(16).wrapping_add(round));
                    block_on(store.write_at(offset, &data, false)).unwrap();
                    assert!(read(store, offset, 4096) == expected(keeps, &data), "thread {t}, round {round}");
                }
            });
        }
    });
}

/// One `#[test]` per case for a store: `engine_suite!(name, Traits::BYTES, || (guard, store))`,
/// where the closure makes a fresh store of `SIZE` bytes and whatever must live as long (a
/// temporary file).
macro_rules! engine_suite {
    ($name:ident, $traits:expr, $make:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::engine_suite as suite;

            fn run<S: $crate::BlockStore + Sync, G>(case: fn(&S, suite::Traits), make: impl Fn() -> (G, S)) {
                let (_guard, store) = make();
                case(&store, $traits);
            }

            #[test]
            fn size_is_the_capacity() {
                run(suite::size_is_the_capacity, $make);
            }
            #[test]
            fn reads_give_back_writes_at_every_offset() {
                run(suite::reads_give_back_writes_at_every_offset, $make);
            }
            #[test]
            fn writes_and_reads_past_the_end_are_refused() {
                run(suite::writes_and_reads_past_the_end_are_refused, $make);
            }
            #[test]
            fn fua_writes_and_flush_complete() {
                run(suite::fua_writes_and_flush_complete, $make);
            }
            #[test]
            fn unmap_and_write_zeroes_read_back_zeros() {
                run(suite::unmap_and_write_zeroes_read_back_zeros, $make);
            }
            #[test]
            fn compare_and_write_compares() {
                run(suite::compare_and_write_compares, $make);
            }
            #[test]
            fn concurrent_operations_each_land_in_place() {
                run(suite::concurrent_operations_each_land_in_place, $make);
            }
        }
    };
}
// For the RBD instantiation in rbd/tests.rs (built only with the `rbd` feature).
#[allow(unused_imports)]
pub(crate) use engine_suite;

/// A sparse file of `SIZE` bytes on a disk filesystem (/var/tmp: O_DIRECT works there).
fn sparse_file() -> tempfile::NamedTempFile {
    let tmp = tempfile::NamedTempFile::new_in("/var/tmp").unwrap();
    tmp.as_file().set_len(SIZE).unwrap();
    tmp
}

engine_suite!(file, Traits::BYTES, || {
    let tmp = sparse_file();
    let store = crate::FileStore::open(tmp.path(), crate::OpenFlags::default()).unwrap();
    (tmp, store)
});

engine_suite!(file_direct, Traits::DIRECT, || {
    let tmp = sparse_file();
    let store = crate::FileStore::open(tmp.path(), crate::OpenFlags { direct: true, ..Default::default() }).unwrap();
    (tmp, store)
});

engine_suite!(uring, Traits::BYTES, || {
    let tmp = sparse_file();
    let store = crate::UringStore::open(tmp.path(), crate::OpenFlags::default()).unwrap();
    (tmp, store)
});

engine_suite!(uring_direct, Traits::DIRECT, || {
    let tmp = sparse_file();
    let store = crate::UringStore::open(tmp.path(), crate::OpenFlags { direct: true, ..Default::default() }).unwrap();
    (tmp, store)
});

engine_suite!(memory, Traits::BYTES, || ((), crate::MemoryStore::new(SIZE)));

engine_suite!(null, Traits::NULL, || ((), crate::NullStore::new(SIZE)));

// Through the `Backstore` enum the daemon uses, with its generic WRITE SAME and COMPARE AND WRITE.
engine_suite!(enum_over_file, Traits::BYTES, || {
    let tmp = sparse_file();
    let store = crate::FileStore::open(tmp.path(), crate::OpenFlags::default()).unwrap();
    (tmp, crate::Backstore::File(store))
});
