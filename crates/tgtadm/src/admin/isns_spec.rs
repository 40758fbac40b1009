//! targets.conf's iSNS keys (tgt's iSNSServerIP, iSNSServerPort, iSNSAccessControl, iSNS): checked
//! as tgtd will check them, read back from the running daemon, and compared for `--update`.

use super::conf::{ConfError, Directive};
use rtgt_mgmt::{IsnsView, Param};

/// tgt's iSNS keys in the order they are applied, with the value of each a new tgtd has.
pub const ISNS_KEYS: [(&str, &str); 4] =
    [("iSNSServerIP", ""), ("iSNSServerPort", "3205"), ("iSNSAccessControl", "Off"), ("iSNS", "Off")];

/// An iSNS key's value, checked as tgtd will (an address, a port, On or Off).
pub(super) fn isns_param(d: &Directive) -> Result<Param, ConfError> {
    let (name, _) = ISNS_KEYS.iter().find(|(k, _)| k.eq_ignore_ascii_case(&d.key)).expect("an iSNS key");
    let value = d.value.trim();
    let valid = match *name {
        "iSNSServerIP" => value.parse::<std::net::IpAddr>().is_ok(),
        "iSNSServerPort" => value.parse::<u16>().is_ok_and(|p| p != 0),
        _ => value.eq_ignore_ascii_case("on") || value.eq_ignore_ascii_case("off"),
    };
    if !valid {
        return Err(ConfError {
            origin: d.origin.clone(),
            message: format!("'{value}' is not a valid value for {name}"),
        });
    }
    Ok(Param::new(*name, value))
}

/// The daemon's iSNS settings as the file would give them; none while they are a new tgtd's.
pub fn isns_from_running(view: Option<&IsnsView>) -> Vec<Param> {
    let Some(v) = view.filter(|v| v.enabled || v.access_control || !v.server_ip.is_empty() || v.server_port != 3205)
    else {
        return Vec::new();
    };
    let on_off = |on: bool| if on { "On" } else { "Off" };
    let mut params = Vec::new();
    if !v.server_ip.is_empty() {
        params.push(Param::new("iSNSServerIP", v.server_ip.as_str()));
    }
    params.push(Param::new("iSNSServerPort", v.server_port.to_string()));
    params.push(Param::new("iSNSAccessControl", on_off(v.access_control)));
    params.push(Param::new("iSNS", on_off(v.enabled)));
    params
}

/// The iSNS settings of `want` that the daemon (`have`) does not have yet, in applying order.
pub fn isns_changes(want: &[Param], have: &[Param]) -> Vec<Param> {
    let current = |name: &str| match have.iter().find(|p| p.name == name) {
        Some(p) => p.value.clone(),
        None => ISNS_KEYS.iter().find(|(k, _)| *k == name).map_or("", |(_, default)| default).to_string(),
    };
    want.iter().filter(|p| !p.value.eq_ignore_ascii_case(&current(&p.name))).cloned().collect()
}
