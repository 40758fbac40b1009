//! `--mode system`: show the daemon, update one of its settings, or stop it.

use super::args::{check_allowed, not_supported, Args, Mode, Operation};
use super::error::CliError;
use super::options::Opt;
use rtgt_mgmt::{Op, Param, SystemOp};

pub(crate) fn op(args: &Args, op: Operation) -> Result<Op, CliError> {
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
