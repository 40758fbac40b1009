//! Block-to-block segments with byte offsets (0Ah), copies at the advertised limits, and copies
//! abandoned part-way (an aborted task's future is dropped).

use super::*;
use crate::spc::xcopy::{CHUNK, MAX_SEGMENT_BYTES, MAX_SEGMENT_DESCRIPTORS};
use crate::ScsiStatus;
use rtgt_backstore::NullStore;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// A block and the byte in it where a segment starts.
type At = (u64, u16);

/// A block device with offset to block device with offset segment descriptor (SPC-4 6.4.6.12):
/// `bytes` from byte `src_off` of block `src_lba` to byte `dst_off` of block `dst_lba`.
fn offset_segment(bytes: u32, (src_lba, src_off): At, (dst_lba, dst_off): At) -> Vec<u8> {
    let mut d = vec![0u8; 32];
    d[0] = 0x0a;
    d[3] = 0x1c;
    d[6..8].copy_from_slice(&1u16.to_be_bytes()); // source CSCD 0, destination CSCD 1
    d[8..12].copy_from_slice(&bytes.to_be_bytes());
    d[12..20].copy_from_slice(&src_lba.to_be_bytes());
    d[20..28].copy_from_slice(&dst_lba.to_be_bytes());
    d[28..30].copy_from_slice(&src_off.to_be_bytes());
    d[30..32].copy_from_slice(&dst_off.to_be_bytes());
    d
}

/// A parameter list naming `src` then `dst` by NAA, with these segment descriptors.
fn list_of(list_id: u8, src: &LogicalUnit, dst: &LogicalUnit, segments: &[Vec<u8>]) -> Vec<u8> {
    let mut l = xcopy_list(list_id, &[src.naa(), dst.naa()], &[]);
    let len: usize = segments.iter().map(Vec::len).sum();
    l[8..12].copy_from_slice(&(len as u32).to_be_bytes());
    for s in segments {
        l.extend_from_slice(s);
    }
    l
}

/// Target 1 with two disks of `size` bytes on `store`s; `t` drives LUN 1.
fn pair(size: u64, store: impl Fn(u64) -> Backstore) -> (TestLun, Arc<LogicalUnit>) {
    let target = Target::new(1, "iqn.2024-01.test:a".into());
    let lu = Arc::new(LogicalUnit::new(LunConfig::disk(1, 1), Some(store(size))));
    target.add_lun(1, lu.clone()).unwrap();
    let lun2 = Arc::new(LogicalUnit::new(LunConfig::disk(1, 2), Some(store(size))));
    target.add_lun(2, lun2.clone()).unwrap();
    let nexus = target.add_nexus("iqn.2024-01.test:i".into());
    let t = TestLun { target, nexus, lu, lun: 1 };
    t.clear_ua(&t.nexus);
    (t, lun2)
}

fn memory_pair(size: u64) -> (TestLun, Arc<LogicalUnit>) {
    pair(size, |size| Backstore::Memory(MemoryStore::new(size)))
}

fn fill(lu: &LogicalUnit, seed: u32) -> Vec<u8> {
    let all = data(lu.size_bytes() as usize, seed);
    block_on(rtgt_backstore::BlockStore::write_at(lu.store().unwrap(), 0, &all, false)).unwrap();
    all
}

fn run_copy(t: &TestLun, list: &[u8]) -> crate::TaskResult {
    t.run_out(&xcopy_cdb(list.len()), list).0
}

/// Byte copies between offsets inside blocks: partial first and last destination blocks keep
/// their other bytes, source and destination offsets differ, a copy may sit inside one block or
/// span several chunks, and zero bytes is no copy at all.
#[test]
fn offset_segments_copy_exactly_the_bytes_named() {
    let (t, lun2) = memory_pair(4 << 20);
    let src = fill(&t.lu, 3);
    let mut expect = fill(&lun2, 100);
    let cases: [(u32, At, At); 7] = [
        (1500, (2, 100), (10, 300)),            // partial first and last blocks, offsets differ
        (50, (0, 7), (20, 400)),                // inside one destination block
        (3 * 512, (30, 0), (40, 0)),            // whole blocks
        (512, (50, 0), (60, 1)),                // aligned source, one byte into the destination
        (1000, (70, 511), (80, 511)),           // equal offsets at the last byte of a block
        ((2 << 20) + 333, (0, 5), (1000, 511)), // several chunks, both ends partial
        (0, (0, 0), (7000, 0)),                 // nothing
    ];
    for (i, &(bytes, (sl, so), (dl, doff))) in cases.iter().enumerate() {
        let list = list_of(i as u8, &t.lu, &lun2, &[offset_segment(bytes, (sl, so), (dl, doff))]);
        assert_good(&run_copy(&t, &list));
        let (s, d, n) = ((sl * 512 + u64::from(so)) as usize, (dl * 512 + u64::from(doff)) as usize, bytes as usize);
        expect[d..d + n].copy_from_slice(&src[s..s + n]);
        assert!(read_store(&lun2, 0, expect.len()) == expect, "case {i}: {bytes} bytes from {sl}+{so} to {dl}+{doff}");
        let (r, status) = t.run(&rcr_cdb(0, i as u8));
        assert_good(&r);
        assert_eq!(&status[4..7], &[0x01, 0, 1], "case {i}: completed, one segment");
        assert_eq!(u32::from_be_bytes(status[8..12].try_into().unwrap()), bytes / 1024, "case {i}: KiB moved");
    }
    // Offset segments mix with block segments in one list.
    let mut blocks = xcopy_list(9, &[t.lu.naa(), lun2.naa()], &[(0, 1, 2, 90, 90)]);
    let seg = offset_segment(10, (0, 1), (100, 2));
    blocks[8..12].copy_from_slice(&(28u32 + 32).to_be_bytes());
    blocks.extend_from_slice(&seg);
    assert_good(&run_copy(&t, &blocks));
    expect[90 * 512..92 * 512].copy_from_slice(&src[90 * 512..92 * 512]);
    expect[100 * 512 + 2..100 * 512 + 12].copy_from_slice(&src[1..11]);
    assert!(read_store(&lun2, 0, expect.len()) == expect, "mixed segments");
}

/// Offsets past their block, ranges past either end (with LBAs that overflow a byte address),
/// segments longer than advertised and a wrong descriptor length are refused, and the
/// destination is left as it was.
#[test]
fn offset_segment_errors() {
    let (t, lun2) = memory_pair(1 << 20);
    fill(&t.lu, 1);
    let before = fill(&lun2, 2);
    let last = 2047;
    let refused: [(u32, At, At, (u8, u8)); 8] = [
        (1, (0, 512), (0, 0), (0x26, 0x00)),      // source offset past its block
        (1, (0, 0), (0, 512), (0x26, 0x00)),      // destination offset past its block
        (2, (last, 511), (0, 0), (0x00, 0x00)),   // source ends one byte past the end
        (2, (0, 0), (last, 511), (0x00, 0x00)),   // destination ends one byte past the end
        (1, (u64::MAX, 0), (0, 0), (0x00, 0x00)), // LBA whose byte address overflows
        (1, (0, 0), (u64::MAX / 512, 511), (0x00, 0x00)),
        (1, (2048, 0), (0, 0), (0x00, 0x00)),           // first block past the end
        ((64 << 20) + 1, (0, 0), (0, 0), (0x00, 0x00)), // longer than MAXIMUM SEGMENT LENGTH
    ];
    for (i, &(bytes, s, d, (asc, ascq))) in refused.iter().enumerate() {
        let list = list_of(1, &t.lu, &lun2, &[offset_segment(bytes, s, d)]);
        let r = run_copy(&t, &list);
        assert_eq!(r.status, ScsiStatus::CheckCondition, "case {i}");
        assert_sense(&r, 0x0a, asc, ascq);
        assert!(read_store(&lun2, 0, before.len()) == before, "case {i}: destination changed");
    }
    // The last byte of each is in range.
    assert_good(&run_copy(&t, &list_of(2, &t.lu, &lun2, &[offset_segment(1, (last, 511), (last, 511))])));
    // DESCRIPTOR LENGTH must be 1Ch for type 0Ah.
    let mut list = list_of(3, &t.lu, &lun2, &[offset_segment(1, (0, 0), (0, 0))]);
    list[16 + 64 + 3] = 0x18;
    assert_sense(&run_copy(&t, &list), 0x05, 0x26, 0x00);
}

/// The advertised limits in one command: MAXIMUM SEGMENT DESCRIPTOR COUNT segments of MAXIMUM
/// SEGMENT LENGTH bytes (4 GiB, on null stores), with no buffer larger than a chunk left behind.
#[test]
fn the_advertised_limits_fit_in_one_command() {
    let size = u64::from(MAX_SEGMENT_BYTES) * 2;
    let (t, lun2) = pair(size, |size| Backstore::Null(NullStore::new(size)));
    let segments: Vec<Vec<u8>> = (0..u64::from(MAX_SEGMENT_DESCRIPTORS))
        .map(|i| offset_segment(MAX_SEGMENT_BYTES, ((i % 2) * 1000, 1), ((i % 3) * 999, 3)))
        .collect();
    let list = list_of(1, &t.lu, &lun2, &segments);
    let mut data_in = Vec::new();
    let r = block_on(t.target.execute(&t.nexus, 1, &xcopy_cdb(list.len()), &list, &mut data_in));
    assert_good(&r);
    assert!(data_in.capacity() <= CHUNK, "a {} byte buffer for the copy", data_in.capacity());
    let (r, d) = t.run(&rcr_cdb(0, 1));
    assert_good(&r);
    assert_eq!(u16::from_be_bytes([d[5], d[6]]), MAX_SEGMENT_DESCRIPTORS, "segments processed");
    assert_eq!(u32::from_be_bytes(d[8..12].try_into().unwrap()), 4 << 20, "KiB moved");
    // One more segment is too many.
    let mut segments = segments;
    segments.push(offset_segment(512, (0, 0), (0, 0)));
    assert_sense(&run_copy(&t, &list_of(2, &t.lu, &lun2, &segments)), 0x05, 0x26, 0x08);
}

/// A waker that counts how often it was woken.
fn counting_waker() -> (Waker, Arc<std::sync::atomic::AtomicUsize>) {
    struct Count(Arc<std::sync::atomic::AtomicUsize>);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    (Waker::from(Arc::new(Count(n.clone()))), n)
}

/// Chunks of the destination (one MiB each) that hold the source's data.
fn chunks_copied(src: &[u8], dst: &LogicalUnit) -> usize {
    let now = read_store(dst, 0, src.len());
    src.chunks(CHUNK).zip(now.chunks(CHUNK)).filter(|(a, b)| a == b).count()
}

/// Transports abort a task by dropping its future, which they can do only while it is not being
/// polled. On stores that answer at once the copy still hands the thread back between chunks
/// (woken to go on at once), so an abort lands between two chunks: the chunks copied stay, no
/// more follow, and the destination's blocks are free for the next writer.
#[test]
fn a_copy_yields_between_chunks_and_stops_when_dropped() {
    let (t, lun2) = memory_pair(8 << 20);
    let src = fill(&t.lu, 9);
    let (waker, woken) = counting_waker();
    let mut cx = Context::from_waker(&waker);
    // Block segments (02h) run the same loop as offset ones.
    let list = xcopy_list(1, &[t.lu.naa(), lun2.naa()], &[(0, 1, 16384, 0, 0)]);
    let cdb = xcopy_cdb(list.len());
    let mut data_in = Vec::new();
    {
        let mut copy = pin!(t.target.execute(&t.nexus, 1, &cdb, &list, &mut data_in));
        for polls in 1..=3 {
            assert!(copy.as_mut().poll(&mut cx).is_pending(), "an 8 MiB copy done in {polls} polls");
            assert_eq!(woken.load(std::sync::atomic::Ordering::SeqCst), polls, "woken to go on");
            assert_eq!(chunks_copied(&src, &lun2), polls, "one chunk per poll");
        }
        // Dropped here, as tokio drops an aborted task.
    }
    assert_eq!(chunks_copied(&src, &lun2), 3, "no chunk after the drop");
    // The range lock went with it: a WRITE over the copy's range completes in its first poll.
    let write = [0x2a, 0, 0, 0, 0x10, 0, 0, 0, 1, 0];
    let mut out = Vec::new();
    let done = pin!(t.target.execute(&t.nexus, 2, &write, &[0xab; 512], &mut out)).poll(&mut cx);
    assert!(matches!(done, Poll::Ready(ref r) if r.status == ScsiStatus::Good), "the write waits");
    // A copy of one chunk runs in one poll, as before.
    let list = list_of(2, &t.lu, &lun2, &[offset_segment(1 << 20, (0, 0), (0, 0))]);
    assert!(pin!(t.target.execute(&t.nexus, 1, &xcopy_cdb(list.len()), &list, &mut data_in)).poll(&mut cx).is_ready());
}
