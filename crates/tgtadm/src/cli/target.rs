//! `--mode target`: create, delete, show, bind/unbind ACL rules and update a target's parameters,
//! also in the original design's `--driver istgt --params Name=...` form.

use super::args::{check_allowed, need_tid, not_supported, params, Args, Mode, Operation};
use super::error::CliError;
use super::options::Opt;
use rtgt_mgmt::{AclEntry, Op, Param, TargetOp};

pub(crate) fn op(args: &Args, op: Operation, tid: Option<u32>, legacy: bool) -> Result<Op, CliError> {
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
        Operation::Start | Operation::Stop | Operation::Stats => return Err(not_supported(mode, op)),
    };
    Ok(Op::Target(target_op))
}
