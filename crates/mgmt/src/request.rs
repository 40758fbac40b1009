//! What a client asks of the daemon: the transport (lld), the object (mode) and the operation, each
//! operation carrying exactly the arguments it needs, already parsed and typed by the client.
//!
//! Every tgt 1.0.x mode has its variant of [`Op`]; rtgt's additions (LUN show, session delete, forced
//! system delete) are marked where they are.

use crate::{LunChange, LunParam, StoreSpec};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// One management request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The transport the request is about (tgt's `--lld`).
    pub lld: Lld,
    pub op: Op,
}

impl Request {
    pub fn iscsi(op: Op) -> Self {
        Request { lld: Lld::Iscsi, op }
    }
}

/// Low-level drivers (transports). rtgt has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lld {
    Iscsi,
    /// vhost-user-scsi: targets served to VMs on unix sockets.
    Vhost,
}

impl Lld {
    pub fn name(self) -> &'static str {
        match self {
            Lld::Iscsi => "iscsi",
            Lld::Vhost => "vhost",
        }
    }
}

/// The operation, grouped by tgt's `--mode`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Target(TargetOp),
    LogicalUnit(LunOp),
    System(SystemOp),
    Account(AccountOp),
    Portal(PortalOp),
    Lld(LldOp),
    Session(SessionOp),
    Connection(ConnectionOp),
}

/// `--mode account`: CHAP accounts, kept by the daemon and bound to targets (tid 0: discovery).
/// `Debug` masks the password, so that logging a request never writes a secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountOp {
    New {
        user: String,
        password: String,
    },
    Delete {
        user: String,
    },
    /// `outgoing`: the account the target answers mutual CHAP with (one per target).
    Bind {
        tid: u32,
        user: String,
        outgoing: bool,
    },
    Unbind {
        tid: u32,
        user: String,
        outgoing: bool,
    },
    /// Every account (`Reply::AccountList`); passwords only when `secrets` (tgt-admin --dump).
    Show {
        #[serde(default)]
        secrets: bool,
    },
}

impl fmt::Debug for AccountOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountOp::New { user, .. } => {
                f.debug_struct("New").field("user", user).field("password", &"********").finish()
            }
            AccountOp::Delete { user } => f.debug_struct("Delete").field("user", user).finish(),
            AccountOp::Bind { tid, user, outgoing } => {
                f.debug_struct("Bind").field("tid", tid).field("user", user).field("outgoing", outgoing).finish()
            }
            AccountOp::Unbind { tid, user, outgoing } => {
                f.debug_struct("Unbind").field("tid", tid).field("user", user).field("outgoing", outgoing).finish()
            }
            AccountOp::Show { secrets } => f.debug_struct("Show").field("secrets", secrets).finish(),
        }
    }
}

/// `--mode portal`: the addresses iSCSI listens on, changed at run time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortalOp {
    New { address: SocketAddr },
    Delete { address: SocketAddr },
    Show,
}

/// `--mode lld`: the transport driver itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LldOp {
    Start,
    Stop,
    Show,
}

/// `--mode session`: the I_T nexuses of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionOp {
    /// `Reply::Sessions`: every session of the target, or the one `sid` names.
    Show { tid: u32, sid: Option<u64> },
    /// Close the session (rtgt; tgt 1.0.85 refuses): the initiator sees its connections drop.
    Delete { tid: u32, sid: u64 },
}

/// `--mode conn`: the connections of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionOp {
    /// `Reply::Sessions`, narrowed to `sid` and `cid` when given.
    Show {
        tid: u32,
        sid: Option<u64>,
        cid: Option<u16>,
    },
    Delete {
        tid: u32,
        sid: u64,
        cid: u16,
    },
}

/// `--mode target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetOp {
    New {
        tid: u32,
        name: String,
    },
    /// With `force`, sessions are closed first; without it a target with sessions is refused.
    Delete {
        tid: u32,
        force: bool,
    },
    /// All targets, or the one `tid` names (`Reply::TargetList`).
    Show {
        tid: Option<u32>,
    },
    Bind {
        tid: u32,
        rules: Vec<AclEntry>,
    },
    Unbind {
        tid: u32,
        rules: Vec<AclEntry>,
    },
    /// `--name N --value V`, or several pairs at once.
    Update {
        tid: u32,
        params: Vec<Param>,
    },
}

/// `--mode logicalunit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LunOp {
    New {
        tid: u32,
        lun: u64,
        spec: LunSpec,
    },
    Delete {
        tid: u32,
        lun: u64,
    },
    /// `--params vendor_id=...,readonly=1,capacity=reload`, checked by the client.
    Update {
        tid: u32,
        lun: u64,
        changes: Vec<LunChange>,
    },
    /// One LUN as `Reply::Lun` (an rtgt addition; tgt has no LUN show).
    Show {
        tid: u32,
        lun: u64,
    },
    /// The command counters of one LUN, or of every LUN of the target, as `Reply::LunStats` (an
    /// rtgt addition: what /metrics reports, for people without Prometheus).
    Stats {
        tid: u32,
        lun: Option<u64>,
    },
}

/// `--mode system`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemOp {
    Show,
    /// Stop the daemon; sessions are logged out. Refused while targets exist, as tgt does, unless
    /// `force` (an rtgt addition).
    Delete {
        force: bool,
    },
    /// `--name State --value offline|ready`, `--name debug --value on|off`.
    Update {
        params: Vec<Param>,
    },
}

/// A `name=value` pair: `--name/--value` or one item of `--params`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub value: String,
}

impl Param {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Param { name: name.into(), value: value.into() }
    }
}

/// Everything `--op new --mode logicalunit` may say about the new LUN, checked by the client that
/// read it: the store typed ([`StoreSpec`]), the parameters typed ([`LunParam`]). `Debug` masks
/// secrets in the store's options (an rbd `key=`), so that logging a request never writes one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LunSpec {
    pub device_type: DeviceType,
    /// `--backing-store`: a path (rdwr, aio) or, for rbd, `[pool/]image[@snap]`.
    #[serde(default)]
    pub backing_store: Option<String>,
    /// `--bstype`, `--bsopts`, `--bsoflags`.
    #[serde(default)]
    pub store: StoreSpec,
    /// `--blocksize`; None means 512.
    #[serde(default)]
    pub block_size: Option<u32>,
    /// `--params k=v,...`: tgt's LUN parameters, applied before the unit is first seen.
    #[serde(default)]
    pub params: Vec<LunParam>,
}

impl LunSpec {
    /// A disk on `backing_store` with every other choice left to the daemon.
    pub fn disk(backing_store: Option<String>) -> Self {
        LunSpec {
            device_type: DeviceType::Disk,
            backing_store,
            store: StoreSpec::default(),
            block_size: None,
            params: Vec::new(),
        }
    }
}

/// `bsopts` fit for a log: the value of every `key=` option (an inline cephx secret) replaced by
/// asterisks, the rest as given (a `keyring=` path is no secret). Options are split on ';' and ','
/// as the backing stores split them, so what a store would take as the key is what is masked.
pub fn masked_bsopts(bsopts: &str) -> String {
    let mut out = String::with_capacity(bsopts.len());
    let mut rest = bsopts;
    loop {
        let end = rest.find([';', ',']).unwrap_or(rest.len());
        let (opt, tail) = rest.split_at(end);
        match opt.split_once('=') {
            Some((name, _)) if name.trim().eq_ignore_ascii_case("key") => {
                out.push_str(name);
                out.push_str("=********");
            }
            _ => out.push_str(opt),
        }
        let mut tail = tail.chars();
        match tail.next() {
            Some(separator) => out.push(separator),
            None => return out,
        }
        rest = tail.as_str();
    }
}

/// SCSI device types as tgt names them (`--device-type`, "Type:" in show).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    Disk,
    Cd,
    Tape,
    Changer,
    Osd,
    Passthrough,
    /// The automatic LUN 0 (storage array controller); never created with `--device-type`.
    Controller,
}

impl DeviceType {
    /// The name `show` prints.
    pub fn name(self) -> &'static str {
        match self {
            DeviceType::Disk => "disk",
            DeviceType::Cd => "cd/dvd",
            DeviceType::Tape => "tape",
            DeviceType::Changer => "changer",
            DeviceType::Osd => "osd",
            DeviceType::Passthrough => "passthrough",
            DeviceType::Controller => "controller",
        }
    }

    /// The name `--device-type` and targets.conf's `device-type` take (what `from_str` parses
    /// back): tgt-admin's `--pretend` and `--dump` write this one, not the `show` name.
    pub fn option_name(self) -> &'static str {
        match self {
            DeviceType::Cd => "cd",
            DeviceType::Passthrough => "pt",
            other => other.name(),
        }
    }
}

/// Not one of tgt's `--device-type` names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown target type: {0}")]
pub struct UnknownDeviceType(pub String);

impl FromStr for DeviceType {
    type Err = UnknownDeviceType;
    /// The names tgtadm accepts for `--device-type`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disk" => Ok(DeviceType::Disk),
            "cd" => Ok(DeviceType::Cd),
            "tape" | "ssc" => Ok(DeviceType::Tape),
            "changer" => Ok(DeviceType::Changer),
            "osd" => Ok(DeviceType::Osd),
            "pt" => Ok(DeviceType::Passthrough),
            other => Err(UnknownDeviceType(other.to_string())),
        }
    }
}

/// One access rule of a target (`--initiator-address` / `--initiator-name`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AclEntry {
    /// `ALL`: any initiator address.
    All,
    Address(IpAddr),
    Network {
        address: IpAddr,
        prefix: u8,
    },
    InitiatorName(String),
}

impl AclEntry {
    /// Parse `--initiator-address`: `ALL`, an IPv4/IPv6 address, or `address/prefix`.
    pub fn parse_address(text: &str) -> Option<AclEntry> {
        if text == "ALL" {
            return Some(AclEntry::All);
        }
        match text.split_once('/') {
            None => text.parse().ok().map(AclEntry::Address),
            Some((addr, prefix)) => {
                let address: IpAddr = addr.parse().ok()?;
                let prefix: u8 = prefix.parse().ok()?;
                let max = if address.is_ipv4() { 32 } else { 128 };
                (prefix <= max).then_some(AclEntry::Network { address, prefix })
            }
        }
    }

    pub fn is_name(&self) -> bool {
        matches!(self, AclEntry::InitiatorName(_))
    }
}

impl fmt::Display for AclEntry {
    /// As `show` lists it under "ACL information:".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AclEntry::All => f.write_str("ALL"),
            AclEntry::Address(a) => write!(f, "{a}"),
            AclEntry::Network { address, prefix } => write!(f, "{address}/{prefix}"),
            AclEntry::InitiatorName(n) => f.write_str(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_addresses_parse() {
        assert_eq!(AclEntry::parse_address("ALL"), Some(AclEntry::All));
        assert_eq!(AclEntry::parse_address("10.0.0.1"), Some(AclEntry::Address("10.0.0.1".parse().unwrap())));
        assert_eq!(
            AclEntry::parse_address("192.168.1.0/24"),
            Some(AclEntry::Network { address: "192.168.1.0".parse().unwrap(), prefix: 24 })
        );
        assert_eq!(AclEntry::parse_address("fe80::1/64").unwrap().to_string(), "fe80::1/64");
        assert_eq!(AclEntry::parse_address("10.0.0.0/33"), None);
        assert_eq!(AclEntry::parse_address("frob"), None);
        assert_eq!(AclEntry::parse_address("all"), None);
        assert_eq!(AclEntry::parse_address("1.2.3.4/"), None);
    }

    #[test]
    fn account_passwords_never_reach_debug_output() {
        let op = Op::Account(AccountOp::New { user: "alice".into(), password: "s3cret-pw".into() });
        let text = format!("{:?}", Request::iscsi(op));
        assert!(text.contains("alice") && !text.contains("s3cret-pw"), "{text}");
    }

    #[test]
    fn device_type_names() {
        assert_eq!("ssc".parse::<DeviceType>().unwrap(), DeviceType::Tape);
        assert_eq!("cd".parse::<DeviceType>().unwrap().name(), "cd/dvd");
        assert_eq!("frob".parse::<DeviceType>().unwrap_err().to_string(), "unknown target type: frob");
        assert!("controller".parse::<DeviceType>().is_err());
        // What tgt-admin writes for a LUN parses back to the same type.
        for t in [DeviceType::Disk, DeviceType::Cd, DeviceType::Tape, DeviceType::Changer, DeviceType::Passthrough] {
            assert_eq!(t.option_name().parse::<DeviceType>().unwrap(), t);
        }
    }

    #[test]
    fn an_inline_rbd_key_never_reaches_a_log() {
        let bsopts = "conf=/etc/ceph/ceph.conf;id=admin;key=AQSECRET==,keyring=/etc/ceph/k; KEY = AQOTHER;timeout=3";
        let spec = LunSpec {
            store: StoreSpec::parse(Some("rbd"), bsopts, "").unwrap(),
            ..LunSpec::disk(Some("rbd/img".into()))
        };
        let request =
            Request { lld: Lld::Iscsi, op: Op::LogicalUnit(LunOp::New { tid: 1, lun: 1, spec: spec.clone() }) };
        for text in [format!("{request:?}"), format!("{request:#?}"), format!("{spec:?}")] {
            assert!(!text.contains("AQSECRET") && !text.contains("AQOTHER"), "{text}");
            assert!(text.contains("keyring=/etc/ceph/k") && text.contains("rbd/img"), "{text}");
        }
        assert_eq!(
            masked_bsopts("conf=/c;key=AQSECRET==,keyring=/k; KEY = x;"),
            "conf=/c;key=********,keyring=/k; KEY =********;"
        );
        assert_eq!(masked_bsopts("size=1G"), "size=1G");
        assert_eq!(masked_bsopts(""), "");
        assert_eq!(masked_bsopts("key"), "key", "no value, nothing to hide");
    }
}
