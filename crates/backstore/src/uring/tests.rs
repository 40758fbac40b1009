//! The io_uring store against a real kernel ring: data, direct I/O, and the submission path's
//! promises (a refused submit keeps the operation; in-flight operations stay within the
//! completion queue), driven through the ring's test seam.

use super::*;
use crate::test_util::block_on;
use std::fs::File;
use std::future::Future;
use std::os::fd::{FromRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

fn store(len: u64, flags: OpenFlags) -> (tempfile::NamedTempFile, UringStore) {
    // /var/tmp: a disk filesystem (O_DIRECT works there, not on tmpfs).
    let tmp = tempfile::NamedTempFile::new_in("/var/tmp").unwrap();
    tmp.as_file().set_len(len).unwrap();
    let s = UringStore::open(tmp.path(), flags).unwrap();
    (tmp, s)
}

#[test]
fn reads_back_writes_with_fua_and_flush() {
    let (tmp, s) = store(1 << 20, OpenFlags::default());
    assert_eq!(s.size(), 1 << 20);
    let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    block_on(s.write_at(8192, &data, true)).unwrap();
    let mut back = vec![0u8; data.len()];
    block_on(s.read_at(8192, &mut back)).unwrap();
    assert_eq!(back, data);
    block_on(s.flush()).unwrap();
    let on_disk = std::fs::read(tmp.path()).unwrap();
    assert_eq!(&on_disk[8192..8192 + data.len()], &data[..]);
}

#[test]
fn direct_io_through_the_bounce_buffer() {
    let (_tmp, s) = store(1 << 20, OpenFlags { direct: true, ..OpenFlags::default() });
    let data = vec![0xa5u8; 8192];
    block_on(s.write_at(4096, &data, false)).unwrap();
    let mut back = vec![0u8; 8192];
    block_on(s.read_at(4096, &mut back)).unwrap();
    assert_eq!(back, data);
}

#[test]
fn many_operations_in_flight_each_get_their_own_result() {
    let (_tmp, s) = store(1 << 20, OpenFlags::default());
    for i in 0..64u64 {
        block_on(s.write_at(i * 4096, &[i as u8; 4096], false)).unwrap();
    }
    // Poll many reads before any is awaited to the end: every slot must carry its own data.
    let mut bufs = vec![vec![0u8; 4096]; 64];
    let mut futs: Vec<_> = bufs.iter_mut().enumerate().map(|(i, b)| Box::pin(s.read_at(i as u64 * 4096, b))).collect();
    let mut cx = Context::from_waker(Waker::noop());
    let first: Vec<_> = futs.iter_mut().map(|f| f.as_mut().poll(&mut cx)).collect();
    for (f, p) in futs.into_iter().zip(first) {
        match p {
            Poll::Ready(r) => r.unwrap(),
            Poll::Pending => block_on(f).unwrap(),
        }
    }
    for (i, b) in bufs.iter().enumerate() {
        assert!(b.iter().all(|&x| x == i as u8), "block {i}");
    }
}

#[test]
fn unmap_beyond_end_and_readonly() {
    let (tmp, s) = store(1 << 16, OpenFlags::default());
    block_on(s.write_at(0, &[1u8; 16384], false)).unwrap();
    block_on(s.unmap(4096, 4096)).unwrap();
    let mut back = vec![9u8; 16384];
    block_on(s.read_at(0, &mut back)).unwrap();
    assert!(back[4096..8192].iter().all(|&b| b == 0));
    assert!(back[8192..].iter().all(|&b| b == 1));
    let mut buf = vec![0u8; 512];
    assert!(matches!(block_on(s.read_at(1 << 16, &mut buf)), Err(BackstoreError::OutOfRange { .. })));
    drop(s);
    let ro = UringStore::open(tmp.path(), OpenFlags { readonly: true, ..OpenFlags::default() }).unwrap();
    assert!(block_on(ro.write_at(0, &[0u8; 512], false)).is_err());
    block_on(ro.read_at(0, &mut buf)).unwrap();
    assert_eq!(buf, vec![1u8; 512]);
}
/// Poll every future (no-op waker, so busily) until all are ready; one still pending after
/// `limit` fails the test. The futures are leaked then: the kernel may still own their buffers.
fn run_all<'a, T>(mut futs: Vec<Pin<Box<dyn Future<Output = T> + 'a>>>, limit: Duration) -> Vec<T> {
    let deadline = std::time::Instant::now() + limit;
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        let mut pending = 0;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()).filter(|(_, o)| o.is_none()) {
            match f.as_mut().poll(&mut cx) {
                Poll::Ready(v) => *o = Some(v),
                Poll::Pending => pending += 1,
            }
        }
        if pending == 0 {
            return out.into_iter().map(Option::unwrap).collect();
        }
        if std::time::Instant::now() > deadline {
            std::mem::forget(futs);
            panic!("{pending} operations still pending after {limit:?}");
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

type IoFuture<'a> = Pin<Box<dyn Future<Output = Result<(), BackstoreError>> + 'a>>;

/// Poll `f` once: an operation the ring still holds may be pending or done, never failed (the
/// kernel would still write into, or read from, its buffer). Returns it if it is still pending.
fn first_poll<'a>(mut f: IoFuture<'a>, what: &str) -> Option<IoFuture<'a>> {
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Pending => Some(f),
        Poll::Ready(Ok(())) => None,
        Poll::Ready(Err(e)) => panic!("a {what} still in the submission queue was reported failed: {e}"),
    }
}

/// Memory that outlives a failed test: an operation may still be in the kernel then.
fn leaked(len: usize, byte: u8) -> &'static mut [u8] {
    Box::leak(vec![byte; len].into_boxed_slice())
}

fn leaked_store(len: u64, flags: OpenFlags) -> (tempfile::NamedTempFile, &'static UringStore) {
    let (tmp, s) = store(len, flags);
    (tmp, Box::leak(Box::new(s)))
}

#[test]
fn a_refused_submit_keeps_the_read_and_its_buffer_until_the_kernel_is_done() {
    let (tmp, s) = leaked_store(1 << 16, OpenFlags::default());
    let mut image = vec![0xaau8; 4096];
    image.extend([0xbb; 4096]);
    image.resize(1 << 16, 0);
    std::fs::write(tmp.path(), &image).unwrap();
    let (a, b) = (leaked(4096, 0), leaked(4096, 0));
    // "Not now" from io_uring_enter: the entry stays in the submission queue, and the kernel
    // takes it at a later enter. Reporting the read failed would free `a` under the kernel.
    // More refusals in a row than one submit tries: the retry timer has to take over.
    s.ring.refuse_submits(&[libc::EBUSY, libc::EAGAIN, libc::EINTR].repeat(10));
    let first = first_poll(Box::pin(s.read_at(0, a)), "read");
    // A second read meanwhile gets its own slot: its completion must not be taken for the first.
    let second: IoFuture = Box::pin(s.read_at(4096, b));
    let results = run_all(first.into_iter().chain([second]).collect(), Duration::from_secs(20));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(a.iter().all(|&x| x == 0xaa) && b.iter().all(|&x| x == 0xbb));
    assert_eq!(s.ring.refusals_left(), 0, "every refused submit was retried");
}

#[test]
fn a_refused_submit_keeps_the_write_until_it_reaches_the_file() {
    let (tmp, s) = leaked_store(1 << 16, OpenFlags::default());
    let data: &'static [u8] = leaked(8192, 0x5a);
    s.ring.refuse_submits(&[libc::EAGAIN, libc::EBUSY].repeat(15));
    let write = first_poll(Box::pin(s.write_at(4096, data, false)), "write");
    let back = leaked(4096, 9);
    let read: IoFuture = Box::pin(s.read_at(0, back));
    let results = run_all(write.into_iter().chain([read]).collect(), Duration::from_secs(20));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(back.iter().all(|&x| x == 0));
    let on_disk = std::fs::read(tmp.path()).unwrap();
    assert!(on_disk[4096..12288].iter().all(|&x| x == 0x5a) && on_disk[..4096].iter().all(|&x| x == 0));
    assert_eq!(s.ring.refusals_left(), 0, "every refused submit was retried");
}

#[test]
fn an_aborted_command_whose_entry_was_refused_waits_for_the_kernel() {
    let (tmp, s) = leaked_store(1 << 16, OpenFlags::default());
    let data: &'static [u8] = leaked(4096, 0x3c);
    s.ring.refuse_submits(&[libc::EAGAIN].repeat(30));
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    // Dropping the future must neither free its slot nor hang: it drives the retries itself.
    std::thread::spawn(move || {
        drop(first_poll(Box::pin(s.write_at(0, data, false)), "write"));
        done_tx.send(s.ring.refusals_left()).unwrap();
    });
    let left =
        done_rx.recv_timeout(Duration::from_secs(20)).expect("the operation was reported failed or its drop hung");
    assert_eq!(left, 0);
    assert!(std::fs::read(tmp.path()).unwrap()[..4096].iter().all(|&x| x == 0x3c), "the write reached the file");
}

#[test]
fn operations_the_kernel_holds_never_outnumber_the_completion_queue() {
    let (_tmp, s) = leaked_store(4096, OpenFlags::default());
    let limit = s.ring.in_flight_limit();
    let n = 4 * limit;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two-element array it is given.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: both descriptors are fresh and owned here.
    let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(fds[0]), File::from(OwnedFd::from_raw_fd(fds[1]))) };
    // Reads of an empty pipe stay in the kernel until data comes: n of them at once.
    let bufs = leaked(2 * n, 0);
    let mut futs: Vec<Pin<Box<dyn Future<Output = i32>>>> = bufs
        .chunks_mut(2)
        .map(|b| {
            let entry = opcode::Read::new(types::Fd(rx.as_raw_fd()), b.as_mut_ptr(), 2).build();
            Box::pin(Op::new(&s.ring, entry)) as Pin<Box<dyn Future<Output = _>>>
        })
        .collect();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(futs.iter_mut().all(|f| f.as_mut().poll(&mut cx).is_pending()));
    // n distinct values, two bytes each, in one write (4 KiB: atomic on a pipe).
    let data: Vec<u8> = (0..n as u16).flat_map(u16::to_ne_bytes).collect();
    std::io::Write::write_all(&mut &tx, &data).unwrap();
    let results = run_all(futs, Duration::from_secs(20));
    assert!(results.iter().all(|r| *r == 2), "{results:?}");
    let mut got: Vec<u16> = bufs.chunks(2).map(|b| u16::from_ne_bytes([b[0], b[1]])).collect();
    got.sort_unstable();
    assert!(got.iter().copied().eq(0..n as u16), "every value read exactly once");
    assert!(s.ring.in_flight_high_water() <= limit, "{} in flight, limit {limit}", s.ring.in_flight_high_water());
    drop(rx);
}

#[test]
fn many_more_concurrent_operations_than_the_completion_queue_all_complete() {
    let limit = {
        let (_tmp, s) = store(4096, OpenFlags::default());
        s.ring.in_flight_limit()
    };
    let n = 4 * limit;
    let (_tmp, s) = leaked_store((n * 4096) as u64, OpenFlags { direct: true, ..OpenFlags::default() });
    let block = |i: usize| -> Vec<u8> { (0..4096).map(|j| (i * 7 + j / 512) as u8).collect() };
    let datas: Vec<&'static [u8]> = (0..n).map(|i| &*Box::leak(block(i).into_boxed_slice())).collect();
    let writes: Vec<IoFuture> =
        datas.iter().enumerate().map(|(i, d)| Box::pin(s.write_at(i as u64 * 4096, d, false)) as _).collect();
    let results = run_all(writes, Duration::from_secs(60));
    assert!(results.iter().all(Result::is_ok));
    // All the reads at once, each into its own block of one buffer.
    let back = leaked(n * 4096, 0);
    let reads: Vec<IoFuture> =
        back.chunks_mut(4096).enumerate().map(|(i, b)| Box::pin(s.read_at(i as u64 * 4096, b)) as _).collect();
    let results = run_all(reads, Duration::from_secs(60));
    assert!(results.iter().all(Result::is_ok));
    for (i, b) in back.chunks(4096).enumerate() {
        assert_eq!(b, datas[i], "block {i}");
    }
    assert!(s.ring.in_flight_high_water() <= limit, "{} in flight, limit {limit}", s.ring.in_flight_high_water());
}
