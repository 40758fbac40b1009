//! What the daemon answers: a typed reply or an error. The views are plain data, complete enough for
//! tgtadm to render tgt's `show` layout and for `--json` to be useful on its own.

use crate::{AclEntry, DeviceType, Lld, MgmtError};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The answer to one [`crate::Request`].
// One response lives per management message; boxing the reply would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Ok(Reply),
    Error(MgmtError),
}

impl Response {
    pub fn into_result(self) -> Result<Reply, MgmtError> {
        match self {
            Response::Ok(reply) => Ok(reply),
            Response::Error(err) => Err(err),
        }
    }
}

impl From<Result<Reply, MgmtError>> for Response {
    fn from(result: Result<Reply, MgmtError>) -> Self {
        match result {
            Ok(reply) => Response::Ok(reply),
            Err(err) => Response::Error(err),
        }
    }
}

/// The payload of a successful request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Done; nothing to show.
    Done,
    /// `--mode target --op show` (every target, or the one `--tid` names).
    TargetList(Vec<TargetView>),
    Lun(LunView),
    System(SystemView),
    /// `--mode account --op show`, in tgt's order (newest first).
    AccountList(Vec<AccountEntry>),
    /// `--mode portal --op show`.
    PortalList(Vec<PortalView>),
    /// `--mode lld --op show`: each driver with the targets it serves.
    LldList(Vec<LldView>),
    /// `--mode session|conn --op show`: sessions of one target.
    Sessions(Vec<NexusView>),
    /// `--mode logicalunit --op stats`: per-LUN counters, by LUN.
    LunStats(Vec<LunStatsView>),
}

/// One logical unit's counters since it was created (`rtgt_scsi::stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LunStatsView {
    pub tid: u32,
    pub lun: u64,
    /// "rdwr", "memory", ..., "none" for a unit without a store.
    pub backing_store: String,
    pub read_commands: u64,
    pub write_commands: u64,
    pub unmap_commands: u64,
    pub other_commands: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub in_flight: u64,
    pub reservation_conflicts: u64,
    /// CHECK CONDITION statuses by sense key name ("illegal_request", ...), only those seen.
    pub errors: Vec<(String, u64)>,
    pub read_latency: LatencyView,
    pub write_latency: LatencyView,
}

/// A latency histogram: `buckets` holds (upper bound in microseconds, commands at most that long).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyView {
    pub count: u64,
    pub sum_us: u64,
    pub buckets: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    Ready,
    Offline,
}

impl TargetState {
    pub fn name(self) -> &'static str {
        match self {
            TargetState::Ready => "ready",
            TargetState::Offline => "offline",
        }
    }
}

/// One target as `--op show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetView {
    pub tid: u32,
    pub name: String,
    pub driver: Lld,
    pub state: TargetState,
    /// NOP-Out probing, shown only when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nop_interval: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nop_count: Option<u32>,
    pub nexuses: Vec<NexusView>,
    /// Ascending by LUN.
    pub luns: Vec<LunView>,
    pub accounts: Vec<AccountView>,
    pub acl: Vec<AclEntry>,
    /// The iSCSI parameters new sessions start negotiating from (not part of tgt's text layout).
    #[serde(default)]
    pub params: Vec<TargetParam>,
}

/// One I_T nexus (an iSCSI session).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NexusView {
    /// The nexus number tgt shows (the session's TSIH for iSCSI).
    pub id: u64,
    pub initiator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The initiator's ISID, as 12 hex digits.
    #[serde(default)]
    pub isid: String,
    pub connections: Vec<ConnectionView>,
    /// The parameters this session negotiated (empty when the daemon does not report them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<TargetParam>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionView {
    pub cid: u16,
    pub initiator_address: SocketAddr,
    pub target_address: SocketAddr,
}

/// One logical unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LunView {
    pub lun: u64,
    pub device_type: DeviceType,
    pub scsi_id: String,
    pub scsi_sn: String,
    pub vendor_id: String,
    pub product_id: String,
    pub product_rev: String,
    /// Bytes.
    pub size: u64,
    pub block_size: u32,
    pub online: bool,
    pub removable: bool,
    pub prevent_removal: bool,
    pub readonly: bool,
    /// Software write protect (the control mode page's SWP bit).
    pub swp: bool,
    pub thin_provisioning: bool,
    pub backing_store_type: String,
    #[serde(default)]
    pub backing_store_path: Option<String>,
    pub backing_store_flags: String,
    /// Mode pages set with `--params mode_page=PAGE:SUBPAGE:LENGTH:BYTE...`, in that form (not part
    /// of tgt's text layout).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mode_pages: Vec<String>,
    /// tgt's `sense_format` (descriptor sense data when set), as the unit has it now (not part of
    /// tgt's text layout, which does not show it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub descriptor_sense: bool,
    /// A saved LUN whose backing store could not be opened (at start, or at its last retry), and
    /// why: it stays configured and offline until `--op update --params online=1` opens it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// Fault-injection rules (`--bsopts fault=RULE`), as given: a testing aid that must never go
    /// unnoticed on a production LUN, so every `show` lists them (not part of tgt's layout).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
    /// A media changer's library (media directory, layout, drives, cartridges where they are) as
    /// the parameters that build it again (not part of tgt's text layout).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changer: Vec<crate::ChangerParam>,
}

/// An account bound to a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub user: String,
    pub outgoing: bool,
}

/// One CHAP account as `account show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountEntry {
    pub user: String,
    /// Only when asked for (`AccountOp::Show { secrets: true }`); masked otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Bound to discovery sessions (tgt's tid 0), as an incoming account.
    #[serde(default)]
    pub discovery: bool,
    /// Bound to discovery sessions as the outgoing account.
    #[serde(default)]
    pub discovery_outgoing: bool,
}

/// One portal: where initiators connect, and its target portal group tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalView {
    pub address: SocketAddr,
    pub tpgt: u16,
}

/// A target as `lld show` lists it under its driver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LldTarget {
    pub tid: u32,
    pub name: String,
}

/// One target parameter, e.g. `MaxRecvDataSegmentLength` = `8192`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetParam {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemState {
    Ready,
    Offline,
}

impl SystemState {
    pub fn name(self) -> &'static str {
        match self {
            SystemState::Ready => "ready",
            SystemState::Offline => "offline",
        }
    }
}

/// `--mode system --op show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemView {
    pub state: SystemState,
    pub debug: bool,
    pub llds: Vec<LldView>,
    pub backing_stores: Vec<BackingStoreView>,
    pub device_types: Vec<DeviceType>,
    /// The daemon-wide bounds and what is in use of them (rtgt's; tgt shows none). None from a
    /// daemon that does not report them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
    /// The iSNS client's settings. None from a daemon without one (shown as tgt's defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isns: Option<IsnsView>,
}

/// tgt's `iSNS:` section of `system show`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsnsView {
    pub enabled: bool,
    /// Empty when not set.
    pub server_ip: String,
    pub server_port: u16,
    pub access_control: bool,
}

/// The daemon-wide bounds (tgtd's `--iscsi` options of the same names) and what is in use of
/// them, as numbers: bytes and seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_sessions: u32,
    pub sessions: u32,
    /// Bytes of Data-Out the daemon may hold at once, and what it holds now.
    pub write_budget: u64,
    pub write_data_held: u64,
    /// Bytes of read data (READs of 256 KiB and more) the daemon may hold until it is sent, and
    /// what it holds now. Absent from an older daemon's reply: 0.
    #[serde(default)]
    pub read_budget: u64,
    #[serde(default)]
    pub read_data_held: u64,
    pub login_timeout_secs: u64,
    pub data_out_timeout_secs: u64,
    /// How long a connection's socket may accept no reply bytes before it is closed.
    #[serde(default)]
    pub send_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LldView {
    pub name: String,
    /// "ready" or "error".
    pub state: String,
    /// Only in `lld show`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<LldTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackingStoreView {
    pub name: String,
    /// The `--bsoflags` this engine honours, e.g. "sync:direct"; None when it takes none.
    #[serde(default)]
    pub oflags: Option<String>,
}
