//! `--mode conn`: show a session's connections or end one.

use super::args::{check_allowed, need_sid, need_tid, not_supported, Args, Mode, Operation};
use super::error::CliError;
use super::options::Opt;
use rtgt_mgmt::{ConnectionOp, Op};

pub(crate) fn op(args: &Args, op: Operation, tid: Option<u32>) -> Result<Op, CliError> {
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
