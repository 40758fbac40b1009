//! The iSCSI targets the daemon serves, their access rules, CHAP bindings, configured parameters and
//! sessions; the CHAP accounts, the discovery-session bindings, the system state (offline refuses new
//! logins) and the portals being listened on. tgtd manages these; the login code reads them.

use crate::accounts::{AccountError, AccountInfo, AccountStore, BoundAccounts};
use crate::counters::IscsiCounters;
use crate::limits::SessionLimit;
use crate::login::auth_guard::{FailureThrottle, RecentChallenges};
use crate::params::{NopParams, TargetParams};
use crate::session::{Session, TargetSessions};
use parking_lot::Mutex;
use rtgt_scsi::Target;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

// Kept at their old paths (`registry::SessionInfo`, the crate root) for tgtd.
pub use crate::session::info::{ConnectionInfo, SessionInfo};

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

#[derive(Debug)]
pub struct IscsiTarget {
    pub scsi: Arc<Target>,
    acl: Mutex<Vec<AclRule>>,
    accounts: Mutex<BoundAccounts>,
    params: Mutex<TargetParams>,
    nop: Mutex<NopParams>,
    /// Its sessions; each of them holds this too, to leave it when it ends.
    pub(crate) sessions: Arc<TargetSessions>,
    /// tgtadm `--mode target --op update --name state --value offline|ready`.
    offline: AtomicBool,
    /// Logins to it, CHAP failures, digest errors and Rejects on its connections.
    pub(crate) counters: IscsiCounters,
}

impl IscsiTarget {
    pub fn new(scsi: Arc<Target>) -> Arc<Self> {
        Arc::new(IscsiTarget {
            sessions: Arc::new(TargetSessions::new(scsi.clone())),
            scsi,
            acl: Mutex::new(Vec::new()),
            accounts: Mutex::new(BoundAccounts::default()),
            params: Mutex::new(TargetParams::default()),
            nop: Mutex::new(NopParams::default()),
            offline: AtomicBool::new(false),
            counters: IscsiCounters::default(),
        })
    }
    /// What happened on its logins and connections (see `counters`).
    pub fn counters(&self) -> &IscsiCounters {
        &self.counters
    }
    /// The target's own state: while offline, new logins to it are refused with 0x0301 (as the
    /// system state, but for this target alone); its existing sessions go on, as in tgt.
    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::Release);
    }
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
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
    /// Bind a CHAP account by user name: incoming (initiators log in with it; once one is bound the
    /// target requires CHAP) or, with `outgoing`, the one account the target answers mutual CHAP with.
    /// The registry does not check here that the account exists (the caller does, with
    /// `Registry::account`); a binding whose account is gone matches no login.
    pub fn bind_account(&self, user: &str, outgoing: bool) -> Result<(), AccountError> {
        self.accounts.lock().bind(user, outgoing)
    }
    pub fn unbind_account(&self, user: &str, outgoing: bool) -> Result<(), AccountError> {
        self.accounts.lock().unbind(user, outgoing)
    }
    pub fn accounts(&self) -> BoundAccounts {
        self.accounts.lock().clone()
    }
    pub(crate) fn forget_account(&self, user: &str) {
        self.accounts.lock().forget(user);
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
    /// Change NOP-In probing; connections that log in later use it. The target's one copy of its
    /// NOP settings: the daemon shows and saves what this holds.
    pub fn set_nop(&self, nop: NopParams) {
        *self.nop.lock() = nop;
    }
    pub fn nop(&self) -> NopParams {
        *self.nop.lock()
    }
    pub fn sessions(&self) -> Vec<SessionInfo> {
        self.sessions.all().iter().map(|s| s.info()).collect()
    }
    /// Force one session out (tgtadm --mode conn --op delete for its last connection): its tasks are
    /// aborted and its connections closed. False when no session has this TSIH.
    pub fn close_session(&self, tsih: u16) -> bool {
        match self.find_session(|s| s.tsih == tsih) {
            Some(s) => {
                s.end();
                true
            }
            None => false,
        }
    }
    /// Close one connection of a session; the session ends with its last connection (ERL 0). False
    /// when there is no such session or connection.
    pub fn close_connection(&self, tsih: u16, cid: u16) -> bool {
        let Some(s) = self.find_session(|s| s.tsih == tsih) else { return false };
        let conns = s.conns.lock();
        match conns.iter().find(|c| c.info.cid == cid) {
            Some(c) => {
                c.control.close();
                true
            }
            None => false,
        }
    }
    /// Close every session (used by delete --force and shutdown).
    pub fn close_sessions(&self) {
        for s in self.sessions.all() {
            s.close_connections();
        }
    }
    /// The target's own bound on sessions (MaxSessions); 0 when only the daemon's applies.
    pub(crate) fn max_sessions(&self) -> u32 {
        self.params.lock().max_sessions
    }
    pub(crate) fn find_session(&self, pick: impl Fn(&Session) -> bool) -> Option<Arc<Session>> {
        self.sessions.find(pick)
    }
}

/// A say in who may see and log in to a target beyond its own access rules: with iSNS access
/// control on, the iSNS server's discovery domains (RFC 4171 2.2.2). Answered from memory, never by
/// waiting on the network, because logins and SendTargets ask it.
pub trait TargetVisibility: Send + Sync + std::fmt::Debug {
    /// Whether the initiator named `initiator` may see and log in to the target named `target`.
    fn visible(&self, target: &str, initiator: &str) -> bool;
}

#[derive(Debug, Default)]
pub struct Registry {
    targets: Mutex<BTreeMap<u32, Arc<IscsiTarget>>>,
    portals: Mutex<Vec<SocketAddr>>,
    last_tsih: Mutex<u16>,
    accounts: Mutex<AccountStore>,
    /// tgt binds discovery accounts to "tid 0"; rtgt lets tid 0 be a real target, so discovery
    /// bindings live here, apart from every target.
    discovery_accounts: Mutex<BoundAccounts>,
    offline: AtomicBool,
    /// Challenges issued and received lately: reflection and replay checks across connections.
    pub(crate) recent_challenges: RecentChallenges,
    pub(crate) auth_throttle: FailureThrottle,
    /// How long a login may take, in milliseconds; 0 for the default.
    login_timeout_ms: AtomicU64,
    /// How long an admitted write may go without Data-Out, in milliseconds; 0 for the default.
    data_out_timeout_ms: AtomicU64,
    /// How long a socket may accept no reply bytes, in milliseconds; 0 for the default.
    send_timeout_ms: AtomicU64,
    /// The daemon-wide bound on sessions (tgtd's `--iscsi max_sessions=`).
    pub(crate) session_limit: SessionLimit,
    /// The write data all connections together may hold (tgtd's `--iscsi write_budget=`).
    pub(crate) write_budget: Arc<crate::write_budget::DaemonWriteBudget>,
    /// The read data all connections together may hold (tgtd's `--iscsi read_budget=`).
    pub(crate) read_budget: Arc<crate::read_budget::DaemonReadBudget>,
    /// Set by tgtd when iSNS access control may be used; it answers "visible" while it is off.
    visibility: Mutex<Option<Arc<dyn TargetVisibility>>>,
    /// What belongs to no target: discovery sessions, logins that named no known target.
    pub(crate) untargeted: IscsiCounters,
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::new(Registry::default())
    }
    /// A connection whose login has not completed after `limit` is dropped (a slow or stalled
    /// client cannot hold a connection forever). Applies to connections accepted afterwards.
    pub fn set_login_timeout(&self, limit: Duration) {
        self.login_timeout_ms.store(limit.as_millis().clamp(1, u64::MAX as u128) as u64, Ordering::Release);
    }
    pub fn login_timeout(&self) -> Duration {
        match self.login_timeout_ms.load(Ordering::Acquire) {
            0 => crate::limits::DEFAULT_LOGIN_TIMEOUT,
            ms => Duration::from_millis(ms),
        }
    }
    /// A write that holds write budget and receives no Data-Out PDU for `limit` is ended with
    /// CHECK CONDITION, ABORTED COMMAND, INITIATOR RESPONSE TIMEOUT, and its budget given back.
    /// Connections see a change at their next check (within the old limit).
    pub fn set_data_out_timeout(&self, limit: Duration) {
        self.data_out_timeout_ms.store(limit.as_millis().clamp(1, u64::MAX as u128) as u64, Ordering::Release);
    }
    pub fn data_out_timeout(&self) -> Duration {
        match self.data_out_timeout_ms.load(Ordering::Acquire) {
            0 => crate::limits::DEFAULT_DATA_OUT_TIMEOUT,
            ms => Duration::from_millis(ms),
        }
    }
    /// A connection whose socket accepts no bytes for `limit` while its writer has replies to send
    /// is closed (its replies, and the read budget they hold, are given back). Writers read it
    /// before each batch: a change applies to the next one.
    pub fn set_send_timeout(&self, limit: Duration) {
        self.send_timeout_ms.store(limit.as_millis().clamp(1, u64::MAX as u128) as u64, Ordering::Release);
    }
    pub fn send_timeout(&self) -> Duration {
        match self.send_timeout_ms.load(Ordering::Acquire) {
            0 => crate::limits::DEFAULT_SEND_TIMEOUT,
            ms => Duration::from_millis(ms),
        }
    }
    /// Index a target for logins. A daemon keeps one table of all its targets (tgtd's
    /// `targets.rs`, across transports) and adds and removes here only through it. Errors when the
    /// tid or the name is taken.
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
    /// Installs the second check every login and SendTargets answer makes (see `admits`).
    pub fn set_visibility(&self, visibility: Arc<dyn TargetVisibility>) {
        *self.visibility.lock() = Some(visibility);
    }
    /// Whether an initiator may see and log in to `target`: its access rules allow it, and the
    /// visibility check (iSNS discovery domains), when one is installed, agrees.
    pub fn admits(&self, target: &IscsiTarget, initiator_name: &str, addr: IpAddr) -> bool {
        if !target.allows(initiator_name, addr) {
            return false;
        }
        let visibility = self.visibility.lock().clone();
        visibility.is_none_or(|v| v.visible(target.name(), initiator_name))
    }
    /// All targets by tid ascending.
    pub fn targets(&self) -> Vec<Arc<IscsiTarget>> {
        self.targets.lock().values().cloned().collect()
    }
    /// Create a CHAP account (tgtadm --mode account --op new).
    pub fn add_account(&self, user: &str, password: &str) -> Result<(), AccountError> {
        self.accounts.lock().add(user, password)
    }
    /// Delete an account and every binding of it, on targets and for discovery, as tgt does.
    pub fn delete_account(&self, user: &str) -> Result<(), AccountError> {
        self.accounts.lock().remove(user)?;
        for t in self.targets() {
            t.forget_account(user);
        }
        self.discovery_accounts.lock().forget(user);
        Ok(())
    }
    /// Every account with its secret, by user name (for persistence and dumps; show masks secrets).
    pub fn accounts(&self) -> Vec<AccountInfo> {
        self.accounts.lock().list()
    }
    pub fn account(&self, user: &str) -> Option<AccountInfo> {
        let store = self.accounts.lock();
        store.secret(user).map(|p| AccountInfo { user: user.to_string(), password: p.to_string() })
    }
    /// Bind an existing account to discovery sessions (tgt's `--tid 0`): incoming accounts make
    /// SendTargets sessions authenticate with CHAP; the outgoing one answers mutual CHAP.
    pub fn bind_discovery_account(&self, user: &str, outgoing: bool) -> Result<(), AccountError> {
        if !self.accounts.lock().contains(user) {
            return Err(AccountError::NotFound);
        }
        self.discovery_accounts.lock().bind(user, outgoing)
    }
    pub fn unbind_discovery_account(&self, user: &str, outgoing: bool) -> Result<(), AccountError> {
        self.discovery_accounts.lock().unbind(user, outgoing)
    }
    pub fn discovery_accounts(&self) -> BoundAccounts {
        self.discovery_accounts.lock().clone()
    }
    /// System state (tgtadm --mode system --op update --name State --value offline|ready): while
    /// offline, new logins are refused with 0x0301 (service unavailable, RFC 7143 11.13.5: "the
    /// target ... is not currently operational"); sessions already logged in go on.
    pub fn set_offline(&self, offline: bool) {
        self.offline.store(offline, Ordering::Release);
    }
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }
    /// At most `max` sessions (normal and discovery, every target) at once; logins past it are
    /// refused with 0x0302 (out of resources). Sessions already above a lowered bound go on.
    pub fn set_max_sessions(&self, max: u32) {
        self.session_limit.set_max(max);
    }
    /// Bound the write data all connections together may hold (see `write_budget`).
    pub fn set_write_budget(&self, bytes: u64) {
        self.write_budget.set_limit(bytes);
    }
    pub fn write_budget(&self) -> u64 {
        self.write_budget.limit()
    }
    /// Write data all connections hold now.
    pub fn write_data_held(&self) -> u64 {
        self.write_budget.used()
    }
    /// Writes whose R2Ts waited for room so far: (in their connection's budget, in the daemon's).
    pub fn write_budget_waits(&self) -> (u64, u64) {
        self.write_budget.waits()
    }
    /// Bound the read data all connections together may hold (see `read_budget`).
    pub fn set_read_budget(&self, bytes: u64) {
        self.read_budget.set_limit(bytes);
    }
    pub fn read_budget(&self) -> u64 {
        self.read_budget.limit()
    }
    /// Read data all connections hold now (READs of at least `read_budget::SMALL_READ`).
    pub fn read_data_held(&self) -> u64 {
        self.read_budget.used()
    }
    /// READs that waited for room so far: (in their connection's budget, in the daemon's).
    pub fn read_budget_waits(&self) -> (u64, u64) {
        self.read_budget.waits()
    }
    pub fn max_sessions(&self) -> u32 {
        self.session_limit.max()
    }
    /// The counters of logins and connections that belong to no target (discovery sessions,
    /// logins naming no known target); each target has its own (`IscsiTarget::counters`).
    pub fn untargeted_counters(&self) -> &IscsiCounters {
        &self.untargeted
    }
    /// Sessions in existence now, on every target, discovery sessions included.
    pub fn session_count(&self) -> u32 {
        self.session_limit.count()
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
            if !targets.iter().any(|tg| tg.sessions.find(|s| s.tsih == t).is_some()) {
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

    fn target(tid: u32, name: &str) -> Arc<IscsiTarget> {
        IscsiTarget::new(Target::new(tid, name.to_string()))
    }

    #[test]
    fn accounts_and_bindings() {
        let r = Registry::new();
        let t = target(1, "iqn.2024-01.test:a");
        r.add_target(t.clone()).unwrap();
        r.add_account("alice", "alicesecret12").unwrap();
        r.add_account("tgt", "targetsecret34").unwrap();
        assert_eq!(r.add_account("alice", "x"), Err(AccountError::Exists));
        assert_eq!(r.account("alice").unwrap().password, "alicesecret12");
        t.bind_account("alice", false).unwrap();
        t.bind_account("tgt", true).unwrap();
        assert!(t.accounts().requires_chap());
        assert_eq!(r.bind_discovery_account("nobody", false), Err(AccountError::NotFound));
        r.bind_discovery_account("alice", false).unwrap();
        r.bind_discovery_account("tgt", true).unwrap();
        assert_eq!(r.discovery_accounts().outgoing.as_deref(), Some("tgt"));
        // Deleting an account removes it everywhere it was bound.
        r.delete_account("tgt").unwrap();
        assert_eq!(t.accounts().outgoing, None);
        assert_eq!(r.discovery_accounts().outgoing, None);
        assert_eq!(r.delete_account("tgt"), Err(AccountError::NotFound));
        r.unbind_discovery_account("alice", false).unwrap();
        assert!(!r.discovery_accounts().requires_chap());
        assert_eq!(r.accounts().iter().map(|a| a.user.as_str()).collect::<Vec<_>>(), vec!["alice"]);
    }

    #[test]
    fn offline_state_and_missing_sessions() {
        let r = Registry::new();
        assert!(!r.is_offline());
        r.set_offline(true);
        assert!(r.is_offline());
        r.set_offline(false);
        assert!(!r.is_offline());
        let t = target(1, "iqn.2024-01.test:a");
        assert!(!t.is_offline());
        t.set_offline(true);
        assert!(t.is_offline() && !r.is_offline(), "a target's state is its own");
        t.set_offline(false);
        assert!(!t.is_offline());
        assert!(!t.close_session(1));
        assert!(!t.close_connection(1, 0));
    }
}
