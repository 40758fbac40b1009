//! Logging through `tracing`: to stderr in the foreground, to syslog (facility daemon) otherwise.

use std::ffi::CString;
use std::io::Write;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter};

/// Install the global subscriber. `RUST_LOG` overrides the level chosen by `-d`.
pub fn init(foreground: bool, debug: u8) {
    let default = match debug {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // `tgtadm --mode system --op update --name debug --value on|off` swaps the filter at run time:
    // on is debug (trace under -dd), off is RUST_LOG or info.
    let off = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "info".to_string());
    let on = if debug >= 2 { "trace" } else { "debug" };
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    if foreground {
        registry.with(fmt::layer().with_target(false).with_writer(std::io::stderr)).init();
    } else {
        open_syslog();
        let layer = fmt::layer().with_target(false).with_ansi(false).without_time();
        registry.with(layer.with_writer(|| SyslogLine(Vec::new()))).init();
    }
    let switch = move |enable: bool| {
        let level = if enable { on } else { off.as_str() };
        handle.reload(EnvFilter::new(level)).map_err(|e| e.to_string())
    };
    rtgt_tgtd::control::install_debug_switch(Box::new(switch), debug > 0);
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
