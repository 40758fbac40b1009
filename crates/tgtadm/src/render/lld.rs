//! `--mode lld --op show`, as Debian's tgtadm 1.0.85 prints it.

use rtgt_mgmt::LldView;
use std::fmt::Write;

/// `--mode lld --op show`: each driver, the targets it serves below it.
pub fn llds(list: &[LldView]) -> String {
    let mut out = String::from("LLDs:\n");
    for lld in list {
        let _ = writeln!(out, "    {}: {}", lld.name, lld.state);
        for target in &lld.targets {
            let _ = writeln!(out, "        Target {}: {}", target.tid, target.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtgt_mgmt::LldTarget;

    #[test]
    fn lld_list_golden() {
        let list = [LldView {
            name: "iscsi".into(),
            state: "ready".into(),
            targets: vec![LldTarget { tid: 1, name: "iqn.2001-04.com.example:t1".into() }],
        }];
        assert_eq!(llds(&list), "LLDs:\n    iscsi: ready\n        Target 1: iqn.2001-04.com.example:t1\n");
    }
}
