//! Target-initiated NOP-In probing (tgt's nop_interval / nop_count) over loopback with hand-built
//! PDUs: an idle connection is probed, answering keeps it, silence drops it, and a busy command
//! stream never sees a probe.

use rtgt_backstore::{Backstore, MemoryStore};
use rtgt_iscsi::params::NopParams;
use rtgt_iscsi::pdu::{encode_pdu, off, Bhs, Opcode, PduReader};
use rtgt_iscsi::{AclRule, IscsiServer, IscsiTarget, Registry};
use rtgt_scsi::{LogicalUnit, LunConfig, Target};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

const TARGET: &str = "iqn.2024-01.test:nop";
const INITIATOR: &str = "iqn.2024-01.test:client";
const RESERVED: u32 = 0xffff_ffff;

/// A target probing every second and dropping after two unanswered probes.
async fn server() -> (Arc<IscsiServer>, SocketAddr, Arc<IscsiTarget>) {
    let scsi = Target::new(1, TARGET.to_string());
    let lu = LogicalUnit::new(LunConfig::disk(1, 1), Some(Backstore::Memory(MemoryStore::new(1 << 20))));
    scsi.add_lun(1, Arc::new(lu)).unwrap();
    let t = IscsiTarget::new(scsi);
    t.bind(AclRule::Any).unwrap();
    t.set_nop(NopParams { interval: 1, count: 2 });
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
}

fn text(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs.iter().flat_map(|(k, v)| format!("{k}={v}\0").into_bytes()).collect()
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        Client { rd: PduReader::new(r, 1 << 20), wr: w, cmd_sn: 1, itt: 0x100 }
    }

    async fn send(&mut self, bhs: &Bhs) {
        let mut wire = Vec::new();
        encode_pdu(&mut wire, bhs, &[], &[], false, false);
        self.wr.write_all(&wire).await.unwrap();
    }

    async fn recv(&mut self) -> Bhs {
        tokio::time::timeout(Duration::from_secs(5), self.rd.read_pdu()).await.expect("timeout").expect("pdu").bhs
    }

    async fn login_pdu(&mut self, flags: u8, data: &[u8]) -> Bhs {
        let mut h = Bhs::default();
        h.0[0] = 0x43;
        h.0[1] = flags;
        h.0[8..14].copy_from_slice(&[0x80, 0, 0, 0, 0, 1]);
        h.set_u32_at(off::CMD_SN, self.cmd_sn);
        let mut wire = Vec::new();
        encode_pdu(&mut wire, &h, &[], data, false, false);
        self.wr.write_all(&wire).await.unwrap();
        self.recv().await
    }

    async fn login(&mut self) {
        let first =
            [("InitiatorName", INITIATOR), ("SessionType", "Normal"), ("AuthMethod", "None"), ("TargetName", TARGET)];
        let h = self.login_pdu(0x81, &text(&first)).await;
        assert_eq!((h.0[36], h.0[37]), (0, 0), "login status");
        let h = self.login_pdu(0x87, &text(&[("HeaderDigest", "None")])).await;
        assert_eq!((h.0[36], h.0[37], h.flags()), (0, 0, 0x87));
    }

    /// TEST UNIT READY to LUN 1; returns the response header.
    async fn tur(&mut self) -> Bhs {
        self.itt += 1;
        let mut h = Bhs::new(Opcode::ScsiCommand);
        h.set_flags(0x81);
        h.set_lun([0, 1, 0, 0, 0, 0, 0, 0]);
        h.set_itt(self.itt);
        h.set_u32_at(off::CMD_SN, self.cmd_sn);
        self.cmd_sn += 1;
        self.send(&h).await;
        let r = self.recv().await;
        assert_eq!((r.opcode().unwrap(), r.itt()), (Opcode::ScsiResponse, self.itt), "a probe in a busy stream");
        r
    }

    /// Wait for a probe and check its form (11.19).
    async fn probe(&mut self) -> Bhs {
        let p = self.recv().await;
        assert_eq!(p.opcode().unwrap(), Opcode::NopIn);
        assert_eq!(p.itt(), RESERVED);
        assert_ne!(p.ttt(), RESERVED);
        assert_eq!(p.lun(), [0; 8]);
        assert_eq!(p.data_segment_len(), 0);
        p
    }

    /// Answer a probe: an immediate NOP-Out with the reserved ITT and the probe's TTT.
    async fn answer(&mut self, probe: &Bhs) {
        let mut h = Bhs::new(Opcode::NopOut);
        h.0[0] |= 0x40;
        h.set_itt(RESERVED);
        h.set_ttt(probe.ttt());
        h.set_u32_at(off::CMD_SN, self.cmd_sn);
        h.set_u32_at(off::EXP_STAT_SN, probe.u32_at(off::STAT_SN));
        self.send(&h).await;
    }
}

#[tokio::test]
async fn answered_probes_keep_an_idle_connection() {
    let (_srv, addr, target) = server().await;
    let mut c = Client::connect(addr).await;
    c.login().await;
    let first = c.tur().await; // fixes the StatSN the probes must carry
    let next_stat_sn = first.u32_at(off::STAT_SN).wrapping_add(1);
    let start = Instant::now();
    let mut ttts = Vec::new();
    // Five seconds of answered probes: well past the 3 s an unanswered connection lasts.
    while start.elapsed() < Duration::from_secs(5) {
        let p = c.probe().await;
        assert_eq!(p.u32_at(off::STAT_SN), next_stat_sn, "a probe does not use up a StatSN");
        assert_eq!(p.u32_at(off::EXP_CMD_SN), c.cmd_sn);
        ttts.push(p.ttt());
        c.answer(&p).await;
    }
    assert!(ttts.len() >= 2, "{ttts:?}");
    assert!(ttts.windows(2).all(|w| w[0] != w[1]), "each probe has its own TTT: {ttts:?}");
    assert_eq!(target.sessions().len(), 1);
    // The answers were not commands: no CmdSN advance, and the next command's response carries the
    // StatSN after the first one.
    let r = c.tur().await;
    assert_eq!(r.u32_at(off::STAT_SN), next_stat_sn);
    assert_eq!(r.u32_at(off::EXP_CMD_SN), c.cmd_sn);
}

#[tokio::test]
async fn a_silent_connection_is_dropped_after_the_count() {
    let (_srv, addr, target) = server().await;
    let mut c = Client::connect(addr).await;
    c.login().await;
    let start = Instant::now();
    let a = c.probe().await;
    let b = c.probe().await;
    assert_ne!(a.ttt(), b.ttt());
    let end = tokio::time::timeout(Duration::from_secs(5), c.rd.read_pdu()).await.expect("not dropped");
    assert!(end.is_err(), "expected the connection to close, got {:?}", end.map(|p| p.bhs.opcode_raw()));
    let took = start.elapsed();
    assert!(took > Duration::from_millis(2500) && took < Duration::from_millis(4500), "{took:?}");
    // The session goes with its only connection.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !target.sessions().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(target.sessions().is_empty());
}

#[tokio::test]
async fn a_busy_command_stream_is_not_probed() {
    let (_srv, addr, target) = server().await;
    let mut c = Client::connect(addr).await;
    c.login().await;
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < Duration::from_millis(3500) {
        c.tur().await; // asserts that the reply is the command's, not a probe
        n += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(n >= 10);
    assert_eq!(target.sessions().len(), 1);
}

#[tokio::test]
async fn probing_off_sends_nothing() {
    let (_srv, addr, target) = server().await;
    target.set_nop(NopParams { interval: 0, count: 2 });
    let mut c = Client::connect(addr).await;
    c.login().await;
    let quiet = tokio::time::timeout(Duration::from_millis(2500), c.rd.read_pdu()).await;
    assert!(quiet.is_err(), "nothing arrives while probing is off");
    assert_eq!(target.sessions().len(), 1);
}
