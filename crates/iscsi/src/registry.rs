//! The iSCSI targets the daemon serves, their access rules, and their sessions.
//! SKELETON: tgtd manages these through the methods below.

use rtgt_scsi::Target;
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
    // acl rules, alias, configured params, sessions ...
}

impl IscsiTarget {
    pub fn new(scsi: Arc<Target>) -> Arc<Self> {
        let _ = scsi;
        todo!()
    }
    pub fn tid(&self) -> u32 {
        self.scsi.tid
    }
    pub fn name(&self) -> &str {
        &self.scsi.name
    }
    /// Add a rule; duplicates are an error.
    pub fn bind(&self, rule: AclRule) -> Result<(), String> {
        let _ = rule;
        todo!()
    }
    /// Remove a rule; absent is an error.
    pub fn unbind(&self, rule: &AclRule) -> Result<(), String> {
        let _ = rule;
        todo!()
    }
    pub fn acl(&self) -> Vec<AclRule> {
        todo!()
    }
    pub fn sessions(&self) -> Vec<SessionInfo> {
        todo!()
    }
    /// Close every session (used by delete --force and shutdown).
    pub fn close_sessions(&self) {
        todo!()
    }
}

#[derive(Debug, Default)]
pub struct Registry {
    // targets by tid, portals
}

impl Registry {
    pub fn new() -> Arc<Self> {
        todo!()
    }
    /// Errors when the tid or the name is taken.
    pub fn add_target(&self, target: Arc<IscsiTarget>) -> Result<(), String> {
        let _ = target;
        todo!()
    }
    pub fn remove_target(&self, tid: u32) -> Option<Arc<IscsiTarget>> {
        let _ = tid;
        todo!()
    }
    pub fn target(&self, tid: u32) -> Option<Arc<IscsiTarget>> {
        let _ = tid;
        todo!()
    }
    pub fn target_by_name(&self, name: &str) -> Option<Arc<IscsiTarget>> {
        let _ = name;
        todo!()
    }
    /// All targets by tid ascending.
    pub fn targets(&self) -> Vec<Arc<IscsiTarget>> {
        todo!()
    }
    /// The portals listening now (as bound; wildcard addresses are resolved per connection in
    /// SendTargets answers).
    pub fn portals(&self) -> Vec<SocketAddr> {
        todo!()
    }
}
