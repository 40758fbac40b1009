//! From tgtadm's command line to a typed `Request`: which options each mode and operation needs and
//! allows, the original tgt design's `--driver istgt` syntax, and where the control socket is.
//! Diagnostics and exit codes follow tgt 1.0.85's tgtadm (measured, see the tests). The option
//! scanner and the checks every mode shares have their own files; each mode parses in its own.

mod account;
mod args;
mod connection;
mod error;
mod lld;
mod logicalunit;
mod options;
mod portal;
mod session;
mod system;
mod target;

use args::{Args, Mode, Operation};
use options::{scan, Opt};
use rtgt_mgmt::{Lld, Request};
use std::path::PathBuf;
use std::time::Duration;

pub use error::CliError;
/// Overrides the default socket (below `--control-socket` and `-C`; see `rtgt_mgmt::socket_path`).
pub use rtgt_mgmt::socket_path::SOCKET_ENV;

/// What tgtadm was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
// One value per process run: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    Help,
    Version,
    /// `wait`: how long to keep trying to reach a daemon that is still starting (`--wait SECS`).
    Send {
        socket: PathBuf,
        request: Request,
        json: bool,
        wait: Duration,
    },
}

/// Parse tgtadm's arguments (without the program name). `env_socket` is `$RTGT_CONTROL_SOCKET`.
pub fn parse(argv: &[String], env_socket: Option<String>) -> Result<Command, CliError> {
    let list = scan(argv)?;
    if list.iter().any(|g| g.opt == Opt::Help) {
        return Ok(Command::Help);
    }
    if list.iter().any(|g| g.opt == Opt::Version) {
        return Ok(Command::Version);
    }
    let args = Args::new(list);

    // Numbers are checked as getopt sees them, before any meaning.
    let control_port: Option<u32> = args.number(Opt::ControlPort)?;
    let tid: Option<u32> = args.number(Opt::Tid)?;
    let lun: Option<u64> = args.number(Opt::Lun)?;
    let block_size: Option<u32> = args.number(Opt::BlockSize)?;

    // `--driver istgt` is the original design's name for the iSCSI driver.
    let legacy = args.has(Opt::Driver);
    if let Some(driver) = args.value(Opt::Driver) {
        if driver != "istgt" && driver != "iscsi" {
            return Err(CliError::invalid("can't find the driver"));
        }
    }
    let lld = match args.value(Opt::Lld) {
        None | Some("iscsi") => Lld::Iscsi,
        Some("vhost") => Lld::Vhost,
        Some(_) => return Err(CliError::invalid("can't find the driver")),
    };

    let mode_name = args.value(Opt::Mode);
    let mode = match mode_name {
        None => None,
        Some("target" | "tgt") => Some(Mode::Target),
        Some("logicalunit" | "lu") => Some(Mode::LogicalUnit),
        Some("system" | "sys") => Some(Mode::System),
        Some("account") => Some(Mode::Account),
        Some("portal") => Some(Mode::Portal),
        Some("lld") => Some(Mode::Lld),
        Some("session" | "sess") => Some(Mode::Session),
        Some("conn" | "connection") => Some(Mode::Connection),
        Some(other) => return Err(CliError::unknown(format!("unknown mode: {other}"))),
    };
    let op = match args.value(Opt::Op) {
        None => None,
        Some(text) => {
            Some(Operation::parse(text).ok_or_else(|| CliError::unknown(format!("unknown operation: {text}")))?)
        }
    };
    let Some(op) = op else { return Err(CliError::invalid("specify the operation type")) };
    let mode = match mode {
        Some(m) => m,
        // The original design has no --mode: a LUN number means a logical unit.
        None if legacy => {
            if args.has(Opt::Lun) {
                Mode::LogicalUnit
            } else {
                Mode::Target
            }
        }
        None => return Err(CliError::invalid("specify the mode")),
    };

    // Passwords are printed only in --json's account list; anywhere else --secrets would be
    // silently ignored, so it is refused.
    if args.has(Opt::Secrets) && !(args.has(Opt::Json) && mode == Mode::Account && op == Operation::Show) {
        return Err(CliError::invalid("--secrets works only with --mode account --op show --json"));
    }
    let op = match mode {
        Mode::Target => target::op(&args, op, tid, legacy)?,
        Mode::LogicalUnit => logicalunit::op(&args, op, tid, lun, block_size, legacy)?,
        Mode::System => system::op(&args, op)?,
        Mode::Account => account::op(&args, op, tid)?,
        Mode::Portal => portal::op(&args, op)?,
        Mode::Lld => lld::op(&args, op)?,
        Mode::Session => session::op(&args, op, tid)?,
        Mode::Connection => connection::op(&args, op, tid)?,
    };

    let socket = rtgt_mgmt::socket_path::control_socket(
        args.value(Opt::ControlSocket).map(std::path::Path::new),
        control_port,
        env_socket.as_deref().map(std::ffi::OsStr::new),
    );
    let wait = match args.value(Opt::Wait) {
        None => Duration::ZERO,
        Some(text) => parse_wait(text)?,
    };
    Ok(Command::Send { socket, request: Request { lld, op }, json: args.has(Opt::Json), wait })
}

/// The longest `--wait`: enough for any start-up, short enough that a typo cannot hang a script.
const MAX_WAIT_SECS: u64 = 3600;

/// `--wait SECS`: whole seconds, 0 to 3600.
fn parse_wait(text: &str) -> Result<Duration, CliError> {
    match text.parse::<u64>() {
        Ok(secs) if secs <= MAX_WAIT_SECS => Ok(Duration::from_secs(secs)),
        _ => {
            Err(CliError::invalid(format!("--wait takes a number of seconds from 0 to {MAX_WAIT_SECS}, not '{text}'")))
        }
    }
}

#[cfg(test)]
mod tests;
