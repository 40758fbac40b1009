//! Logging through `tracing`: to stderr in the foreground, to syslog (facility daemon) otherwise.

use std::ffi::CString;
use std::io::Write;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `RUST_LOG` overrides the level chosen by `-d`.
pub fn init(foreground: bool, debug: u8) {
    let default = match debug {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    if foreground {
        builder.with_writer(std::io::stderr).init();
    } else {
        open_syslog();
        builder.with_ansi(false).without_time().with_writer(|| SyslogLine(Vec::new())).init();
    }
}

fn open_syslog() {
    // openlog keeps the pointer: the identity must live for the whole process.
    static IDENT: &[u8] = b"tgtd\0";
    // SAFETY: IDENT is a NUL-terminated static string; openlog only stores the pointer.
    unsafe { libc::openlog(IDENT.as_ptr().cast(), libc::LOG_PID, libc::LOG_DAEMON) };
}

/// Collects one formatted event and hands it to syslog when dropped.
struct SyslogLine(Vec<u8>);

impl Write for SyslogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0).trim_end().replace('\0', " ");
        if text.is_empty() {
            return;
        }
        let priority = if text.contains("ERROR") {
            libc::LOG_ERR
        } else if text.contains("WARN") {
            libc::LOG_WARNING
        } else {
            libc::LOG_INFO
        };
        if let Ok(line) = CString::new(text) {
            // SAFETY: both strings are NUL-terminated; "%s" makes syslog treat the line as data.
            unsafe { libc::syslog(priority, c"%s".as_ptr(), line.as_ptr()) };
        }
    }
}
