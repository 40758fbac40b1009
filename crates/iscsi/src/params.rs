//! Session and connection parameters (RFC 7143 section 13) as negotiated at login, and the target's
//! configured values (tgtadm --mode target --op update --name K --value V).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    None,
    Crc32c,
}

impl Digest {
    pub fn name(self) -> &'static str {
        match self {
            Digest::None => "None",
            Digest::Crc32c => "CRC32C",
        }
    }
    pub fn parse(s: &str) -> Option<Digest> {
        if s.eq_ignore_ascii_case("None") {
            Some(Digest::None)
        } else if s.eq_ignore_ascii_case("CRC32C") {
            Some(Digest::Crc32c)
        } else {
            None
        }
    }
}

/// The operational values in force for one connection/session after login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    pub header_digest: Digest,
    pub data_digest: Digest,
    /// The most data this target accepts in one PDU (what we declared).
    pub our_max_recv_data_segment_length: u32,
    /// The most data the initiator accepts in one PDU (what it declared): limits our Data-In size.
    pub initiator_max_recv_data_segment_length: u32,
    pub max_burst_length: u32,
    pub first_burst_length: u32,
    pub initial_r2t: bool,
    pub immediate_data: bool,
    pub max_outstanding_r2t: u32,
    pub data_pdu_in_order: bool,
    pub data_sequence_in_order: bool,
    pub default_time2wait: u32,
    pub default_time2retain: u32,
    pub error_recovery_level: u32,
    pub max_connections: u32,
}

impl Default for SessionParams {
    /// RFC 7143 defaults.
    fn default() -> Self {
        SessionParams {
            header_digest: Digest::None,
            data_digest: Digest::None,
            our_max_recv_data_segment_length: 8192,
            initiator_max_recv_data_segment_length: 8192,
            max_burst_length: 262144,
            first_burst_length: 65536,
            initial_r2t: true,
            immediate_data: true,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            default_time2wait: 2,
            default_time2retain: 20,
            error_recovery_level: 0,
            max_connections: 1,
        }
    }
}

/// Target-initiated NOP-In probing of idle connections (tgt's nop_interval / nop_count). A
/// connection that received nothing for `interval` seconds gets a NOP-In; after `count` such probes
/// go unanswered it is dropped. An interval of 0 turns probing off; a count of 0 probes without ever
/// dropping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NopParams {
    pub interval: u32,
    pub count: u32,
}

/// What a target offers in negotiation: tgt's defaults except MaxRecvDataSegmentLength (see
/// below). Changed with `IscsiTarget::set_param`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetParams {
    /// Digests we accept, in our order of preference (the initiator's order decides, 13.1).
    pub header_digest: Vec<Digest>,
    pub data_digest: Vec<Digest>,
    pub max_recv_data_segment_length: u32,
    /// A cap on the Data-In PDUs we send, below what the initiator declares.
    pub max_xmit_data_segment_length: u32,
    pub max_burst_length: u32,
    pub first_burst_length: u32,
    pub initial_r2t: bool,
    pub immediate_data: bool,
    pub max_outstanding_r2t: u32,
    pub data_pdu_in_order: bool,
    pub data_sequence_in_order: bool,
    pub default_time2wait: u32,
    pub default_time2retain: u32,
    pub error_recovery_level: u32,
    pub max_connections: u32,
    /// The CmdSN window: commands a session may have outstanding.
    pub max_queue_cmd: u32,
    /// Sessions this target accepts at once (IET's MaxSessions); 0: only the daemon's bound.
    pub max_sessions: u32,
    pub target_alias: Option<String>,
}

impl Default for TargetParams {
    fn default() -> Self {
        TargetParams {
            header_digest: vec![Digest::None, Digest::Crc32c],
            data_digest: vec![Digest::None, Digest::Crc32c],
            // tgt declares 8192, so an initiator cuts a 128 KiB write into 16 Data-Out PDUs. 256 KiB
            // lets it send each R2T's burst in one PDU. It does not raise what a session can make us
            // buffer unasked: immediate and unsolicited data stay capped by FirstBurstLength.
            max_recv_data_segment_length: 262144,
            max_xmit_data_segment_length: 262144,
            max_burst_length: 262144,
            first_burst_length: 65536,
            initial_r2t: true,
            immediate_data: true,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            default_time2wait: 2,
            default_time2retain: 20,
            error_recovery_level: 0,
            max_connections: 1,
            max_queue_cmd: 128,
            max_sessions: 0,
            target_alias: None,
        }
    }
}

/// The largest legal data segment / burst value (RFC 7143 13.12: 2**24-1).
pub const MAX_SEGMENT: u32 = (1 << 24) - 1;

fn yes_no(b: bool) -> String {
    if b { "Yes" } else { "No" }.to_string()
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v {
        _ if v.eq_ignore_ascii_case("yes") => Ok(true),
        _ if v.eq_ignore_ascii_case("no") => Ok(false),
        _ => Err(format!("invalid boolean value '{v}' (Yes or No)")),
    }
}

fn parse_num(v: &str, lo: u32, hi: u32) -> Result<u32, String> {
    let n: u32 = v.trim().parse().map_err(|_| format!("invalid number '{v}'"))?;
    if n < lo || n > hi {
        return Err(format!("value {n} out of range {lo}..{hi}"));
    }
    Ok(n)
}

fn parse_digests(v: &str) -> Result<Vec<Digest>, String> {
    let mut out = Vec::new();
    for item in v.split(',') {
        let d = Digest::parse(item.trim()).ok_or_else(|| format!("invalid digest '{item}' (None, CRC32C)"))?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

fn digests(list: &[Digest]) -> String {
    list.iter().map(|d| d.name()).collect::<Vec<_>>().join(",")
}

impl TargetParams {
    /// Set one parameter by its iSCSI key name (case-insensitive).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let n = name.to_ascii_lowercase();
        match n.as_str() {
            "headerdigest" => self.header_digest = parse_digests(value)?,
            "datadigest" => self.data_digest = parse_digests(value)?,
            "maxrecvdatasegmentlength" => self.max_recv_data_segment_length = parse_num(value, 512, MAX_SEGMENT)?,
            "maxxmitdatasegmentlength" => self.max_xmit_data_segment_length = parse_num(value, 512, MAX_SEGMENT)?,
            "maxburstlength" => self.max_burst_length = parse_num(value, 512, MAX_SEGMENT)?,
            "firstburstlength" => self.first_burst_length = parse_num(value, 512, MAX_SEGMENT)?,
            "initialr2t" => self.initial_r2t = parse_bool(value)?,
            "immediatedata" => self.immediate_data = parse_bool(value)?,
            "maxoutstandingr2t" => self.max_outstanding_r2t = parse_num(value, 1, 65535)?,
            "datapduinorder" => self.data_pdu_in_order = parse_bool(value)?,
            "datasequenceinorder" => self.data_sequence_in_order = parse_bool(value)?,
            "defaulttime2wait" => self.default_time2wait = parse_num(value, 0, 3600)?,
            "defaulttime2retain" => self.default_time2retain = parse_num(value, 0, 3600)?,
            // Only level 0 is implemented.
            "errorrecoverylevel" => self.error_recovery_level = parse_num(value, 0, 0)?,
            "maxconnections" => self.max_connections = parse_num(value, 1, 65535)?,
            "maxqueuecmd" => self.max_queue_cmd = parse_num(value, 1, 65536)?,
            "maxsessions" => self.max_sessions = parse_num(value, 0, 65535)?,
            "targetalias" => self.target_alias = if value.is_empty() { None } else { Some(value.to_string()) },
            _ => return Err(format!("unknown parameter '{name}'")),
        }
        Ok(())
    }

    /// Every parameter as (key, value), in a stable order for show.
    pub fn list(&self) -> Vec<(String, String)> {
        let mut v: Vec<(&str, String)> = vec![
            ("MaxRecvDataSegmentLength", self.max_recv_data_segment_length.to_string()),
            ("HeaderDigest", digests(&self.header_digest)),
            ("DataDigest", digests(&self.data_digest)),
            ("InitialR2T", yes_no(self.initial_r2t)),
            ("MaxOutstandingR2T", self.max_outstanding_r2t.to_string()),
            ("ImmediateData", yes_no(self.immediate_data)),
            ("FirstBurstLength", self.first_burst_length.to_string()),
            ("MaxBurstLength", self.max_burst_length.to_string()),
            ("DataPDUInOrder", yes_no(self.data_pdu_in_order)),
            ("DataSequenceInOrder", yes_no(self.data_sequence_in_order)),
            ("ErrorRecoveryLevel", self.error_recovery_level.to_string()),
            ("IFMarker", "No".to_string()),
            ("OFMarker", "No".to_string()),
            ("DefaultTime2Wait", self.default_time2wait.to_string()),
            ("DefaultTime2Retain", self.default_time2retain.to_string()),
            ("MaxConnections", self.max_connections.to_string()),
            ("MaxXmitDataSegmentLength", self.max_xmit_data_segment_length.to_string()),
            ("MaxQueueCmd", self.max_queue_cmd.to_string()),
            ("MaxSessions", self.max_sessions.to_string()),
        ];
        if let Some(a) = &self.target_alias {
            v.push(("TargetAlias", a.clone()));
        }
        v.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_and_list() {
        let mut p = TargetParams::default();
        p.set("maxrecvdatasegmentlength", "262144").unwrap();
        p.set("InitialR2T", "No").unwrap();
        p.set("HeaderDigest", "CRC32C,None").unwrap();
        assert_eq!(p.max_recv_data_segment_length, 262144);
        assert!(!p.initial_r2t);
        assert_eq!(p.header_digest, vec![Digest::Crc32c, Digest::None]);
        let l = p.list();
        assert!(l.contains(&("HeaderDigest".into(), "CRC32C,None".into())));
        assert!(l.contains(&("InitialR2T".into(), "No".into())));
        assert!(p.set("MaxBurstLength", "100").is_err());
        assert!(p.set("ImmediateData", "maybe").is_err());
        assert!(p.set("ErrorRecoveryLevel", "2").is_err());
        assert!(p.set("NoSuchKey", "1").is_err());
        assert!(p.set("DataDigest", "MD5").is_err());
        p.set("MaxSessions", "3").unwrap();
        assert_eq!(p.max_sessions, 3);
        assert!(p.set("MaxSessions", "70000").is_err());
        assert!(p.list().contains(&("MaxSessions".into(), "3".into())));
    }
}
