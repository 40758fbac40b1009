//! Entry points for the fuzz targets in the repository's `fuzz/` crate. Not an API: hidden from the
//! docs and free to change. Each one drives a parser or state machine with arbitrary bytes the way a
//! connection would, without a socket, and checks properties that must hold for any input (a
//! decoded PDU encodes back to the same bytes, negotiated values stay in their RFC ranges). A panic
//! is a bug, either in the code under test or in a property stated here.

mod full_feature;

pub use full_feature::full_feature;

use crate::accounts::BoundAccounts;
use crate::login::auth_guard::RecentChallenges;
use crate::login::chap::{decode_binary, encode_hex, parse_identifier, ChapAlgorithm, ChapKeys, ChapServer, Secrets};
use crate::login::negotiate::Negotiation;
use crate::login::{login_steps, ConnCtx, LOGIN_DATA_LIMIT};
use crate::params::{TargetParams, MAX_SEGMENT};
use crate::pdu::{encode_pdu, Pdu, PduError, PduReader};
use crate::registry::{IscsiTarget, Registry};
use crate::session::ConnControl;
use crate::text;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};

/// Poll a future that never waits: reading PDUs from a byte slice completes at once.
fn now<F: Future>(f: F) -> F::Output {
    match pin!(f).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("a PDU read from memory waited"),
    }
}

/// Read every PDU of `data` (a byte stream from an initiator); the first byte picks the digests and
/// the data segment limit. Every PDU read must encode back to the bytes it was read from.
pub fn pdu_stream(data: &[u8]) {
    let Some((&mode, stream)) = data.split_first() else { return };
    let header_digest = mode & 1 != 0;
    let data_digest = mode & 2 != 0;
    let limit = if mode & 4 != 0 { LOGIN_DATA_LIMIT } else { MAX_SEGMENT };
    let mut reader = PduReader::new(stream, limit);
    reader.header_digest = header_digest;
    reader.data_digest = data_digest;
    loop {
        let pdu = match now(reader.read_pdu()) {
            Ok(pdu) => pdu,
            Err(PduError::UnknownOpcode(_)) => unreachable!("read_pdu accepts every opcode"),
            Err(_) => return,
        };
        assert!(pdu.data.len() as u64 <= u64::from(limit));
        assert_eq!(pdu.data.len(), pdu.bhs.data_segment_len() as usize);
        assert_eq!(pdu.ahs.len(), pdu.bhs.ahs_len());
        let _ = pdu.bhs.opcode();
        let mut wire = Vec::new();
        encode_pdu(&mut wire, &pdu.bhs, &pdu.ahs, &pdu.data, header_digest, data_digest);
        let mut again = PduReader::new(&wire[..], limit);
        again.header_digest = header_digest;
        again.data_digest = data_digest;
        let back = now(again.read_pdu()).expect("an encoded PDU reads back");
        assert_eq!((&back.bhs, &back.ahs, &back.data[..]), (&pdu.bhs, &pdu.ahs, &pdu.data[..]));
    }
}

/// Parse `data` as a Login/Text data segment and negotiate every key it offers (the first byte
/// chooses a normal or a discovery session). Parsed text must encode back to the same pairs, and the
/// negotiated parameters must stay within the ranges of RFC 7143 section 13.
pub fn text_negotiation(data: &[u8]) {
    let Some((&mode, text_bytes)) = data.split_first() else { return };
    let Ok(pairs) = text::parse(text_bytes) else { return };
    assert_eq!(text::parse(&text::encode(&pairs)).as_ref(), Ok(&pairs));
    let offer = TargetParams::default();
    let mut neg = Negotiation::new(offer.clone(), mode & 1 != 0);
    for (k, v) in &pairs {
        if let Ok(Some((key, value))) = neg.negotiate(k, v) {
            assert_eq!(&key, k);
            assert!(value.len() <= text::MAX_VALUE_LEN);
        }
    }
    let p = neg.finish();
    assert!((512..=MAX_SEGMENT).contains(&p.initiator_max_recv_data_segment_length));
    assert!((512..=offer.max_burst_length).contains(&p.max_burst_length));
    assert!(p.first_burst_length <= p.max_burst_length);
    assert!((1..=offer.max_outstanding_r2t.max(1)).contains(&p.max_outstanding_r2t));
    assert!((1..=offer.max_connections.max(1)).contains(&p.max_connections));
    assert!(p.error_recovery_level <= 2 && p.default_time2wait <= 3600 && p.default_time2retain <= 3600);
}

/// The accounts the CHAP fuzz target authenticates against.
struct FuzzSecrets;

impl Secrets for FuzzSecrets {
    fn secret(&self, user: &str) -> Option<String> {
        match user {
            "alice" => Some("alicesecret12".into()),
            "tgt" => Some("tgtsecret5678".into()),
            _ => None,
        }
    }
}

/// A CHAP exchange fed arbitrary requests: `data` holds text-key requests separated by 0xff bytes.
/// A CHAP_R value of `auto` is replaced by the right response to the target's last challenge for
/// the CHAP_N user (so that the fuzzer reaches the mutual and the completed states, which need an
/// answer it could never guess). The first byte chooses whether an outgoing account is bound.
pub fn chap_exchange(data: &[u8]) {
    let Some((&mode, requests)) = data.split_first() else { return };
    let bound = BoundAccounts { incoming: vec!["alice".into()], outgoing: (mode & 1 != 0).then(|| "tgt".to_string()) };
    let recent = RecentChallenges::default();
    let mut server = ChapServer::new();
    let mut challenge: Option<(ChapAlgorithm, u8, Vec<u8>)> = None;
    for request in requests.split(|&b| b == 0xff) {
        let Ok(pairs) = text::parse(request) else { continue };
        let mut keys = ChapKeys::default();
        for (k, v) in &pairs {
            let v = match (k.as_str(), v.as_str(), &challenge) {
                ("CHAP_R", "auto", Some((alg, id, c))) => {
                    let user = pairs.iter().find(|(k, _)| k == "CHAP_N").map(|(_, v)| v.as_str());
                    let secret = user.and_then(|u| FuzzSecrets.secret(u)).unwrap_or_default();
                    encode_hex(&alg.response(*id, secret.as_bytes(), c))
                }
                _ => v.clone(),
            };
            keys.take(k, &v);
        }
        let was_done = server.is_done();
        match server.step(&keys, &bound, &FuzzSecrets, &recent) {
            Ok(out) => {
                let get = |key: &str| out.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
                if let (Some(a), Some(i), Some(c)) = (get("CHAP_A"), get("CHAP_I"), get("CHAP_C")) {
                    let alg = a.parse().ok().and_then(ChapAlgorithm::from_code).expect("our CHAP_A is valid");
                    let id = parse_identifier(i).expect("our CHAP_I is valid");
                    challenge = Some((alg, id, decode_binary(c).expect("our CHAP_C is valid")));
                }
                // A mutual answer is our outgoing user and a response of the algorithm's length.
                if let (Some(n), Some(r)) = (get("CHAP_N"), get("CHAP_R")) {
                    assert_eq!(Some(n), bound.outgoing.as_deref());
                    let (alg, _, _) = challenge.as_ref().expect("answered after a challenge");
                    assert_eq!(decode_binary(r).map(|r| r.len()), Some(alg.response(0, b"", b"").len()));
                }
                // Only a response computed with alice's secret completes the exchange.
                if server.is_done() && !was_done {
                    assert_eq!(server.user(), Some("alice"));
                }
            }
            Err(_) => assert!(!server.is_done()),
        }
    }
}

/// The registry every login fuzz run logs in to: a target without accounts, one that requires
/// CHAP, and a discovery side with no accounts. Built once; sessions are ended after each run.
fn login_registry() -> &'static Arc<Registry> {
    static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Registry::new();
        let open = IscsiTarget::new(rtgt_scsi::Target::new(1, "iqn.2024-01.org.rtgt:open".into()));
        let chap = IscsiTarget::new(rtgt_scsi::Target::new(2, "iqn.2024-01.org.rtgt:chap".into()));
        registry.add_target(open.clone()).expect("first target");
        registry.add_target(chap.clone()).expect("second target");
        open.bind(crate::AclRule::Any).expect("bind");
        chap.bind(crate::AclRule::Any).expect("bind");
        registry.add_account("alice", "alicesecret12").expect("account");
        chap.bind_account("alice", false).expect("bind account");
        registry
    })
}

/// Run a login over the PDUs in `data` (an initiator's byte stream, framed as on the wire).
/// Returns each request's outcome (status class and detail; 0, 0 when the step was accepted).
pub fn login(data: &[u8]) -> Vec<(u8, u8)> {
    let mut reader = PduReader::new(data, LOGIN_DATA_LIMIT);
    let mut pdus: Vec<Pdu> = Vec::new();
    while let Ok(pdu) = now(reader.read_pdu()) {
        pdus.push(pdu);
    }
    let ctx = ConnCtx {
        registry: login_registry().clone(),
        local: "127.0.0.1:3260".parse().expect("address"),
        peer: "127.0.0.1:40000".parse().expect("address"),
        conn_id: 1,
        control: Arc::new(ConnControl::default()),
    };
    let outcomes = login_steps(&pdus, &ctx);
    for t in ctx.registry.targets() {
        assert!(t.sessions().is_empty(), "a fuzzed login left a session behind");
    }
    outcomes
}
