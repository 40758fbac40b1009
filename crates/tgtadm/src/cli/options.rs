//! The option table and a getopt_long-compatible scanner: `--tid 1`, `--tid=1`, unique prefixes
//! (`--targ`), `-t 1`, `-t1`, clustered flags (`-Fd`), in any order. Errors carry the texts glibc's
//! getopt prints for tgt's tgtadm, so scripts see the same diagnostics.

use super::error::CliError;

/// Every option tgtadm knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Opt {
    Lld,
    Mode,
    Op,
    Tid,
    TargetName,
    Lun,
    BackingStore,
    BsType,
    BsOpts,
    BsOFlags,
    DeviceType,
    BlockSize,
    Params,
    InitiatorAddress,
    InitiatorName,
    User,
    Password,
    Outgoing,
    Name,
    Value,
    Force,
    Sid,
    Cid,
    ControlPort,
    Help,
    Version,
    Debug,
    /// rtgt: the control socket's path.
    ControlSocket,
    /// rtgt: print replies as JSON.
    Json,
    /// rtgt: include account passwords in `account show --json`.
    Secrets,
    /// The original tgt design's `--driver istgt`.
    Driver,
    /// rtgt: wait up to SECS for a control socket that is being created (a daemon starting).
    Wait,
}

pub struct OptSpec {
    pub long: &'static str,
    pub short: Option<char>,
    pub takes_value: bool,
    pub opt: Opt,
}

const fn spec(long: &'static str, short: Option<char>, takes_value: bool, opt: Opt) -> OptSpec {
    OptSpec { long, short, takes_value, opt }
}

/// tgt 1.0.85's names and letters, then rtgt's additions.
pub const OPTIONS: &[OptSpec] = &[
    spec("lld", Some('L'), true, Opt::Lld),
    spec("op", Some('o'), true, Opt::Op),
    spec("mode", Some('m'), true, Opt::Mode),
    spec("tid", Some('t'), true, Opt::Tid),
    spec("sid", Some('s'), true, Opt::Sid),
    spec("cid", Some('c'), true, Opt::Cid),
    spec("targetname", Some('T'), true, Opt::TargetName),
    spec("lun", Some('l'), true, Opt::Lun),
    spec("name", Some('n'), true, Opt::Name),
    spec("value", Some('v'), true, Opt::Value),
    spec("backing-store", Some('b'), true, Opt::BackingStore),
    spec("bstype", Some('E'), true, Opt::BsType),
    spec("bsopts", Some('S'), true, Opt::BsOpts),
    spec("bsoflags", Some('f'), true, Opt::BsOFlags),
    spec("blocksize", Some('y'), true, Opt::BlockSize),
    spec("device-type", Some('Y'), true, Opt::DeviceType),
    spec("params", Some('P'), true, Opt::Params),
    spec("initiator-address", Some('I'), true, Opt::InitiatorAddress),
    spec("initiator-name", Some('Q'), true, Opt::InitiatorName),
    spec("user", Some('u'), true, Opt::User),
    spec("password", Some('p'), true, Opt::Password),
    spec("outgoing", Some('O'), false, Opt::Outgoing),
    spec("force", Some('F'), false, Opt::Force),
    spec("control-port", Some('C'), true, Opt::ControlPort),
    spec("debug", Some('d'), false, Opt::Debug),
    spec("help", Some('h'), false, Opt::Help),
    spec("version", Some('V'), false, Opt::Version),
    spec("control-socket", None, true, Opt::ControlSocket),
    spec("json", None, false, Opt::Json),
    spec("secrets", None, false, Opt::Secrets),
    spec("driver", None, true, Opt::Driver),
    spec("wait", None, true, Opt::Wait),
];

impl Opt {
    pub fn spec(self) -> &'static OptSpec {
        // Every variant has an entry; the fallback keeps this total without a panic path.
        OPTIONS.iter().find(|s| s.opt == self).unwrap_or(&OPTIONS[0])
    }

    /// How tgt names the option in "option '-l' is not allowed" messages.
    pub fn display(self) -> String {
        let spec = self.spec();
        match spec.short {
            Some(c) => format!("-{c}"),
            None => format!("--{}", spec.long),
        }
    }
}

/// One option as given: which, and its value if it takes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given {
    pub opt: Opt,
    pub value: Option<String>,
}

fn usage_error(message: String) -> CliError {
    CliError::usage(message)
}

/// Scan `args` (without the program name). Stops at the first `--help`/`--version` so that, as with
/// getopt, later mistakes do not hide the help.
pub fn scan(args: &[String]) -> Result<Vec<Given>, CliError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if let Some(body) = arg.strip_prefix("--") {
            if body.is_empty() {
                // "--" ends the options; tgtadm takes no operands, so anything after it is an error.
                if let Some(extra) = args.get(i) {
                    return Err(usage_error(format!("tgtadm: unrecognized option '{extra}'")));
                }
                break;
            }
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let spec = find_long(name, arg)?;
            let value = if spec.takes_value {
                match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = args.get(i).cloned().ok_or_else(|| {
                            usage_error(format!("tgtadm: option '--{}' requires an argument", spec.long))
                        })?;
                        i += 1;
                        Some(v)
                    }
                }
            } else {
                if inline.is_some() {
                    return Err(usage_error(format!("tgtadm: option '--{}' doesn't allow an argument", spec.long)));
                }
                None
            };
            let stop = matches!(spec.opt, Opt::Help | Opt::Version);
            out.push(Given { opt: spec.opt, value });
            if stop {
                return Ok(out);
            }
        } else if arg.len() > 1 && arg.starts_with('-') {
            let letters: Vec<char> = arg[1..].chars().collect();
            let mut j = 0;
            while j < letters.len() {
                let c = letters[j];
                j += 1;
                let spec = OPTIONS
                    .iter()
                    .find(|s| s.short == Some(c))
                    .ok_or_else(|| usage_error(format!("tgtadm: invalid option -- '{c}'")))?;
                if spec.takes_value {
                    let rest: String = letters[j..].iter().collect();
                    let value = if !rest.is_empty() {
                        rest
                    } else {
                        let v = args
                            .get(i)
                            .cloned()
                            .ok_or_else(|| usage_error(format!("tgtadm: option requires an argument -- '{c}'")))?;
                        i += 1;
                        v
                    };
                    out.push(Given { opt: spec.opt, value: Some(value) });
                    break;
                }
                out.push(Given { opt: spec.opt, value: None });
                if matches!(spec.opt, Opt::Help | Opt::Version) {
                    return Ok(out);
                }
            }
        } else {
            return Err(usage_error(format!("tgtadm: unrecognized option '{arg}'")));
        }
    }
    Ok(out)
}

/// Exact long name, else the only option it abbreviates.
fn find_long(name: &str, arg: &str) -> Result<&'static OptSpec, CliError> {
    if let Some(spec) = OPTIONS.iter().find(|s| s.long == name) {
        return Ok(spec);
    }
    let candidates: Vec<&OptSpec> = OPTIONS.iter().filter(|s| !name.is_empty() && s.long.starts_with(name)).collect();
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => Err(usage_error(format!("tgtadm: unrecognized option '{}'", arg.split('=').next().unwrap_or(arg)))),
        many => {
            let names: Vec<String> = many.iter().map(|s| format!("'--{}'", s.long)).collect();
            Err(usage_error(format!("tgtadm: option '--{name}' is ambiguous; possibilities: {}", names.join(" "))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(String::from).collect()
    }

    fn values(line: &str) -> Vec<(Opt, Option<String>)> {
        scan(&args(line)).unwrap().into_iter().map(|g| (g.opt, g.value)).collect()
    }

    fn error(line: &str) -> String {
        scan(&args(line)).unwrap_err().message
    }

    #[test]
    fn every_spelling_of_a_value() {
        let expected = vec![(Opt::Tid, Some("1".to_string()))];
        for line in ["--tid 1", "--tid=1", "-t 1", "-t1", "--ti 1", "--ti=1"] {
            assert_eq!(values(line), expected, "{line}");
        }
        assert_eq!(values("--targ iqn.x"), vec![(Opt::TargetName, Some("iqn.x".into()))]);
        assert_eq!(values("--params=a=b,c=d"), vec![(Opt::Params, Some("a=b,c=d".into()))]);
        assert_eq!(values("-b -"), vec![(Opt::BackingStore, Some("-".into()))]);
        // A value may itself start with a dash, as getopt allows.
        assert_eq!(values("-t -5"), vec![(Opt::Tid, Some("-5".into()))]);
    }

    #[test]
    fn flags_cluster_and_order_is_free() {
        assert_eq!(
            values("-Fdt 3 --mode target"),
            vec![
                (Opt::Force, None),
                (Opt::Debug, None),
                (Opt::Tid, Some("3".into())),
                (Opt::Mode, Some("target".into()))
            ]
        );
        assert_eq!(values("--json --control-socket /tmp/s").len(), 2);
        assert_eq!(values("--wait 5"), vec![(Opt::Wait, Some("5".into()))]);
    }

    #[test]
    fn help_stops_scanning() {
        assert_eq!(values("--help --frob"), vec![(Opt::Help, None)]);
        assert_eq!(values("-h -Z"), vec![(Opt::Help, None)]);
        assert_eq!(error("--frob --help"), "tgtadm: unrecognized option '--frob'");
    }

    #[test]
    fn getopt_diagnostics() {
        assert_eq!(error("--frob"), "tgtadm: unrecognized option '--frob'");
        assert_eq!(error("--frob=1"), "tgtadm: unrecognized option '--frob'");
        assert_eq!(error("-Z"), "tgtadm: invalid option -- 'Z'");
        assert_eq!(error("--tid"), "tgtadm: option '--tid' requires an argument");
        assert_eq!(error("-t"), "tgtadm: option requires an argument -- 't'");
        assert_eq!(error("--t 1"), "tgtadm: option '--t' is ambiguous; possibilities: '--tid' '--targetname'");
        assert_eq!(error("--force=yes"), "tgtadm: option '--force' doesn't allow an argument");
        assert_eq!(error("--mode target extra"), "tgtadm: unrecognized option 'extra'");
        assert_eq!(error("-- extra"), "tgtadm: unrecognized option 'extra'");
        assert_eq!(scan(&args("-Z")).unwrap_err().exit_code, 22);
    }
}
