//! The error every part of the command line returns: the option scanner and each mode.

/// A command-line mistake: what to print (one line naming the problem) and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub message: String,
    /// getopt-level mistakes are followed by tgt's "Try `tgtadm --help'" hint.
    pub hint: bool,
    pub exit_code: i32,
}

impl CliError {
    /// A getopt-level mistake: exit 22 with the help hint.
    pub fn usage(message: String) -> Self {
        CliError { message, hint: true, exit_code: 22 }
    }

    /// A missing or misplaced option: "tgtadm: ..." and exit 22 (EINVAL), as tgt.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        CliError { message: format!("tgtadm: {}", message.into()), hint: false, exit_code: 22 }
    }

    /// tgt exits 1 for an unknown mode or operation name.
    pub(crate) fn unknown(message: String) -> Self {
        CliError { message: format!("tgtadm: {message}"), hint: false, exit_code: 1 }
    }
}
