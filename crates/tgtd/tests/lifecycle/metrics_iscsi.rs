//! The per-target iSCSI counters and the write budget's waits in /metrics, each driven through the
//! real protocol: logins refused by an ACL, by CHAP (libiscsi's iscsi-inq with a wrong password),
//! for an unknown target name and by the login timeout; a wrong data digest; a Reject; a write
//! whose R2T waited for the daemon's write budget; a READ that waited for the daemon's read budget
//! and a connection closed by the send timeout.

use crate::common::initiator::{lun_field, write_u32, Connection, OP_R2T, OP_REJECT, OP_SCSI_RSP};
use crate::common::{free_port, require, run, sparse_image, text, Tgtd};
use crate::metrics::{http_get, sample};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const OPEN: &str = "iqn.2026-12.org.rtgt.test:open";
const CLOSED: &str = "iqn.2026-12.org.rtgt.test:closed";
const CHAP: &str = "iqn.2026-12.org.rtgt.test:chap";
const INITIATOR: &str = "iqn.2026-11.org.rtgt.test:initiator";

fn target(tgtd: &Tgtd, tid: u32, iqn: &str, rule: (&str, &str)) {
    let image = sparse_image(tgtd.dir.path(), &format!("disk{tid}.img"), 8 << 20);
    tgtd.new_target(tid, iqn);
    tgtd.add_lun_ok(tid, 1, &["--backing-store", image.to_str().unwrap()]);
    tgtd.bind(tid, rule.0, rule.1);
}

/// The first Login Response's status (class, detail) for a login to `target_name`.
fn login_status(tgtd: &Tgtd, target_name: &str) -> String {
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    match conn.login(INITIATOR, Some(target_name), &[]) {
        Ok(_) => "accepted".to_string(),
        Err(e) => e,
    }
}

/// Read one PDU from a connection that negotiated DataDigest=CRC32C (the target appends a digest
/// to each data segment): its header and data.
fn recv_with_data_digest(conn: &mut Connection) -> ([u8; 48], Vec<u8>) {
    let mut bhs = [0u8; 48];
    conn.stream.read_exact(&mut bhs).unwrap();
    let len = u32::from_be_bytes([0, bhs[5], bhs[6], bhs[7]]) as usize;
    let mut rest = vec![0u8; len.next_multiple_of(4) + if len > 0 { 4 } else { 0 }];
    conn.stream.read_exact(&mut rest).unwrap();
    rest.truncate(len);
    (bhs, rest)
}

/// /metrics, polled until `name{labels}` reads `want` (counters are bumped just after the answer
/// that the test saw goes out) or 10 s pass; the last text.
fn metrics_until(port: u16, name: &str, labels: &[&str], want: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = http_get(port, "/metrics").1;
        if sample(&text, name, labels) == Some(want) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn logins_chap_digests_and_rejects_are_counted_per_target() {
    require("iscsi-inq");
    let metrics = free_port();
    let tgtd = Tgtd::start_with(&["--metrics", &format!("127.0.0.1:{metrics}"), "--iscsi", "login_timeout=4"]);
    target(&tgtd, 1, OPEN, ("--initiator-address", "ALL"));
    target(&tgtd, 2, CLOSED, ("--initiator-name", "iqn.2026-11.org.rtgt.test:someone-else"));
    target(&tgtd, 3, CHAP, ("--initiator-address", "ALL"));
    for args in [
        &["--op", "new", "--user", "alice", "--password", "alicesecret12"][..],
        &["--op", "bind", "--tid", "3", "--user", "alice"],
    ] {
        let mut full = vec!["--lld", "iscsi", "--mode", "account"];
        full.extend_from_slice(args);
        tgtd.tgtadm_ok(&full);
    }

    // Refused by the ACL; refused for a name no target has, three made-up names.
    assert_eq!(login_status(&tgtd, CLOSED), "login status 0x0202");
    for name in ["iqn.2026-12.evil:a", "iqn.2026-12.evil:b", "iqn.2026-12.evil:c"] {
        assert_eq!(login_status(&tgtd, name), "login status 0x0203");
    }
    // CHAP with a wrong password (a failed CHAP exchange), then without credentials (AuthMethod
    // None where CHAP is required: an authentication refusal, but no CHAP exchange; its answer
    // comes a second late, the throttle of repeated failures, which libiscsi does not wait for
    // reliably: our own initiator asks), then right.
    let base = format!("127.0.0.1:{}/{CHAP}/1", tgtd.port);
    let wrong = run("iscsi-inq", &[&format!("iscsi://alice%wrong-password@{base}")]);
    assert!(!wrong.status.success() && text(&wrong).contains("Authentication failure"), "{}", text(&wrong));
    assert_eq!(login_status(&tgtd, CHAP), "login status 0x0201", "{}", tgtd.log());
    let right = run("iscsi-inq", &[&format!("iscsi://alice%alicesecret12@{base}")]);
    assert!(right.status.success(), "{}", text(&right));
    // A discovery session, accepted; a connection that never sends its login, timed out.
    let mut discovery = Connection::connect(tgtd.portal()).unwrap();
    discovery.login(INITIATOR, None, &[]).unwrap();
    let mut silent = TcpStream::connect(tgtd.portal()).unwrap();
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(silent.read(&mut [0u8; 48]).unwrap_or(0), 0, "the login timeout closes the connection");

    // A session to the open target with data digests: a NOP-Out whose data digest is wrong is
    // answered Reject (data digest error), and a SNACK (ERL 0) is a protocol error.
    let mut conn = Connection::connect(tgtd.portal()).unwrap();
    conn.login(INITIATOR, Some(OPEN), &[("DataDigest", "CRC32C")]).unwrap();
    let mut nop = [0u8; 48];
    nop[0] = 0x40;
    nop[1] = 0x80;
    nop[7] = 8;
    write_u32(&mut nop, 16, conn.itt());
    write_u32(&mut nop, 20, 0xffff_ffff);
    write_u32(&mut nop, 24, conn.cmd_sn);
    write_u32(&mut nop, 28, conn.exp_stat_sn);
    let mut wire = nop.to_vec();
    // Eight bytes of data, then a digest that is not theirs (CRC32C of "pingping" is not zero).
    wire.extend_from_slice(b"pingping\0\0\0\0");
    conn.stream.write_all(&wire).unwrap();
    let (reject, data) = recv_with_data_digest(&mut conn);
    assert_eq!((reject[0] & 0x3f, reject[2]), (OP_REJECT, 0x02), "{reject:?}");
    assert_eq!(&data[..48], &wire[..48], "the Reject carries the rejected header");
    let mut snack = [0u8; 48];
    snack[0] = 0x10;
    snack[1] = 0x80;
    write_u32(&mut snack, 28, conn.exp_stat_sn);
    conn.send(&snack, &[]).unwrap();
    let (reject, _) = recv_with_data_digest(&mut conn);
    assert_eq!((reject[0] & 0x3f, reject[2]), (OP_REJECT, 0x04), "{reject:?}");

    let text = metrics_until(metrics, "rtgt_iscsi_logins_refused_total", &["reason=\"timeout\""], 1.0);
    let t = |tid: &'static str| ["tid=\"".to_string() + tid + "\""];
    let refused = |text: &str, tid: Option<&'static str>, reason: &str| {
        let reason = format!("reason=\"{reason}\"");
        let labels: Vec<String> = tid.map(|tid| t(tid).to_vec()).unwrap_or_default();
        let mut all: Vec<&str> = labels.iter().map(String::as_str).collect();
        all.push(&reason);
        // The untargeted series is the one line of the family without a tid.
        text.lines()
            .filter(|l| l.starts_with("rtgt_iscsi_logins_refused_total{") && (tid.is_some() || !l.contains("tid=")))
            .find(|l| all.iter().all(|x| l.contains(x)))
            .and_then(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
    };
    assert_eq!(refused(&text, Some("2"), "authorization"), Some(1.0), "{text}");
    assert_eq!(refused(&text, None, "not_found"), Some(3.0), "{text}");
    assert_eq!(refused(&text, None, "timeout"), Some(1.0), "{text}");
    assert_eq!(refused(&text, Some("3"), "authentication"), Some(2.0), "{text}");
    assert_eq!(refused(&text, Some("1"), "authentication"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "rtgt_iscsi_chap_failures_total", &["tid=\"3\""]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "rtgt_iscsi_chap_failures_total", &["tid=\"1\""]), Some(0.0), "{text}");
    assert_eq!(sample(&text, "rtgt_iscsi_logins_accepted_total", &["tid=\"3\""]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "rtgt_iscsi_logins_accepted_total", &["tid=\"1\""]), Some(1.0), "{text}");
    let untargeted_accepted = text
        .lines()
        .find(|l| l.starts_with("rtgt_iscsi_logins_accepted_total "))
        .and_then(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok());
    assert_eq!(untargeted_accepted, Some(1.0), "the discovery session: {text}");
    assert_eq!(sample(&text, "rtgt_iscsi_digest_errors_total", &["tid=\"1\"", "digest=\"data\""]), Some(1.0));
    assert_eq!(sample(&text, "rtgt_iscsi_pdus_rejected_total", &["tid=\"1\"", "reason=\"data_digest\""]), Some(1.0));
    assert_eq!(sample(&text, "rtgt_iscsi_pdus_rejected_total", &["tid=\"1\"", "reason=\"protocol_error\""]), Some(1.0));
    assert_eq!(sample(&text, "rtgt_target_connections", &["tid=\"1\""]), Some(1.0));
    // What an initiator named never becomes a label.
    assert!(!text.contains("evil"), "{text}");
}

/// WRITE(10) of `blocks` 512-byte blocks at LBA 0 of LUN 1, with no immediate data; its ITT.
fn announce_write(conn: &mut Connection, blocks: u16) -> u32 {
    let mut bhs = [0u8; 48];
    bhs[0] = 0x01;
    bhs[1] = 0x80 | 0x20 | 0x01;
    bhs[8..16].copy_from_slice(&lun_field(1));
    let itt = conn.itt();
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, u32::from(blocks) * 512);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    conn.cmd_sn += 1;
    bhs[32] = 0x2a;
    bhs[39..41].copy_from_slice(&blocks.to_be_bytes());
    conn.send(&bhs, &[]).unwrap();
    itt
}

#[test]
fn a_write_that_waits_for_the_daemon_write_budget_is_counted() {
    let metrics = free_port();
    let tgtd = Tgtd::start_with(&["--metrics", &format!("127.0.0.1:{metrics}"), "--iscsi", "write_budget=1M"]);
    target(&tgtd, 1, OPEN, ("--initiator-address", "ALL"));
    let mut conn = tgtd.session(OPEN, 1, &[1]);
    // Two 768 KiB writes: the first is asked for its data, the second waits (1.5 MiB > 1 MiB).
    let blocks = 1536;
    let first = announce_write(&mut conn, blocks);
    let second = announce_write(&mut conn, blocks);
    let data = vec![0x33u8; usize::from(blocks) * 512];
    let mut done = Vec::new();
    let mut asked_while_first_ran = None;
    while done.len() < 2 {
        let pdu = conn.recv().unwrap();
        match pdu.opcode() {
            OP_R2T => {
                let itt = pdu.itt();
                if itt == second && !done.contains(&first) {
                    asked_while_first_ran = Some(itt);
                }
                let (offset, len) = (pdu.u32_at(40) as usize, pdu.u32_at(44) as usize);
                conn.send_data_out(1, itt, pdu.u32_at(20), &data[offset..offset + len], offset).unwrap();
            }
            OP_SCSI_RSP => {
                assert_eq!(pdu.bhs[3], 0, "{pdu:?}");
                conn.exp_stat_sn = pdu.u32_at(24).wrapping_add(1);
                done.push(pdu.itt());
            }
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    assert_eq!(asked_while_first_ran, None, "the second write was asked for its data before the first ended");
    let text = metrics_until(metrics, "rtgt_write_budget_waits_total", &["budget=\"daemon\""], 1.0);
    assert_eq!(sample(&text, "rtgt_write_budget_waits_total", &["budget=\"daemon\""]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "rtgt_write_budget_waits_total", &["budget=\"connection\""]), Some(0.0));
    assert_eq!(sample(&text, "rtgt_write_budget_in_use_bytes", &[]), Some(0.0));
    assert_eq!(sample(&text, "rtgt_write_budget_bytes", &[]), Some(f64::from(1u32 << 20)));
}

/// READ(10) of `blocks` 512-byte blocks at LBA 0 of LUN 1; its ITT.
fn announce_read(conn: &mut Connection, blocks: u16) -> u32 {
    let mut bhs = [0u8; 48];
    bhs[0] = 0x01;
    bhs[1] = 0x80 | 0x40 | 0x01;
    bhs[8..16].copy_from_slice(&lun_field(1));
    let itt = conn.itt();
    write_u32(&mut bhs, 16, itt);
    write_u32(&mut bhs, 20, u32::from(blocks) * 512);
    write_u32(&mut bhs, 24, conn.cmd_sn);
    write_u32(&mut bhs, 28, conn.exp_stat_sn);
    conn.cmd_sn += 1;
    bhs[32] = 0x28;
    bhs[39..41].copy_from_slice(&blocks.to_be_bytes());
    conn.send(&bhs, &[]).unwrap();
    itt
}

/// Two whole-disk READs (8 MiB each) never read: the first holds the read budget while the target
/// waits on the socket, the second waits for the daemon's budget (1 MiB); after the send timeout
/// the connection is closed, counted for its target, and the budget is free again.
#[test]
fn a_read_that_waits_for_the_read_budget_and_a_send_timeout_are_counted() {
    let metrics = free_port();
    let iscsi = "read_budget=1M,send_timeout=3";
    let tgtd = Tgtd::start_with(&["--metrics", &format!("127.0.0.1:{metrics}"), "--iscsi", iscsi]);
    target(&tgtd, 1, OPEN, ("--initiator-address", "ALL"));
    let mut conn = tgtd.session(OPEN, 1, &[1]);
    announce_read(&mut conn, 16384);
    announce_read(&mut conn, 16384);
    let text = metrics_until(metrics, "rtgt_read_budget_waits_total", &["budget=\"daemon\""], 1.0);
    assert_eq!(sample(&text, "rtgt_read_budget_waits_total", &["budget=\"daemon\""]), Some(1.0), "{text}");
    assert_eq!(sample(&text, "rtgt_read_budget_waits_total", &["budget=\"connection\""]), Some(0.0));
    assert_eq!(sample(&text, "rtgt_read_budget_bytes", &[]), Some(f64::from(1u32 << 20)));
    assert_eq!(sample(&text, "rtgt_read_budget_in_use_bytes", &[]), Some(f64::from(8u32 << 20)), "{text}");
    assert_eq!(sample(&text, "rtgt_iscsi_send_timeouts_total", &["tid=\"1\""]), Some(0.0), "{text}");
    let text = metrics_until(metrics, "rtgt_iscsi_send_timeouts_total", &["tid=\"1\""], 1.0);
    assert_eq!(sample(&text, "rtgt_iscsi_send_timeouts_total", &["tid=\"1\""]), Some(1.0), "{text}");
    let text = metrics_until(metrics, "rtgt_read_budget_in_use_bytes", &[], 0.0);
    assert_eq!(sample(&text, "rtgt_read_budget_in_use_bytes", &[]), Some(0.0), "the budget is given back");
    assert!(conn.closed_by_target(), "the connection that stopped reading is closed");
}
