//! End-to-end over loopback: an IscsiServer with a memory-backed disk, driven by hand-built PDUs.

use rtgt_backstore::{Backstore, MemoryStore};
use rtgt_iscsi::pdu::{encode_pdu, off, Bhs, Opcode, PduReader};
use rtgt_iscsi::{AclRule, IscsiServer, IscsiTarget, Registry};
use rtgt_scsi::{LogicalUnit, LunConfig, Target};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

#[path = "raw_pdus/text_requests.rs"]
mod text_requests;

const TARGET: &str = "iqn.2024-01.test:disk";
const INITIATOR: &str = "iqn.2024-01.test:client";

async fn server(bind_all: bool) -> (Arc<IscsiServer>, SocketAddr, Arc<IscsiTarget>) {
    let scsi = Target::new(1, TARGET.to_string());
    let lu = LogicalUnit::new(LunConfig::disk(1, 1), Some(Backstore::Memory(MemoryStore::new(1 << 20))));
    scsi.add_lun(1, Arc::new(lu)).unwrap();
    let t = IscsiTarget::new(scsi);
    if bind_all {
        t.bind(AclRule::Any).unwrap();
    }
    let reg = Registry::new();
    reg.add_target(t.clone()).unwrap();
    let srv = IscsiServer::new(reg);
    let addr = srv.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (srv, addr, t)
}

struct Client {
    rd: PduReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
    cmd_sn: u32,
    itt: u32,
    digests: bool,
}

fn text(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs.iter().flat_map(|(k, v)| format!("{k}={v}\0").into_bytes()).collect()
}

fn parse_text(d: &[u8]) -> Vec<(String, String)> {
    rtgt_iscsi::text::parse(d).unwrap()
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).await.unwrap();
        let (r, w) = s.into_split();
        Client { rd: PduReader::new(r, 1 << 24), wr: w, cmd_sn: 1, itt: 0x100, digests: false }
    }

    async fn send(&mut self, bhs: &Bhs, data: &[u8]) {
        let mut wire = Vec::new();
        encode_pdu(&mut wire, bhs, &[], data, self.digests, self.digests);
        self.wr.write_all(&wire).await.unwrap();
    }

    async fn recv(&mut self) -> (Bhs, Vec<u8>) {
        let p = tokio::time::timeout(Duration::from_secs(5), self.rd.read_pdu()).await.expect("timeout").expect("pdu");
        (p.bhs, p.data.to_vec())
    }

    /// True when the target sends nothing for `ms`.
    async fn silent(&mut self, ms: u64) -> bool {
        tokio::time::timeout(Duration::from_millis(ms), self.rd.read_pdu()).await.is_err()
    }

    fn next_itt(&mut self) -> u32 {
        self.itt += 1;
        self.itt
    }

    async fn login_pdu(&mut self, flags: u8, tsih: u16, data: &[u8]) -> (Bhs, Vec<u8>) {
        let mut h = Bhs::default();
        h.0[0] = 0x43;
        h.0[1] = flags;
        h.0[8..14].copy_from_slice(&[0x80, 0, 0, 0, 0, 1]);
        h.set_u16_at(14, tsih);
        h.set_itt(0);
        h.set_u32_at(off::CMD_SN, self.cmd_sn);
        self.send(&h, data).await;
        self.recv().await
    }

    /// Security -> operational -> full feature with the given operational keys.
    async fn login(&mut self, session_type: &str, op_keys: &[(&str, &str)]) {
        let mut first = vec![("InitiatorName", INITIATOR), ("SessionType", session_type), ("AuthMethod", "None")];
        if session_type == "Normal" {
            first.push(("TargetName", TARGET));
        }
        let (h, d) = self.login_pdu(0x81, 0, &text(&first)).await; // T, CSG 0, NSG 1
        assert_eq!(h.opcode().unwrap(), Opcode::LoginResponse);
        assert_eq!((h.0[36], h.0[37]), (0, 0), "login status");
        assert_eq!(h.flags(), 0x81);
        let mut keys = parse_text(&d);
        assert!(keys.contains(&("AuthMethod".into(), "None".into())));
        if session_type == "Normal" {
            assert!(keys.contains(&("TargetPortalGroupTag".into(), "1".into())));
        }
        let (h, d) = self.login_pdu(0x87, 0, &text(op_keys)).await; // T, CSG 1, NSG 3
        assert_eq!((h.0[36], h.0[37]), (0, 0));
        assert_eq!(h.flags(), 0x87);
        assert_ne!(h.tsih(), 0);
        keys.extend(parse_text(&d));
        assert!(keys.iter().any(|(k, _)| k == "MaxRecvDataSegmentLength"));
    }

    async fn command(&mut self, cdb: &[u8], flags: u8, edtl: u32, data: &[u8]) -> u32 {
        let itt = self.next_itt();
        let mut h = Bhs::new(Opcode::ScsiCommand);
        h.set_flags(flags);
        h.set_lun([0, 1, 0, 0, 0, 0, 0, 0]);
        h.set_itt(itt);
        h.set_u32_at(off::EDTL, edtl);
        h.set_u32_at(off::CMD_SN, self.cmd_sn);
        self.cmd_sn += 1;
        h.0[32..32 + cdb.len()].copy_from_slice(cdb);
        self.send(&h, data).await;
        itt
    }

    /// Data-In PDUs until status: (data, status, flags of the status PDU, residual, sense).
    async fn read_result(&mut self, itt: u32) -> (Vec<u8>, u8, u8, u32, Vec<u8>) {
        let mut data = Vec::new();
        let mut data_sn = 0;
        loop {
            let (h, d) = self.recv().await;
            assert_eq!(h.itt(), itt);
            match h.opcode().unwrap() {
                Opcode::DataIn => {
                    assert_eq!(h.data_sn(), data_sn);
                    assert_eq!(h.buffer_offset() as usize, data.len());
                    data_sn += 1;
                    data.extend_from_slice(&d);
                    if h.flags() & 0x01 != 0 {
                        return (data, h.0[3], h.flags(), h.u32_at(off::RESIDUAL_COUNT), Vec::new());
                    }
                }
                Opcode::ScsiResponse => {
                    let sense = if d.len() >= 2 { d[2..].to_vec() } else { Vec::new() };
                    return (data, h.0[3], h.flags(), h.u32_at(off::RESIDUAL_COUNT), sense);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    async fn nop(&mut self, payload: &[u8]) {
        let itt = self.next_itt();
        let mut h = Bhs::new(Opcode::NopOut);
        h.0[0] |= 0x40;
        h.set_itt(itt);
        h.set_ttt(0xffff_ffff);
        h.set_u32_at(off::CMD_SN, self.cmd_sn);
        self.send(&h, payload).await;
        let (r, d) = self.recv().await;
        assert_eq!(r.opcode().unwrap(), Opcode::NopIn);
        assert_eq!(r.itt(), itt);
        assert_eq!(r.ttt(), 0xffff_ffff);
        assert_eq!(d, payload);
    }

    async fn tmf(&mut self, function: u8, ref_itt: u32) -> u8 {
        let mut h = Bhs::new(Opcode::TaskMgmtRequest);
        h.0[0] |= 0x40;
        h.set_flags(0x80 | function);
        h.set_lun([0, 1, 0, 0, 0, 0, 0, 0]);
        h.set_itt(self.next_itt());
        h.set_u32_at(off::REF_TASK_TAG, ref_itt);
        h.set_u32_at(off::CMD_SN, self.cmd_sn);
        self.send(&h, &[]).await;
        let (r, _) = self.recv().await;
        assert_eq!(r.opcode().unwrap(), Opcode::TaskMgmtResponse);
        r.0[2]
    }

    async fn logout(&mut self) {
        let mut h = Bhs::new(Opcode::LogoutRequest);
        h.0[0] |= 0x40;
        h.set_itt(self.next_itt());
        h.set_u32_at(off::CMD_SN, self.cmd_sn);
        self.send(&h, &[]).await;
        let (r, _) = self.recv().await;
        assert_eq!(r.opcode().unwrap(), Opcode::LogoutResponse);
        assert_eq!(r.0[2], 0);
        assert!(matches!(self.rd.read_pdu().await, Err(rtgt_iscsi::pdu::PduError::Closed)));
    }
}

fn read10(lba: u32, blocks: u16) -> Vec<u8> {
    let mut c = vec![0x28, 0];
    c.extend_from_slice(&lba.to_be_bytes());
    c.push(0);
    c.extend_from_slice(&blocks.to_be_bytes());
    c.push(0);
    c
}

fn write10(lba: u32, blocks: u16) -> Vec<u8> {
    let mut c = read10(lba, blocks);
    c[0] = 0x2a;
    c
}

#[tokio::test]
async fn normal_session_commands() {
    let (_srv, addr, target) = server(true).await;
    let mut c = Client::connect(addr).await;
    c.login("Normal", &[("MaxRecvDataSegmentLength", "4096"), ("ImmediateData", "No"), ("HeaderDigest", "None")]).await;
    assert_eq!(target.sessions().len(), 1);
    assert_eq!(target.sessions()[0].initiator_name, INITIATOR);

    // The new nexus first sees a unit attention; INQUIRY is not affected by it.
    let itt = c.command(&[0x12, 0, 0, 0, 96, 0], 0xc1, 96, &[]).await;
    let (data, status, flags, _, _) = c.read_result(itt).await;
    assert_eq!(status, 0);
    assert_eq!(flags & 0x81, 0x81);
    assert!(data.len() >= 36 && data.len() <= 96);
    assert_eq!(data[0] & 0x1f, 0); // disk

    let itt = c.command(&[0, 0, 0, 0, 0, 0], 0x81, 0, &[]).await;
    let (_, status, _, _, sense) = c.read_result(itt).await;
    if status == 2 {
        assert_eq!(sense[2] & 0x0f, 6, "unit attention");
    }

    // WRITE(10) of 16 blocks with ImmediateData=No: one R2T (MaxBurstLength covers it).
    let payload: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    let itt = c.command(&write10(0, 16), 0xa1, 8192, &[]).await;
    let (r2t, _) = c.recv().await;
    assert_eq!(r2t.opcode().unwrap(), Opcode::R2t);
    assert_eq!(r2t.itt(), itt);
    assert_eq!(r2t.u32_at(off::DATA_SN), 0);
    assert_eq!(r2t.buffer_offset(), 0);
    assert_eq!(r2t.u32_at(off::DESIRED_LENGTH), 8192);
    for (i, chunk) in payload.chunks(4096).enumerate() {
        let mut h = Bhs::new(Opcode::DataOut);
        h.set_flags(if i == 1 { 0x80 } else { 0 });
        h.set_lun([0, 1, 0, 0, 0, 0, 0, 0]);
        h.set_itt(itt);
        h.set_ttt(r2t.ttt());
        h.set_u32_at(off::DATA_SN, i as u32);
        h.set_u32_at(off::BUFFER_OFFSET, (i * 4096) as u32);
        c.send(&h, chunk).await;
    }
    let (_, status, flags, residual, _) = c.read_result(itt).await;
    assert_eq!((status, flags & 0x06, residual), (0, 0, 0));

    // READ it back: two Data-In PDUs of 4096 (our declared MaxRecvDataSegmentLength).
    let itt = c.command(&read10(0, 16), 0xc1, 8192, &[]).await;
    let (data, status, _, _, _) = c.read_result(itt).await;
    assert_eq!(status, 0);
    assert_eq!(data, payload);

    // Expected length shorter than the transfer: overflow residual.
    let itt = c.command(&read10(0, 4), 0xc1, 1024, &[]).await;
    let (data, status, flags, residual, _) = c.read_result(itt).await;
    assert_eq!((data.len(), status, flags & 0x06, residual), (1024, 0, 0x04, 1024));
    // Longer: underflow.
    let itt = c.command(&read10(0, 1), 0xc1, 2048, &[]).await;
    let (data, _, flags, residual, _) = c.read_result(itt).await;
    assert_eq!((data.len(), flags & 0x06, residual), (512, 0x02, 1536));

    c.nop(b"ping!").await;

    // Unknown opcode: Reject (command not supported) carrying the header; the session goes on.
    let mut h = Bhs::default();
    h.0[0] = 0x1c;
    h.0[1] = 0x80;
    c.send(&h, &[]).await;
    let (r, d) = c.recv().await;
    assert_eq!(r.opcode().unwrap(), Opcode::Reject);
    assert_eq!(r.0[2], 0x05);
    assert_eq!(d[..48], h.0[..]);
    c.nop(b"").await;

    // CmdSN beyond MaxCmdSN is ignored; the next good command is answered.
    c.cmd_sn += 1000;
    c.command(&[0, 0, 0, 0, 0, 0], 0x81, 0, &[]).await;
    assert!(c.silent(300).await);
    c.cmd_sn -= 1001;
    let itt = c.command(&[0, 0, 0, 0, 0, 0], 0x81, 0, &[]).await;
    assert_eq!(c.read_result(itt).await.1, 0);

    assert_eq!(c.tmf(1, 0xdead).await, 1); // ABORT TASK: no such task
    assert_eq!(c.tmf(5, 0).await, 0); // LOGICAL UNIT RESET
    assert_eq!(c.tmf(3, 0).await, 5); // CLEAR ACA: not supported

    c.logout().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(target.sessions().is_empty());
}

#[tokio::test]
async fn unsolicited_and_immediate_data() {
    let (_srv, addr, t) = server(true).await;
    // InitialR2T is OR-negotiated: the target must offer No too.
    t.set_param("InitialR2T", "No").unwrap();
    let mut c = Client::connect(addr).await;
    c.login(
        "Normal",
        &[("InitialR2T", "No"), ("ImmediateData", "Yes"), ("FirstBurstLength", "4096"), ("MaxBurstLength", "4096")],
    )
    .await;
    let payload = vec![0x5au8; 12288];
    // 1024 immediate + 3072 unsolicited Data-Out, then R2Ts of 4096 for the remaining 8192.
    let itt = c.command(&write10(8, 24), 0x21, 12288, &payload[..1024]).await;
    let mut h = Bhs::new(Opcode::DataOut);
    h.set_itt(itt);
    h.set_ttt(0xffff_ffff);
    h.set_u32_at(off::BUFFER_OFFSET, 1024);
    c.send(&h, &payload[1024..4096]).await;
    let mut offset = 4096;
    while offset < 12288 {
        let (r2t, _) = c.recv().await;
        assert_eq!(r2t.opcode().unwrap(), Opcode::R2t, "expected R2T");
        assert_eq!(r2t.buffer_offset(), offset);
        let len = r2t.u32_at(off::DESIRED_LENGTH);
        assert_eq!(len, 4096);
        let mut h = Bhs::new(Opcode::DataOut);
        h.set_itt(itt);
        h.set_ttt(r2t.ttt());
        h.set_u32_at(off::BUFFER_OFFSET, offset);
        c.send(&h, &payload[offset as usize..(offset + len) as usize]).await;
        offset += len;
    }
    let (_, status, _, _, sense) = c.read_result(itt).await;
    // The first command of a nexus may meet the power-on unit attention.
    assert!(status == 0 || (status == 2 && sense[2] & 0x0f == 6));
    let itt = c.command(&read10(8, 24), 0xc1, 12288, &[]).await;
    if status == 2 {
        let _ = c.read_result(itt).await;
    } else {
        assert_eq!(c.read_result(itt).await.0, payload);
    }
}

#[tokio::test]
async fn bad_data_sn_ends_the_task() {
    let (_srv, addr, _t) = server(true).await;
    let mut c = Client::connect(addr).await;
    c.login("Normal", &[("ImmediateData", "No")]).await;
    let itt = c.command(&write10(0, 1), 0xa1, 512, &[]).await;
    let (r2t, _) = c.recv().await;
    let mut h = Bhs::new(Opcode::DataOut);
    h.set_itt(itt);
    h.set_ttt(r2t.ttt());
    h.set_u32_at(off::DATA_SN, 27);
    c.send(&h, &[0u8; 512]).await;
    let (_, status, _, _, sense) = c.read_result(itt).await;
    assert_eq!(status, 2);
    assert_eq!((sense[2] & 0x0f, sense[12]), (0x0b, 0x4b));
    // Late Data-Out for the ended task is discarded; the session goes on.
    c.send(&h, &[0u8; 512]).await;
    c.nop(b"alive").await;
}

#[tokio::test]
async fn discovery_send_targets() {
    let (_srv, addr, _t) = server(true).await;
    let mut c = Client::connect(addr).await;
    c.login("Discovery", &[("MaxRecvDataSegmentLength", "8192")]).await;
    let mut h = Bhs::new(Opcode::TextRequest);
    h.0[0] |= 0x40;
    h.set_itt(c.next_itt());
    h.set_ttt(0xffff_ffff);
    h.set_u32_at(off::CMD_SN, c.cmd_sn);
    c.send(&h, &text(&[("SendTargets", "All")])).await;
    let (r, d) = c.recv().await;
    assert_eq!(r.opcode().unwrap(), Opcode::TextResponse);
    assert_eq!(r.flags() & 0x80, 0x80);
    let keys = parse_text(&d);
    assert_eq!(
        keys,
        vec![("TargetName".to_string(), TARGET.to_string()), ("TargetAddress".to_string(), format!("{},1", addr))]
    );
    // SCSI commands are not for discovery sessions.
    c.command(&[0, 0, 0, 0, 0, 0], 0x81, 0, &[]).await;
    let (r, _) = c.recv().await;
    assert_eq!(r.opcode().unwrap(), Opcode::Reject);
    c.logout().await;
}

async fn login_status(addr: SocketAddr, keys: &[(&str, &str)]) -> (u8, u8) {
    let mut c = Client::connect(addr).await;
    let (h, _) = c.login_pdu(0x81, 0, &text(keys)).await;
    assert_eq!(h.opcode().unwrap(), Opcode::LoginResponse);
    (h.0[36], h.0[37])
}

#[tokio::test]
async fn login_failures() {
    let (_srv, addr, target) = server(false).await;
    let base = [("InitiatorName", INITIATOR), ("TargetName", TARGET), ("AuthMethod", "None")];
    assert_eq!(login_status(addr, &base).await, (2, 2), "no ACL rule: authorization failure");
    target.bind(AclRule::InitiatorName(INITIATOR.into())).unwrap();
    assert_eq!(login_status(addr, &[("InitiatorName", INITIATOR), ("TargetName", "iqn.nope")]).await, (2, 3));
    assert_eq!(login_status(addr, &[("TargetName", TARGET)]).await, (2, 7));
    assert_eq!(
        login_status(addr, &[("InitiatorName", INITIATOR), ("TargetName", TARGET), ("AuthMethod", "CHAP")]).await,
        (2, 1)
    );
    // Unsupported version (version-min 1).
    let mut c = Client::connect(addr).await;
    let mut h = Bhs::default();
    h.0[0] = 0x43;
    h.0[1] = 0x81;
    h.0[3] = 1;
    c.send(&h, &text(&base)).await;
    let (r, _) = c.recv().await;
    assert_eq!((r.0[36], r.0[37]), (2, 5));
    // And a good login still works.
    let mut c = Client::connect(addr).await;
    c.login("Normal", &[]).await;
}

#[tokio::test]
async fn garbage_stream_is_dropped_and_server_keeps_serving() {
    let (srv, addr, _t) = server(true).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0xa5u8; 200]).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "connection closed without an answer");
    let mut c = Client::connect(addr).await;
    c.login("Normal", &[]).await;
    c.nop(b"still here").await;
    srv.shutdown().await;
}

#[tokio::test]
async fn session_reinstatement_closes_the_old_session() {
    let (_srv, addr, target) = server(true).await;
    let mut a = Client::connect(addr).await;
    a.login("Normal", &[]).await;
    let mut b = Client::connect(addr).await;
    b.login("Normal", &[]).await;
    assert!(a.rd.read_pdu().await.is_err(), "old connection closed");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(target.sessions().len(), 1);
    b.nop(b"x").await;
}

#[tokio::test]
async fn large_reads_with_digests() {
    let (_srv, addr, _t) = server(true).await;
    let mut c = Client::connect(addr).await;
    c.login("Normal", &[("HeaderDigest", "CRC32C"), ("DataDigest", "CRC32C"), ("MaxRecvDataSegmentLength", "65536")])
        .await;
    c.rd.header_digest = true;
    c.rd.data_digest = true;
    c.digests = true;
    // The power-on unit attention goes first.
    let itt = c.command(&[0, 0, 0, 0, 0, 0], 0x81, 0, &[]).await;
    c.read_result(itt).await;
    let payload: Vec<u8> = (0..131072u32).map(|i| (i % 253) as u8).collect();
    let itt = c.command(&write10(0, 256), 0xa1, 131072, &payload[..8192]).await;
    let mut offset = 8192u32;
    while offset < 131072 {
        let (r2t, _) = c.recv().await;
        assert_eq!(r2t.opcode().unwrap(), Opcode::R2t);
        let len = r2t.u32_at(off::DESIRED_LENGTH);
        let mut sent = 0;
        let mut data_sn = 0;
        while sent < len {
            let n = (len - sent).min(8192);
            let mut h = Bhs::new(Opcode::DataOut);
            h.set_flags(if sent + n == len { 0x80 } else { 0 });
            h.set_itt(itt);
            h.set_ttt(r2t.ttt());
            h.set_u32_at(off::DATA_SN, data_sn);
            h.set_u32_at(off::BUFFER_OFFSET, offset + sent);
            let start = (offset + sent) as usize;
            c.send(&h, &payload[start..start + n as usize]).await;
            sent += n;
            data_sn += 1;
        }
        offset += len;
    }
    assert_eq!(c.read_result(itt).await.1, 0);
    let itt = c.command(&read10(0, 256), 0xc1, 131072, &[]).await;
    let (data, status, _, _, _) = c.read_result(itt).await;
    assert_eq!(status, 0);
    assert_eq!(data, payload);
    c.nop(&[7u8; 100]).await;
    c.logout().await;
}
