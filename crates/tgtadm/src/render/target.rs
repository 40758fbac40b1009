//! `--mode target --op show`: each target with its nexuses, LUNs, accounts and ACL.

use super::logicalunit::lun;
use rtgt_mgmt::TargetView;
use std::fmt::Write;

/// One target, as in `--mode target --op show`.
pub fn target(t: &TargetView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Target {}: {}", t.tid, t.name);
    out.push_str("    System information:\n");
    let _ = writeln!(out, "        Driver: {}", t.driver.name());
    let _ = writeln!(out, "        State: {}", t.state.name());
    if let Some(interval) = t.nop_interval {
        let _ = writeln!(out, "        Nop interval: {interval}");
    }
    if let Some(count) = t.nop_count {
        let _ = writeln!(out, "        Nop count: {count}");
    }
    out.push_str("    I_T nexus information:\n");
    for nexus in &t.nexuses {
        let _ = writeln!(out, "        I_T nexus: {}", nexus.id);
        let alias = nexus.alias.as_deref().unwrap_or("none");
        let _ = writeln!(out, "            Initiator: {} alias: {alias}", nexus.initiator);
        for conn in &nexus.connections {
            let _ = writeln!(out, "            Connection: {}", conn.cid);
            let _ = writeln!(out, "                IP Address: {}", conn.initiator_address.ip());
        }
    }
    out.push_str("    LUN information:\n");
    for view in &t.luns {
        out.push_str(&lun(view, 8));
    }
    out.push_str("    Account information:\n");
    for account in &t.accounts {
        let suffix = if account.outgoing { " (outgoing)" } else { "" };
        let _ = writeln!(out, "        {}{suffix}", account.user);
    }
    out.push_str("    ACL information:\n");
    // Address rules first, then initiator names, as tgt keeps them in two lists.
    for rule in t.acl.iter().filter(|r| !r.is_name()).chain(t.acl.iter().filter(|r| r.is_name())) {
        let _ = writeln!(out, "        {rule}");
    }
    out
}
