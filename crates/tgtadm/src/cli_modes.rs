//! The modes beyond targets, logical units and the system: CHAP accounts, portals, the transport
//! driver, sessions and connections. Which options each operation needs and allows, with tgt's
//! diagnostics where tgt has them.

use crate::cli::{check_allowed, need_tid, not_supported, params, Args, CliError, Mode, Operation};
use crate::options::Opt;
use rtgt_mgmt::{AccountOp, ConnectionOp, LldOp, Op, PortalOp, SessionOp};
use std::net::{IpAddr, SocketAddr};

/// The iSCSI port a portal without one listens on (RFC 7143 13.x: well-known port 3260).
const ISCSI_PORT: u16 = 3260;

pub(crate) fn op(args: &Args, mode: Mode, op: Operation, tid: Option<u32>) -> Result<Op, CliError> {
    match mode {
        Mode::Account => account(args, op, tid),
        Mode::Portal => portal(args, op),
        Mode::Lld => lld(args, op),
        Mode::Session => session(args, op, tid),
        Mode::Connection => connection(args, op, tid),
        // The three original modes are parsed in cli.rs.
        Mode::Target | Mode::LogicalUnit | Mode::System => Err(not_supported(mode, op)),
    }
}

fn need_user(args: &Args) -> Result<String, CliError> {
    match args.value(Opt::User) {
        Some(user) if !user.is_empty() => Ok(user.to_string()),
        _ => Err(CliError::invalid("'user' option is necessary")),
    }
}

fn account(args: &Args, op: Operation, tid: Option<u32>) -> Result<Op, CliError> {
    let mode = Mode::Account;
    let account_op = match op {
        Operation::New => {
            let user = need_user(args)?;
            let Some(password) = args.value(Opt::Password) else {
                return Err(CliError::invalid("'password' option is necessary"));
            };
            check_allowed(args, mode, op, &[Opt::User, Opt::Password])?;
            AccountOp::New { user, password: password.to_string() }
        }
        Operation::Delete => {
            let user = need_user(args)?;
            check_allowed(args, mode, op, &[Opt::User])?;
            AccountOp::Delete { user }
        }
        Operation::Bind | Operation::Unbind => {
            // tid 0 is the discovery session, as in tgt.
            let tid = need_tid(tid)?;
            let user = need_user(args)?;
            check_allowed(args, mode, op, &[Opt::Tid, Opt::User, Opt::Outgoing])?;
            let outgoing = args.has(Opt::Outgoing);
            if op == Operation::Bind {
                AccountOp::Bind { tid, user, outgoing }
            } else {
                AccountOp::Unbind { tid, user, outgoing }
            }
        }
        Operation::Show => {
            check_allowed(args, mode, op, &[])?;
            AccountOp::Show { secrets: args.has(Opt::Secrets) }
        }
        Operation::Update | Operation::Start | Operation::Stop => return Err(not_supported(mode, op)),
    };
    Ok(Op::Account(account_op))
}

/// `ADDR:PORT`, `[V6]:PORT`, or an address alone (port 3260).
pub(crate) fn parse_portal(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, ISCSI_PORT))
}

fn portal(args: &Args, op: Operation) -> Result<Op, CliError> {
    let mode = Mode::Portal;
    let address = || -> Result<SocketAddr, CliError> {
        let list = params(args.value(Opt::Params).unwrap_or(""))?;
        let Some(p) = list.iter().find(|p| p.name == "portal") else {
            return Err(CliError::invalid("'portal' parameter is necessary (--param portal=ADDRESS:PORT)"));
        };
        if let Some(other) = list.iter().find(|p| p.name != "portal") {
            return Err(CliError::invalid(format!("unknown portal parameter '{}'", other.name)));
        }
        parse_portal(&p.value).ok_or_else(|| CliError::invalid(format!("'{}' is not an address and port", p.value)))
    };
    let portal_op = match op {
        Operation::New => {
            check_allowed(args, mode, op, &[Opt::Params])?;
            PortalOp::New { address: address()? }
        }
        Operation::Delete => {
            check_allowed(args, mode, op, &[Opt::Params])?;
            PortalOp::Delete { address: address()? }
        }
        Operation::Show => {
            check_allowed(args, mode, op, &[])?;
            PortalOp::Show
        }
        _ => return Err(not_supported(mode, op)),
    };
    Ok(Op::Portal(portal_op))
}

fn lld(args: &Args, op: Operation) -> Result<Op, CliError> {
    let mode = Mode::Lld;
    check_allowed(args, mode, op, &[])?;
    Ok(Op::Lld(match op {
        Operation::Start => LldOp::Start,
        Operation::Stop => LldOp::Stop,
        Operation::Show => LldOp::Show,
        _ => return Err(not_supported(mode, op)),
    }))
}

fn need_sid(args: &Args) -> Result<u64, CliError> {
    args.number(Opt::Sid)?.ok_or_else(|| CliError::invalid("'sid' option is necessary"))
}

fn session(args: &Args, op: Operation, tid: Option<u32>) -> Result<Op, CliError> {
    let mode = Mode::Session;
    let tid = need_tid(tid)?;
    check_allowed(args, mode, op, &[Opt::Tid, Opt::Sid])?;
    Ok(Op::Session(match op {
        Operation::Show => SessionOp::Show { tid, sid: args.number(Opt::Sid)? },
        Operation::Delete => SessionOp::Delete { tid, sid: need_sid(args)? },
        _ => return Err(not_supported(mode, op)),
    }))
}

fn connection(args: &Args, op: Operation, tid: Option<u32>) -> Result<Op, CliError> {
    let mode = Mode::Connection;
    let tid = need_tid(tid)?;
    check_allowed(args, mode, op, &[Opt::Tid, Opt::Sid, Opt::Cid])?;
    let cid: Option<u16> = args.number(Opt::Cid)?;
    Ok(Op::Connection(match op {
        Operation::Show => ConnectionOp::Show { tid, sid: args.number(Opt::Sid)?, cid },
        Operation::Delete => {
            let sid = need_sid(args)?;
            let cid = cid.ok_or_else(|| CliError::invalid("'cid' option is necessary"))?;
            ConnectionOp::Delete { tid, sid, cid }
        }
        _ => return Err(not_supported(mode, op)),
    }))
}

#[cfg(test)]
mod tests {
    use crate::cli::{parse, Command};
    use rtgt_mgmt::{AccountOp, ConnectionOp, LldOp, Op, PortalOp, SessionOp};

    fn request(line: &str) -> Op {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        match parse(&argv, None) {
            Ok(Command::Send { request, .. }) => request.op,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn error(line: &str) -> (String, i32) {
        let argv: Vec<String> = line.split_whitespace().map(String::from).collect();
        let e = parse(&argv, None).unwrap_err();
        (e.message, e.exit_code)
    }

    #[test]
    fn accounts() {
        assert_eq!(
            request("--mode account --op new --user alice --password s3cret"),
            Op::Account(AccountOp::New { user: "alice".into(), password: "s3cret".into() })
        );
        assert_eq!(
            request("-m account -o bind -t 0 -u bob -O"),
            Op::Account(AccountOp::Bind { tid: 0, user: "bob".into(), outgoing: true })
        );
        assert_eq!(
            request("-m account -o unbind -t 3 -u bob"),
            Op::Account(AccountOp::Unbind { tid: 3, user: "bob".into(), outgoing: false })
        );
        assert_eq!(request("-m account -o show"), Op::Account(AccountOp::Show { secrets: false }));
        assert_eq!(request("-m account -o show --json --secrets"), Op::Account(AccountOp::Show { secrets: true }));
        assert_eq!(request("-m account -o delete -u bob"), Op::Account(AccountOp::Delete { user: "bob".into() }));
        // As measured with tgt 1.0.85.
        assert_eq!(
            error("-m account -o show --user alice"),
            ("tgtadm: account mode: option '-u' is not allowed/supported".into(), 22)
        );
        assert_eq!(error("-m account -o new -u alice").0, "tgtadm: 'password' option is necessary");
        assert_eq!(error("-m account -o bind -u alice").0, "tgtadm: 'tid' option is necessary");
        assert_eq!(error("-m account -o update -u a").0, "tgtadm: operation update not supported in account mode");
    }

    #[test]
    fn portals() {
        assert_eq!(
            request("--mode portal --op new --param portal=127.0.0.1:3261"),
            Op::Portal(PortalOp::New { address: "127.0.0.1:3261".parse().unwrap() })
        );
        assert_eq!(
            request("--mode portal --op delete --params portal=[::1]:3262"),
            Op::Portal(PortalOp::Delete { address: "[::1]:3262".parse().unwrap() })
        );
        assert_eq!(
            request("--mode portal --op new -P portal=10.0.0.1"),
            Op::Portal(PortalOp::New { address: "10.0.0.1:3260".parse().unwrap() })
        );
        assert_eq!(request("--mode portal --op show"), Op::Portal(PortalOp::Show));
        assert!(error("--mode portal --op new").0.contains("'portal' parameter is necessary"));
        assert!(error("--mode portal --op new -P portal=nowhere:1").0.contains("not an address"));
        assert!(error("--mode portal --op new -P portal=1.2.3.4:1,colour=red").0.contains("colour"));
    }

    #[test]
    fn drivers_sessions_connections() {
        assert_eq!(request("--mode lld --op show"), Op::Lld(LldOp::Show));
        assert_eq!(request("--mode lld --op start --lld iscsi"), Op::Lld(LldOp::Start));
        assert_eq!(request("--mode lld --op stop"), Op::Lld(LldOp::Stop));
        assert_eq!(request("--mode session --op show --tid 1"), Op::Session(SessionOp::Show { tid: 1, sid: None }));
        assert_eq!(
            request("--mode session --op delete --tid 1 --sid 4"),
            Op::Session(SessionOp::Delete { tid: 1, sid: 4 })
        );
        assert_eq!(
            request("--mode conn --op show --tid 1 --sid 2 --cid 0"),
            Op::Connection(ConnectionOp::Show { tid: 1, sid: Some(2), cid: Some(0) })
        );
        assert_eq!(
            request("--mode conn --op delete --tid 1 --sid 2 --cid 0"),
            Op::Connection(ConnectionOp::Delete { tid: 1, sid: 2, cid: 0 })
        );
        assert_eq!(error("--mode conn --op delete --tid 1 --sid 2").0, "tgtadm: 'cid' option is necessary");
        assert_eq!(error("--mode session --op delete --tid 1").0, "tgtadm: 'sid' option is necessary");
        assert_eq!(error("--mode conn --op show").0, "tgtadm: 'tid' option is necessary");
        assert_eq!(error("--mode lld --op show --tid 1").0, "tgtadm: lld mode: option '-t' is not allowed/supported");
    }
}
