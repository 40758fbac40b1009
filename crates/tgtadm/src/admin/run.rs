//! tgt-admin's run: its options, then reading the running state, planning and applying. The
//! binary only calls `main`.

use super::plan::{self, Plan, Running, Selection};
use super::spec::{self, Account, Discovery};
use super::{command, conf, dump};
use crate::{client, render};
use rtgt_mgmt::{AccountEntry, AccountOp, Op, Param, Reply, Request, SystemOp, TargetOp};
use std::path::PathBuf;
use std::process::ExitCode;

const DEFAULT_CONF: &str = "/etc/tgt/targets.conf";
use rtgt_mgmt::socket_path::{control_socket, port_of, SOCKET_ENV};
/// As tgtadm: EINVAL for a refused request or a bad file, ENOTCONN when the daemon is not there.
const EXIT_INVALID: u8 = 22;
/// EBUSY: `--update`/`--delete` left targets with sessions as they were.
const EXIT_BUSY: u8 = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Execute,
    Update(Selection),
    Delete(Selection),
    Offline(Selection),
    Ready(Selection),
    Show,
    Dump,
    Help,
}

#[derive(Debug)]
struct Args {
    action: Action,
    conf: PathBuf,
    socket: PathBuf,
    force: bool,
    pretend: bool,
    verbose: bool,
    ignore_errors: bool,
}

fn usage() -> &'static str {
    "Usage: tgt-admin [OPTION]...\n\
     Apply tgt's targets.conf to a running rtgt tgtd.\n\n\
     \x20 -e, --execute            create every target of the file that is not running\n\
     \x20     --update ALL|tid=N|NAME  apply only the differences (targets with sessions: --force)\n\
     \x20 -d, --delete ALL|tid=N|NAME  remove running targets (with sessions: --force)\n\
     \x20     --offline ALL|tid=N|NAME  refuse new logins (existing sessions go on)\n\
     \x20     --ready ALL|tid=N|NAME    accept logins again\n\
     \x20 -s, --show               show the running targets (as tgtadm)\n\
     \x20     --dump               print the running configuration in targets.conf form\n\
     \x20 -c, --conf FILE          configuration file (default /etc/tgt/targets.conf)\n\
     \x20 -f, --force              also change or remove targets that have sessions\n\
     \x20 -p, --pretend            print the tgtadm command lines instead of running them\n\
     \x20     --ignore-errors      go on after a failed request (a target is then not taken back)\n\
     \x20 -C, --control-port N     talk to the daemon on /var/run/tgtd/socket.N\n\
     \x20     --control-socket PATH  talk to the daemon on PATH (or $RTGT_CONTROL_SOCKET)\n\
     \x20 -v, --verbose            print each request as it is sent\n\
     \x20 -h, --help               print this help\n"
}

fn parse_args(argv: &[String], env_socket: Option<String>) -> Result<Args, String> {
    let mut action = None;
    let mut conf = PathBuf::from(DEFAULT_CONF);
    let (mut socket, mut port) = (None, None);
    let (mut force, mut pretend, mut verbose, mut ignore_errors) = (false, false, false, false);
    let mut i = 0;
    while i < argv.len() {
        let arg = argv[i].as_str();
        i += 1;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            let v = argv.get(i).cloned().ok_or_else(|| format!("option '{what}' requires an argument"))?;
            i += 1;
            Ok(v)
        };
        let mut set = |a: Action| match action.replace(a) {
            Some(_) => Err("give one operation at a time".to_string()),
            None => Ok(()),
        };
        match name {
            "-e" | "--execute" => set(Action::Execute)?,
            "--update" => set(Action::Update(Selection::parse(&value(name)?)?))?,
            "-d" | "--delete" => set(Action::Delete(Selection::parse(&value(name)?)?))?,
            "--offline" => set(Action::Offline(Selection::parse(&value(name)?)?))?,
            "--ready" => set(Action::Ready(Selection::parse(&value(name)?)?))?,
            "-s" | "--show" => set(Action::Show)?,
            "--dump" => set(Action::Dump)?,
            "-h" | "--help" => set(Action::Help)?,
            "-c" | "--conf" => conf = PathBuf::from(value(name)?),
            "-f" | "--force" => force = true,
            "-p" | "--pretend" => pretend = true,
            "-v" | "--verbose" => verbose = true,
            "--ignore-errors" => ignore_errors = true,
            "-C" | "--control-port" => {
                let v = value(name)?;
                port = Some(v.parse::<u32>().map_err(|_| format!("'{v}' is not a control port number"))?);
            }
            "--control-socket" => socket = Some(PathBuf::from(value(name)?)),
            other => return Err(format!("unrecognized option '{other}'")),
        }
    }
    let socket = control_socket(socket.as_deref(), port, env_socket.as_deref().map(std::ffi::OsStr::new));
    let action = action.ok_or("give an operation: --execute, --update, --delete, --show, --dump, ...")?;
    Ok(Args { action, conf, socket, force, pretend, verbose, ignore_errors })
}

/// A failure: what to print and the exit status.
struct Failure(String, u8);

impl From<client::ClientError> for Failure {
    fn from(e: client::ClientError) -> Self {
        Failure(e.to_string(), client::EXIT_NOT_CONNECTED as u8)
    }
}

fn call(args: &Args, op: Op) -> Result<Reply, Failure> {
    let response = client::call(&args.socket, &Request::iscsi(op), std::time::Duration::ZERO)?;
    response.into_result().map_err(|e| Failure(e.to_string(), e.code.exit_code() as u8))
}

/// What runs now, as the planner needs it.
struct RunningState {
    targets: Vec<Running>,
    /// Every account, with its password.
    accounts: Vec<AccountEntry>,
    discovery: Discovery,
}

/// The running targets, every account with its password, and the discovery bindings.
fn running(args: &Args) -> Result<RunningState, Failure> {
    let Reply::TargetList(views) = call(args, Op::Target(TargetOp::Show { tid: None }))? else {
        return Err(Failure("unexpected reply to target show".into(), 1));
    };
    let Reply::AccountList(accounts) = call(args, Op::Account(AccountOp::Show { secrets: true }))? else {
        return Err(Failure("unexpected reply to account show".into(), 1));
    };
    let list = views
        .iter()
        .map(|v| Running { tid: v.tid, spec: spec::from_running(v, &accounts), sessions: v.nexuses.len() })
        .collect();
    let account = |a: &AccountEntry| Account { user: a.user.clone(), password: a.password.clone().unwrap_or_default() };
    let Reply::System(system) = call(args, Op::System(SystemOp::Show))? else {
        return Err(Failure("unexpected reply to system show".into(), 1));
    };
    let discovery = Discovery {
        incoming: accounts.iter().filter(|a| a.discovery).map(account).collect(),
        outgoing: accounts.iter().find(|a| a.discovery_outgoing).map(account),
        isns: spec::isns_from_running(system.isns.as_ref()),
    };
    Ok(RunningState { targets: list, accounts, discovery })
}

fn load_conf(args: &Args) -> Result<(Vec<spec::TargetSpec>, Discovery), Failure> {
    let file = conf::load(&args.conf).map_err(|e| Failure(e.to_string(), EXIT_INVALID))?;
    spec::from_conf(&file).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Failure(lines.join("\ntgt-admin: "), EXIT_INVALID)
    })
}

/// tgtadm and the option that reaches the same daemon, for `--pretend`'s command lines.
fn tgtadm_prefix(args: &Args) -> String {
    match port_of(&args.socket) {
        Some(0) => "tgtadm".into(),
        Some(n) => format!("tgtadm -C {n}"),
        None => format!("tgtadm --control-socket {}", command::shell_quote(&args.socket.to_string_lossy())),
    }
}

/// Send the plan's requests unit by unit (accounts first, then one unit per target). A failed
/// target is taken back on its own and the other targets still come up, as with tgt; the run then
/// fails naming every target it could not apply. With `--ignore-errors` (tgt's option) a failed
/// request is reported and the run goes on with the next one, except that a target whose account
/// request failed is not opened to initiators: it never admits logins without its CHAP.
fn apply(args: &Args, plan: Plan) -> Result<(), Failure> {
    for note in &plan.notes {
        println!("{note}");
    }
    let steps = |u: usize| plan.steps.iter().filter(move |s| s.unit == u);
    if args.pretend {
        let prefix = tgtadm_prefix(args);
        for u in 0..plan.units.len() {
            for step in steps(u) {
                for line in command::lines(&step.op, &prefix) {
                    println!("{line}");
                }
            }
        }
        return Ok(());
    }
    let mut failed: Vec<String> = Vec::new();
    let mut code = None;
    let mut succeeded = vec![false; plan.units.len()];
    for (u, unit) in plan.units.iter().enumerate() {
        let mut account_failed = false;
        let mut unit_failed = false;
        for step in steps(u) {
            if account_failed && matches!(step.op, Op::Target(TargetOp::Bind { .. })) {
                eprintln!("tgt-admin: {}: {}: skipped, an account request failed before", unit.label, step.text);
                continue;
            }
            if args.verbose {
                println!("{}", step.text);
            }
            let Err(Failure(message, status)) = call(args, step.op.clone()) else { continue };
            code.get_or_insert(status);
            unit_failed = true;
            if args.ignore_errors {
                eprintln!("tgt-admin: {}: {}: {message} (ignored)", unit.label, step.text);
                account_failed |= matches!(step.op, Op::Account(_));
                continue;
            }
            let undone = match unit.created {
                Some(tid) => match call(args, Op::Target(TargetOp::Delete { tid, force: true })) {
                    Ok(_) => " (the target was removed again)",
                    Err(_) => " (removing the half-made target failed too)",
                },
                None => "",
            };
            eprintln!("tgt-admin: {}: {}: {message}{undone}", unit.label, step.text);
            break;
        }
        succeeded[u] = !unit_failed || args.ignore_errors;
        if unit_failed {
            failed.push(unit.label.clone());
        }
        if u == 0 && unit_failed && !args.ignore_errors {
            // Without their accounts no target can be made as the file says: undo and stop.
            undo_accounts(args, &plan, &succeeded);
            return Err(Failure("nothing was applied".into(), code.unwrap_or(EXIT_INVALID)));
        }
    }
    undo_accounts(args, &plan, &succeeded);
    match code {
        Some(status) if !args.ignore_errors => {
            let applied = succeeded.iter().skip(1).filter(|ok| **ok).count();
            Err(Failure(format!("not applied: {}; {applied} other target(s) were", failed.join(", ")), status))
        }
        _ => Ok(()),
    }
}

/// Remove the discovery bindings and accounts this run made that no successful unit uses. tgtd
/// refuses to delete an account bound as incoming (an --update may have bound it to a running
/// target): such an account stays, guarding that target, and the message says so.
fn undo_accounts(args: &Args, plan: &Plan, succeeded: &[bool]) {
    let used = |user: &String| plan.units.iter().zip(succeeded).any(|(unit, ok)| *ok && unit.users.contains(user));
    if !succeeded[0] {
        for (user, outgoing) in &plan.discovery_bound {
            let _ = call(args, Op::Account(AccountOp::Unbind { tid: 0, user: user.clone(), outgoing: *outgoing }));
        }
    }
    for user in plan.new_accounts.iter().filter(|u| !used(u)) {
        if call(args, Op::Account(AccountOp::Delete { user: user.clone() })).is_err() {
            eprintln!("tgt-admin: account {user} was kept: it is still bound");
        }
    }
}

/// `--update`/`--delete` that left targets with sessions alone did not do what was asked.
fn busy(args: &Args, plan: &Plan) -> Result<(), Failure> {
    if plan.busy.is_empty() || args.pretend {
        return Ok(());
    }
    Err(Failure(format!("left unchanged, they have sessions (use --force): {}", plan.busy.join(", ")), EXIT_BUSY))
}

fn run(args: &Args) -> Result<(), Failure> {
    match &args.action {
        Action::Help => {
            print!("{}", usage());
            Ok(())
        }
        Action::Show => {
            let reply = call(args, Op::Target(TargetOp::Show { tid: None }))?;
            print!("{}", render::render(&reply));
            Ok(())
        }
        Action::Dump => {
            let now = running(args)?;
            let specs: Vec<_> = now.targets.into_iter().map(|r| r.spec).collect();
            print!("{}", dump::dump(&specs, &now.discovery));
            Ok(())
        }
        Action::Execute => {
            let (want, want_discovery) = load_conf(args)?;
            let now = running(args)?;
            let plan = plan::execute(&want, &want_discovery, &now.targets, &now.discovery, &now.accounts)
                .map_err(|e| Failure(e, EXIT_INVALID))?;
            apply(args, plan)
        }
        Action::Update(selection) => {
            let (want, want_discovery) = load_conf(args)?;
            let now = running(args)?;
            let plan = plan::update(
                &want,
                &want_discovery,
                &now.targets,
                &now.discovery,
                &now.accounts,
                selection,
                args.force,
            )
            .map_err(|e| Failure(e, EXIT_INVALID))?;
            let left = busy(args, &plan);
            apply(args, plan)?;
            left
        }
        Action::Delete(selection) => {
            let now = running(args)?;
            let plan = plan::delete(&now.targets, selection, args.force).map_err(|e| Failure(e, EXIT_INVALID))?;
            let left = busy(args, &plan);
            apply(args, plan)?;
            left
        }
        Action::Offline(selection) | Action::Ready(selection) => {
            let state = if matches!(args.action, Action::Offline(_)) { "offline" } else { "ready" };
            set_target_state(args, selection, state)
        }
    }
}

/// `--offline|--ready ALL|tid=N|NAME`: the state of each target selected (tgtadm `target update
/// --name state`). ALL means every running target, as in tgt's tgt-admin: the daemon's own state is
/// left alone, so `target show` says what each target does and `--ready ALL` also readies a target
/// taken offline on its own.
fn set_target_state(args: &Args, selection: &Selection, state: &str) -> Result<(), Failure> {
    let Reply::TargetList(views) = call(args, Op::Target(TargetOp::Show { tid: None }))? else {
        return Err(Failure("unexpected reply to target show".into(), 1));
    };
    let chosen: Vec<_> = views.iter().filter(|v| selection.matches(Some(v.tid), &v.name)).collect();
    if chosen.is_empty() && *selection != Selection::All {
        return Err(Failure(format!("no running target matches {selection}"), EXIT_INVALID));
    }
    for view in chosen {
        let op = Op::Target(TargetOp::Update { tid: view.tid, params: vec![Param::new("state", state)] });
        if args.pretend {
            command::lines(&op, &tgtadm_prefix(args)).iter().for_each(|l| println!("{l}"));
        } else {
            call(args, op)?;
        }
    }
    Ok(())
}

/// The whole of the `tgt-admin` binary: arguments from the process, exit status to it.
pub fn main() -> ExitCode {
    let mut argv = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(a) => argv.push(a),
            Err(raw) => {
                eprintln!("tgt-admin: argument {raw:?} is not valid UTF-8");
                return ExitCode::from(EXIT_INVALID);
            }
        }
    }
    let args = match parse_args(&argv, std::env::var(SOCKET_ENV).ok()) {
        Ok(a) => a,
        Err(message) => {
            eprintln!("tgt-admin: {message}");
            eprintln!("Try `tgt-admin --help' for more information.");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message, code)) => {
            eprintln!("tgt-admin: {message}");
            ExitCode::from(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str, env: Option<&str>) -> Result<Args, String> {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        parse_args(&argv, env.map(String::from))
    }

    #[test]
    fn options_and_sockets() {
        let a = parse("--update ALL --force -c /x.conf", None).unwrap();
        assert_eq!(a.action, Action::Update(Selection::All));
        assert!(a.force);
        assert_eq!(a.conf, PathBuf::from("/x.conf"));
        assert_eq!(a.socket, PathBuf::from("/var/run/tgtd/socket.0"));
        assert_eq!(parse("-e -C 3", Some("/env.sock")).unwrap().socket, PathBuf::from("/var/run/tgtd/socket.3"));
        assert_eq!(parse("-e", Some("/env.sock")).unwrap().socket, PathBuf::from("/env.sock"));
        let a = parse("--delete=tid=2 --control-socket /s", Some("/env.sock")).unwrap();
        assert_eq!((a.action, a.socket), (Action::Delete(Selection::Tid(2)), PathBuf::from("/s")));
        assert!(parse("-e --dump", None).unwrap_err().contains("one operation"));
        assert!(parse("--frob", None).unwrap_err().contains("unrecognized"));
        assert!(parse("-c /x", None).unwrap_err().contains("give an operation"));
        assert!(parse("--update", None).unwrap_err().contains("requires an argument"));
    }
}
