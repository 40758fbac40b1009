//! `--pretend`: each planned request as a tgtadm command line a shell runs as is (values quoted
//! for `sh`), so the output can be reviewed, edited and replayed. One request may need several
//! lines: tgtadm takes one target parameter or one access rule per call.

use rtgt_mgmt::{AccountOp, AclEntry, DeviceType, LunOp, Op, Param, SystemOp, TargetOp};

/// `text` as one shell word: bare when it holds only characters no shell treats specially.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_.,:/=@+%".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The command lines for `op`; `prefix` is `tgtadm` and its socket option, already quoted.
pub fn lines(op: &Op, prefix: &str) -> Vec<String> {
    let line = |words: Vec<String>| {
        let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        format!("{prefix} {}", quoted.join(" "))
    };
    let w = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<String>>();
    let base = |mode: &str, op: &str| w(&["--lld", "iscsi", "--mode", mode, "--op", op]);
    let rule = |r: &AclEntry| match r {
        AclEntry::InitiatorName(name) => w(&["--initiator-name", name]),
        other => w(&["--initiator-address", &other.to_string()]),
    };
    match op {
        Op::Target(TargetOp::New { tid, name }) => {
            vec![line([base("target", "new"), w(&["--tid", &tid.to_string(), "--targetname", name])].concat())]
        }
        Op::Target(TargetOp::Update { tid, params }) => params
            .iter()
            .map(|p| {
                let args = w(&["--tid", &tid.to_string(), "--name", &p.name, "--value", &p.value]);
                line([base("target", "update"), args].concat())
            })
            .collect(),
        Op::Target(TargetOp::Bind { tid, rules }) | Op::Target(TargetOp::Unbind { tid, rules }) => {
            let verb = if matches!(op, Op::Target(TargetOp::Bind { .. })) { "bind" } else { "unbind" };
            rules
                .iter()
                .map(|r| line([base("target", verb), w(&["--tid", &tid.to_string()]), rule(r)].concat()))
                .collect()
        }
        Op::Target(TargetOp::Delete { tid, force }) => {
            let mut args = [base("target", "delete"), w(&["--tid", &tid.to_string()])].concat();
            if *force {
                args.push("--force".into());
            }
            vec![line(args)]
        }
        Op::LogicalUnit(LunOp::New { tid, lun, spec }) => {
            let mut args =
                [base("logicalunit", "new"), w(&["--tid", &tid.to_string(), "--lun", &lun.to_string()])].concat();
            if let Some(path) = &spec.backing_store {
                args.extend(w(&["--backing-store", path]));
            }
            if let Some(bstype) = spec.store.bstype() {
                args.extend(w(&["--bstype", bstype]));
            }
            let (bsopts, bsoflags) = (spec.store.bsopts(), spec.store.bsoflags());
            if !bsopts.is_empty() {
                args.extend(w(&["--bsopts", &bsopts]));
            }
            if !bsoflags.is_empty() {
                args.extend(w(&["--bsoflags", &bsoflags]));
            }
            if let Some(size) = spec.block_size {
                args.extend(w(&["--blocksize", &size.to_string()]));
            }
            if spec.device_type != DeviceType::Disk {
                args.extend(w(&["--device-type", spec.device_type.option_name()]));
            }
            if !spec.params.is_empty() {
                let params: Vec<Param> = spec.params.iter().map(rtgt_mgmt::LunParam::to_param).collect();
                args.extend(w(&["--params", &joined(&params)]));
            }
            vec![line(args)]
        }
        // One call for all of a LUN's changes: the daemon checks them all before it applies any.
        Op::LogicalUnit(LunOp::Update { tid, lun, changes }) => {
            let params: Vec<Param> = changes.iter().map(rtgt_mgmt::LunChange::to_param).collect();
            let target = w(&["--tid", &tid.to_string(), "--lun", &lun.to_string(), "--params", &joined(&params)]);
            vec![line([base("logicalunit", "update"), target].concat())]
        }
        Op::LogicalUnit(LunOp::Delete { tid, lun }) => {
            vec![line(
                [base("logicalunit", "delete"), w(&["--tid", &tid.to_string(), "--lun", &lun.to_string()])].concat(),
            )]
        }
        Op::Account(AccountOp::New { user, password }) => {
            vec![line([base("account", "new"), w(&["--user", user, "--password", password])].concat())]
        }
        Op::Account(AccountOp::Bind { tid, user, outgoing })
        | Op::Account(AccountOp::Unbind { tid, user, outgoing }) => {
            let verb = if matches!(op, Op::Account(AccountOp::Bind { .. })) { "bind" } else { "unbind" };
            let mut args = [base("account", verb), w(&["--tid", &tid.to_string(), "--user", user])].concat();
            if *outgoing {
                args.push("--outgoing".into());
            }
            vec![line(args)]
        }
        Op::Account(AccountOp::Delete { user }) => {
            vec![line([base("account", "delete"), w(&["--user", user])].concat())]
        }
        Op::System(SystemOp::Update { params }) => params
            .iter()
            .map(|p| {
                line([w(&["--mode", "system", "--op", "update", "--name", &p.name, "--value", &p.value])].concat())
            })
            .collect(),
        // The planner makes no other request; say so rather than print something unrunnable.
        other => vec![format!("# (no tgtadm line for {other:?})")],
    }
}

fn joined(params: &[Param]) -> String {
    params.iter().map(|p| format!("{}={}", p.name, p.value)).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtgt_mgmt::LunSpec;

    #[test]
    fn lines_are_quoted_for_a_shell() {
        let op = Op::Account(AccountOp::New { user: "bob smith".into(), password: "it's $HOME".into() });
        assert_eq!(
            lines(&op, "tgtadm"),
            ["tgtadm --lld iscsi --mode account --op new --user 'bob smith' --password 'it'\\''s $HOME'"]
        );
        let mut spec = LunSpec::disk(None);
        spec.store =
            rtgt_mgmt::StoreSpec { size: Some(1048576), ..rtgt_mgmt::StoreSpec::of(rtgt_mgmt::StoreKind::Memory) };
        spec.params = vec![rtgt_mgmt::LunParam::VendorId("A B".into())];
        let op = Op::LogicalUnit(LunOp::New { tid: 2, lun: 1, spec });
        assert_eq!(
            lines(&op, "tgtadm -C 3"),
            ["tgtadm -C 3 --lld iscsi --mode logicalunit --op new --tid 2 --lun 1 --bstype memory \
              --bsopts size=1048576 --params 'vendor_id=A B'"]
        );
        let op = Op::Target(TargetOp::Update {
            tid: 1,
            params: vec![Param::new("HeaderDigest", "None,CRC32C"), Param::new("TargetAlias", "x y")],
        });
        assert_eq!(lines(&op, "tgtadm").len(), 2);
        let changes = vec![
            rtgt_mgmt::LunChange::Set(rtgt_mgmt::LunParam::VendorId("ACME".into())),
            rtgt_mgmt::LunChange::Set(rtgt_mgmt::LunParam::Readonly(true)),
        ];
        assert_eq!(
            lines(&Op::LogicalUnit(LunOp::Update { tid: 2, lun: 1, changes }), "tgtadm"),
            ["tgtadm --lld iscsi --mode logicalunit --op update --tid 2 --lun 1 --params vendor_id=ACME,readonly=1"]
        );
        // A cd/dvd LUN: tgtadm's own name for the type, which it parses back.
        let spec = LunSpec { device_type: DeviceType::Cd, ..LunSpec::disk(Some("/srv/d.iso".into())) };
        let op = Op::LogicalUnit(LunOp::New { tid: 2, lun: 3, spec });
        assert_eq!(
            lines(&op, "tgtadm"),
            ["tgtadm --lld iscsi --mode logicalunit --op new --tid 2 --lun 3 --backing-store /srv/d.iso --device-type cd"]
        );
    }
}
