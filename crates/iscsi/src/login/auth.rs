//! The login's security stage (RFC 7143 6.3.1, 12.1): which AuthMethod is agreed, whether the login
//! may leave the stage, and the CHAP exchange when one runs. A target (or discovery, for discovery
//! sessions) with incoming accounts bound requires CHAP; one without offers only None, since it has
//! no secret to check a response against.

use crate::accounts::BoundAccounts;
use crate::login::chap::{ChapError, ChapKeys, ChapServer, Secrets};
use crate::registry::Registry;
use crate::text;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AuthError {
    #[error("AuthMethod={0} offers no method this target accepts (CHAP required: {1})")]
    NoCommonMethod(String, bool),
    #[error("AuthMethod negotiated twice")]
    Repeated,
    #[error("CHAP keys without AuthMethod=CHAP")]
    ChapNotAgreed,
    #[error("left the security stage without authenticating")]
    NotAuthenticated,
    #[error(transparent)]
    Chap(#[from] ChapError),
}

impl AuthError {
    /// Whether the initiator broke the protocol (0x0200) rather than failed to authenticate (0x0201).
    pub fn is_protocol_error(&self) -> bool {
        match self {
            AuthError::Repeated | AuthError::ChapNotAgreed => true,
            AuthError::Chap(c) => c.is_protocol_error(),
            _ => false,
        }
    }
}

#[derive(Debug)]
enum Method {
    /// Nothing agreed yet.
    Undecided,
    None,
    Chap(ChapServer),
}

#[derive(Debug)]
pub(crate) struct Security {
    method: Method,
    bound: BoundAccounts,
}

impl Secrets for Registry {
    fn secret(&self, user: &str) -> Option<String> {
        self.account(user).map(|a| a.password)
    }
}

impl Security {
    pub fn new() -> Self {
        Security { method: Method::Undecided, bound: BoundAccounts::default() }
    }

    /// The accounts of what is being logged in to, known once the first request is read.
    pub fn configure(&mut self, bound: BoundAccounts) {
        self.bound = bound;
    }

    pub fn required(&self) -> bool {
        self.bound.requires_chap()
    }

    /// Whether the login may leave the security stage.
    pub fn complete(&self) -> bool {
        match &self.method {
            Method::Undecided => !self.required(),
            Method::None => true,
            Method::Chap(c) => c.is_done(),
        }
    }

    /// A CHAP exchange has started and not finished: the target holds the login in this stage.
    pub fn in_progress(&self) -> bool {
        matches!(&self.method, Method::Chap(c) if !c.is_done())
    }

    /// CHAP was agreed (its exchange started, whether or not it completed).
    pub fn chap_agreed(&self) -> bool {
        matches!(&self.method, Method::Chap(_))
    }

    /// The user the initiator authenticated as, if it did.
    pub fn user(&self) -> Option<&str> {
        match &self.method {
            Method::Chap(c) => c.user(),
            _ => None,
        }
    }

    /// Answer AuthMethod (list negotiation, 6.2.1: the first of the initiator's values we accept).
    pub fn on_auth_method(&mut self, offer: &str, out: &mut Vec<u8>) -> Result<(), AuthError> {
        if !matches!(self.method, Method::Undecided) {
            return Err(AuthError::Repeated);
        }
        let accept = if self.required() { "CHAP" } else { "None" };
        if !offer.split(',').any(|m| m == accept) {
            return Err(AuthError::NoCommonMethod(offer.chars().take(64).collect(), self.required()));
        }
        text::push(out, "AuthMethod", accept);
        self.method = if self.required() { Method::Chap(ChapServer::new()) } else { Method::None };
        Ok(())
    }

    /// Feed the CHAP keys of one request.
    pub fn on_chap(&mut self, keys: &ChapKeys, registry: &Registry, out: &mut Vec<u8>) -> Result<(), AuthError> {
        let Method::Chap(chap) = &mut self.method else { return Err(AuthError::ChapNotAgreed) };
        for (k, v) in chap.step(keys, &self.bound, registry, &registry.recent_challenges)? {
            text::push(out, &k, &v);
        }
        Ok(())
    }
}
