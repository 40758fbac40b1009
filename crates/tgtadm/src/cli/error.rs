//! The error every part of the command line returns: the option scanner and each mode.

/// A command-line mistake: what to print (one line naming the problem) and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    /// getopt-level mistakes are followed by tgt's "Try `tgtadm --help'" hint.
    pub hint: bool,
    pub exit_code: i32,
    /// A value refused before the request was sent: printed exactly as the daemon's refusal of it
    /// would be (tgt's line, rtgt's detail naming the option, the code's exit status).
    pub refusal: Option<rtgt_mgmt::MgmtError>,
}

impl CliError {
    /// A getopt-level mistake: exit 22 with the help hint.
    pub fn usage(message: String) -> Self {
        CliError { message, hint: true, exit_code: 22, refusal: None }
    }

    /// A missing or misplaced option: "tgtadm: ..." and exit 22 (EINVAL), as tgt.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        CliError { message: format!("tgtadm: {}", message.into()), hint: false, exit_code: 22, refusal: None }
    }

    /// A value the daemon would refuse, refused before the request is sent ("invalid request",
    /// then rtgt's detail naming the option; exit 22).
    pub(crate) fn invalid_request(detail: impl std::fmt::Display) -> Self {
        Self::refused(rtgt_mgmt::ErrorCode::InvalidRequest, detail)
    }

    /// As the daemon would refuse it with `code`.
    pub(crate) fn refused(code: rtgt_mgmt::ErrorCode, detail: impl std::fmt::Display) -> Self {
        let refusal = rtgt_mgmt::MgmtError::with_message(code, detail.to_string());
        CliError {
            message: format!("tgtadm: {}", code.text()),
            hint: false,
            exit_code: code.exit_code(),
            refusal: Some(refusal),
        }
    }

    /// tgt exits 1 for an unknown mode or operation name.
    pub(crate) fn unknown(message: String) -> Self {
        CliError { message: format!("tgtadm: {message}"), hint: false, exit_code: 1, refusal: None }
    }
}
