//! From tgtadm's command line to a typed `Request`: which options each mode and operation needs and
//! allows, the original tgt design's `--driver istgt` syntax, and where the control socket is.
//! Diagnostics and exit codes follow tgt 1.0.85's tgtadm (measured, see the tests).

use crate::options::{scan, Given, Opt};
use rtgt_mgmt::{AclEntry, DeviceType, Lld, LunOp, LunSpec, Op, Param, Request, SystemOp, TargetOp};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Overrides the default socket (below `--control-socket` and `-C`; see `rtgt_mgmt::socket_path`).
pub use rtgt_mgmt::socket_path::SOCKET_ENV;

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
    fn unknown(message: String) -> Self {
        CliError { message: format!("tgtadm: {message}"), hint: false, exit_code: 1 }
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Target,
    LogicalUnit,
    System,
    Account,
    Portal,
    Lld,
    Session,
    Connection,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Target => "target",
            Mode::LogicalUnit => "logicalunit",
            Mode::System => "system",
            Mode::Account => "account",
            Mode::Portal => "portal",
            Mode::Lld => "lld",
            Mode::Session => "session",
            Mode::Connection => "conn",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    New,
    Delete,
    Show,
    Bind,
    Unbind,
    Update,
    Start,
    Stop,
}

impl Operation {
    fn parse(text: &str) -> Option<Operation> {
        Some(match text {
            "new" => Operation::New,
            "delete" => Operation::Delete,
            "show" => Operation::Show,
            "bind" => Operation::Bind,
            "unbind" => Operation::Unbind,
            "update" => Operation::Update,
            "start" => Operation::Start,
            "stop" => Operation::Stop,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Operation::New => "new",
            Operation::Delete => "delete",
            Operation::Show => "show",
            Operation::Bind => "bind",
            Operation::Unbind => "unbind",
            Operation::Update => "update",
            Operation::Start => "start",
            Operation::Stop => "stop",
        }
    }
}

/// Options that every mode accepts.
const GLOBAL: &[Opt] = &[
    Opt::Lld,
    Opt::Driver,
    Opt::Mode,
    Opt::Op,
    Opt::ControlPort,
    Opt::ControlSocket,
    Opt::Json,
    Opt::Debug,
    Opt::Secrets,
    Opt::Wait,
];

/// The options given, last one winning as with tgt, plus the order they came in.
pub(crate) struct Args {
    given: Vec<Opt>,
    values: HashMap<Opt, Option<String>>,
}

impl Args {
    fn new(list: Vec<Given>) -> Self {
        let given = list.iter().map(|g| g.opt).collect();
        let values = list.into_iter().map(|g| (g.opt, g.value)).collect();
        Args { given, values }
    }

    pub(crate) fn has(&self, opt: Opt) -> bool {
        self.values.contains_key(&opt)
    }

    pub(crate) fn value(&self, opt: Opt) -> Option<&str> {
        self.values.get(&opt).and_then(|v| v.as_deref())
    }

    /// An integer option: decimal or 0x-hex, with tgt's two diagnostics.
    pub(crate) fn number<T: TryFrom<u64>>(&self, opt: Opt) -> Result<Option<T>, CliError> {
        let Some(text) = self.value(opt) else { return Ok(None) };
        let letter = opt.display();
        let bad = |what: &str| CliError::usage(format!("{letter} argument value '{text}' {what}"));
        let trimmed = text.trim();
        if trimmed.starts_with('-') && trimmed[1..].chars().all(|c| c.is_ascii_digit()) && trimmed.len() > 1 {
            return Err(bad("out of range"));
        }
        let parsed = match trimmed.strip_prefix("0x").or_else(|| trimmed.strip_prefix("0X")) {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => trimmed.parse::<u64>(),
        };
        let n = match parsed {
            Ok(n) => n,
            // Like tgt: beyond 64 bits is "invalid", beyond the option's own range "out of range".
            Err(_) => return Err(bad("invalid")),
        };
        T::try_from(n).map(Some).map_err(|_| bad("out of range"))
    }
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
        Mode::Target => target_op(&args, op, tid, legacy)?,
        Mode::LogicalUnit => lun_op(&args, op, tid, lun, block_size, legacy)?,
        Mode::System => system_op(&args, op)?,
        other => crate::cli_modes::op(&args, other, op, tid)?,
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

/// Refuse options the operation does not use, naming the first one given.
pub(crate) fn check_allowed(args: &Args, mode: Mode, op: Operation, allowed: &[Opt]) -> Result<(), CliError> {
    for &opt in &args.given {
        if GLOBAL.contains(&opt) || allowed.contains(&opt) {
            continue;
        }
        let name = opt.display();
        return Err(CliError::invalid(if mode == Mode::LogicalUnit && op == Operation::Update {
            format!("option '{name}' not supported in {} mode", mode.name())
        } else {
            format!("{} mode: option '{name}' is not allowed/supported", mode.name())
        }));
    }
    Ok(())
}

pub(crate) fn not_supported(mode: Mode, op: Operation) -> CliError {
    CliError::invalid(format!("operation {} not supported in {} mode", op.name(), mode.name()))
}

pub(crate) fn need_tid(tid: Option<u32>) -> Result<u32, CliError> {
    tid.ok_or_else(|| CliError::invalid("'tid' option is necessary"))
}

/// `--params a=b,c=d` as pairs; an item without '=' is a mistake worth naming.
pub(crate) fn params(text: &str) -> Result<Vec<Param>, CliError> {
    text.split(',')
        .filter(|item| !item.is_empty())
        .map(|item| match item.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok(Param::new(name, value)),
            _ => Err(CliError::invalid(format!("'{item}' in --params is not name=value"))),
        })
        .collect()
}

fn target_op(args: &Args, op: Operation, tid: Option<u32>, legacy: bool) -> Result<Op, CliError> {
    let mode = Mode::Target;
    // tid 0 names the discovery sessions (`account --op bind --tid 0`), never a target; tgt's
    // words and exit status.
    if tid == Some(0) && op != Operation::Show {
        return Err(CliError::invalid("'tid' cannot be 0"));
    }
    let target_op = match op {
        Operation::New => {
            let tid = need_tid(tid)?;
            let mut name = args.value(Opt::TargetName).map(str::to_string);
            let mut allowed = vec![Opt::Tid, Opt::TargetName];
            if legacy {
                // Original design: --params Name=iqn...
                allowed.push(Opt::Params);
                for p in params(args.value(Opt::Params).unwrap_or(""))? {
                    match p.name.to_ascii_lowercase().as_str() {
                        "name" => name = Some(p.value),
                        _ => return Err(CliError::invalid(format!("unknown target parameter '{}'", p.name))),
                    }
                }
            }
            let Some(name) = name.filter(|n| !n.is_empty()) else {
                return Err(CliError::invalid("creating new target requires a name, use --targetname"));
            };
            check_allowed(args, mode, op, &allowed)?;
            TargetOp::New { tid, name }
        }
        Operation::Delete => {
            let tid = need_tid(tid)?;
            check_allowed(args, mode, op, &[Opt::Tid, Opt::Force])?;
            TargetOp::Delete { tid, force: args.has(Opt::Force) }
        }
        Operation::Show => {
            check_allowed(args, mode, op, &[Opt::Tid])?;
            TargetOp::Show { tid }
        }
        Operation::Bind | Operation::Unbind => {
            let tid = need_tid(tid)?;
            let address = args.value(Opt::InitiatorAddress);
            let initiator = args.value(Opt::InitiatorName);
            if address.is_none() && initiator.is_none() {
                return Err(CliError::invalid(format!(
                    "{} operation requires initiator-address or initiator-name",
                    op.name()
                )));
            }
            check_allowed(args, mode, op, &[Opt::Tid, Opt::InitiatorAddress, Opt::InitiatorName])?;
            let mut rules = Vec::new();
            if let Some(text) = address {
                let rule = AclEntry::parse_address(text).ok_or_else(|| {
                    CliError::invalid(format!("'{text}' is not ALL, an IP address or an address/prefix network"))
                })?;
                rules.push(rule);
            }
            if let Some(name) = initiator {
                if name.is_empty() {
                    return Err(CliError::invalid("the initiator name is empty"));
                }
                rules.push(AclEntry::InitiatorName(name.to_string()));
            }
            if op == Operation::Bind {
                TargetOp::Bind { tid, rules }
            } else {
                TargetOp::Unbind { tid, rules }
            }
        }
        Operation::Update => {
            let tid = need_tid(tid)?;
            let mut list = Vec::new();
            match (args.value(Opt::Name), args.value(Opt::Value)) {
                (Some(name), Some(value)) => list.push(Param::new(name, value)),
                (None, None) if args.has(Opt::Params) => {}
                _ => return Err(CliError::invalid("update operation requires 'name' and 'value' options")),
            }
            // rtgt also takes several pairs at once with --params, as tgt's manual describes.
            list.extend(params(args.value(Opt::Params).unwrap_or(""))?);
            check_allowed(args, mode, op, &[Opt::Tid, Opt::Name, Opt::Value, Opt::Params])?;
            TargetOp::Update { tid, params: list }
        }
        Operation::Start | Operation::Stop => return Err(not_supported(mode, op)),
    };
    Ok(Op::Target(target_op))
}

fn lun_op(
    args: &Args,
    op: Operation,
    tid: Option<u32>,
    lun: Option<u64>,
    block_size: Option<u32>,
    legacy: bool,
) -> Result<Op, CliError> {
    let mode = Mode::LogicalUnit;
    let tid = need_tid(tid)?;
    if tid == 0 {
        return Err(CliError::invalid("'tid' must not be 0"));
    }
    let lun = lun.ok_or_else(|| CliError::invalid("'lun' option is necessary"))?;
    let lun_op = match op {
        Operation::New => {
            let mut allowed = vec![
                Opt::Tid,
                Opt::Lun,
                Opt::BackingStore,
                Opt::BsType,
                Opt::BsOpts,
                Opt::BsOFlags,
                Opt::DeviceType,
                Opt::BlockSize,
            ];
            let mut backing_store = args.value(Opt::BackingStore).map(str::to_string);
            let mut device_type = match args.value(Opt::DeviceType) {
                Some(text) => text.parse::<DeviceType>().map_err(|e| CliError::invalid(e.to_string()))?,
                None => DeviceType::Disk,
            };
            let mut lun_params = Vec::new();
            if !legacy {
                // tgt's LUN parameters (thin_provisioning=1, removable=1, ...) at creation; the
                // daemon checks the names and values.
                allowed.push(Opt::Params);
                if let Some(text) = args.value(Opt::Params) {
                    lun_params = params(text)?;
                }
            }
            if legacy {
                // Original design: --params Path=/srv/disk0.img,Type=tgt_vsd
                allowed.push(Opt::Params);
                for p in params(args.value(Opt::Params).unwrap_or(""))? {
                    match p.name.to_ascii_lowercase().as_str() {
                        "path" => backing_store = Some(p.value),
                        "type" => {
                            device_type = match p.value.as_str() {
                                "tgt_vsd" | "disk" => DeviceType::Disk,
                                other => return Err(CliError::invalid(format!("unknown target type: {other}"))),
                            }
                        }
                        _ => return Err(CliError::invalid(format!("unknown logical unit parameter '{}'", p.name))),
                    }
                }
            }
            check_allowed(args, mode, op, &allowed)?;
            let spec = LunSpec {
                device_type,
                backing_store,
                bstype: args.value(Opt::BsType).map(str::to_string),
                bsopts: args.value(Opt::BsOpts).unwrap_or_default().to_string(),
                bsoflags: args.value(Opt::BsOFlags).unwrap_or_default().to_string(),
                block_size,
                params: lun_params,
            };
            LunOp::New { tid, lun, spec }
        }
        Operation::Delete => {
            check_allowed(args, mode, op, &[Opt::Tid, Opt::Lun])?;
            LunOp::Delete { tid, lun }
        }
        Operation::Update => {
            check_allowed(args, mode, op, &[Opt::Tid, Opt::Lun, Opt::Params])?;
            let Some(text) = args.value(Opt::Params) else {
                return Err(CliError::invalid("update operation requires the 'params' option"));
            };
            LunOp::Update { tid, lun, params: params(text)? }
        }
        Operation::Show => {
            check_allowed(args, mode, op, &[Opt::Tid, Opt::Lun])?;
            LunOp::Show { tid, lun }
        }
        Operation::Bind | Operation::Unbind | Operation::Start | Operation::Stop => {
            return Err(not_supported(mode, op))
        }
    };
    Ok(Op::LogicalUnit(lun_op))
}

fn system_op(args: &Args, op: Operation) -> Result<Op, CliError> {
    let mode = Mode::System;
    let system_op = match op {
        // tgt ignores every other option here.
        Operation::Show => SystemOp::Show,
        Operation::Delete => SystemOp::Delete { force: args.has(Opt::Force) },
        Operation::Update => {
            let (Some(name), Some(value)) = (args.value(Opt::Name), args.value(Opt::Value)) else {
                return Err(CliError::invalid("update operation requires 'name' and 'value' options"));
            };
            check_allowed(args, mode, op, &[Opt::Name, Opt::Value])?;
            SystemOp::Update { params: vec![Param::new(name, value)] }
        }
        _ => return Err(not_supported(mode, op)),
    };
    Ok(Op::System(system_op))
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
