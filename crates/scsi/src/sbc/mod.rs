//! Block commands (SBC-3) for direct-access devices, and the checks they share: LBA ranges, write
//! protection and the mapping of backing-store errors to sense data.

pub(crate) mod capacity;
pub(crate) mod commands;
pub(crate) mod locked_write;
pub(crate) mod medium;
pub(crate) mod mode_pages;
pub(crate) mod prefetch;
pub(crate) mod provisioning;
pub(crate) mod rw;
pub(crate) mod sanitize;
pub(crate) mod sanitize_journal;
pub(crate) mod sanitize_state;
pub(crate) mod state;
pub(crate) mod sync;

use crate::cdb::{BlockRange, Decoded};
use crate::lun::LogicalUnit;
use crate::sense::{Asc, Sense, SenseKey};
use rtgt_backstore::{Backstore, BackstoreError, BlockStore};

/// Byte offset and length of an LBA range, or LOGICAL BLOCK ADDRESS OUT OF RANGE (SBC-3 4.5) when
/// it reaches past the last block. A range of zero blocks may start right after the last block.
pub(crate) fn byte_range(lu: &LogicalUnit, range: BlockRange) -> Result<(u64, u64), Sense> {
    let end = range.lba.checked_add(u64::from(range.blocks)).ok_or(Sense::lba_out_of_range())?;
    if end > lu.capacity_blocks() {
        return Err(Sense::lba_out_of_range());
    }
    let bs = u64::from(lu.block_size());
    Ok((range.lba * bs, u64::from(range.blocks) * bs))
}

/// The TRANSFER LENGTH must not exceed the MAXIMUM TRANSFER LENGTH of the block limits VPD page
/// (SBC-3 6.5.3); the field pointer names the CDB's transfer length field.
pub(crate) fn check_transfer_length(lu: &LogicalUnit, blocks: u32, field_byte: u16) -> Result<(), Sense> {
    if blocks > lu.max_transfer_blocks() {
        return Err(Sense::invalid_cdb_field(field_byte, Some(7)));
    }
    Ok(())
}

/// Data-out of logical blocks that stops inside a block (the initiator's expected transfer length,
/// or the guest's buffers, hold less than the CDB calls for and not a whole number of blocks):
/// ILLEGAL REQUEST, INVALID FIELD IN INFORMATION UNIT, and nothing is written or compared. A block
/// cannot be written in part without a read-modify-write the initiator did not ask for, and GOOD
/// for bytes that never reach the medium would be a lie. The transport still reports the residual
/// overflow (RFC 7143 11.4.5). Data that stops on a block boundary is processed for the blocks
/// received (see `rw`); data past the CDB's length is ignored.
pub(crate) fn check_whole_blocks(
    lu: &LogicalUnit,
    command: &Decoded,
    expected: u32,
    received: usize,
) -> Result<(), Sense> {
    let bs = lu.block_size() as usize;
    if command.data_out_is_blocks() && received < expected as usize && !received.is_multiple_of(bs) {
        return Err(Sense::illegal_request(Asc::INVALID_FIELD_IN_INFORMATION_UNIT));
    }
    Ok(())
}

/// DATA PROTECT, WRITE PROTECTED for a unit that is read-only or software write protected.
pub(crate) fn check_writable(lu: &LogicalUnit) -> Result<(), Sense> {
    if lu.write_protected() {
        return Err(Sense::new(SenseKey::DataProtect, Asc::WRITE_PROTECTED));
    }
    Ok(())
}

/// Which kind of medium access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// A backing-store failure as sense data: MEDIUM ERROR with the LBA of the first block not
/// transferred in INFORMATION, or the thin provisioning space allocation failure when the store ran
/// out of space (SBC-3 4.7.3.6). Logged at most once per `error_log::QUIET` per unit.
pub(crate) fn store_error(lu: &LogicalUnit, err: &BackstoreError, access: Access) -> Sense {
    if let Some(suppressed) = lu.disk().ok().and_then(|d| d.medium_errors().admit(std::time::Instant::now())) {
        let store = lu.store().and_then(|s| s.path()).map(|p| p.display().to_string()).unwrap_or_default();
        tracing::warn!(
            error = %err,
            %store,
            suppressed,
            "backing store I/O failed (further failures of this unit: at most one line per {}s)",
            crate::error_log::QUIET.as_secs()
        );
    }
    if err.is_no_space() {
        return Sense::new(SenseKey::DataProtect, Asc::SPACE_ALLOCATION_FAILED_WRITE_PROTECT);
    }
    let asc = match access {
        Access::Read => Asc::UNRECOVERED_READ_ERROR,
        Access::Write => Asc::WRITE_ERROR,
    };
    let sense = Sense::new(SenseKey::MediumError, asc);
    let bs = u64::from(lu.block_size());
    match err {
        BackstoreError::Io { offset, .. } | BackstoreError::OutOfRange { offset, .. } => {
            sense.with_information(offset / bs)
        }
        BackstoreError::Short { offset, done, .. } => sense.with_information(offset.saturating_add(*done) / bs),
        _ => sense,
    }
}

/// Short transfers in a row that make no progress before the failure is reported.
const SHORT_STALLS: u32 = 3;

/// Where an operation followed through short transfers stands (see `read_fully`).
struct Progress {
    len: u64,
    done: u64,
    stalls: u32,
}

impl Progress {
    fn new(len: u64) -> Self {
        Progress { len, done: 0, stalls: 0 }
    }

    /// Ok(true) when the operation completed, Ok(false) when the rest (from `done`) is to be asked
    /// for again after a short transfer that made progress, or a few that did not.
    fn after(&mut self, result: Result<(), BackstoreError>) -> Result<bool, BackstoreError> {
        match result {
            Ok(()) => Ok(true),
            Err(BackstoreError::Short { op, offset, done: n }) if n <= self.len - self.done => {
                self.stalls = if n == 0 { self.stalls + 1 } else { 0 };
                if self.stalls > SHORT_STALLS {
                    return Err(BackstoreError::Short { op, offset, done: n });
                }
                self.done += n;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// Fill `buf` from `offset`, asking again for the rest after a short read (a device may complete
/// part of a request); a read that stops making progress is reported, never passed off as complete.
pub(crate) async fn read_fully(store: &Backstore, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError> {
    let mut p = Progress::new(buf.len() as u64);
    loop {
        let result = store.read_at(offset + p.done, &mut buf[p.done as usize..]).await;
        if p.after(result)? {
            return Ok(());
        }
    }
}

/// Write all of `data` at `offset`, the same way: a partial write is never acknowledged.
pub(crate) async fn write_fully(store: &Backstore, offset: u64, data: &[u8], fua: bool) -> Result<(), BackstoreError> {
    let mut p = Progress::new(data.len() as u64);
    loop {
        let result = store.write_at(offset + p.done, &data[p.done as usize..], fua).await;
        if p.after(result)? {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{assert_good, assert_sense, TestLun};
    use rtgt_backstore::ErrorKind;

    #[test]
    fn store_errors_become_sense() {
        let t = TestLun::disk(1 << 20);
        let eio = BackstoreError::io(ErrorKind::Read, 4096, std::io::Error::from_raw_os_error(5));
        let s = store_error(&t.lu, &eio, Access::Read);
        assert_eq!(
            s.encode(crate::SenseFormat::Fixed),
            [0xf0, 0, 0x03, 0, 0, 0, 8, 0x0a, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0]
        );
        let s = store_error(&t.lu, &eio, Access::Write);
        assert_eq!((s.key, s.asc), (SenseKey::MediumError, Asc(0x0c, 0x00)));
        // ENOSPC (28 on Linux): thin provisioning space exhausted.
        let full = BackstoreError::io(ErrorKind::Write, 0, std::io::Error::from_raw_os_error(28));
        let s = store_error(&t.lu, &full, Access::Write);
        assert_eq!(
            s.encode(crate::SenseFormat::Fixed),
            [0x70, 0, 0x07, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x27, 0x07, 0, 0, 0, 0]
        );
        // EDQUOT (122): a quota, of a file system or an RBD pool, is the same exhaustion.
        let quota = BackstoreError::io(ErrorKind::Write, 0, std::io::Error::from_raw_os_error(122));
        let s = store_error(&t.lu, &quota, Access::Write);
        assert_eq!((s.key, s.asc), (SenseKey::DataProtect, Asc::SPACE_ALLOCATION_FAILED_WRITE_PROTECT));
    }

    /// A disk of 2048 blocks on a memory store behind `rules`.
    fn faulty(rules: &[&str]) -> TestLun {
        let rules = rules.iter().map(|r| rtgt_backstore::FaultRule::parse(r).unwrap()).collect();
        let inner = Backstore::Memory(rtgt_backstore::MemoryStore::new(1 << 20));
        let store = Backstore::Faulty(Box::new(rtgt_backstore::FaultStore::new(inner, rules, 512)));
        TestLun::with_store(crate::LunConfig::disk(1, 1), Some(store), 1)
    }

    fn rw10(op: u8, lba: u32, blocks: u16) -> [u8; 10] {
        let l = lba.to_be_bytes();
        let b = blocks.to_be_bytes();
        [op, 0, l[0], l[1], l[2], l[3], 0, b[0], b[1], 0]
    }

    /// The INFORMATION field of fixed-format sense.
    fn information(r: &crate::TaskResult) -> u32 {
        let s = r.sense.as_deref().expect("sense");
        assert_eq!(s[0], 0xf0, "VALID set: {s:02x?}");
        u32::from_be_bytes([s[3], s[4], s[5], s[6]])
    }

    #[test]
    fn injected_errors_become_medium_errors_at_the_first_bad_block() {
        let t = faulty(&["read:eio:lba=100-199", "write:eio:lba=150", "write:enospc:lba=300"]);
        let data = vec![0x11u8; 8 * 512];
        assert_good(&t.run_out(&rw10(0x2a, 96, 8), &data).0);
        let (r, _) = t.run(&rw10(0x28, 96, 8));
        assert_sense(&r, 0x03, 0x11, 0x00);
        assert_eq!(information(&r), 100);
        let (r, _) = t.run_out(&rw10(0x2a, 148, 4), &data[..2048]);
        assert_sense(&r, 0x03, 0x0c, 0x00);
        assert_eq!(information(&r), 150);
        assert_sense(&t.run_out(&rw10(0x2a, 300, 1), &data[..512]).0, 0x07, 0x27, 0x07);
        // Outside the ranges all is well.
        assert_good(&t.run(&rw10(0x28, 0, 8)).0);
        // VERIFY without BYTCHK reads the medium back: it finds the unreadable block too.
        let (r, d) = t.run(&rw10(0x2f, 90, 20));
        assert_sense(&r, 0x03, 0x11, 0x00);
        assert_eq!(information(&r), 100);
        assert!(d.is_empty(), "VERIFY returns no data");
        assert_good(&t.run(&rw10(0x2f, 0, 100)).0);
    }

    /// One CDB per kind of command whose data-out is logical blocks, each addressing LBA 0 and one
    /// block (COMPARE AND WRITE: one block, so two of data-out).
    fn block_data_out_cdbs() -> Vec<(&'static str, Vec<u8>)> {
        let cdb16 = |op: u8, flags: u8| {
            let mut c = vec![0u8; 16];
            c[0] = op;
            c[1] = flags;
            c[13] = 1;
            c
        };
        vec![
            ("WRITE(6)", vec![0x0a, 0, 0, 0, 1, 0]),
            ("WRITE(10)", rw10(0x2a, 0, 1).to_vec()),
            ("WRITE(12)", vec![0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]),
            ("WRITE(16)", cdb16(0x8a, 0)),
            ("WRITE AND VERIFY(10)", vec![0x2e, 0x02, 0, 0, 0, 0, 0, 0, 1, 0]),
            ("WRITE AND VERIFY(12)", vec![0xae, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0]),
            ("WRITE AND VERIFY(16)", cdb16(0x8e, 0x02)),
            ("VERIFY(10) BYTCHK", vec![0x2f, 0x02, 0, 0, 0, 0, 0, 0, 1, 0]),
            ("COMPARE AND WRITE", cdb16(0x89, 0)),
            ("WRITE SAME(10)", vec![0x41, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            ("WRITE SAME(16)", cdb16(0x93, 0)),
            ("ORWRITE(16)", cdb16(0x8b, 0)),
            ("WRITE ATOMIC(16)", cdb16(0x9c, 0)),
        ]
    }

    #[test]
    fn data_out_ending_inside_a_block_is_refused_and_writes_nothing() {
        let t = TestLun::disk(1 << 20);
        let before: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
        assert_good(&t.run_out(&rw10(0x2a, 0, 2), &before).0);
        for (name, cdb) in block_data_out_cdbs() {
            let expected = if cdb[0] == 0x89 { 1024 } else { 512 };
            for sent in [1, 200, 511, 513, 1023] {
                if sent >= expected {
                    continue;
                }
                // Data that differs from the medium, so that any byte written would show.
                let (r, _) = t.run_out(&cdb, &vec![0xee; sent]);
                assert_sense(&r, 0x05, 0x0e, 0x03);
                // The transport reports the overflow (RFC 7143 11.4.5) from this.
                assert_eq!(r.data_out_expected, expected as u32, "{name}");
                let (_, d) = t.run(&rw10(0x28, 0, 2));
                assert_eq!(d, before, "{name} with {sent} bytes changed the medium");
            }
        }
        // Two blocks asked for, one and a half sent: not even the whole first block is written.
        assert_sense(&t.run_out(&rw10(0x2a, 0, 2), &[0xee; 768]).0, 0x05, 0x0e, 0x03);
        assert_eq!(t.run(&rw10(0x28, 0, 2)).1, before);
        // Sense bytes against the standard's literal values (SPC-4 4.5.3, fixed format).
        let (r, _) = t.run_out(&rw10(0x2a, 0, 1), &[0xee; 200]);
        assert_eq!(
            r.sense.as_deref(),
            Some(&[0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x0e, 0x03, 0, 0, 0, 0][..])
        );
    }

    #[test]
    fn data_out_on_a_block_boundary_or_longer_is_still_processed() {
        let t = TestLun::disk(1 << 20);
        assert_good(&t.run_out(&rw10(0x2a, 0, 2), &[b'a'; 1024]).0);
        // None at all (EDTL 0): nothing to write, GOOD, the transport reports the overflow.
        let (r, _) = t.run_out(&rw10(0x2a, 0, 1), &[]);
        assert_good(&r);
        assert_eq!(r.data_out_expected, 512);
        // One block of a two-block write: that block is written, the other is not.
        let (r, _) = t.run_out(&rw10(0x2a, 0, 2), &[b'b'; 512]);
        assert_good(&r);
        assert_eq!(r.data_out_expected, 1024);
        let (_, d) = t.run(&rw10(0x28, 0, 2));
        assert!(d[..512].iter().all(|&b| b == b'b') && d[512..].iter().all(|&b| b == b'a'));
        // More than asked for, whole blocks or not: only the CDB's block is written.
        for sent in [1024, 10000] {
            let (r, _) = t.run_out(&rw10(0x2a, 0, 1), &vec![b'c'; sent]);
            assert_good(&r);
            assert_eq!(r.data_out_expected, 512);
            let (_, d) = t.run(&rw10(0x28, 0, 2));
            assert!(d[..512].iter().all(|&b| b == b'c') && d[512..].iter().all(|&b| b == b'a'), "{sent}");
        }
    }

    #[test]
    fn short_transfers_are_completed_by_retrying() {
        // Every other call stops half-way: the retry of the rest completes it.
        let t = faulty(&["read:short:every=2", "write:short:every=2"]);
        let data: Vec<u8> = (0..16 * 512u32).map(|i| (i % 241) as u8).collect();
        for _ in 0..3 {
            assert_good(&t.run_out(&rw10(0x2a, 40, 16), &data).0);
            let (r, back) = t.run(&rw10(0x28, 40, 16));
            assert_good(&r);
            assert_eq!(back, data);
        }
    }

    #[test]
    fn short_transfers_that_stall_are_reported_never_acknowledged() {
        // Transfers stop before block 10 every time: nothing past it ever moves.
        let t = faulty(&["read:short:lba=10-11", "write:short:lba=10-11"]);
        let data = vec![0x77u8; 8 * 512];
        let (r, _) = t.run_out(&rw10(0x2a, 6, 8), &data);
        assert_sense(&r, 0x03, 0x0c, 0x00);
        assert_eq!(information(&r), 10);
        let (r, _) = t.run(&rw10(0x28, 6, 8));
        assert_sense(&r, 0x03, 0x11, 0x00);
        assert_eq!(information(&r), 10);
        // The blocks before the stall were written; the ones after were not.
        let (r, back) = t.run(&rw10(0x28, 6, 4));
        assert_good(&r);
        assert!(back.iter().all(|&b| b == 0x77));
        let (_, back) = t.run(&rw10(0x28, 12, 2));
        assert!(back.iter().all(|&b| b == 0));
    }
}
