//! `--mode system --op show`: the daemon's state, drivers, backing stores, device types, limits.

use rtgt_mgmt::SystemView;
use std::fmt::Write;

/// `--mode system --op show`.
pub fn system(s: &SystemView) -> String {
    let mut out = String::from("System:\n");
    let _ = writeln!(out, "    State: {}", s.state.name());
    let _ = writeln!(out, "    debug: {}", if s.debug { "on" } else { "off" });
    out.push_str("LLDs:\n");
    for lld in &s.llds {
        let _ = writeln!(out, "    {}: {}", lld.name, lld.state);
    }
    out.push_str("Backing stores:\n");
    for bs in &s.backing_stores {
        match &bs.oflags {
            Some(flags) => {
                let _ = writeln!(out, "    {} (bsoflags {flags})", bs.name);
            }
            None => {
                let _ = writeln!(out, "    {}", bs.name);
            }
        }
    }
    out.push_str("Device types:\n");
    for dt in &s.device_types {
        let _ = writeln!(out, "    {}", dt.name());
    }
    // tgt's words and order; a daemon that reports no iSNS settings shows tgt's defaults.
    let on_off = |on: bool| if on { "On" } else { "Off" };
    let (enabled, ip, port, access) = match &s.isns {
        Some(i) => (i.enabled, i.server_ip.as_str(), i.server_port, i.access_control),
        None => (false, "", 3205, false),
    };
    let _ = write!(
        out,
        "iSNS:\n    iSNS={}\n    iSNSServerIP={ip}\n    iSNSServerPort={port}\n    iSNSAccessControl={}\n",
        on_off(enabled),
        on_off(access)
    );
    if let Some(limits) = &s.limits {
        out.push_str("Limits:\n");
        let _ = writeln!(out, "    max_sessions: {}", limits.max_sessions);
        let _ = writeln!(out, "    sessions: {}", limits.sessions);
        let _ = writeln!(out, "    write_budget: {}", size(limits.write_budget));
        let _ = writeln!(out, "    write_data_held: {}", size(limits.write_data_held));
        let _ = writeln!(out, "    read_budget: {}", size(limits.read_budget));
        let _ = writeln!(out, "    read_data_held: {}", size(limits.read_data_held));
        let _ = writeln!(out, "    login_timeout: {}s", limits.login_timeout_secs);
        let _ = writeln!(out, "    data_out_timeout: {}s", limits.data_out_timeout_secs);
        let _ = writeln!(out, "    send_timeout: {}s", limits.send_timeout_secs);
    }
    out
}

/// Bytes as `tgtd --iscsi write_budget=` (and `read_budget=`) takes them: `1G`, `512M`, `64k`, or bytes.
fn size(bytes: u64) -> String {
    match bytes {
        0 => "0".to_string(),
        b if b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}k", b >> 10),
        b => b.to_string(),
    }
}
