//! The iSCSI targets the daemon serves, their access rules, configured parameters and sessions, and
//! the portals being listened on. tgtd manages these; the login code reads them.

use crate::params::TargetParams;
use crate::session::Session;
use parking_lot::Mutex;
use rtgt_scsi::Target;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Who may log in to a target (tgtadm --op bind --initiator-address / --initiator-name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AclRule {
    /// "ALL"
    Any,
    Address(IpAddr),
    /// A network: address and prefix length.
    Network(IpAddr, u8),
    InitiatorName(String),
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (canonical(ip), canonical(net)) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let p = prefix.min(32) as u32;
            let mask = if p == 0 { 0 } else { u32::MAX << (32 - p) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let p = prefix.min(128) as u32;
            let mask = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl AclRule {
    /// tgt's rule: a login is allowed when an address rule matches the initiator's address or a
    /// name rule matches its name.
    pub fn allows(&self, initiator_name: &str, addr: IpAddr) -> bool {
        match self {
            AclRule::Any => true,
            AclRule::Address(a) => canonical(*a) == canonical(addr),
            AclRule::Network(n, p) => in_network(addr, *n, *p),
            AclRule::InitiatorName(n) => n.eq_ignore_ascii_case(initiator_name),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub cid: u16,
    pub initiator_address: SocketAddr,
    pub target_address: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Target session identifying handle.
    pub tsih: u16,
    pub initiator_name: String,
    pub isid: [u8; 6],
    pub connections: Vec<ConnectionInfo>,
}

#[derive(Debug)]
pub struct IscsiTarget {
    pub scsi: Arc<Target>,
    acl: Mutex<Vec<AclRule>>,
    params: Mutex<TargetParams>,
    pub(crate) sessions: Mutex<Vec<Arc<Session>>>,
}

impl IscsiTarget {
    pub fn new(scsi: Arc<Target>) -> Arc<Self> {
        Arc::new(IscsiTarget {
            scsi,
            acl: Mutex::new(Vec::new()),
            params: Mutex::new(TargetParams::default()),
            sessions: Mutex::new(Vec::new()),
        })
    }
    pub fn tid(&self) -> u32 {
        self.scsi.tid
    }
    pub fn name(&self) -> &str {
        &self.scsi.name
    }
    /// Add a rule; duplicates are an error.
    pub fn bind(&self, rule: AclRule) -> Result<(), String> {
        let mut acl = self.acl.lock();
        if acl.contains(&rule) {
            return Err("this access rule already exists".to_string());
        }
        acl.push(rule);
        Ok(())
    }
    /// Remove a rule; absent is an error.
    pub fn unbind(&self, rule: &AclRule) -> Result<(), String> {
        let mut acl = self.acl.lock();
        match acl.iter().position(|r| r == rule) {
            Some(i) => {
                acl.remove(i);
                Ok(())
            }
            None => Err("this access rule does not exist".to_string()),
        }
    }
    pub fn acl(&self) -> Vec<AclRule> {
        self.acl.lock().clone()
    }
    /// Whether an initiator may log in (no rules: nobody, as in tgt).
    pub fn allows(&self, initiator_name: &str, addr: IpAddr) -> bool {
        self.acl.lock().iter().any(|r| r.allows(initiator_name, addr))
    }
    /// Change one negotiation default (iSCSI key name, e.g. "MaxRecvDataSegmentLength"); applies to
    /// later logins.
    pub fn set_param(&self, name: &str, value: &str) -> Result<(), String> {
        self.params.lock().set(name, value)
    }
    /// The configured parameters as (key, value) pairs, for show.
    pub fn params(&self) -> Vec<(String, String)> {
        self.params.lock().list()
    }
    /// The configured parameters, typed.
    pub fn target_params(&self) -> TargetParams {
        self.params.lock().clone()
    }
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let sessions: Vec<Arc<Session>> = self.sessions.lock().clone();
        sessions.iter().map(|s| s.info()).collect()
    }
    /// Close every session (used by delete --force and shutdown).
    pub fn close_sessions(&self) {
        let sessions: Vec<Arc<Session>> = self.sessions.lock().clone();
        for s in sessions {
            s.close_connections();
        }
    }
    pub(crate) fn find_session(&self, pick: impl Fn(&Session) -> bool) -> Option<Arc<Session>> {
        self.sessions.lock().iter().find(|s| pick(s)).cloned()
    }
    pub(crate) fn remove_session(&self, s: &Arc<Session>) {
        self.sessions.lock().retain(|x| !Arc::ptr_eq(x, s));
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    targets: Mutex<BTreeMap<u32, Arc<IscsiTarget>>>,
    portals: Mutex<Vec<SocketAddr>>,
    last_tsih: Mutex<u16>,
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::new(Registry::default())
    }
    /// Errors when the tid or the name is taken.
    pub fn add_target(&self, target: Arc<IscsiTarget>) -> Result<(), String> {
        let mut targets = self.targets.lock();
        if targets.contains_key(&target.tid()) {
            return Err(format!("target id {} already exists", target.tid()));
        }
        if targets.values().any(|t| t.name() == target.name()) {
            return Err(format!("target name {} already exists", target.name()));
        }
        targets.insert(target.tid(), target);
        Ok(())
    }
    pub fn remove_target(&self, tid: u32) -> Option<Arc<IscsiTarget>> {
        self.targets.lock().remove(&tid)
    }
    pub fn target(&self, tid: u32) -> Option<Arc<IscsiTarget>> {
        self.targets.lock().get(&tid).cloned()
    }
    pub fn target_by_name(&self, name: &str) -> Option<Arc<IscsiTarget>> {
        // iSCSI names compare case-insensitively (RFC 3722 normalises them to lower case).
        self.targets.lock().values().find(|t| t.name().eq_ignore_ascii_case(name)).cloned()
    }
    /// All targets by tid ascending.
    pub fn targets(&self) -> Vec<Arc<IscsiTarget>> {
        self.targets.lock().values().cloned().collect()
    }
    /// The portals listening now (as bound; wildcard addresses are resolved per connection in
    /// SendTargets answers).
    pub fn portals(&self) -> Vec<SocketAddr> {
        self.portals.lock().clone()
    }
    pub(crate) fn add_portal(&self, addr: SocketAddr) {
        self.portals.lock().push(addr);
    }
    pub(crate) fn remove_portal(&self, addr: SocketAddr) {
        self.portals.lock().retain(|a| *a != addr);
    }
    /// A TSIH not used by any session of any target (never 0, RFC 7143 11.12.6).
    pub(crate) fn allocate_tsih(&self) -> u16 {
        let targets = self.targets();
        let mut last = self.last_tsih.lock();
        for _ in 0..=u16::MAX as u32 {
            *last = last.wrapping_add(1);
            if *last == 0 {
                continue;
            }
            let t = *last;
            if !targets.iter().any(|tg| tg.sessions.lock().iter().any(|s| s.tsih == t)) {
                return t;
            }
        }
        *last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_rules() {
        let a: IpAddr = "192.168.1.20".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.168.1.20".parse().unwrap();
        assert!(AclRule::Any.allows("x", a));
        assert!(AclRule::Address(a).allows("x", mapped));
        assert!(!AclRule::Address("192.168.1.21".parse().unwrap()).allows("x", a));
        assert!(AclRule::Network("192.168.1.0".parse().unwrap(), 24).allows("x", a));
        assert!(!AclRule::Network("192.168.2.0".parse().unwrap(), 24).allows("x", a));
        assert!(AclRule::Network("0.0.0.0".parse().unwrap(), 0).allows("x", a));
        assert!(AclRule::Network("fd00::".parse().unwrap(), 8).allows("x", "fd12::1".parse().unwrap()));
        assert!(!AclRule::Network("fd00::".parse().unwrap(), 8).allows("x", a));
        assert!(AclRule::InitiatorName("iqn.A".into()).allows("iqn.a", a));
        assert!(!AclRule::InitiatorName("iqn.a".into()).allows("iqn.b", a));
    }
}
