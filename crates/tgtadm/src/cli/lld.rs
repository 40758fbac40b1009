//! `--mode lld`: the transport drivers.

use super::args::{check_allowed, not_supported, Args, Mode, Operation};
use super::error::CliError;
use rtgt_mgmt::{LldOp, Op};

pub(crate) fn op(args: &Args, op: Operation) -> Result<Op, CliError> {
    let mode = Mode::Lld;
    check_allowed(args, mode, op, &[])?;
    Ok(Op::Lld(match op {
        Operation::Start => LldOp::Start,
        Operation::Stop => LldOp::Stop,
        Operation::Show => LldOp::Show,
        _ => return Err(not_supported(mode, op)),
    }))
}
