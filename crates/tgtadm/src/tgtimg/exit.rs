//! How tgtimg ends: an exit status, after the message it printed (a leaf both the command and
//! `show` use).

/// tgtimg's exit status.
pub(super) struct Exit(pub(super) u8);

/// Print `message` as tgtimg's error and end with `status`.
pub(super) fn fail(message: &str, status: u8) -> Exit {
    eprintln!("tgtimg: {message}");
    Exit(status)
}
