//! The state of one login in progress: what the requests so far declared and negotiated, the
//! connection it runs on, and the login status (class, detail) it fails with.

use crate::login::auth::Security;
use crate::login::negotiate::Negotiation;
use crate::registry::{IscsiTarget, Registry};
use crate::session::{ConnControl, Session, SessionType};
use std::net::SocketAddr;
use std::sync::Arc;

pub(super) const STAGE_SECURITY: u8 = 0;
pub(super) const STAGE_OPERATIONAL: u8 = 1;
pub(super) const STAGE_FULL_FEATURE: u8 = 3;

/// Login status (class, detail), RFC 7143 11.13.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LoginStatus(pub u8, pub u8);

impl LoginStatus {
    pub const INITIATOR_ERROR: LoginStatus = LoginStatus(2, 0x00);
    pub const AUTH_FAILURE: LoginStatus = LoginStatus(2, 0x01);
    pub const AUTHORIZATION_FAILURE: LoginStatus = LoginStatus(2, 0x02);
    pub const NOT_FOUND: LoginStatus = LoginStatus(2, 0x03);
    pub const UNSUPPORTED_VERSION: LoginStatus = LoginStatus(2, 0x05);
    pub const TOO_MANY_CONNECTIONS: LoginStatus = LoginStatus(2, 0x06);
    pub const MISSING_PARAMETER: LoginStatus = LoginStatus(2, 0x07);
    pub const SESSION_DOES_NOT_EXIST: LoginStatus = LoginStatus(2, 0x0a);
    /// The system or the target is offline (tgtadm State=offline / target state offline).
    pub const SERVICE_UNAVAILABLE: LoginStatus = LoginStatus(3, 0x01);
    /// More login text than the target keeps (text::MAX_TEXT_LEN, text::MAX_PAIRS), or the daemon's
    /// or the target's bound on sessions is reached (max_sessions / MaxSessions).
    pub const OUT_OF_RESOURCES: LoginStatus = LoginStatus(3, 0x02);
}

/// What a connection knows about itself when it starts.
pub(crate) struct ConnCtx {
    pub registry: Arc<Registry>,
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub conn_id: u64,
    pub control: Arc<ConnControl>,
}

pub(super) struct Login {
    pub(super) first: bool,
    pub(super) isid: [u8; 6],
    pub(super) tsih: u16,
    pub(super) cid: u16,
    pub(super) itt: u32,
    pub(super) cmd_sn: u32,
    pub(super) stat_sn: u32,
    pub(super) stage: u8,
    pub(super) initiator_name: Option<String>,
    pub(super) kind: SessionType,
    pub(super) target: Option<Arc<IscsiTarget>>,
    /// The target the login named, once found: a refusal after that (ACL, CHAP, offline, bounds)
    /// is counted against it.
    pub(super) named_target: Option<Arc<IscsiTarget>>,
    /// A CHAP exchange was agreed and failed.
    pub(super) chap_failed: bool,
    /// The session this connection joins (TSIH != 0).
    pub(super) joining: Option<Arc<Session>>,
    pub(super) neg: Negotiation,
    pub(super) declared_mrdsl: bool,
    pub(super) sent_tpgt: bool,
    pub(super) partial: Vec<u8>,
    pub(super) security: Security,
}

impl Login {
    pub(super) fn new() -> Self {
        Login {
            first: true,
            isid: [0; 6],
            tsih: 0,
            cid: 0,
            itt: 0,
            cmd_sn: 0,
            stat_sn: 0,
            stage: STAGE_SECURITY,
            initiator_name: None,
            kind: SessionType::Normal,
            target: None,
            named_target: None,
            chap_failed: false,
            joining: None,
            neg: Negotiation::new(Default::default(), false),
            declared_mrdsl: false,
            sent_tpgt: false,
            partial: Vec::new(),
            security: Security::new(),
        }
    }
}
