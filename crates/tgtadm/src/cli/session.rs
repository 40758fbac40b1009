//! `--mode session`: show an I_T nexus (with what it negotiated) or end it.

use super::args::{check_allowed, need_sid, need_tid, not_supported, Args, Mode, Operation};
use super::error::CliError;
use super::options::Opt;
use rtgt_mgmt::{Op, SessionOp};

pub(crate) fn op(args: &Args, op: Operation, tid: Option<u32>) -> Result<Op, CliError> {
    let mode = Mode::Session;
    let tid = need_tid(tid)?;
    check_allowed(args, mode, op, &[Opt::Tid, Opt::Sid])?;
    Ok(Op::Session(match op {
        Operation::Show => SessionOp::Show { tid, sid: args.number(Opt::Sid)? },
        Operation::Delete => SessionOp::Delete { tid, sid: need_sid(args)? },
        _ => return Err(not_supported(mode, op)),
    }))
}
