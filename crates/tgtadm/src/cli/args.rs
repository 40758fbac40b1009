//! What every mode shares: the mode and operation names, the options given, and the checks each
//! mode's parser applies (allowed options, required ids, `--params` pairs) with tgt's diagnostics.

use super::error::CliError;
use super::options::{Given, Opt};
use rtgt_mgmt::Param;
use std::collections::HashMap;

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
    /// `--mode logicalunit --op stats` (rtgt's).
    Stats,
}

impl Operation {
    pub(crate) fn parse(text: &str) -> Option<Operation> {
        Some(match text {
            "new" => Operation::New,
            "delete" => Operation::Delete,
            "show" => Operation::Show,
            "bind" => Operation::Bind,
            "unbind" => Operation::Unbind,
            "update" => Operation::Update,
            "start" => Operation::Start,
            "stop" => Operation::Stop,
            "stats" => Operation::Stats,
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
            Operation::Stats => "stats",
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
    pub(crate) fn new(list: Vec<Given>) -> Self {
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

pub(crate) fn need_sid(args: &Args) -> Result<u64, CliError> {
    args.number(Opt::Sid)?.ok_or_else(|| CliError::invalid("'sid' option is necessary"))
}
