//! What a target should be, in one normalised form that both sides produce: the configuration file
//! (`from_conf`) and the running daemon (`from_running`). `--execute` creates it, `--update`
//! compares the two, `--dump` prints the running one as targets.conf text. Only values that differ
//! from a new target's or LUN's defaults are kept, so equal means "configured the same".

use super::conf::{ConfError, ConfFile, Directive, Origin, TargetBlock};
use rtgt_mgmt::{
    AccountEntry, AclEntry, DeviceType, LunParam, LunSpec, LunView, Param, StoreFlags, StoreKind, StoreSpec, TargetView,
};
use std::collections::BTreeMap;

use super::isns_spec::isns_param;
pub use super::isns_spec::{isns_changes, isns_from_running, ISNS_KEYS};

/// A new target's iSCSI parameters (rtgt's defaults): only differences are configuration.
pub const DEFAULT_PARAMS: &[(&str, &str)] = &[
    ("MaxRecvDataSegmentLength", "262144"),
    ("HeaderDigest", "None,CRC32C"),
    ("DataDigest", "None,CRC32C"),
    ("InitialR2T", "Yes"),
    ("MaxOutstandingR2T", "1"),
    ("ImmediateData", "Yes"),
    ("FirstBurstLength", "65536"),
    ("MaxBurstLength", "262144"),
    ("DataPDUInOrder", "Yes"),
    ("DataSequenceInOrder", "Yes"),
    ("ErrorRecoveryLevel", "0"),
    ("IFMarker", "No"),
    ("OFMarker", "No"),
    ("DefaultTime2Wait", "2"),
    ("DefaultTime2Retain", "20"),
    ("MaxConnections", "1"),
    ("MaxXmitDataSegmentLength", "262144"),
    ("MaxQueueCmd", "128"),
    ("MaxSessions", "0"),
];

/// LUN parameters a block may set with their own directive, passed to the daemon as `--params`.
const LUN_PARAMS: &[&str] = &[
    "vendor_id",
    "product_id",
    "product_rev",
    "scsi_id",
    "scsi_sn",
    "removable",
    "readonly",
    "online",
    "thin_provisioning",
    "sense_format",
    "mode_page",
];

/// tgt-admin's mode page for `write-cache off`: the caching page with WCE clear.
pub const WRITE_CACHE_OFF: &str = "8:0:18:0x10:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub password: String,
}

#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub name: String,
    /// The tid the target is created with (tgt's `controller_tid`); without it, the next free one.
    /// The running target's own tid on the daemon's side. Not part of what "configured the same"
    /// means: `--update` does not move a running target to another tid.
    pub controller_tid: Option<u32>,
    /// Non-default parameters by canonical name (nop_interval and nop_count included).
    pub params: BTreeMap<String, String>,
    pub acl: Vec<AclEntry>,
    pub incoming: Vec<Account>,
    pub outgoing: Option<Account>,
    pub luns: BTreeMap<u64, LunSpec>,
}

impl PartialEq for TargetSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.params == other.params
            && self.acl == other.acl
            && self.incoming == other.incoming
            && self.outgoing == other.outgoing
            && self.luns == other.luns
    }
}

impl Eq for TargetSpec {}

/// The file's settings outside any target: the discovery accounts (`incomingdiscoveryuser`,
/// `outgoingdiscoveryuser`) and tgt's iSNS keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    pub incoming: Vec<Account>,
    pub outgoing: Option<Account>,
    /// `iSNSServerIP`, `iSNSServerPort`, `iSNSAccessControl`, `iSNS` as given (tgt's spelling, in
    /// that order: `iSNS On` needs the server first).
    pub isns: Vec<Param>,
}

fn error(origin: &Origin, message: String) -> ConfError {
    ConfError { origin: origin.clone(), message }
}

fn account(d: &Directive) -> Result<Account, ConfError> {
    let words = super::conf::words(&d.value).map_err(|e| error(&d.origin, e))?;
    match words.as_slice() {
        [user, password] => Ok(Account { user: user.clone(), password: password.clone() }),
        _ => Err(error(&d.origin, format!("'{}' takes a user and a password", d.key))),
    }
}

/// Every target of the file, checked; the discovery accounts. Every block is checked, so the
/// errors name each mistake of the file (one per target block), before anything is applied.
pub fn from_conf(conf: &ConfFile) -> Result<(Vec<TargetSpec>, Discovery), Vec<ConfError>> {
    let mut errors = Vec::new();
    let mut discovery = Discovery::default();
    for d in &conf.global {
        let result = match d.key.as_str() {
            "incomingdiscoveryuser" => account(d).map(|a| discovery.incoming.push(a)),
            "outgoingdiscoveryuser" => account(d).map(|a| discovery.outgoing = Some(a)),
            "isnsserverip" | "isnsserverport" | "isnsaccesscontrol" | "isns" => isns_param(d).map(|p| {
                // A key given twice: the last one counts.
                discovery.isns.retain(|q| q.name != p.name);
                discovery.isns.push(p);
            }),
            _ => Ok(()),
        };
        errors.extend(result.err());
    }
    let order = |p: &Param| ISNS_KEYS.iter().position(|(k, _)| *k == p.name);
    discovery.isns.sort_by_key(order);
    let mut targets: Vec<TargetSpec> = Vec::new();
    for (i, block) in conf.targets.iter().enumerate() {
        if conf.targets[..i].iter().any(|t| t.name.eq_ignore_ascii_case(&block.name)) {
            errors.push(error(&block.origin, format!("target {} is defined twice", block.name)));
            continue;
        }
        match target_from_block(block) {
            Ok(t) => targets.push(t),
            Err(e) => errors.push(e),
        }
    }
    // tgt's tgt-admin makes targets in name order, whatever the file's order: the tids follow it.
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, t) in targets.iter().enumerate() {
        let Some(tid) = t.controller_tid else { continue };
        if let Some(other) = targets[..i].iter().find(|o| o.controller_tid == Some(tid)) {
            let block = conf.targets.iter().find(|b| b.name == t.name).expect("every spec comes from a block");
            errors.push(error(&block.origin, format!("controller_tid {tid} is also {}'s", other.name)));
        }
    }
    if errors.is_empty() {
        Ok((targets, discovery))
    } else {
        Err(errors)
    }
}

/// A target parameter's value as the daemon will take it, checked here so that the mistake is
/// named by file and line before any target is made (not after, by a tid that is gone).
fn check_target_param(key: &str, value: &str) -> Result<(), String> {
    let number = |low: u64, high: u64| match value.parse::<u64>() {
        Ok(n) if (low..=high).contains(&n) => Ok(()),
        _ => Err(format!("{key} '{value}' is not a number from {low} to {high}")),
    };
    match key {
        "MaxRecvDataSegmentLength" | "MaxXmitDataSegmentLength" | "FirstBurstLength" | "MaxBurstLength" => {
            number(512, 16_777_215)
        }
        "ErrorRecoveryLevel" => number(0, 2),
        "MaxOutstandingR2T" | "MaxConnections" => number(1, 65_535),
        "DefaultTime2Wait" | "DefaultTime2Retain" => number(0, 3600),
        "MaxQueueCmd" | "MaxSessions" | "nop_interval" | "nop_count" => number(0, u32::MAX as u64),
        "InitialR2T" | "ImmediateData" | "DataPDUInOrder" | "DataSequenceInOrder" => match value {
            "Yes" | "No" => Ok(()),
            _ => Err(format!("{key} '{value}' is not Yes or No")),
        },
        "HeaderDigest" | "DataDigest" => match value.split(',').all(|d| d == "None" || d == "CRC32C") {
            true => Ok(()),
            false => Err(format!("{key} '{value}' is not a list of None and CRC32C")),
        },
        _ => Ok(()),
    }
}

fn target_from_block(block: &TargetBlock) -> Result<TargetSpec, ConfError> {
    let mut spec = TargetSpec {
        name: block.name.clone(),
        controller_tid: None,
        params: BTreeMap::new(),
        acl: Vec::new(),
        incoming: Vec::new(),
        outgoing: None,
        luns: BTreeMap::new(),
    };
    // Directives that describe LUNs, given at target level, are defaults for every store.
    let mut lun_defaults: Vec<&Directive> = Vec::new();
    let mut closed = false;
    for d in &block.directives {
        match d.key.as_str() {
            "initiator-address" => {
                for item in d.value.split([',', ' ']).filter(|s| !s.is_empty()) {
                    if item == "NONE" {
                        // rtgt's: no rule, and not the default rule either (how --dump writes a
                        // target that admits nobody, so that loading the dump keeps it closed).
                        closed = true;
                        continue;
                    }
                    let rule = AclEntry::parse_address(item).ok_or_else(|| {
                        error(&d.origin, format!("'{item}' is not ALL, an IP address or an address/prefix network"))
                    })?;
                    spec.acl.push(rule);
                }
            }
            "initiator-name" => spec.acl.push(AclEntry::InitiatorName(d.value.clone())),
            "incominguser" => spec.incoming.push(account(d)?),
            "outgoinguser" => {
                if spec.outgoing.is_some() {
                    return Err(error(&d.origin, "only one outgoinguser per target".into()));
                }
                spec.outgoing = Some(account(d)?);
            }
            "controller_tid" => match d.value.parse::<u32>() {
                Ok(tid) if tid > 0 => spec.controller_tid = Some(tid),
                // tid 0 names discovery sessions, never a target.
                _ => return Err(error(&d.origin, format!("controller_tid '{}' is not a tid from 1", d.value))),
            },
            "driver" | "allow-in-use" => {}
            "lun" => return Err(error(&d.origin, "'lun' belongs in a <backing-store> block".into())),
            key if super::conf::target_param(key).is_some() => {
                check_target_param(key, &d.value).map_err(|e| error(&d.origin, e))?;
                let default = DEFAULT_PARAMS.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
                if default != Some(d.value.as_str()) {
                    spec.params.insert(key.to_string(), d.value.clone());
                }
            }
            _ => lun_defaults.push(d),
        }
    }
    // LUNs without a `lun` directive are numbered from 1, skipping the numbers stores name, in
    // tgt-admin's order: backing-stores before direct-stores, each kind by path (not file order),
    // so that a file moved from tgt gives every disk the LUN it had there.
    let explicit: Vec<u64> = block
        .stores
        .iter()
        .flat_map(|s| s.directives.iter().filter(|d| d.key == "lun"))
        .filter_map(|d| d.value.parse().ok())
        .collect();
    let mut stores: Vec<&super::conf::StoreBlock> = block.stores.iter().collect();
    stores.sort_by(|a, b| (a.direct, &a.path).cmp(&(b.direct, &b.path)));
    let mut next = 1u64;
    for store in stores {
        let directives: Vec<&Directive> = lun_defaults.iter().copied().chain(store.directives.iter()).collect();
        let mut lun = None;
        let mut spec_lun = LunSpec::disk(Some(store.path.clone()));
        let mut params: Vec<Param> = Vec::new();
        // tgt's three store directives, checked together once all are read (defaults, then the store's own).
        let (mut bstype, mut bsopts, mut bsoflags) = (None, String::new(), String::new());
        for d in directives {
            let bad = |what: &str| error(&d.origin, format!("'{}' {what}", d.value));
            match d.key.as_str() {
                "lun" => lun = Some(d.value.parse::<u64>().map_err(|_| bad("is not a LUN number"))?),
                "bs-type" => bstype = Some(d.value.clone()),
                "bsoflags" => bsoflags = d.value.clone(),
                "bsopts" => bsopts = d.value.clone(),
                "block-size" => spec_lun.block_size = Some(d.value.parse().map_err(|_| bad("is not a block size"))?),
                "device-type" => {
                    spec_lun.device_type = d.value.parse::<DeviceType>().map_err(|e| error(&d.origin, e.to_string()))?
                }
                "path" => spec_lun.backing_store = Some(d.value.clone()),
                "write-cache" => match d.value.as_str() {
                    "on" => {
                        let off = mode_page_decimal(WRITE_CACHE_OFF);
                        params.retain(|p| p.name != "mode_page" || p.value != off)
                    }
                    "off" => set_param(&mut params, "mode_page", WRITE_CACHE_OFF),
                    _ => return Err(bad("is not on or off")),
                },
                "params" if d.value.split(',').any(is_changer_pair) => {
                    // A media changer's line: its groups, each one change to the library, in
                    // order (not "last one wins"); checked here so the error names the line.
                    let pairs = d
                        .value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|item| match item.split_once('=') {
                            Some((n, v)) => Ok(Param::new(n.trim(), v.trim())),
                            None => Err(error(&d.origin, format!("'{item}' in params is not name=value"))),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    for typed in LunParam::parse_all(&pairs).map_err(|e| error(&d.origin, e.to_string()))? {
                        let pair = typed.to_param();
                        match typed {
                            LunParam::Changer(rtgt_mgmt::ChangerParam::MediaHome(_)) => {
                                params.retain(|p| p.name != "media_home");
                                params.push(pair);
                            }
                            LunParam::Changer(_) => params.push(pair),
                            _ => set_param(&mut params, &pair.name, &pair.value),
                        }
                    }
                }
                "params" => {
                    for item in d.value.split(',').filter(|s| !s.is_empty()) {
                        let (name, value) = item
                            .split_once('=')
                            .ok_or_else(|| error(&d.origin, format!("'{item}' in params is not name=value")))?;
                        let (name, value) = (name.trim(), value.trim());
                        // Checked here, not left to the daemon: the error then names the line, and
                        // `--dump` can write every parameter back as its own directive.
                        if !LUN_PARAMS.contains(&name) {
                            return Err(error(&d.origin, format!("unknown logical unit parameter '{name}' in params")));
                        }
                        if value.is_empty() {
                            return Err(error(&d.origin, format!("'{name}' in params needs a value")));
                        }
                        set_param(&mut params, name, value);
                    }
                }
                key if LUN_PARAMS.contains(&key) => set_param(&mut params, key, &d.value),
                other => return Err(error(&d.origin, format!("unknown directive '{other}'"))),
            }
        }
        let lun = match lun {
            Some(n) => n,
            None => {
                while explicit.contains(&next) || spec.luns.contains_key(&next) {
                    next += 1;
                }
                next
            }
        };
        if lun == 0 {
            return Err(error(&store.origin, "LUN 0 is the target's controller".into()));
        }
        if spec.luns.contains_key(&lun) {
            return Err(error(&store.origin, format!("LUN {lun} is used twice in <target {}>", block.name)));
        }
        spec_lun.store =
            StoreSpec::parse(bstype.as_deref(), &bsopts, &bsoflags).map_err(|e| error(&store.origin, e.to_string()))?;
        params.sort_by(|a, b| a.name.cmp(&b.name));
        spec_lun.params = LunParam::parse_all(&params).map_err(|e| error(&store.origin, e.to_string()))?;
        spec.luns.insert(lun, normalise(spec_lun));
    }
    // tgt's tgt-admin opens a target that names no initiator to every initiator (tgt's examples
    // rely on it). It does so too when the block names initiators only by name, which then
    // admits everyone; rtgt keeps such a target to the names it gives.
    if spec.acl.is_empty() && !closed {
        spec.acl.push(AclEntry::All);
    }
    Ok(spec)
}

/// Whether one `name=value` item of a `params` line is a media changer's.
fn is_changer_pair(item: &str) -> bool {
    let name = item.split_once('=').map_or(item, |(n, _)| n).trim();
    rtgt_mgmt::changer::CHANGER_KEYS.contains(&name)
}

/// Last one wins, as with repeated tgtadm --params; mode pages add up (one per page).
fn set_param(params: &mut Vec<Param>, name: &str, value: &str) {
    if name != "mode_page" {
        params.retain(|p| p.name != name);
        params.push(Param::new(name, value));
    } else {
        params.push(Param::new(name, mode_page_decimal(value)));
    }
}

/// A mode page's numbers in decimal, as the daemon reports them (`0x10` and `16` are one page);
/// text that is not all numbers is left for the daemon to refuse.
pub fn mode_page_decimal(value: &str) -> String {
    let numbers: Option<Vec<String>> = value
        .split(':')
        .map(|item| {
            let item = item.trim();
            match item.strip_prefix("0x").or_else(|| item.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok(),
                None => item.parse::<u64>().ok(),
            }
            .map(|n| n.to_string())
        })
        .collect();
    numbers.map(|n| n.join(":")).unwrap_or_else(|| value.to_string())
}

/// One spelling for equal LUNs: rdwr and 512 are the defaults.
fn normalise(mut spec: LunSpec) -> LunSpec {
    if spec.store.kind == Some(StoreKind::Rdwr) {
        spec.store.kind = None;
    }
    if spec.block_size == Some(512) {
        spec.block_size = None;
    }
    if spec.store.kind.is_some() && spec.backing_store.as_deref().is_some_and(|p| p == "-" || p.is_empty()) {
        spec.backing_store = None;
    }
    spec
}

/// The running target as a spec; `accounts` (with passwords) resolves its bindings.
pub fn from_running(view: &TargetView, accounts: &[AccountEntry]) -> TargetSpec {
    let resolve = |user: &str| Account {
        user: user.to_string(),
        password: accounts.iter().find(|a| a.user == user).and_then(|a| a.password.clone()).unwrap_or_default(),
    };
    let mut params: BTreeMap<String, String> = view
        .params
        .iter()
        .filter(|p| !DEFAULT_PARAMS.contains(&(p.name.as_str(), p.value.as_str())))
        .map(|p| (p.name.clone(), p.value.clone()))
        .collect();
    if let Some(n) = view.nop_interval {
        params.insert("nop_interval".into(), n.to_string());
    }
    if let Some(n) = view.nop_count {
        params.insert("nop_count".into(), n.to_string());
    }
    TargetSpec {
        name: view.name.clone(),
        controller_tid: Some(view.tid),
        params,
        acl: view.acl.clone(),
        incoming: view.accounts.iter().filter(|a| !a.outgoing).map(|a| resolve(&a.user)).collect(),
        outgoing: view.accounts.iter().find(|a| a.outgoing).map(|a| resolve(&a.user)),
        luns: view
            .luns
            .iter()
            // A saved LUN waiting for its backing store is not running: --update creates it again,
            // which opens it if the file is back.
            .filter(|l| l.device_type != DeviceType::Controller && l.missing.is_none())
            .map(|l| (l.lun, lun_from_view(view.tid, l)))
            .collect(),
    }
}

/// The LUN parameters that hold one value each (all but mode pages and a changer's library).
pub const SCALAR_LUN_PARAMS: &[&str] = &[
    "online",
    "product_id",
    "product_rev",
    "readonly",
    "removable",
    "scsi_id",
    "scsi_sn",
    "sense_format",
    "thin_provisioning",
    "vendor_id",
];

/// The value a running LUN's view leaves out of its spec: a disk's default for LUN `lun` of
/// target `tid` (tgt's). A parameter missing from a running spec has this value.
pub fn shown_default(name: &str, tid: u32, lun: u64) -> String {
    match name {
        "product_id" => "VIRTUAL-DISK".into(),
        "product_rev" => "0001".into(),
        "scsi_id" => format!("IET     {tid:04x}{lun:04x}"),
        "scsi_sn" => format!("beaf{tid}{lun}"),
        "vendor_id" => "IET".into(),
        "online" => "1".into(),
        _ => "0".into(),
    }
}

fn lun_from_view(tid: u32, l: &LunView) -> LunSpec {
    let lun = l.lun;
    let flag = |b: bool| if b { "1" } else { "0" }.to_string();
    let mut params: Vec<Param> = SCALAR_LUN_PARAMS
        .iter()
        .map(|name| {
            let value = match *name {
                "product_id" => l.product_id.clone(),
                "product_rev" => l.product_rev.clone(),
                "scsi_id" => l.scsi_id.clone(),
                "scsi_sn" => l.scsi_sn.clone(),
                "vendor_id" => l.vendor_id.clone(),
                "online" => flag(l.online),
                "readonly" => flag(l.readonly),
                "removable" => flag(l.removable),
                "thin_provisioning" => flag(l.thin_provisioning),
                // sense_format, the last of them.
                _ => flag(l.descriptor_sense),
            };
            Param::new(*name, value)
        })
        .filter(|p| p.value != shown_default(&p.name, tid, lun))
        .collect();
    params.extend(l.mode_pages.iter().map(|page| Param::new("mode_page", page)));
    params.extend(l.changer.iter().map(rtgt_mgmt::ChangerParam::to_param));
    params.sort_by(|a, b| a.name.cmp(&b.name));
    // Only memory and null stores are sized by their options (`bsopts size=`); every other store
    // (rdwr, aio, rbd, a changer's smc placeholder file, a tape's ssc file) has its file's or
    // image's size, which is no part of the configuration.
    let file_backed = !matches!(l.backing_store_type.as_str(), "memory" | "null");
    normalise(LunSpec {
        device_type: l.device_type,
        backing_store: l.backing_store_path.clone().filter(|p| p != "None"),
        store: StoreSpec {
            kind: l.backing_store_type.parse().ok(),
            size: (!file_backed).then_some(l.size),
            // The daemon shows only flags it took, so they parse.
            flags: StoreFlags::parse(&l.backing_store_flags).unwrap_or_default(),
            // Fault injection is a testing aid that must never go unnoticed: a dump shows it, and
            // a configuration without it differs from the running LUN.
            faults: l.faults.clone(),
            ..StoreSpec::default()
        },
        // A changer's block size is not the administrator's (tgt shows 1).
        block_size: (l.device_type != DeviceType::Changer).then_some(l.block_size),
        // The daemon shows only values it took, so they parse.
        params: params.iter().filter_map(|p| LunParam::parse(p).ok()).collect(),
    })
}

#[cfg(test)]
mod tests;
