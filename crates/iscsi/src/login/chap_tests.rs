//! Unit tests of chap.rs: digests against vectors computed outside this code, value encodings, and
//! the exchange's paths (one-way, mutual, wrong answers, reflection, replay, sequence errors).

use super::*;

/// Reference values from Python's hashlib, for id 1, secret "password1234", challenge 00 01 .. 0f:
/// `hashlib.new(name, bytes([1]) + b"password1234" + bytes(range(16))).hexdigest()`.
#[test]
fn digests_match_reference_vectors() {
    let c: Vec<u8> = (0..16).collect();
    let hex = |a: ChapAlgorithm| encode_hex(&a.response(1, b"password1234", &c));
    assert_eq!(hex(ChapAlgorithm::Md5), "0x505c4d82ddc126f9dc1eecf8c9e2308d");
    assert_eq!(hex(ChapAlgorithm::Sha1), "0x128ed146b89b3a6aefb8a3652156f0e8688792f4");
    assert_eq!(hex(ChapAlgorithm::Sha256), "0x3525beee218596f5418902a215a697b6e0b7d25f91ff38c75260f8c2eab94df1");
    assert_eq!(hex(ChapAlgorithm::Sha3_256), "0x2ef22c6c052ea7225ecaff60cd29855d48335446303fdc8a00c84faf28429c57");
}

#[test]
fn binary_values_in_hex_and_base64() {
    let c: Vec<u8> = (0..16).collect();
    assert_eq!(decode_binary("0x000102030405060708090a0b0c0d0e0f"), Some(c.clone()));
    assert_eq!(decode_binary("0X000102030405060708090A0B0C0D0E0F"), Some(c.clone()));
    // base64.b64encode(bytes(range(16)))
    assert_eq!(decode_binary("0bAAECAwQFBgcICQoLDA0ODw=="), Some(c.clone()));
    assert_eq!(decode_binary("0BAAECAwQFBgcICQoLDA0ODw=="), Some(c));
    // An odd number of digits has an implied leading zero (RFC 7143 6.1).
    assert_eq!(decode_binary("0xabc"), Some(vec![0x0a, 0xbc]));
    for bad in ["", "0", "0x", "0b", "abcd", "0xg0", "0b!!!!", "1x00", "0x\u{e9}"] {
        assert_eq!(decode_binary(bad), None, "{bad:?}");
    }
    assert_eq!(encode_hex(&[0x00, 0xab, 0xff]), "0x00abff");
}

#[test]
fn identifiers() {
    assert_eq!(parse_identifier("0"), Some(0));
    assert_eq!(parse_identifier("255"), Some(255));
    assert_eq!(parse_identifier("0xff"), Some(255));
    for bad in ["256", "-1", "", "0x100", "1a", "0255x", "00000001"] {
        assert_eq!(parse_identifier(bad), None, "{bad:?}");
    }
}

struct Accounts(Vec<(&'static str, &'static str)>);

impl Secrets for Accounts {
    fn secret(&self, user: &str) -> Option<String> {
        self.0.iter().find(|(u, _)| *u == user).map(|(_, p)| p.to_string())
    }
}

fn setup() -> (BoundAccounts, Accounts, RecentChallenges) {
    let bound = BoundAccounts { incoming: vec!["alice".into()], outgoing: Some("tgt".into()) };
    let accounts = Accounts(vec![("alice", "alicesecret12"), ("tgt", "tgtsecret5678"), ("eve", "evesecret999")]);
    (bound, accounts, RecentChallenges::default())
}

fn keys(pairs: &[(&str, &str)]) -> ChapKeys {
    let mut k = ChapKeys::default();
    for (key, value) in pairs {
        assert!(k.take(key, value));
    }
    k
}

fn get<'a>(out: &'a [(String, String)], key: &str) -> &'a str {
    out.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap()
}

/// Start an exchange and return the server with the algorithm, identifier and challenge it chose.
fn challenged(
    offer: &str,
    ctx: &(BoundAccounts, Accounts, RecentChallenges),
) -> (ChapServer, ChapAlgorithm, u8, Vec<u8>) {
    let mut s = ChapServer::new();
    let out = s.step(&keys(&[("CHAP_A", offer)]), &ctx.0, &ctx.1, &ctx.2).unwrap();
    let alg = ChapAlgorithm::from_code(get(&out, "CHAP_A").parse().unwrap()).unwrap();
    let id: u8 = get(&out, "CHAP_I").parse().unwrap();
    let c = decode_binary(get(&out, "CHAP_C")).unwrap();
    assert!(CHALLENGE_LEN.contains(&c.len()));
    (s, alg, id, c)
}

#[test]
fn algorithm_follows_initiator_preference() {
    let ctx = setup();
    assert_eq!(challenged("8,7,6,5", &ctx).1, ChapAlgorithm::Sha3_256);
    assert_eq!(challenged("7,5", &ctx).1, ChapAlgorithm::Sha256);
    assert_eq!(challenged("99,6,5", &ctx).1, ChapAlgorithm::Sha1);
    assert_eq!(challenged("5", &ctx).1, ChapAlgorithm::Md5);
    let mut s = ChapServer::new();
    let e = s.step(&keys(&[("CHAP_A", "1,2,x")]), &ctx.0, &ctx.1, &ctx.2).unwrap_err();
    assert!(matches!(e, ChapError::NoCommonAlgorithm(_)));
}

#[test]
fn challenges_differ_between_logins() {
    let ctx = setup();
    let a = challenged("5", &ctx).3;
    let b = challenged("5", &ctx).3;
    assert_ne!(a, b);
}

#[test]
fn one_way_success_for_every_algorithm() {
    let ctx = setup();
    for offer in ["5", "6", "7", "8"] {
        let (mut s, alg, id, c) = challenged(offer, &ctx);
        let r = encode_hex(&alg.response(id, b"alicesecret12", &c));
        let out = s.step(&keys(&[("CHAP_N", "alice"), ("CHAP_R", &r)]), &ctx.0, &ctx.1, &ctx.2).unwrap();
        assert!(out.is_empty());
        assert!(s.is_done());
        assert_eq!(s.user(), Some("alice"));
    }
}

#[test]
fn base64_response_is_accepted() {
    let ctx = setup();
    let (mut s, alg, id, c) = challenged("7", &ctx);
    let r = base64::engine::general_purpose::STANDARD.encode(alg.response(id, b"alicesecret12", &c));
    s.step(&keys(&[("CHAP_N", "alice"), ("CHAP_R", &format!("0b{r}"))]), &ctx.0, &ctx.1, &ctx.2).unwrap();
    assert!(s.is_done());
}

#[test]
fn wrong_answers_are_refused() {
    let ctx = setup();
    let (mut s, alg, id, c) = challenged("5", &ctx);
    let r = encode_hex(&alg.response(id, b"wrongpassword", &c));
    let e = s.step(&keys(&[("CHAP_N", "alice"), ("CHAP_R", &r)]), &ctx.0, &ctx.1, &ctx.2).unwrap_err();
    assert_eq!(e, ChapError::WrongResponse("alice".into()));
    assert!(!s.is_done());
    // The failed exchange stays failed.
    assert!(s.step(&ChapKeys::default(), &ctx.0, &ctx.1, &ctx.2).is_err());

    // A right answer under the wrong identifier, or truncated, is still wrong.
    let (mut s, alg, id, c) = challenged("5", &ctx);
    let r = encode_hex(&alg.response(id.wrapping_add(1), b"alicesecret12", &c));
    assert!(s.step(&keys(&[("CHAP_N", "alice"), ("CHAP_R", &r)]), &ctx.0, &ctx.1, &ctx.2).is_err());
    let (mut s, alg, id, c) = challenged("5", &ctx);
    let r = encode_hex(&alg.response(id, b"alicesecret12", &c)[..15]);
    assert!(s.step(&keys(&[("CHAP_N", "alice"), ("CHAP_R", &r)]), &ctx.0, &ctx.1, &ctx.2).is_err());

    // An account that exists but is not bound to this target is unknown here.
    let (mut s, alg, id, c) = challenged("5", &ctx);
    let r = encode_hex(&alg.response(id, b"evesecret999", &c));
    let e = s.step(&keys(&[("CHAP_N", "eve"), ("CHAP_R", &r)]), &ctx.0, &ctx.1, &ctx.2).unwrap_err();
    assert_eq!(e, ChapError::UnknownUser("eve".into()));
    // Error texts never carry a secret or a response.
    assert!(!e.to_string().contains("evesecret999") && !e.to_string().contains(&r));
}

#[test]
fn mutual_chap_answers_with_the_outgoing_account() {
    let ctx = setup();
    let (mut s, alg, id, c) = challenged("5", &ctx);
    let r = encode_hex(&alg.response(id, b"alicesecret12", &c));
    let theirs = "0x".to_string() + &"aa".repeat(32);
    let k = keys(&[("CHAP_N", "alice"), ("CHAP_R", &r), ("CHAP_I", "255"), ("CHAP_C", &theirs)]);
    let out = s.step(&k, &ctx.0, &ctx.1, &ctx.2).unwrap();
    assert_eq!(get(&out, "CHAP_N"), "tgt");
    // hashlib.md5(bytes([0xff]) + b"tgtsecret5678" + bytes([0xaa] * 32)).hexdigest()
    assert_eq!(get(&out, "CHAP_R"), "0x77cfd2f220b31b6b1680054d1d13e90f");
    assert!(s.is_done());
}

#[test]
fn mutual_chap_refusals() {
    let ctx = setup();
    let answer = |s: &mut ChapServer, alg: ChapAlgorithm, id: u8, c: &[u8], i: &str, cc: &str| {
        let r = encode_hex(&alg.response(id, b"alicesecret12", c));
        s.step(&keys(&[("CHAP_N", "alice"), ("CHAP_R", &r), ("CHAP_I", i), ("CHAP_C", cc)]), &ctx.0, &ctx.1, &ctx.2)
    };
    // Reflection: our own challenge sent back.
    let (mut s, alg, id, c) = challenged("5", &ctx);
    assert_eq!(answer(&mut s, alg, id, &c, "1", &encode_hex(&c)), Err(ChapError::Reflection));
    // A challenge issued on another login is refused too (it is in the recent set).
    let (_, _, _, other) = challenged("5", &ctx);
    let (mut s, alg, id, c) = challenged("5", &ctx);
    assert_eq!(answer(&mut s, alg, id, &c, "1", &encode_hex(&other)), Err(ChapError::Reused));
    // Replay of an initiator challenge already answered.
    let fresh = "0x".to_string() + &"5c".repeat(16);
    let (mut s, alg, id, c) = challenged("5", &ctx);
    assert!(answer(&mut s, alg, id, &c, "1", &fresh).is_ok());
    let (mut s, alg, id, c) = challenged("5", &ctx);
    assert_eq!(answer(&mut s, alg, id, &c, "1", &fresh), Err(ChapError::Reused));
    // Half of the mutual keys, or malformed ones.
    let (mut s, alg, id, c) = challenged("5", &ctx);
    let r = encode_hex(&alg.response(id, b"alicesecret12", &c));
    let e = s.step(&keys(&[("CHAP_N", "alice"), ("CHAP_R", &r), ("CHAP_C", "0x0102")]), &ctx.0, &ctx.1, &ctx.2);
    assert_eq!(e, Err(ChapError::Missing("CHAP_I")));
    let (mut s, alg, id, c) = challenged("5", &ctx);
    assert_eq!(answer(&mut s, alg, id, &c, "300", "0x0102"), Err(ChapError::Malformed("CHAP_I")));
    // An initiator challenge past the bound.
    let (mut s, alg, id, c) = challenged("5", &ctx);
    let huge = encode_hex(&vec![7u8; MAX_INITIATOR_CHALLENGE + 1]);
    assert_eq!(answer(&mut s, alg, id, &c, "1", &huge), Err(ChapError::Malformed("CHAP_C")));
    // No outgoing account bound.
    let one_way =
        (BoundAccounts { incoming: vec!["alice".into()], outgoing: None }, setup().1, RecentChallenges::default());
    let (mut s, alg, id, c) = challenged("5", &one_way);
    let r = encode_hex(&alg.response(id, b"alicesecret12", &c));
    let k = keys(&[("CHAP_N", "alice"), ("CHAP_R", &r), ("CHAP_I", "3"), ("CHAP_C", "0x0a0b0c0d")]);
    assert_eq!(s.step(&k, &one_way.0, &one_way.1, &one_way.2), Err(ChapError::NoOutgoingAccount));
}

#[test]
fn keys_out_of_sequence() {
    let ctx = setup();
    let mut s = ChapServer::new();
    // An empty request while waiting for CHAP_A is fine; a response before the challenge is not.
    assert_eq!(s.step(&ChapKeys::default(), &ctx.0, &ctx.1, &ctx.2), Ok(Vec::new()));
    let e = s.step(&keys(&[("CHAP_N", "alice"), ("CHAP_R", "0x00")]), &ctx.0, &ctx.1, &ctx.2).unwrap_err();
    assert!(e.is_protocol_error());
    let (mut s, _, _, _) = challenged("5", &ctx);
    assert_eq!(s.step(&keys(&[("CHAP_A", "5")]), &ctx.0, &ctx.1, &ctx.2), Err(ChapError::OutOfSequence("CHAP_A")));
    let (mut s, _, _, _) = challenged("5", &ctx);
    assert_eq!(s.step(&keys(&[("CHAP_N", "alice")]), &ctx.0, &ctx.1, &ctx.2), Err(ChapError::Missing("CHAP_R")));
    let (mut s, _, _, _) = challenged("5", &ctx);
    let e = s.step(&keys(&[("CHAP_N", "alice"), ("CHAP_R", "zz")]), &ctx.0, &ctx.1, &ctx.2);
    assert_eq!(e, Err(ChapError::Malformed("CHAP_R")));
}

/// Arbitrary values never panic the decoders or the exchange (a seeded sweep; the fuzz targets of
/// issue 7 go further).
#[test]
fn arbitrary_values_never_panic() {
    use rand::{rngs::StdRng, SeedableRng};
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let alphabet: Vec<char> = "0xXbB=+/,abcdefABCDEF0123456789 \u{e9}\u{1F600}-".chars().collect();
    let ctx = setup();
    for _ in 0..2000 {
        let len = rng.random_range(0..40);
        let v: String = (0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
        let _ = decode_binary(&v);
        let _ = parse_identifier(&v);
        let mut s = ChapServer::new();
        let _ = s.step(&keys(&[("CHAP_A", &v)]), &ctx.0, &ctx.1, &ctx.2);
        let (mut s, _, _, _) = challenged("5", &ctx);
        let k = keys(&[("CHAP_N", &v), ("CHAP_R", &v), ("CHAP_I", &v), ("CHAP_C", &v)]);
        assert!(s.step(&k, &ctx.0, &ctx.1, &ctx.2).is_err());
    }
}
