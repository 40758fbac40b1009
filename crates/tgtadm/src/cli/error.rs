//! The error every part of the command line returns: the option scanner and each mode.

/// A command-line mistake: what to print (one line naming the problem) and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    /// getopt-level mistakes are followed by tgt's "Try `tgtadm --help'" hint.
    pub hint: bool,
    pub exit_code: i32,
    /// rtgt's detail under tgt's line (a value refused before the request was sent), as the
    /// daemon's refusals carry one.
    pub detail: Option<String>,
}

impl CliError {
    /// A getopt-level mistake: exit 22 with the help hint.
    pub fn usage(message: String) -> Self {
        CliError { message, hint: true, exit_code: 22, detail: None }
    }

    /// A missing or misplaced option: "tgtadm: ..." and exit 22 (EINVAL), as tgt.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        CliError { message: format!("tgtadm: {}", message.into()), hint: false, exit_code: 22, detail: None }
    }

    /// A value the daemon would refuse, refused before the request is sent: printed as a refusal
    /// from the daemon is (tgt's "invalid request", then rtgt's detail naming the option), exit 22.
    pub(crate) fn invalid_request(detail: impl std::fmt::Display) -> Self {
        let detail = Some(detail.to_string());
        CliError { message: "tgtadm: invalid request".into(), hint: false, exit_code: 22, detail }
    }

    /// tgt exits 1 for an unknown mode or operation name.
    pub(crate) fn unknown(message: String) -> Self {
        CliError { message: format!("tgtadm: {message}"), hint: false, exit_code: 1, detail: None }
    }
}
