//! CHAP in the login's security stage (RFC 7143 12.1.3 on RFC 1994): the algorithm choice (CHAP_A:
//! MD5 5, SHA-1 6, SHA-256 7, SHA3-256 8, in the initiator's order of preference), a random challenge
//! and identifier per login, the check of the initiator's CHAP_N/CHAP_R against the target's incoming
//! accounts in constant time, and for mutual CHAP the target's own CHAP_N/CHAP_R from its outgoing
//! account — refused when the initiator's challenge reflects ours or repeats a recent one. Binary
//! values travel as 0x (hex) or 0b (base64) constants (RFC 7143 6.1).
//!
//! The state machine here is pure (no socket): login.rs feeds it the keys and sends what it returns.

use crate::accounts::BoundAccounts;
use crate::login::auth_guard::RecentChallenges;
use base64::Engine;
use rand::{Rng, RngCore};
use sha2::Digest;
use subtle::ConstantTimeEq;

/// Our challenge length is drawn from this range for every login.
const CHALLENGE_LEN: std::ops::RangeInclusive<usize> = 16..=32;
/// The longest initiator challenge accepted (open-iscsi and libiscsi send 16 to 32 bytes).
const MAX_INITIATOR_CHALLENGE: usize = 1024;

/// CHAP_A values (RFC 7143 12.1.3; 6-8 registered with IANA and offered by Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChapAlgorithm {
    Md5 = 5,
    Sha1 = 6,
    Sha256 = 7,
    Sha3_256 = 8,
}

fn hash<D: Digest>(id: u8, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
    let mut d = D::new();
    d.update([id]);
    d.update(secret);
    d.update(challenge);
    d.finalize().to_vec()
}

impl ChapAlgorithm {
    pub fn from_code(code: u32) -> Option<Self> {
        match code {
            5 => Some(ChapAlgorithm::Md5),
            6 => Some(ChapAlgorithm::Sha1),
            7 => Some(ChapAlgorithm::Sha256),
            8 => Some(ChapAlgorithm::Sha3_256),
            _ => None,
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }

    /// RFC 1994 4.1: the response is the hash of the identifier, the secret and the challenge.
    pub fn response(self, id: u8, secret: &[u8], challenge: &[u8]) -> Vec<u8> {
        match self {
            ChapAlgorithm::Md5 => hash::<md5::Md5>(id, secret, challenge),
            ChapAlgorithm::Sha1 => hash::<sha1::Sha1>(id, secret, challenge),
            ChapAlgorithm::Sha256 => hash::<sha2::Sha256>(id, secret, challenge),
            ChapAlgorithm::Sha3_256 => hash::<sha3::Sha3_256>(id, secret, challenge),
        }
    }
}

/// Why a CHAP exchange failed. The text names no secret and no response value, so it may be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChapError {
    #[error("no CHAP algorithm in common (offered {0})")]
    NoCommonAlgorithm(String),
    #[error("CHAP key {0} out of sequence")]
    OutOfSequence(&'static str),
    #[error("CHAP key {0} missing")]
    Missing(&'static str),
    #[error("CHAP key {0} has a malformed value")]
    Malformed(&'static str),
    #[error("unknown CHAP user {0:?}")]
    UnknownUser(String),
    #[error("wrong CHAP response for user {0:?}")]
    WrongResponse(String),
    #[error("mutual CHAP asked but the target has no outgoing account")]
    NoOutgoingAccount,
    #[error("initiator challenge reflects the target's")]
    Reflection,
    #[error("initiator challenge reused")]
    Reused,
}

impl ChapError {
    /// Malformed or misplaced keys are the initiator's protocol error (0x0200); the rest are
    /// authentication failures (0x0201).
    pub fn is_protocol_error(&self) -> bool {
        matches!(self, ChapError::OutOfSequence(_) | ChapError::Missing(_) | ChapError::Malformed(_))
    }
}

/// Decode a binary value: `0x`/`0X` hex (an odd digit count has an implied leading zero) or
/// `0b`/`0B` base64 (RFC 7143 6.1).
pub fn decode_binary(v: &str) -> Option<Vec<u8>> {
    let (prefix, body) = (v.get(..2)?, v.get(2..)?);
    match prefix {
        "0x" | "0X" => {
            if body.is_empty() || !body.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let padded = if body.len() % 2 == 1 { format!("0{body}") } else { body.to_string() };
            (0..padded.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&padded[i..i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
        }
        "0b" | "0B" => base64::engine::general_purpose::STANDARD.decode(body).ok().filter(|b| !b.is_empty()),
        _ => None,
    }
}

/// Encode as a `0x` hex constant (what every initiator parses; libiscsi parses only this form).
pub fn encode_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// CHAP_I: a number 0-255, decimal or 0x hex.
pub fn parse_identifier(v: &str) -> Option<u8> {
    let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u32::from_str_radix(h, 16).ok()?
    } else if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && v.len() <= 3 {
        v.parse().ok()?
    } else {
        return None;
    };
    u8::try_from(n).ok()
}

/// The CHAP keys one login request carried.
#[derive(Debug, Default, Clone)]
pub(crate) struct ChapKeys {
    pub a: Option<String>,
    pub n: Option<String>,
    pub r: Option<String>,
    pub i: Option<String>,
    pub c: Option<String>,
}

impl ChapKeys {
    /// Take a key if it is a CHAP key; false otherwise.
    pub fn take(&mut self, key: &str, value: &str) -> bool {
        let slot = match key {
            "CHAP_A" => &mut self.a,
            "CHAP_N" => &mut self.n,
            "CHAP_R" => &mut self.r,
            "CHAP_I" => &mut self.i,
            "CHAP_C" => &mut self.c,
            _ => return false,
        };
        *slot = Some(value.to_string());
        true
    }

    pub fn is_empty(&self) -> bool {
        self.a.is_none() && self.n.is_none() && self.r.is_none() && self.i.is_none() && self.c.is_none()
    }
}

/// Where the exchange stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// AuthMethod=CHAP agreed, waiting for CHAP_A.
    AwaitAlgorithm,
    /// Challenge sent, waiting for CHAP_N/CHAP_R.
    Challenged {
        alg: ChapAlgorithm,
        id: u8,
        challenge: Vec<u8>,
    },
    /// The initiator proved itself (and the target answered, for mutual CHAP).
    Done {
        user: String,
    },
    Failed,
}

/// The lookups CHAP needs from the registry.
pub(crate) trait Secrets {
    fn secret(&self, user: &str) -> Option<String>;
}

/// One login's CHAP exchange (target side).
#[derive(Debug)]
pub(crate) struct ChapServer {
    state: State,
}

impl ChapServer {
    /// Start once AuthMethod=CHAP has been answered.
    pub fn new() -> Self {
        ChapServer { state: State::AwaitAlgorithm }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }

    /// The authenticated user, once done.
    pub fn user(&self) -> Option<&str> {
        match &self.state {
            State::Done { user } => Some(user),
            _ => None,
        }
    }

    /// Feed one request's CHAP keys; returns the keys to answer with.
    pub fn step(
        &mut self,
        keys: &ChapKeys,
        bound: &BoundAccounts,
        secrets: &dyn Secrets,
        recent: &RecentChallenges,
    ) -> Result<Vec<(String, String)>, ChapError> {
        let r = self.step_inner(keys, bound, secrets, recent);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn step_inner(
        &mut self,
        keys: &ChapKeys,
        bound: &BoundAccounts,
        secrets: &dyn Secrets,
        recent: &RecentChallenges,
    ) -> Result<Vec<(String, String)>, ChapError> {
        match std::mem::replace(&mut self.state, State::Failed) {
            State::AwaitAlgorithm => {
                if keys.n.is_some() || keys.r.is_some() || keys.i.is_some() || keys.c.is_some() {
                    return Err(ChapError::OutOfSequence("CHAP_N/CHAP_R/CHAP_I/CHAP_C"));
                }
                let Some(offer) = &keys.a else {
                    // An empty request while we wait is harmless: stay.
                    self.state = State::AwaitAlgorithm;
                    return Ok(Vec::new());
                };
                let alg = offer
                    .split(',')
                    .filter_map(|a| a.trim().parse::<u32>().ok())
                    .find_map(ChapAlgorithm::from_code)
                    .ok_or_else(|| ChapError::NoCommonAlgorithm(offer.chars().take(64).collect()))?;
                let mut rng = rand::rng();
                let mut challenge = vec![0u8; rng.random_range(CHALLENGE_LEN)];
                rng.fill_bytes(&mut challenge);
                let id: u8 = rng.random();
                recent.remember(&challenge);
                let out = vec![
                    ("CHAP_A".to_string(), alg.code().to_string()),
                    ("CHAP_I".to_string(), id.to_string()),
                    ("CHAP_C".to_string(), encode_hex(&challenge)),
                ];
                self.state = State::Challenged { alg, id, challenge };
                Ok(out)
            }
            State::Challenged { alg, id, challenge } => {
                if keys.a.is_some() {
                    return Err(ChapError::OutOfSequence("CHAP_A"));
                }
                let user = keys.n.clone().ok_or(ChapError::Missing("CHAP_N"))?;
                let r = keys.r.as_deref().ok_or(ChapError::Missing("CHAP_R"))?;
                let r = decode_binary(r).ok_or(ChapError::Malformed("CHAP_R"))?;
                verify(alg, id, &challenge, &user, &r, bound, secrets)?;
                let answer = match (&keys.i, &keys.c) {
                    (None, None) => Vec::new(),
                    (Some(i), Some(c)) => {
                        let answer = mutual(alg, i, c, &challenge, bound, secrets, recent)?;
                        warn_if_same_secret(&user, bound, secrets);
                        answer
                    }
                    (None, Some(_)) => return Err(ChapError::Missing("CHAP_I")),
                    (Some(_), None) => return Err(ChapError::Missing("CHAP_C")),
                };
                self.state = State::Done { user };
                Ok(answer)
            }
            State::Done { user } => {
                self.state = State::Done { user };
                if keys.is_empty() {
                    Ok(Vec::new())
                } else {
                    Err(ChapError::OutOfSequence("CHAP key after authentication"))
                }
            }
            State::Failed => Err(ChapError::OutOfSequence("CHAP key after failure")),
        }
    }
}

/// Check the initiator's response against every incoming account named CHAP_N, in constant time.
/// An unknown user still costs one hash so that timing does not tell which names exist.
fn verify(
    alg: ChapAlgorithm,
    id: u8,
    challenge: &[u8],
    user: &str,
    response: &[u8],
    bound: &BoundAccounts,
    secrets: &dyn Secrets,
) -> Result<(), ChapError> {
    let secret = if bound.incoming.iter().any(|u| u == user) { secrets.secret(user) } else { None };
    let known = secret.is_some();
    let secret = secret.unwrap_or_else(|| {
        let mut dummy = [0u8; 16];
        rand::rng().fill_bytes(&mut dummy);
        encode_hex(&dummy)
    });
    let expected = alg.response(id, secret.as_bytes(), challenge);
    let matches: bool = expected.ct_eq(response).into();
    match (known, matches) {
        (true, true) => Ok(()),
        (false, _) => Err(ChapError::UnknownUser(user.chars().take(64).collect())),
        (true, false) => Err(ChapError::WrongResponse(user.chars().take(64).collect())),
    }
}

/// Answer the initiator's challenge with the outgoing account (mutual CHAP, RFC 7143 12.1.3).
fn mutual(
    alg: ChapAlgorithm,
    i: &str,
    c: &str,
    ours: &[u8],
    bound: &BoundAccounts,
    secrets: &dyn Secrets,
    recent: &RecentChallenges,
) -> Result<Vec<(String, String)>, ChapError> {
    let id = parse_identifier(i).ok_or(ChapError::Malformed("CHAP_I"))?;
    let theirs = decode_binary(c).ok_or(ChapError::Malformed("CHAP_C"))?;
    if theirs.len() > MAX_INITIATOR_CHALLENGE {
        return Err(ChapError::Malformed("CHAP_C"));
    }
    // 12.1.3: a challenge equal to the one we sent would make us compute the very response an
    // attacker needs; one we issued or answered recently (on any connection) likewise.
    if theirs == ours {
        return Err(ChapError::Reflection);
    }
    if !recent.remember(&theirs) {
        return Err(ChapError::Reused);
    }
    let user = bound.outgoing.clone().ok_or(ChapError::NoOutgoingAccount)?;
    let secret = secrets.secret(&user).ok_or(ChapError::NoOutgoingAccount)?;
    let r = alg.response(id, secret.as_bytes(), &theirs);
    Ok(vec![("CHAP_N".to_string(), user), ("CHAP_R".to_string(), encode_hex(&r))])
}

/// RFC 7143 12.1.3 forbids one secret for both directions (a captured exchange would then serve
/// either way). tgt accepts such a configuration, so it is reported rather than refused.
fn warn_if_same_secret(user: &str, bound: &BoundAccounts, secrets: &dyn Secrets) {
    let Some(out) = bound.outgoing.as_deref() else { return };
    if let (Some(a), Some(b)) = (secrets.secret(user), secrets.secret(out)) {
        if bool::from(a.as_bytes().ct_eq(b.as_bytes())) {
            tracing::warn!(user, outgoing = out, "incoming and outgoing CHAP accounts share one secret");
        }
    }
}

#[cfg(test)]
#[path = "chap_tests.rs"]
mod tests;
