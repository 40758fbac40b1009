//! SANITIZE (SBC-4 5.30) as a virtual disk can honestly do it: OVERWRITE writes the
//! initialization pattern over every block; BLOCK ERASE and CRYPTOGRAPHIC ERASE (offered on
//! thin-provisioned units only) deallocate every block, so the old data is gone from the backing
//! file and every block reads as zeros (LBPRZ); EXIT FAILURE MODE succeeds since a sanitize here
//! never ends in the failure mode. The operation completes before status is returned, IMMED or
//! not; while it runs, other commands to the unit are answered NOT READY, SANITIZE IN PROGRESS
//! with its progress (SBC-4 4.11.2), so nobody reads a half-sanitized medium.

use super::{check_writable, store_error, Access};
use crate::lun::{LogicalUnit, SanitizeGuard};
use crate::sense::{Asc, Sense};
use rtgt_backstore::BlockStore;

pub(crate) const OVERWRITE: u8 = 0x01;
pub(crate) const BLOCK_ERASE: u8 = 0x02;
pub(crate) const CRYPTOGRAPHIC_ERASE: u8 = 0x03;
pub(crate) const EXIT_FAILURE_MODE: u8 = 0x1f;

/// Bytes written per store call while overwriting.
const CHUNK: usize = 1 << 20;

/// The PARAMETER LIST LENGTH field (CDB bytes 7-8) is wrong for the service action.
fn bad_length() -> Sense {
    Sense::invalid_cdb_field(7, Some(7))
}

pub(crate) async fn sanitize(
    lu: &LogicalUnit,
    service_action: u8,
    param_len: u16,
    data_out: &[u8],
    scratch: &mut Vec<u8>,
) -> Result<(), Sense> {
    check_writable(lu)?;
    // The dispatcher already turned away commands while a sanitize runs; two SANITIZE commands
    // arriving together are told apart here.
    let Some(running) = lu.begin_sanitize() else {
        return Err(Sense::sanitize_in_progress(lu.sanitize_progress().unwrap_or(0)));
    };
    let param_len = usize::from(param_len);
    match service_action {
        OVERWRITE => {
            let bs = lu.block_size() as usize;
            // SBC-4 5.30.2: a four-byte header and a pattern of 1..=block size bytes.
            if param_len <= 4 || param_len > bs + 4 {
                return Err(bad_length());
            }
            let params = data_out.get(..param_len).ok_or(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR))?;
            let invert = params[0] & 0x80 != 0;
            let count = params[0] & 0x1f;
            let pattern_len = usize::from(u16::from_be_bytes([params[2], params[3]]));
            if count == 0 || pattern_len == 0 || pattern_len > bs || pattern_len > param_len - 4 {
                return Err(bad_length());
            }
            let pattern = &params[4..4 + pattern_len];
            // With INVERT the pattern alternates between passes; what stays is the last pass's.
            let last_inverted = invert && count % 2 == 0;
            overwrite(lu, pattern, last_inverted, scratch, &running).await
        }
        BLOCK_ERASE | CRYPTOGRAPHIC_ERASE => {
            if param_len != 0 {
                return Err(bad_length());
            }
            let store = lu.medium()?;
            let size = lu.capacity_blocks() * u64::from(lu.block_size());
            let _held = lu.range_locks().lock(0, u64::MAX).await;
            store.unmap(0, size).await.map_err(|e| store_error(lu, &e, Access::Write))
        }
        EXIT_FAILURE_MODE => {
            if param_len != 0 {
                return Err(bad_length());
            }
            Ok(())
        }
        // The opcode table only dispatches the service actions above.
        _ => Err(Sense::invalid_cdb_field(1, Some(4))),
    }
}

async fn overwrite(
    lu: &LogicalUnit,
    pattern: &[u8],
    inverted: bool,
    scratch: &mut Vec<u8>,
    running: &SanitizeGuard<'_>,
) -> Result<(), Sense> {
    let store = lu.medium()?;
    let bs = lu.block_size() as usize;
    let size = lu.capacity_blocks() * bs as u64;
    // One block of the pattern repeated (a pattern shorter than a block is repeated within it),
    // then as many blocks as fit a chunk.
    scratch.clear();
    let chunk = (CHUNK / bs).max(1) * bs;
    scratch.extend(pattern.iter().map(|&b| if inverted { !b } else { b }).cycle().take(bs));
    while scratch.len() < chunk {
        scratch.extend_from_within(..bs);
    }
    let _held = lu.range_locks().lock(0, u64::MAX).await;
    let mut done = 0u64;
    let mut result = Ok(());
    while done < size {
        let n = (size - done).min(chunk as u64) as usize;
        if let Err(e) = store.write_at(done, &scratch[..n], false).await {
            result = Err(store_error(lu, &e, Access::Write));
            break;
        }
        done += n as u64;
        running.progress(done, size);
    }
    scratch.clear();
    if result.is_ok() {
        result = store.flush().await.map_err(|e| store_error(lu, &e, Access::Write));
    }
    result
}

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    fn sanitize(sa: u8, param_len: u16) -> [u8; 10] {
        let l = param_len.to_be_bytes();
        [0x48, sa, 0, 0, 0, 0, 0, l[0], l[1], 0]
    }

    #[test]
    fn overwrite_fills_every_block() {
        let t = TestLun::disk(64 << 10); // 128 blocks
        let mut params = vec![0x01, 0, 0, 3];
        params.extend_from_slice(&[1, 2, 3]);
        assert_good(&t.run_out(&sanitize(0x01, 7), &params).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 127, 0, 0, 1, 0]);
        let expected: Vec<u8> = [1u8, 2, 3].iter().copied().cycle().take(512).collect();
        assert_eq!(d, expected);
        // INVERT with two passes leaves the inverted pattern.
        let params = [0x82, 0, 0, 1, 0x0f];
        assert_good(&t.run_out(&sanitize(0x01, 5), &params).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(d, vec![0xf0; 512]);
    }

    #[test]
    fn a_running_sanitize_turns_other_commands_away_with_its_progress() {
        let t = TestLun::thin(64 << 10);
        let running = t.lu.begin_sanitize().unwrap();
        running.progress(1, 4);
        // TEST UNIT READY, READ and a second SANITIZE: NOT READY, SANITIZE IN PROGRESS, with SKSV
        // and the progress (a quarter: 0x3fff) in the sense-key-specific bytes.
        let expect = [0x70, 0, 0x02, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x04, 0x1b, 0, 0x80, 0x3f, 0xff];
        assert_eq!(t.run(&[0, 0, 0, 0, 0, 0]).0.sense.as_deref(), Some(&expect[..]));
        assert_eq!(t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]).0.sense.as_deref(), Some(&expect[..]));
        assert_eq!(t.run_out(&sanitize(0x02, 0), &[]).0.sense.as_deref(), Some(&expect[..]));
        // INQUIRY and REPORT LUNS still work; REQUEST SENSE reports the progress.
        assert_good(&t.run(&[0x12, 0, 0, 0, 36, 0]).0);
        assert_good(&t.run(&[0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0]).0);
        let (r, d) = t.run(&[0x03, 0, 0, 0, 18, 0]);
        assert_good(&r);
        assert_eq!(d, expect);
        drop(running);
        assert_good(&t.run(&[0, 0, 0, 0, 0, 0]).0);
    }

    #[test]
    fn overwrite_parameter_checks() {
        let t = TestLun::disk(64 << 10);
        let mut params = vec![0x01, 0, 2, 0];
        params.resize(4 + 512 + 4, 0);
        for len in [0u16, 1, 4, 517] {
            assert_sense(&t.run_out(&sanitize(0x01, len), &params).0, 0x05, 0x24, 0x00);
        }
        // OVERWRITE COUNT 0, pattern length 0, pattern longer than a block.
        for header in [[0x00, 0, 2, 0], [0x01, 0, 0, 0], [0x01, 0, 2, 4]] {
            params[..4].copy_from_slice(&header);
            assert_sense(&t.run_out(&sanitize(0x01, 516), &params).0, 0x05, 0x24, 0x00);
        }
        // Parameter list shorter than announced.
        assert_sense(&t.run_out(&sanitize(0x01, 8), &[1, 0, 0, 4]).0, 0x05, 0x1a, 0x00);
    }

    #[test]
    fn erase_and_exit_failure_mode() {
        let t = TestLun::thin(64 << 10);
        assert_good(&t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[7; 512]).0);
        assert_good(&t.run(&sanitize(0x02, 0)).0);
        let (_, d) = t.run(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        assert_eq!(d, vec![0; 512]);
        assert_good(&t.run(&sanitize(0x83, 0)).0); // IMMED crypto erase
        assert_sense(&t.run_out(&sanitize(0x02, 8), &[0; 8]).0, 0x05, 0x24, 0x00);
        assert_good(&t.run(&sanitize(0x1f, 0)).0);
        assert_sense(&t.run(&sanitize(0x04, 0)).0, 0x05, 0x24, 0x00);
        assert_sense(&t.run(&sanitize(0x42, 0)).0, 0x05, 0x24, 0x00); // reserved bit 6
                                                                      // Block erase is offered on thin units only.
        let plain = TestLun::disk(64 << 10);
        assert_sense(&plain.run(&sanitize(0x02, 0)).0, 0x05, 0x24, 0x00);
        t.lu.set_readonly(true);
        assert_sense(&t.run(&sanitize(0x1f, 0)).0, 0x07, 0x27, 0x00);
    }
}
