//! `--mode logicalunit`: add, remove, show and update a LUN, also in the original design's
//! `--driver istgt --params Path=...,Type=tgt_vsd` form.

use super::args::{check_allowed, need_tid, not_supported, params, Args, Mode, Operation};
use super::error::CliError;
use super::options::Opt;
use rtgt_mgmt::{DeviceType, LunChange, LunOp, LunParam, LunSpec, Op, StoreSpec};

pub(crate) fn op(
    args: &Args,
    op: Operation,
    tid: Option<u32>,
    lun: Option<u64>,
    block_size: Option<u32>,
    legacy: bool,
) -> Result<Op, CliError> {
    let mode = Mode::LogicalUnit;
    let tid = need_tid(tid)?;
    if tid == 0 {
        return Err(CliError::invalid("'tid' must not be 0"));
    }
    if op == Operation::Stats {
        // Without --lun: every LUN of the target.
        check_allowed(args, mode, op, &[Opt::Tid, Opt::Lun])?;
        return Ok(Op::LogicalUnit(LunOp::Stats { tid, lun }));
    }
    let lun = lun.ok_or_else(|| CliError::invalid("'lun' option is necessary"))?;
    let lun_op = match op {
        Operation::New => {
            let mut allowed = vec![
                Opt::Tid,
                Opt::Lun,
                Opt::BackingStore,
                Opt::BsType,
                Opt::BsOpts,
                Opt::BsOFlags,
                Opt::DeviceType,
                Opt::BlockSize,
            ];
            let mut backing_store = args.value(Opt::BackingStore).map(str::to_string);
            let mut device_type = match args.value(Opt::DeviceType) {
                Some(text) => text.parse::<DeviceType>().map_err(|e| CliError::invalid(e.to_string()))?,
                None => DeviceType::Disk,
            };
            let mut lun_params = Vec::new();
            if !legacy {
                // tgt's LUN parameters (thin_provisioning=1, removable=1, ...) at creation, checked
                // here: the request carries them typed.
                allowed.push(Opt::Params);
                if let Some(text) = args.value(Opt::Params) {
                    lun_params = LunParam::parse_all(&params(text)?).map_err(CliError::invalid_request)?;
                }
            }
            if legacy {
                // Original design: --params Path=/srv/disk0.img,Type=tgt_vsd
                allowed.push(Opt::Params);
                for p in params(args.value(Opt::Params).unwrap_or(""))? {
                    match p.name.to_ascii_lowercase().as_str() {
                        "path" => backing_store = Some(p.value),
                        "type" => {
                            device_type = match p.value.as_str() {
                                "tgt_vsd" | "disk" => DeviceType::Disk,
                                other => return Err(CliError::invalid(format!("unknown target type: {other}"))),
                            }
                        }
                        _ => return Err(CliError::invalid(format!("unknown logical unit parameter '{}'", p.name))),
                    }
                }
            }
            check_allowed(args, mode, op, &allowed)?;
            let store = StoreSpec::parse(
                args.value(Opt::BsType),
                args.value(Opt::BsOpts).unwrap_or_default(),
                args.value(Opt::BsOFlags).unwrap_or_default(),
            )
            .map_err(CliError::invalid_request)?;
            let spec = LunSpec { device_type, backing_store, store, block_size, params: lun_params };
            LunOp::New { tid, lun, spec }
        }
        Operation::Delete => {
            check_allowed(args, mode, op, &[Opt::Tid, Opt::Lun])?;
            LunOp::Delete { tid, lun }
        }
        Operation::Update => {
            check_allowed(args, mode, op, &[Opt::Tid, Opt::Lun, Opt::Params])?;
            let Some(text) = args.value(Opt::Params) else {
                return Err(CliError::invalid("update operation requires the 'params' option"));
            };
            // Checked here: the request carries typed changes.
            let changes = LunChange::parse_all(&params(text)?).map_err(|e| CliError::refused(e.code(), e))?;
            LunOp::Update { tid, lun, changes }
        }
        Operation::Show => {
            check_allowed(args, mode, op, &[Opt::Tid, Opt::Lun])?;
            LunOp::Show { tid, lun }
        }
        Operation::Bind | Operation::Unbind | Operation::Start | Operation::Stop | Operation::Stats => {
            return Err(not_supported(mode, op))
        }
    };
    Ok(Op::LogicalUnit(lun_op))
}
