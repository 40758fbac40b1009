//! What the iSCSI layer counts for monitoring: logins accepted and refused (by reason), CHAP
//! failures, digest errors, Reject PDUs, and connections closed because their socket took no
//! reply bytes for the send timeout. Each `IscsiTarget` holds one `IscsiCounters` for what
//! happens on its logins and connections; the `Registry` holds one more for what belongs to no
//! target (discovery sessions, logins that named no known target or failed before naming one).
//!
//! Every label value an exporter makes from these comes from the fixed sets below, never from what
//! an initiator sent, so a stream of logins to made-up target names adds to one counter instead of
//! creating series. These events are rare (per login, per protocol fault): plain relaxed atomics.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a login was refused: its login status (RFC 7143 11.13.5), or a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// 0x0200, and the statuses of class 2 not named below.
    InitiatorError,
    /// 0x0201: authentication failed (or no acceptable AuthMethod).
    Authentication,
    /// 0x0202: the target's access rules do not allow the initiator.
    Authorization,
    /// 0x0203: no target by that name.
    NotFound,
    /// 0x0205
    UnsupportedVersion,
    /// 0x0206: MaxConnections reached.
    TooManyConnections,
    /// 0x0207: InitiatorName or TargetName missing.
    MissingParameter,
    /// 0x020a: a TSIH naming no session.
    SessionDoesNotExist,
    /// 0x0301: the daemon or the target is offline.
    ServiceUnavailable,
    /// 0x0302: a session bound reached, or too much login text; other class 3 statuses too.
    OutOfResources,
    /// The login did not complete within the login timeout.
    Timeout,
}

impl LoginRefusal {
    pub const ALL: [LoginRefusal; 11] = [
        LoginRefusal::InitiatorError,
        LoginRefusal::Authentication,
        LoginRefusal::Authorization,
        LoginRefusal::NotFound,
        LoginRefusal::UnsupportedVersion,
        LoginRefusal::TooManyConnections,
        LoginRefusal::MissingParameter,
        LoginRefusal::SessionDoesNotExist,
        LoginRefusal::ServiceUnavailable,
        LoginRefusal::OutOfResources,
        LoginRefusal::Timeout,
    ];

    /// The refusal a login status (class, detail) stands for.
    pub fn from_status(class: u8, detail: u8) -> Self {
        match (class, detail) {
            (2, 0x01) => LoginRefusal::Authentication,
            (2, 0x02) => LoginRefusal::Authorization,
            (2, 0x03) => LoginRefusal::NotFound,
            (2, 0x05) => LoginRefusal::UnsupportedVersion,
            (2, 0x06) => LoginRefusal::TooManyConnections,
            (2, 0x07) => LoginRefusal::MissingParameter,
            (2, 0x0a) => LoginRefusal::SessionDoesNotExist,
            (3, 0x01) => LoginRefusal::ServiceUnavailable,
            (3, _) => LoginRefusal::OutOfResources,
            _ => LoginRefusal::InitiatorError,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LoginRefusal::InitiatorError => "initiator_error",
            LoginRefusal::Authentication => "authentication",
            LoginRefusal::Authorization => "authorization",
            LoginRefusal::NotFound => "not_found",
            LoginRefusal::UnsupportedVersion => "unsupported_version",
            LoginRefusal::TooManyConnections => "too_many_connections",
            LoginRefusal::MissingParameter => "missing_parameter",
            LoginRefusal::SessionDoesNotExist => "session_does_not_exist",
            LoginRefusal::ServiceUnavailable => "service_unavailable",
            LoginRefusal::OutOfResources => "out_of_resources",
            LoginRefusal::Timeout => "timeout",
        }
    }
}

/// The reasons of the Reject PDUs the target sends (RFC 7143 11.17.1).
pub const REJECT_REASONS: [(u8, &str); 5] = [
    (0x02, "data_digest"),
    (0x04, "protocol_error"),
    (0x05, "command_not_supported"),
    (0x07, "task_in_progress"),
    (0x09, "invalid_pdu_field"),
];

/// Which digest a PDU failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestKind {
    Header,
    Data,
}

#[derive(Debug, Default)]
pub struct IscsiCounters {
    logins_accepted: AtomicU64,
    logins_refused: [AtomicU64; LoginRefusal::ALL.len()],
    chap_failures: AtomicU64,
    /// Header, data.
    digest_errors: [AtomicU64; 2],
    /// Indexed as `REJECT_REASONS`.
    rejects: [AtomicU64; REJECT_REASONS.len()],
    send_timeouts: AtomicU64,
}

/// The counters as read at one moment (each exact; not all captured at one instant).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IscsiCountersSnapshot {
    pub logins_accepted: u64,
    /// Indexed as `LoginRefusal::ALL`.
    pub logins_refused: [u64; LoginRefusal::ALL.len()],
    pub chap_failures: u64,
    pub header_digest_errors: u64,
    pub data_digest_errors: u64,
    /// Indexed as `REJECT_REASONS`.
    pub rejects: [u64; REJECT_REASONS.len()],
    /// Connections closed because their socket accepted no bytes for the send timeout.
    pub send_timeouts: u64,
}

impl IscsiCounters {
    pub(crate) fn login_accepted(&self) {
        self.logins_accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn login_refused(&self, why: LoginRefusal) {
        let i = LoginRefusal::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.logins_refused[i].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn chap_failure(&self) {
        self.chap_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn digest_error(&self, kind: DigestKind) {
        self.digest_errors[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A Reject PDU sent with reason code `reason`; a code outside `REJECT_REASONS` is not counted
    /// (the target sends none).
    pub(crate) fn reject(&self, reason: u8) {
        if let Some(i) = REJECT_REASONS.iter().position(|(code, _)| *code == reason) {
            self.rejects[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection closed because its socket accepted no reply bytes for the send timeout.
    pub(crate) fn send_timeout(&self) {
        self.send_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> IscsiCountersSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        IscsiCountersSnapshot {
            logins_accepted: load(&self.logins_accepted),
            logins_refused: std::array::from_fn(|i| load(&self.logins_refused[i])),
            chap_failures: load(&self.chap_failures),
            header_digest_errors: load(&self.digest_errors[DigestKind::Header as usize]),
            data_digest_errors: load(&self.digest_errors[DigestKind::Data as usize]),
            rejects: std::array::from_fn(|i| load(&self.rejects[i])),
            send_timeouts: load(&self.send_timeouts),
        }
    }
}

impl IscsiCountersSnapshot {
    pub fn refused(&self, why: LoginRefusal) -> u64 {
        LoginRefusal::ALL.iter().position(|r| *r == why).map_or(0, |i| self.logins_refused[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_bounded_reasons() {
        assert_eq!(LoginRefusal::from_status(2, 0x01), LoginRefusal::Authentication);
        assert_eq!(LoginRefusal::from_status(2, 0x03), LoginRefusal::NotFound);
        assert_eq!(LoginRefusal::from_status(3, 0x02), LoginRefusal::OutOfResources);
        // Anything unexpected lands in a fixed bucket, never a new one.
        assert_eq!(LoginRefusal::from_status(2, 0x99), LoginRefusal::InitiatorError);
        assert_eq!(LoginRefusal::from_status(3, 0x99), LoginRefusal::OutOfResources);
        let mut names: Vec<_> = LoginRefusal::ALL.iter().map(|r| r.name()).collect();
        names.dedup();
        assert_eq!(names.len(), LoginRefusal::ALL.len());
    }

    #[test]
    fn counts_each_event() {
        let c = IscsiCounters::default();
        c.login_accepted();
        c.login_refused(LoginRefusal::Authentication);
        c.login_refused(LoginRefusal::Authentication);
        c.login_refused(LoginRefusal::Timeout);
        c.chap_failure();
        c.digest_error(DigestKind::Data);
        c.reject(0x04);
        c.reject(0x42);
        c.send_timeout();
        let s = c.snapshot();
        assert_eq!(s.logins_accepted, 1);
        assert_eq!(s.refused(LoginRefusal::Authentication), 2);
        assert_eq!(s.refused(LoginRefusal::Timeout), 1);
        assert_eq!(s.refused(LoginRefusal::NotFound), 0);
        assert_eq!((s.chap_failures, s.header_digest_errors, s.data_digest_errors), (1, 0, 1));
        assert_eq!(s.rejects, [0, 1, 0, 0, 0]);
        assert_eq!(s.send_timeouts, 1);
    }
}
