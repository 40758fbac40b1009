//! READ data spliced from the page cache to the socket (issue 19): the Data-In PDUs around it keep
//! their framing (headers, DataSN, offsets, F and S bits, padding, StatSN) whether the data is
//! spliced (no DataDigest) or copied (DataDigest, small reads); a file shrunk under its LUN
//! answers MEDIUM ERROR, not short data; reads racing writes return written bytes only; and pipes
//! held by answers the initiator never read are given back when the connection goes.

use crate::common;
use crate::hostile::wire::{command, nop_out, pattern, read10, send_raw, BLOCK};
use common::initiator::{Connection, Pdu, OP_DATA_IN, OP_NOP_IN, OP_SCSI_RSP};
use common::{sparse_image, Tgtd};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const IQN: &str = "iqn.2026-12.org.rtgt.test:splice";
const INITIATOR: &str = "iqn.2026-12.org.rtgt.test:splice-initiator";
const DISK: u64 = 8 << 20;

/// A target whose LUN 1 is a file holding `pattern(DISK, 0x3c)`, on a daemon that splices READs
/// (`RTGT_SPLICE_READS=on`; they are copied by default).
fn target() -> (Tgtd, std::path::PathBuf, Vec<u8>) {
    let tgtd = Tgtd::start_in_env(tempfile::tempdir().unwrap(), &[], &[("RTGT_SPLICE_READS", "on")]);
    let image = sparse_image(tgtd.dir.path(), "splice.img", DISK);
    let bytes = pattern(DISK as usize, 0x3c);
    std::fs::write(&image, &bytes).unwrap();
    tgtd.add_disk_target(1, IQN, &image);
    (tgtd, image, bytes)
}

fn login(tgtd: &Tgtd, isid_tail: u8, keys: &[(&str, &str)]) -> Connection {
    let mut c = Connection::connect(tgtd.portal()).unwrap();
    c.isid = [0x80, 0, 0, 0x19, 0x19, isid_tail];
    c.login(INITIATOR, Some(IQN), keys).expect("login");
    // The power-on unit attention, taken by a TEST UNIT READY.
    let header_digest = keys.contains(&("HeaderDigest", "CRC32C"));
    let data_digest = keys.contains(&("DataDigest", "CRC32C"));
    if header_digest {
        let bhs = command(&mut c, 1, 0x80, 0, &[0; 6]);
        crate::hostile::wire::send_digested(&mut c, &bhs, &[], false, false);
        let rsp = recv(&mut c, true, data_digest);
        assert_eq!(rsp.opcode(), OP_SCSI_RSP);
        c.exp_stat_sn = rsp.u32_at(24).wrapping_add(1);
    } else {
        let _ = c.scsi(1, &[0; 6], &[], 0).unwrap();
    }
    c
}

/// One PDU, checking the digests the connection negotiated.
fn recv(c: &mut Connection, header_digest: bool, data_digest: bool) -> Pdu {
    let mut bhs = [0u8; 48];
    c.stream.read_exact(&mut bhs).expect("a PDU header");
    if header_digest {
        let mut d = [0u8; 4];
        c.stream.read_exact(&mut d).unwrap();
        assert_eq!(d, crc32c::crc32c(&bhs).to_le_bytes(), "header digest");
    }
    assert_eq!(bhs[4], 0, "no AHS from the target");
    let len = u32::from_be_bytes([0, bhs[5], bhs[6], bhs[7]]) as usize;
    let mut data = vec![0u8; len.next_multiple_of(4)];
    c.stream.read_exact(&mut data).unwrap();
    assert!(data[len..].iter().all(|&b| b == 0), "padding is zeros");
    if data_digest && len > 0 {
        let mut d = [0u8; 4];
        c.stream.read_exact(&mut d).unwrap();
        assert_eq!(d, crc32c::crc32c(&data).to_le_bytes(), "data digest");
    }
    data.truncate(len);
    Pdu { bhs, data }
}

/// What one READ brought: its data, status and residual, and the Data-In PDUs' (DataSN, offset,
/// length, flags).
struct ReadOutcome {
    data: Vec<u8>,
    status: u8,
    residual: (u8, u32),
    pdus: Vec<(u32, u32, usize, u8)>,
}

/// Collect the answers to the READs `itts` (any order of arrival), checking that StatSN goes up
/// by one per status and that each command's Data-In PDUs come in order.
fn collect(c: &mut Connection, itts: &[u32], digests: (bool, bool)) -> Vec<ReadOutcome> {
    let mut out: Vec<ReadOutcome> = itts
        .iter()
        .map(|_| ReadOutcome { data: Vec::new(), status: 0xff, residual: (0, 0), pdus: Vec::new() })
        .collect();
    let mut done = 0;
    while done < itts.len() {
        let pdu = recv(c, digests.0, digests.1);
        let k = itts.iter().position(|&i| i == pdu.itt()).unwrap_or_else(|| panic!("unknown ITT in {pdu:?}"));
        let o = &mut out[k];
        let flags = pdu.bhs[1];
        let status_in = match pdu.opcode() {
            OP_DATA_IN => {
                let (sn, offset) = (pdu.u32_at(36), pdu.u32_at(40));
                assert_eq!(sn as usize, o.pdus.len(), "DataSN of ITT {}", pdu.itt());
                assert_eq!(offset as usize, o.data.len(), "Data-In offsets are contiguous");
                o.data.extend_from_slice(&pdu.data);
                o.pdus.push((sn, offset, pdu.data.len(), flags));
                flags & 0x01 != 0
            }
            OP_SCSI_RSP => true,
            other => panic!("unexpected opcode {other:#x}"),
        };
        if status_in {
            assert_eq!(pdu.u32_at(24), c.exp_stat_sn, "StatSN in order");
            c.exp_stat_sn = c.exp_stat_sn.wrapping_add(1);
            o.status = pdu.bhs[3];
            o.residual = (flags & 0x06, pdu.u32_at(44));
            done += 1;
        }
    }
    out
}

fn send_read(c: &mut Connection, itt: u32, lba: u32, blocks: u16, edtl: u32, digests: (bool, bool)) {
    let bhs = command(c, itt, 0xc0, edtl, &read10(lba, blocks));
    if digests.0 {
        crate::hostile::wire::send_digested(c, &bhs, &[], false, false);
    } else {
        send_raw(c, &bhs, &[], &[]);
    }
}

/// Descriptors the daemon has open now.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Pipelined READs of several sizes (spliced and copied ones in the same batches), on a connection
/// whose Data-In is cut at the initiator's MaxRecvDataSegmentLength and MaxBurstLength.
fn pipelined_reads(
    tgtd: &Tgtd,
    bytes: &[u8],
    keys: &[(&str, &str)],
    digests: (bool, bool),
    mrdsl: usize,
    burst: usize,
) {
    let mut c = login(tgtd, 1, keys);
    // (lba, blocks, edtl): whole reads from 4 KiB to 512 KiB, and one whose EDTL stops short of
    // the CDB's length at an odd byte (the rest is overflow, the segment padded).
    let reads: [(u32, u16, u32); 6] =
        [(0, 256, 131072), (3, 8, 4096), (1000, 1024, 524288), (7, 128, 65536), (4096, 200, 40001), (9, 64, 32768)];
    // Twice: the second round reuses the pipes the first one gave back.
    for round in 0..2u32 {
        let itts: Vec<u32> = (100 * (round + 1)..100 * (round + 1) + reads.len() as u32).collect();
        for (&itt, &(lba, blocks, edtl)) in itts.iter().zip(&reads) {
            send_read(&mut c, itt, lba, blocks, edtl, digests);
        }
        let got = collect(&mut c, &itts, digests);
        check_reads(&got, &reads, bytes, mrdsl, burst);
    }
    // The stream is still in step.
    let bhs = nop_out(&c, 7);
    if digests.0 {
        crate::hostile::wire::send_digested(&mut c, &bhs, b"still here", false, false);
    } else {
        send_raw(&mut c, &bhs, &[], &[]);
    }
    let nop = recv(&mut c, digests.0, digests.1);
    assert_eq!((nop.opcode(), nop.itt()), (OP_NOP_IN, 7));
}

fn check_reads(got: &[ReadOutcome], reads: &[(u32, u16, u32)], bytes: &[u8], mrdsl: usize, burst: usize) {
    for (o, &(lba, blocks, edtl)) in got.iter().zip(reads) {
        let start = lba as usize * BLOCK;
        let len = (blocks as usize * BLOCK).min(edtl as usize);
        assert_eq!(o.status, 0, "READ at {lba}");
        assert!(o.data == bytes[start..start + len], "READ at {lba}: the data differs from the file");
        let overflow = blocks as u32 * BLOCK as u32 - len as u32;
        assert_eq!(o.residual, (if overflow > 0 { 0x04 } else { 0 }, overflow), "residual of READ at {lba}");
        for (i, &(_, offset, n, flags)) in o.pdus.iter().enumerate() {
            let last = i + 1 == o.pdus.len();
            let end = offset as usize + n;
            assert!(n <= mrdsl, "a Data-In of {n} bytes past MaxRecvDataSegmentLength {mrdsl}");
            assert!(last || n > 0);
            let burst_end = end.is_multiple_of(burst);
            assert_eq!(flags & 0x80 != 0, last || burst_end, "F bit of PDU {i} of READ at {lba}");
            assert_eq!(flags & 0x01 != 0, last, "status only in the last Data-In");
        }
    }
}

#[test]
fn pipelined_reads_keep_data_in_framing_spliced_or_copied() {
    let (tgtd, _image, bytes) = target();
    // Spliced: no digests; then only a header digest (still spliced); then both digests (copied).
    pipelined_reads(&tgtd, &bytes, &[("MaxRecvDataSegmentLength", "262144")], (false, false), 262144, 262144);
    pipelined_reads(
        &tgtd,
        &bytes,
        &[("MaxRecvDataSegmentLength", "8192"), ("MaxBurstLength", "65536"), ("HeaderDigest", "CRC32C")],
        (true, false),
        8192,
        65536,
    );
    pipelined_reads(
        &tgtd,
        &bytes,
        &[("MaxRecvDataSegmentLength", "32768"), ("HeaderDigest", "CRC32C"), ("DataDigest", "CRC32C")],
        (true, true),
        32768,
        262144,
    );
}

#[test]
fn a_file_shrunk_under_its_lun_answers_medium_error_not_short_data() {
    let (tgtd, image, bytes) = target();
    let mut c = login(&tgtd, 2, &[]);
    // The file loses its second half behind the daemon's back, ending inside a block.
    std::fs::OpenOptions::new().write(true).open(&image).unwrap().set_len(DISK / 2 + 1000).unwrap();
    let lba = (DISK / 2) as u32 / BLOCK as u32 - 64;
    let out = c.read10(1, lba, 256, BLOCK as u32).unwrap();
    assert_eq!(out.status, 0x02, "CHECK CONDITION");
    assert_eq!(out.sense_code(), (0x03, 0x11, 0x00), "MEDIUM ERROR, UNRECOVERED READ ERROR");
    // The first block not read: the first block the file does not hold in full.
    assert_eq!(out.information(), Some((DISK / 2) as u32 / BLOCK as u32 + 1));
    // What the file still holds reads as before, on the same connection.
    let out = c.read10(1, lba, 64, BLOCK as u32).unwrap();
    assert_eq!(out.status, 0);
    assert!(out.data_in == bytes[lba as usize * BLOCK..(lba as usize + 64) * BLOCK]);
}

#[test]
fn reads_racing_writes_to_the_same_blocks_return_written_bytes_and_settle_on_the_last_write() {
    let (tgtd, _image, _) = target();
    let mut w = login(&tgtd, 3, &[]);
    let mut r = login(&tgtd, 4, &[]);
    let blocks = 256u16;
    let len = blocks as usize * BLOCK;
    let seeds: Vec<u8> = (1..=40).collect();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..80 {
            let out = r.read10(1, 0, blocks, BLOCK as u32).unwrap();
            assert_eq!(out.status, 0);
            assert_eq!(out.data_in.len(), len);
            seen.push(out.data_in);
        }
        (r, seen)
    });
    for &s in &seeds {
        assert_eq!(w.write10(1, 0, &vec![s; len], BLOCK as u32).unwrap().status, 0);
    }
    let (mut r, seen) = reader.join().unwrap();
    // The first blocks before any write hold the file's pattern; anything else must be a seed.
    let original = pattern(len, 0x3c);
    for data in &seen {
        for (i, &b) in data.iter().enumerate() {
            assert!(b == original[i] || seeds.contains(&b), "byte {i} is {b:#x}: neither the file's nor written");
        }
    }
    let last = r.read10(1, 0, blocks, BLOCK as u32).unwrap();
    assert!(last.data_in.iter().all(|&b| b == *seeds.last().unwrap()), "a read after the writes sees the last one");
}

#[test]
fn pipes_held_by_answers_never_read_are_given_back_when_the_connection_goes() {
    let (tgtd, _image, _) = target();
    let pid = tgtd.pid();
    let base = open_fds(pid);
    let mut c = login(&tgtd, 5, &[]);
    // Reads answered in full leave their pipes with the connection, for its next reads.
    for lba in [0, 4096] {
        assert_eq!(c.read10(1, lba, 512, BLOCK as u32).unwrap().status, 0);
    }
    let before = open_fds(pid);
    // 32 MiB of READs whose answers the initiator does not read: the sockets' buffers fill, and
    // the answers behind wait in the target with their data in pipes.
    for itt in 0..64u32 {
        let bhs = command(&mut c, 1000 + itt, 0xc0, 524288, &read10(itt % 8 * 1024, 1024));
        c.stream.write_all(&bhs).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut most = before;
    while Instant::now() < deadline && most < before + 8 {
        most = most.max(open_fds(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(most >= before + 8, "the unread answers hold pipes (descriptors {before} -> {most})");
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && open_fds(pid) > base {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(open_fds(pid) <= base, "pipes left open: {} descriptors, {base} before the connection", open_fds(pid));
    // The daemon still serves reads, spliced again.
    let bytes = pattern(DISK as usize, 0x3c);
    let mut c = login(&tgtd, 6, &[]);
    let out = c.read10(1, 100, 256, BLOCK as u32).unwrap();
    assert!(out.status == 0 && out.data_in == bytes[100 * BLOCK..356 * BLOCK]);
}

/// Pipes the daemon has open now.
fn open_pipes(pid: i32) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("pipe:"))
        .count()
}

/// Splicing is off unless `RTGT_SPLICE_READS=on` (it lost to copying on loopback, bench/README):
/// a default daemon answers a 256 KiB READ without a pipe, one told to splice keeps the pipe.
#[test]
fn reads_are_copied_unless_splicing_is_asked_for() {
    let bytes = pattern(DISK as usize, 0x3c);
    let (spliced, _image, _) = target();
    let copied = Tgtd::start();
    let image = sparse_image(copied.dir.path(), "copied.img", DISK);
    std::fs::write(&image, &bytes).unwrap();
    copied.add_disk_target(1, IQN, &image);
    for (tgtd, pipes_wanted) in [(&copied, false), (&spliced, true)] {
        let base = open_pipes(tgtd.pid());
        let mut c = login(tgtd, 7, &[]);
        let out = c.read10(1, 0, 512, BLOCK as u32).unwrap();
        assert!(out.status == 0 && out.data_in == bytes[..512 * BLOCK]);
        assert_eq!(open_pipes(tgtd.pid()) > base, pipes_wanted, "pipes {base} -> {}", open_pipes(tgtd.pid()));
    }
}
