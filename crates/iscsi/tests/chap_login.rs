//! Login-level authentication and access control over loopback, with hand-built Login PDUs: CHAP
//! one-way and mutual (targets and discovery), AuthMethod refusals, the offline state, SendTargets
//! filtering, forced logout and closing a portal.

use rtgt_iscsi::chap::{decode_binary, encode_hex, ChapAlgorithm};
use rtgt_iscsi::pdu::{encode_pdu, off, Bhs, Opcode, PduReader};
use rtgt_iscsi::{AclRule, IscsiServer, IscsiTarget, Registry};
use rtgt_scsi::Target;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

const TARGET: &str = "iqn.2024-01.test:chap";
const OTHER: &str = "iqn.2024-01.test:other";
const INITIATOR: &str = "iqn.2024-01.test:client";

/// Two targets open to everyone, accounts alice (incoming of TARGET) and tgt (its outgoing).
async fn server() -> (Arc<IscsiServer>, SocketAddr, Arc<Registry>) {
    let reg = Registry::new();
    for (tid, name) in [(1, TARGET), (2, OTHER)] {
        let t = IscsiTarget::new(Target::new(tid, name.to_string()));
        t.bind(AclRule::Any).unwrap();
        reg.add_target(t).unwrap();
    }
    reg.add_account("alice", "alicesecret12").unwrap();
    reg.add_account("tgt", "tgtsecret5678").unwrap();
    let t = reg.target(1).unwrap();
    t.bind_account("alice", false).unwrap();
    t.bind_account("tgt", true).unwrap();
    let srv = IscsiServer::new(reg.clone());
    let addr = srv.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    (srv, addr, reg)
}

type Keys = Vec<(String, String)>;

struct Client {
    rd: PduReader<OwnedReadHalf>,
    wr: OwnedWriteHalf,
}

fn text(pairs: &[(&str, &str)]) -> Vec<u8> {
    pairs.iter().flat_map(|(k, v)| format!("{k}={v}\0").into_bytes()).collect()
}

fn get<'a>(keys: &'a Keys, key: &str) -> Option<&'a str> {
    keys.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        Client { rd: PduReader::new(r, 1 << 20), wr: w }
    }

    /// One Login Request; returns (flags, status class, status detail, keys).
    async fn login(&mut self, flags: u8, pairs: &[(&str, &str)]) -> (u8, u8, u8, Keys) {
        let mut h = Bhs::default();
        h.0[0] = 0x43;
        h.0[1] = flags;
        h.0[8..14].copy_from_slice(&[0x80, 0, 0, 0, 0, 1]);
        h.set_u32_at(off::CMD_SN, 1);
        let mut wire = Vec::new();
        encode_pdu(&mut wire, &h, &[], &text(pairs), false, false);
        self.wr.write_all(&wire).await.unwrap();
        let p = tokio::time::timeout(Duration::from_secs(15), self.rd.read_pdu()).await.expect("timeout").expect("pdu");
        assert_eq!(p.bhs.opcode().unwrap(), Opcode::LoginResponse);
        (p.bhs.flags(), p.bhs.0[36], p.bhs.0[37], rtgt_iscsi::text::parse(&p.data).unwrap())
    }

    async fn send_targets(&mut self) -> Keys {
        let mut h = Bhs::new(Opcode::TextRequest);
        h.set_flags(0x80);
        h.set_itt(7);
        h.set_ttt(0xffff_ffff);
        h.set_u32_at(off::CMD_SN, 1);
        let mut wire = Vec::new();
        encode_pdu(&mut wire, &h, &[], &text(&[("SendTargets", "All")]), false, false);
        self.wr.write_all(&wire).await.unwrap();
        let p = tokio::time::timeout(Duration::from_secs(5), self.rd.read_pdu()).await.unwrap().unwrap();
        rtgt_iscsi::text::parse(&p.data).unwrap()
    }

    /// True when the target closes the connection within five seconds.
    async fn closed(&mut self) -> bool {
        matches!(tokio::time::timeout(Duration::from_secs(5), self.rd.read_pdu()).await, Ok(Err(_)))
    }
}

fn first_keys<'a>(session: &'a str, auth: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut v = vec![("InitiatorName", INITIATOR), ("SessionType", session), ("AuthMethod", auth)];
    if session == "Normal" {
        v.push(("TargetName", TARGET));
    }
    v
}

/// Security stage up to the challenge: returns (algorithm, identifier, challenge).
async fn challenge(c: &mut Client, session: &str, algorithms: &str) -> (ChapAlgorithm, u8, Vec<u8>) {
    // libiscsi and open-iscsi ask to transit already; the target must hold them in the stage.
    let (flags, class, _, keys) = c.login(0x81, &first_keys(session, "CHAP,None")).await;
    assert_eq!((flags & 0x80, class), (0, 0), "AuthMethod answered without the T bit");
    assert_eq!(get(&keys, "AuthMethod"), Some("CHAP"));
    let (flags, class, _, keys) = c.login(0x01, &[("CHAP_A", algorithms)]).await;
    assert_eq!((flags & 0x80, class), (0, 0));
    let alg = ChapAlgorithm::from_code(get(&keys, "CHAP_A").unwrap().parse().unwrap()).unwrap();
    let id = get(&keys, "CHAP_I").unwrap().parse().unwrap();
    let ch = decode_binary(get(&keys, "CHAP_C").unwrap()).unwrap();
    assert!(ch.len() >= 16);
    (alg, id, ch)
}

async fn finish_operational(c: &mut Client) {
    let (flags, class, detail, _) = c.login(0x87, &[("MaxRecvDataSegmentLength", "8192")]).await;
    assert_eq!((flags, class, detail), (0x87, 0, 0));
}

#[tokio::test]
async fn one_way_chap_with_each_algorithm() {
    let (srv, addr, reg) = server().await;
    for algs in ["5", "6", "7", "8", "8,7,6,5"] {
        let mut c = Client::connect(addr).await;
        let (alg, id, ch) = challenge(&mut c, "Normal", algs).await;
        let r = encode_hex(&alg.response(id, b"alicesecret12", &ch));
        let (flags, class, _, keys) = c.login(0x81, &[("CHAP_N", "alice"), ("CHAP_R", &r)]).await;
        assert_eq!((flags, class), (0x81, 0), "transit to operational after CHAP ({algs})");
        assert_eq!(get(&keys, "CHAP_N"), None);
        finish_operational(&mut c).await;
        let sessions = reg.target(1).unwrap().sessions();
        assert!(sessions.iter().any(|s| s.chap_user.as_deref() == Some("alice")), "{sessions:?}");
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn mutual_chap_proves_the_target() {
    let (srv, addr, _) = server().await;
    let mut c = Client::connect(addr).await;
    let (alg, id, ch) = challenge(&mut c, "Normal", "5").await;
    let r = encode_hex(&alg.response(id, b"alicesecret12", &ch));
    let mine: Vec<u8> = (100..132).collect();
    let k = [("CHAP_N", "alice"), ("CHAP_R", &r), ("CHAP_I", "9"), ("CHAP_C", &encode_hex(&mine))];
    let (flags, class, _, keys) = c.login(0x81, &k).await;
    assert_eq!((flags, class), (0x81, 0));
    assert_eq!(get(&keys, "CHAP_N"), Some("tgt"));
    let expected = encode_hex(&ChapAlgorithm::Md5.response(9, b"tgtsecret5678", &mine));
    assert_eq!(get(&keys, "CHAP_R"), Some(expected.as_str()));
    finish_operational(&mut c).await;

    // The same initiator challenge again is a replay; our own challenge sent back is reflection.
    for reflect in [false, true] {
        let mut c = Client::connect(addr).await;
        let (alg, id, ch) = challenge(&mut c, "Normal", "5").await;
        let r = encode_hex(&alg.response(id, b"alicesecret12", &ch));
        let cc = if reflect { encode_hex(&ch) } else { encode_hex(&mine) };
        let (_, class, detail, keys) =
            c.login(0x81, &[("CHAP_N", "alice"), ("CHAP_R", &r), ("CHAP_I", "9"), ("CHAP_C", &cc)]).await;
        assert_eq!((class, detail), (2, 1));
        assert_eq!(get(&keys, "CHAP_R"), None);
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn wrong_password_and_skipped_authentication_are_refused() {
    let (srv, addr, _) = server().await;
    let mut c = Client::connect(addr).await;
    let (alg, id, ch) = challenge(&mut c, "Normal", "5").await;
    let r = encode_hex(&alg.response(id, b"not-the-secret", &ch));
    assert_eq!(c.login(0x81, &[("CHAP_N", "alice"), ("CHAP_R", &r)]).await.1, 2);
    assert!(c.closed().await);

    // AuthMethod=None only, on a target that requires CHAP.
    let mut c = Client::connect(addr).await;
    let (_, class, detail, _) = c.login(0x81, &first_keys("Normal", "None")).await;
    assert_eq!((class, detail), (2, 1));
    // Straight to the operational stage.
    let mut c = Client::connect(addr).await;
    let mut k = first_keys("Normal", "None");
    k.retain(|(key, _)| *key != "AuthMethod");
    let (_, class, detail, _) = c.login(0x87, &k).await;
    assert_eq!((class, detail), (2, 1));
    // Leaving the security stage without ever negotiating.
    let mut c = Client::connect(addr).await;
    let (_, class, detail, _) = c.login(0x81, &k).await;
    assert_eq!((class, detail), (2, 1));
    srv.shutdown().await;
}

#[tokio::test]
async fn repeated_failures_are_delayed() {
    let (srv, addr, _) = server().await;
    let mut took = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(addr).await;
        let start = Instant::now();
        let (_, class, detail, _) = c.login(0x81, &first_keys("Normal", "None")).await;
        assert_eq!((class, detail), (2, 1));
        took.push(start.elapsed());
    }
    assert!(took[0] < Duration::from_millis(900), "{took:?}");
    assert!(took[1] >= Duration::from_secs(1), "{took:?}");
    assert!(took[2] >= Duration::from_secs(2), "{took:?}");
    srv.shutdown().await;
}

#[tokio::test]
async fn targets_without_accounts_use_none() {
    let (srv, addr, reg) = server().await;
    let mut c = Client::connect(addr).await;
    let mut k = first_keys("Normal", "CHAP,None");
    k.retain(|(key, _)| *key != "TargetName");
    k.push(("TargetName", OTHER));
    let (flags, class, _, keys) = c.login(0x81, &k).await;
    assert_eq!((flags, class), (0x81, 0));
    assert_eq!(get(&keys, "AuthMethod"), Some("None"));
    finish_operational(&mut c).await;
    let sessions = reg.target(2).unwrap().sessions();
    assert_eq!((sessions.len(), sessions[0].chap_user.as_deref()), (1, None));
    assert_eq!(sessions[0].params.initiator_max_recv_data_segment_length, 8192);
    // Unbinding the last incoming account lifts the requirement for later logins.
    reg.target(1).unwrap().unbind_account("alice", false).unwrap();
    let mut c = Client::connect(addr).await;
    let (flags, class, _, keys) = c.login(0x81, &first_keys("Normal", "CHAP,None")).await;
    assert_eq!((flags, class, get(&keys, "AuthMethod")), (0x81, 0, Some("None")));
    srv.shutdown().await;
}

#[tokio::test]
async fn discovery_chap_and_filtered_send_targets() {
    let (srv, addr, reg) = server().await;
    // OTHER admits only another initiator: it must not be listed to this one.
    let other = reg.target(2).unwrap();
    other.unbind(&AclRule::Any).unwrap();
    other.bind(AclRule::InitiatorName("iqn.2024-01.test:someone-else".into())).unwrap();
    reg.bind_discovery_account("alice", false).unwrap();
    let mut c = Client::connect(addr).await;
    let (_, class, detail, _) = c.login(0x81, &first_keys("Discovery", "None")).await;
    assert_eq!((class, detail), (2, 1), "discovery requires CHAP once an account is bound");
    let mut c = Client::connect(addr).await;
    let (alg, id, ch) = challenge(&mut c, "Discovery", "7").await;
    let r = encode_hex(&alg.response(id, b"alicesecret12", &ch));
    assert_eq!(c.login(0x81, &[("CHAP_N", "alice"), ("CHAP_R", &r)]).await.1, 0);
    finish_operational(&mut c).await;
    let listed = c.send_targets().await;
    let names: Vec<&str> = listed.iter().filter(|(k, _)| k == "TargetName").map(|(_, v)| v.as_str()).collect();
    assert_eq!(names, vec![TARGET]);
    srv.shutdown().await;
}

#[tokio::test]
async fn offline_refuses_new_logins_and_keeps_sessions() {
    let (srv, addr, reg) = server().await;
    let t = reg.target(2).unwrap();
    let mut other = first_keys("Normal", "None");
    other.retain(|(key, _)| *key != "TargetName");
    other.push(("TargetName", OTHER));
    let mut c = Client::connect(addr).await;
    assert_eq!(c.login(0x81, &other).await.1, 0);
    finish_operational(&mut c).await;
    reg.set_offline(true);
    let mut d = Client::connect(addr).await;
    let (_, class, detail, _) = d.login(0x81, &other).await;
    assert_eq!((class, detail), (3, 1), "service unavailable while offline");
    assert_eq!(t.sessions().len(), 1, "the session logged in before goes on");
    reg.set_offline(false);
    let mut d = Client::connect(addr).await;
    assert_eq!(d.login(0x81, &other).await.1, 0);

    // Forced logout: the session's connection closes and it leaves the target.
    let tsih = t.sessions()[0].tsih;
    assert!(t.close_connection(tsih, 0));
    assert!(c.closed().await);
    assert!(!t.close_session(tsih));
    assert!(t.sessions().is_empty());
    srv.shutdown().await;
}

#[tokio::test]
async fn close_session_and_unlisten() {
    let (srv, addr, reg) = server().await;
    let t = reg.target(2).unwrap();
    let mut other = first_keys("Normal", "None");
    other.retain(|(key, _)| *key != "TargetName");
    other.push(("TargetName", OTHER));
    let mut c = Client::connect(addr).await;
    assert_eq!(c.login(0x81, &other).await.1, 0);
    finish_operational(&mut c).await;
    let tsih = t.sessions()[0].tsih;
    assert!(t.close_session(tsih));
    assert!(c.closed().await);
    assert!(t.sessions().is_empty());

    let second = srv.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
    assert_eq!(srv.portals(), vec![addr, second]);
    assert!(srv.unlisten(addr));
    assert!(!srv.unlisten(addr));
    assert_eq!(srv.portals(), vec![second]);
    assert_eq!(reg.portals(), vec![second]);
    // The listener goes when its aborted task is dropped, a moment later.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(TcpStream::connect(addr).await.is_err(), "the closed portal refuses connections");
    let mut c = Client::connect(second).await;
    assert_eq!(c.login(0x81, &other).await.1, 0);
    srv.shutdown().await;
}
