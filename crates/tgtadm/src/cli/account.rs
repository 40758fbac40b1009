//! `--mode account`: CHAP accounts and their bindings to targets (tid 0: discovery sessions).

use super::args::{check_allowed, need_tid, not_supported, Args, Mode, Operation};
use super::error::CliError;
use super::options::Opt;
use rtgt_mgmt::{AccountOp, Op};

fn need_user(args: &Args) -> Result<String, CliError> {
    match args.value(Opt::User) {
        Some(user) if !user.is_empty() => Ok(user.to_string()),
        _ => Err(CliError::invalid("'user' option is necessary")),
    }
}

pub(crate) fn op(args: &Args, op: Operation, tid: Option<u32>) -> Result<Op, CliError> {
    let mode = Mode::Account;
    let account_op = match op {
        Operation::New => {
            // tgt's one message for either missing.
            let (Ok(user), Some(password)) = (need_user(args), args.value(Opt::Password)) else {
                return Err(CliError::invalid("'user' and 'password' options are required"));
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
        Operation::Update | Operation::Start | Operation::Stop | Operation::Stats => {
            return Err(not_supported(mode, op))
        }
    };
    Ok(Op::Account(account_op))
}
