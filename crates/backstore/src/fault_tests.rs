use super::*;
use crate::test_util::block_on;
use crate::MemoryStore;
use std::time::Instant;

fn store(rules: &[&str]) -> FaultStore<MemoryStore> {
    let rules = rules.iter().map(|r| FaultRule::parse(r).unwrap()).collect();
    FaultStore::new(MemoryStore::new(1 << 20), rules, 512)
}

fn errno(err: &BackstoreError) -> Option<i32> {
    match err {
        BackstoreError::Io { source, .. } => source.raw_os_error(),
        _ => None,
    }
}

#[test]
fn rules_parse_and_bad_ones_say_why() {
    let r = FaultRule::parse("read+write:delay=250ms:lba=5-9:every=2").unwrap();
    assert_eq!(r.effect(), Effect::Delay(Duration::from_millis(250)));
    assert_eq!((r.ops, r.lbas, r.every), (0b11, Some((5, 9)), 2));
    assert_eq!(FaultRule::parse("all:eio").unwrap().ops, 0x0f);
    assert_eq!(FaultRule::parse("flush:delay=2s").unwrap().effect(), Effect::Delay(Duration::from_secs(2)));
    assert_eq!(FaultRule::parse("write:enospc:lba=7").unwrap().lbas, Some((7, 7)));
    for (text, why) in [
        ("raed:eio", "unknown operation 'raed'"),
        ("read", "no effect"),
        ("read:eoi", "unknown effect 'eoi'"),
        ("read:eio:lba=9-5", "empty"),
        ("read:eio:lba=x", "'x' is not a number"),
        ("read:eio:every=0", "never fire"),
        ("read:eio:when=now", "unknown modifier 'when'"),
        ("read:eio:every", "not key=value"),
        ("flush:short", "read and write only"),
        ("read:delay=soon", "not a duration"),
    ] {
        let err = FaultRule::parse(text).unwrap_err().to_string();
        assert!(err.contains(text) && err.contains(why) && err.contains("OPS:EFFECT"), "{text}: {err}");
    }
}

#[test]
fn eio_only_inside_the_lba_range_and_at_its_first_block() {
    let s = store(&["read:eio:lba=100-199"]);
    let mut buf = vec![0u8; 8 * 512];
    block_on(s.read_at(0, &mut buf)).unwrap();
    block_on(s.read_at(200 * 512, &mut buf)).unwrap();
    // Blocks 96..104 overlap the range; the error names block 100, the first bad one.
    let err = block_on(s.read_at(96 * 512, &mut buf)).unwrap_err();
    assert_eq!(errno(&err), Some(libc::EIO));
    assert!(matches!(err, BackstoreError::Io { op: ErrorKind::Read, offset, .. } if offset == 100 * 512));
    // Writes are not selected.
    block_on(s.write_at(100 * 512, &buf, false)).unwrap();
}

#[test]
fn enospc_on_writes_and_flush_faults() {
    let s = store(&["write:enospc", "flush:eio"]);
    let err = block_on(s.write_at(4096, &[1u8; 512], false)).unwrap_err();
    assert!(err.is_no_space(), "{err}");
    let mut back = [9u8; 512];
    block_on(s.read_at(4096, &mut back)).unwrap();
    assert_eq!(back, [0u8; 512], "a failed write wrote nothing");
    let err = block_on(s.flush()).unwrap_err();
    assert!(matches!(err, BackstoreError::Io { op: ErrorKind::Flush, .. }), "{err}");
}

#[test]
fn every_nth_matching_call() {
    let s = store(&["read:eio:every=3:lba=10"]);
    let mut buf = [0u8; 512];
    let outcomes: Vec<bool> = (0..7).map(|_| block_on(s.read_at(10 * 512, &mut buf)).is_ok()).collect();
    assert_eq!(outcomes, [true, true, false, true, true, false, true]);
    // Reads outside the range are not counted.
    for _ in 0..5 {
        block_on(s.read_at(0, &mut buf)).unwrap();
    }
    assert!(block_on(s.read_at(10 * 512, &mut buf)).is_ok());
}

#[test]
fn short_transfers_move_a_prefix_and_say_how_much() {
    let s = store(&["write:short:every=2", "read:short:lba=4"]);
    let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    block_on(s.write_at(0, &data, false)).unwrap(); // first write: not selected
    let other = vec![0xeeu8; 4096];
    let err = block_on(s.write_at(0, &other, false)).unwrap_err();
    assert!(matches!(err, BackstoreError::Short { op: ErrorKind::Write, offset: 0, done: 2048 }), "{err}");
    let mut back = vec![0u8; 4096];
    block_on(s.inner().read_at(0, &mut back)).unwrap();
    assert!(back[..2048].iter().all(|&b| b == 0xee));
    assert_eq!(&back[2048..], &data[2048..], "nothing past the short transfer was written");
    // A read reaching block 4 stops right before it.
    let mut back = vec![0u8; 4096];
    let err = block_on(s.read_at(512, &mut back)).unwrap_err();
    assert!(matches!(err, BackstoreError::Short { op: ErrorKind::Read, offset: 512, done: 1536 }), "{err}");
    assert!(back[..1536].iter().all(|&b| b == 0xee) && back[1536..].iter().all(|&b| b == 0));
    // Starting inside the range, a single block moves nothing.
    let err = block_on(s.read_at(4 * 512, &mut back[..512])).unwrap_err();
    assert!(matches!(err, BackstoreError::Short { done: 0, .. }), "{err}");
}

#[test]
fn delays_wait_then_complete() {
    let s = store(&["read:delay=150ms:lba=0-7", "read:delay=50ms:lba=0-7"]);
    let mut buf = vec![0u8; 512];
    let start = Instant::now();
    block_on(s.read_at(0, &mut buf)).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200), "{:?}", start.elapsed());
    let start = Instant::now();
    block_on(s.read_at(8 * 512, &mut buf)).unwrap();
    assert!(start.elapsed() < Duration::from_millis(100), "{:?}", start.elapsed());
}

/// A delayed write dropped before its delay is over never happens; a stalled one was issued: the
/// drop waits out the stall and the data is in the store when the drop returns.
#[test]
fn a_dropped_delayed_write_never_happens_a_dropped_stalled_one_lands_before_the_drop_returns() {
    let s = store(&["write:delay=150ms:lba=0", "write:stall=150ms:lba=8", "unmap:stall=100ms"]);
    let data = vec![0x5a; 512];
    let mut delayed = Box::pin(s.write_at(0, &data, false));
    assert!(delayed.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    drop(delayed);
    let mut stalled = Box::pin(s.write_at(8 * 512, &data, false));
    assert!(stalled.as_mut().poll(&mut Context::from_waker(Waker::noop())).is_pending());
    let start = Instant::now();
    drop(stalled);
    assert!(start.elapsed() >= Duration::from_millis(100), "the drop waited out the stall: {:?}", start.elapsed());
    let mut back = vec![0u8; 512];
    block_on(s.inner().read_at(8 * 512, &mut back)).unwrap();
    assert_eq!(back, data, "the stalled write landed");
    std::thread::sleep(Duration::from_millis(200));
    block_on(s.inner().read_at(0, &mut back)).unwrap();
    assert_eq!(back, vec![0; 512], "the delayed write never happened");
    // An unmap that completes normally after its stall.
    let start = Instant::now();
    block_on(s.unmap(8 * 512, 512)).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(100));
    block_on(s.inner().read_at(8 * 512, &mut back)).unwrap();
    assert_eq!(back, vec![0; 512]);
}

/// `show` lists rules in the syntax they were given in, normalised.
#[test]
fn rules_print_in_their_own_syntax() {
    for (given, shown) in [
        ("read:eio:lba=100-199", "read:eio:lba=100-199"),
        ("write+read:enospc:lba=7-7:every=3", "read+write:enospc:lba=7:every=3"),
        ("read+write+flush+unmap:delay=2000", "all:delay=2s"),
        ("flush:delay=250ms", "flush:delay=250ms"),
        ("write+unmap:stall=3000ms:lba=4", "write+unmap:stall=3s:lba=4"),
        ("write:short", "write:short"),
    ] {
        let rule = FaultRule::parse(given).unwrap();
        assert_eq!(rule.to_string(), shown);
        assert_eq!(FaultRule::parse(shown).unwrap().to_string(), shown, "the shown form parses back");
    }
    assert_eq!(store(&["read:eio", "unmap:enospc:every=2"]).rules().len(), 2);
}
