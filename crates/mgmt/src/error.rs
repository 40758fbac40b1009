//! Errors the daemon reports, with the meanings (and texts) tgt's tgtadm gives them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a request failed. The set mirrors tgt's management error codes so that tgtadm can print the
/// texts scripts already know; `message` in [`MgmtError`] adds rtgt's detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Unknown,
    NoMemory,
    NoDriver,
    NoTarget,
    NoLun,
    NoSession,
    NoConnection,
    NoBinding,
    TargetExists,
    BindingExists,
    LunExists,
    AclExists,
    AclNotFound,
    UserExists,
    NoUser,
    TooManyUsers,
    InvalidRequest,
    OutgoingAccountExists,
    TargetActive,
    LunActive,
    DriverActive,
    Unsupported,
    UnknownParam,
    PreventRemoval,
    /// rtgt: the peer's user may not manage this daemon (control socket credentials).
    PermissionDenied,
}

impl ErrorCode {
    /// The sentence tgtadm prints after "tgtadm: " for this code.
    pub fn text(self) -> &'static str {
        match self {
            ErrorCode::Unknown => "unknown error",
            ErrorCode::NoMemory => "out of memory",
            ErrorCode::NoDriver => "can't find the driver",
            ErrorCode::NoTarget => "can't find the target",
            ErrorCode::NoLun => "can't find the logical unit",
            ErrorCode::NoSession => "can't find the session",
            ErrorCode::NoConnection => "can't find the connection",
            ErrorCode::NoBinding => "can't find the binding",
            ErrorCode::TargetExists => "this target already exists",
            ErrorCode::BindingExists => "this binding already exists",
            ErrorCode::LunExists => "this logical unit number already exists",
            ErrorCode::AclExists => "this access control rule already exists",
            ErrorCode::AclNotFound => "this access control rule does not exist",
            ErrorCode::UserExists => "this account already exists",
            ErrorCode::NoUser => "can't find the account",
            ErrorCode::TooManyUsers => "too many accounts",
            ErrorCode::InvalidRequest => "invalid request",
            ErrorCode::OutgoingAccountExists => "this target already has an outgoing account",
            ErrorCode::TargetActive => "this target is still active",
            ErrorCode::LunActive => "this logical unit is still active",
            ErrorCode::DriverActive => "this driver is busy",
            ErrorCode::Unsupported => "this operation isn't supported",
            ErrorCode::UnknownParam => "unknown parameter",
            ErrorCode::PreventRemoval => "this device has Prevent Removal set",
            ErrorCode::PermissionDenied => "permission denied",
        }
    }

    /// tgtadm's exit status for a daemon error: tgt 1.0.85 exits with EINVAL (22) for every error the
    /// daemon reports (measured: missing target, existing target, invalid request, active target).
    pub fn exit_code(self) -> i32 {
        22
    }
}

/// A failed request: tgt's code plus, optionally, what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct MgmtError {
    pub code: ErrorCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl MgmtError {
    pub fn new(code: ErrorCode) -> Self {
        MgmtError { code, message: None }
    }

    pub fn with_message(code: ErrorCode, message: impl Into<String>) -> Self {
        MgmtError { code, message: Some(message.into()) }
    }
}

impl From<ErrorCode> for MgmtError {
    fn from(code: ErrorCode) -> Self {
        MgmtError::new(code)
    }
}

impl fmt::Display for MgmtError {
    /// tgt's text first, so that scripts matching tgt's messages still match; the detail after it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(detail) if !detail.is_empty() => write!(f, "{}: {}", self.code.text(), detail),
            _ => f.write_str(self.code.text()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_keeps_tgt_text_first() {
        assert_eq!(MgmtError::new(ErrorCode::NoTarget).to_string(), "can't find the target");
        let e = MgmtError::with_message(ErrorCode::InvalidRequest, "the memory store needs size=");
        assert_eq!(e.to_string(), "invalid request: the memory store needs size=");
        assert_eq!(e.code.exit_code(), 22);
    }
}
