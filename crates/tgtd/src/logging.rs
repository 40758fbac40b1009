//! Logging through `tracing`. Where the lines go decides how they look:
//!
//! - foreground (`-f`) on a terminal: coloured, timestamped lines on stderr;
//! - foreground with stderr to a file or pipe: the same lines without ANSI colour codes;
//! - foreground under systemd (stderr is the journal stream `JOURNAL_STREAM` names): each line
//!   starts with its syslog priority as `<N>` (the sd-daemon convention journald reads), without
//!   a timestamp (journald stamps lines itself) or colour;
//! - daemonized: syslog, facility daemon, the priority from the event's level.
//!
//! `RUST_LOG` (an `EnvFilter` directive such as `debug` or `rtgt_iscsi=trace,info`) overrides the
//! level chosen by `-d`.

use std::ffi::CString;
use std::io::{IsTerminal, Write};
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;
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
    if foreground && stderr_is_journal() {
        let layer = fmt::layer().with_target(false).with_ansi(false).without_time().with_level(false);
        registry.with(layer.with_writer(JournalStderr)).init();
    } else if foreground {
        let ansi = std::io::stderr().is_terminal();
        registry.with(fmt::layer().with_target(false).with_ansi(ansi).with_writer(std::io::stderr)).init();
    } else {
        open_syslog();
        let layer = fmt::layer().with_target(false).with_ansi(false).without_time().with_level(false);
        registry.with(layer.with_writer(SyslogWriter)).init();
    }
    let switch = move |enable: bool| {
        let level = if enable { on } else { off.as_str() };
        handle.reload(EnvFilter::new(level)).map_err(|e| e.to_string())
    };
    rtgt_tgtd::control::install_debug_switch(Box::new(switch), debug > 0);
}

/// True when systemd connected stderr to the journal: `JOURNAL_STREAM` holds "DEV:INODE" of that
/// stream, and it is still our stderr (a child whose stderr was redirected inherits the variable
/// but not the stream, so the variable alone is not enough).
fn stderr_is_journal() -> bool {
    let Ok(value) = std::env::var("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = value.split_once(':') else { return false };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else { return false };
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `struct stat` into `st` when it returns 0; it is read only then.
    if unsafe { libc::fstat(libc::STDERR_FILENO, st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstat succeeded, so `st` is initialised.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // dev_t and ino_t are u64 on some targets only
    let same = st.st_dev as u64 == dev && st.st_ino as u64 == ino;
    same
}

/// The syslog priority of a tracing level.
fn priority(level: &Level) -> libc::c_int {
    match *level {
        Level::ERROR => libc::LOG_ERR,
        Level::WARN => libc::LOG_WARNING,
        Level::INFO => libc::LOG_INFO,
        Level::DEBUG | Level::TRACE => libc::LOG_DEBUG,
    }
}

/// The `<N>`-prefixed line a journal stream expects, one per event; the level word is dropped
/// (the priority carries it) and a line without a trailing newline gets one.
pub(crate) fn journal_line(level: &Level, text: &str) -> String {
    format!("<{}>{}\n", priority(level), text.trim_end())
}

struct JournalStderr;

impl<'a> MakeWriter<'a> for JournalStderr {
    type Writer = EventBuffer;
    fn make_writer(&'a self) -> EventBuffer {
        EventBuffer { level: Level::INFO, text: Vec::new(), sink: Sink::Journal }
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> EventBuffer {
        EventBuffer { level: *meta.level(), text: Vec::new(), sink: Sink::Journal }
    }
}

struct SyslogWriter;

impl<'a> MakeWriter<'a> for SyslogWriter {
    type Writer = EventBuffer;
    fn make_writer(&'a self) -> EventBuffer {
        EventBuffer { level: Level::INFO, text: Vec::new(), sink: Sink::Syslog }
    }
    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> EventBuffer {
        EventBuffer { level: *meta.level(), text: Vec::new(), sink: Sink::Syslog }
    }
}

fn open_syslog() {
    // openlog keeps the pointer: the identity must live for the whole process.
    static IDENT: &[u8] = b"tgtd\0";
    // SAFETY: IDENT is a NUL-terminated static string; openlog only stores the pointer.
    unsafe { libc::openlog(IDENT.as_ptr().cast(), libc::LOG_PID, libc::LOG_DAEMON) };
}

enum Sink {
    Journal,
    Syslog,
}

/// Collects one formatted event and hands it on, with its priority, when dropped (one write per
/// event, so lines from different threads never interleave).
struct EventBuffer {
    level: Level,
    text: Vec<u8>,
    sink: Sink,
}

impl Write for EventBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventBuffer {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.text).trim_end().replace('\0', " ");
        if text.is_empty() {
            return;
        }
        match self.sink {
            Sink::Journal => {
                let _ = std::io::stderr().lock().write_all(journal_line(&self.level, &text).as_bytes());
            }
            Sink::Syslog => {
                if let Ok(line) = CString::new(text) {
                    // SAFETY: both strings are NUL-terminated; "%s" makes syslog treat the line as data.
                    unsafe { libc::syslog(priority(&self.level), c"%s".as_ptr(), line.as_ptr()) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_lines_carry_the_syslog_priority() {
        assert_eq!(journal_line(&Level::ERROR, "x"), "<3>x\n");
        assert_eq!(journal_line(&Level::WARN, "y\n"), "<4>y\n");
        assert_eq!(journal_line(&Level::INFO, "z"), "<6>z\n");
        assert_eq!(journal_line(&Level::DEBUG, "d"), "<7>d\n");
    }
}
