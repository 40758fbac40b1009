//! Operational key negotiation (RFC 7143 6.2 and section 13) on the target side: for every key the
//! initiator offers, the answer and its effect on the session's parameters. Login-level declarations
//! (InitiatorName, TargetName, SessionType, AuthMethod) are login.rs's.

use crate::params::{Digest, SessionParams, TargetParams, MAX_SEGMENT};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// RFC 7143 6.2: a key offered twice in one negotiation is a protocol error.
    #[error("key {0} offered twice")]
    Duplicate(String),
}

/// The answer for one offered key: `None` when declarative keys need no reply.
pub(crate) type Answer = Option<(String, String)>;

/// Negotiation state for one login.
#[derive(Debug)]
pub(crate) struct Negotiation {
    pub params: SessionParams,
    offer: TargetParams,
    discovery: bool,
    seen: Vec<String>,
}

/// Numeric values may be decimal or 0x-hexadecimal (RFC 7143 6.1).
fn parse_number(v: &str) -> Option<u64> {
    if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        v.parse().ok()
    } else {
        None
    }
}

fn in_range(v: &str, lo: u32, hi: u32) -> Option<u32> {
    parse_number(v).filter(|n| *n >= lo as u64 && *n <= hi as u64).map(|n| n as u32)
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "Yes" => Some(true),
        "No" => Some(false),
        _ => None,
    }
}

fn yes_no(b: bool) -> String {
    if b { "Yes" } else { "No" }.to_string()
}

/// Keys that make no sense in a discovery session (RFC 7143 section 13, "Irrelevant when:
/// SessionType=Discovery").
const IRRELEVANT_IN_DISCOVERY: &[&str] = &[
    "MaxConnections",
    "InitialR2T",
    "ImmediateData",
    "MaxBurstLength",
    "FirstBurstLength",
    "MaxOutstandingR2T",
    "DataPDUInOrder",
    "DataSequenceInOrder",
];

/// Every key RFC 7143 defines (sections 12 and 13), with the marker keys RFC 3720 had and RFC
/// 7144's iSCSIProtocolLevel; the X- and X# extension formats aside. Used to tell a known key that
/// does not belong where it was sent (answered Reject) from an unknown one (NotUnderstood, 6.2).
const RFC7143_KEYS: &[&str] = &[
    "AuthMethod",
    "HeaderDigest",
    "DataDigest",
    "MaxConnections",
    "SendTargets",
    "TargetName",
    "InitiatorName",
    "TargetAlias",
    "InitiatorAlias",
    "TargetAddress",
    "TargetPortalGroupTag",
    "InitialR2T",
    "ImmediateData",
    "MaxRecvDataSegmentLength",
    "MaxBurstLength",
    "FirstBurstLength",
    "DefaultTime2Wait",
    "DefaultTime2Retain",
    "MaxOutstandingR2T",
    "DataPDUInOrder",
    "DataSequenceInOrder",
    "ErrorRecoveryLevel",
    "SessionType",
    "TaskReporting",
    "iSCSIProtocolLevel",
    "IFMarker",
    "OFMarker",
    "IFMarkInt",
    "OFMarkInt",
    "CHAP_A",
    "CHAP_I",
    "CHAP_C",
    "CHAP_N",
    "CHAP_R",
    "SRP_U",
    "SRP_TARGET_AUTH",
    "SRP_N",
    "SRP_g",
    "SRP_s",
    "SRP_A",
    "SRP_B",
    "SRP_M",
    "SRP_HM",
    "SRP_GROUP",
    "KRB_AP_REQ",
    "KRB_AP_REP",
];

/// True for a key RFC 7143 defines (see `RFC7143_KEYS`).
pub(crate) fn is_rfc7143_key(key: &str) -> bool {
    RFC7143_KEYS.contains(&key)
}

impl Negotiation {
    pub fn new(offer: TargetParams, discovery: bool) -> Self {
        let params = SessionParams {
            our_max_recv_data_segment_length: offer.max_recv_data_segment_length,
            ..SessionParams::default()
        };
        Negotiation { params, offer, discovery, seen: Vec::new() }
    }

    pub fn set_discovery(&mut self, discovery: bool) {
        self.discovery = discovery;
    }

    pub fn offer(&self) -> &TargetParams {
        &self.offer
    }

    /// Answer one offered operational key.
    pub fn negotiate(&mut self, key: &str, value: &str) -> Result<Answer, NegotiationError> {
        if self.seen.iter().any(|k| k == key) {
            return Err(NegotiationError::Duplicate(key.to_string()));
        }
        self.seen.push(key.to_string());
        let reply = |v: &str| Ok(Some((key.to_string(), v.to_string())));
        if self.discovery && IRRELEVANT_IN_DISCOVERY.contains(&key) {
            return reply("Irrelevant");
        }
        let p = &mut self.params;
        let o = &self.offer;
        match key {
            "HeaderDigest" | "DataDigest" => {
                let allowed = if key == "HeaderDigest" { &o.header_digest } else { &o.data_digest };
                // List negotiation (6.2.1): the first value of the offer that we support.
                let pick = value.split(',').filter_map(Digest::parse).find(|d| allowed.contains(d));
                match pick {
                    Some(d) => {
                        if key == "HeaderDigest" {
                            p.header_digest = d;
                        } else {
                            p.data_digest = d;
                        }
                        reply(d.name())
                    }
                    None => reply("Reject"),
                }
            }
            // Declarative (13.12): the initiator's own receive limit; we declare ours separately.
            "MaxRecvDataSegmentLength" => match in_range(value, 512, MAX_SEGMENT) {
                Some(n) => {
                    p.initiator_max_recv_data_segment_length = n;
                    reply(&o.max_recv_data_segment_length.to_string())
                }
                None => reply("Reject"),
            },
            "MaxBurstLength" => match in_range(value, 512, MAX_SEGMENT) {
                Some(n) => {
                    p.max_burst_length = n.min(o.max_burst_length);
                    reply(&p.max_burst_length.to_string())
                }
                None => reply("Reject"),
            },
            "FirstBurstLength" => match in_range(value, 512, MAX_SEGMENT) {
                Some(n) => {
                    p.first_burst_length = n.min(o.first_burst_length);
                    reply(&p.first_burst_length.to_string())
                }
                None => reply("Reject"),
            },
            "MaxOutstandingR2T" => match in_range(value, 1, 65535) {
                Some(n) => {
                    p.max_outstanding_r2t = n.min(o.max_outstanding_r2t);
                    reply(&p.max_outstanding_r2t.to_string())
                }
                None => reply("Reject"),
            },
            "MaxConnections" => match in_range(value, 1, 65535) {
                Some(n) => {
                    p.max_connections = n.min(o.max_connections);
                    reply(&p.max_connections.to_string())
                }
                None => reply("Reject"),
            },
            "ErrorRecoveryLevel" => match in_range(value, 0, 2) {
                Some(n) => {
                    p.error_recovery_level = n.min(o.error_recovery_level);
                    reply(&p.error_recovery_level.to_string())
                }
                None => reply("Reject"),
            },
            "DefaultTime2Wait" => match in_range(value, 0, 3600) {
                Some(n) => {
                    p.default_time2wait = n.max(o.default_time2wait);
                    reply(&p.default_time2wait.to_string())
                }
                None => reply("Reject"),
            },
            "DefaultTime2Retain" => match in_range(value, 0, 3600) {
                Some(n) => {
                    p.default_time2retain = n.min(o.default_time2retain);
                    reply(&p.default_time2retain.to_string())
                }
                None => reply("Reject"),
            },
            // Boolean OR: the result is Yes if either side says Yes (13.10, 13.18, 13.19).
            "InitialR2T" | "DataPDUInOrder" | "DataSequenceInOrder" => match parse_bool(value) {
                Some(b) => {
                    let r = match key {
                        "InitialR2T" => {
                            p.initial_r2t = b || o.initial_r2t;
                            p.initial_r2t
                        }
                        "DataPDUInOrder" => {
                            p.data_pdu_in_order = b || o.data_pdu_in_order;
                            p.data_pdu_in_order
                        }
                        _ => {
                            p.data_sequence_in_order = b || o.data_sequence_in_order;
                            p.data_sequence_in_order
                        }
                    };
                    reply(&yes_no(r))
                }
                None => reply("Reject"),
            },
            // Boolean AND (13.11).
            "ImmediateData" => match parse_bool(value) {
                Some(b) => {
                    p.immediate_data = b && o.immediate_data;
                    reply(&yes_no(p.immediate_data))
                }
                None => reply("Reject"),
            },
            // Obsolete in RFC 7143 (markers); RFC 3720 initiators still offer them: we use none.
            "IFMarker" | "OFMarker" => reply("No"),
            "IFMarkInt" | "OFMarkInt" => reply("Irrelevant"),
            // iSER is not offered on TCP.
            "RDMAExtensions" => reply("No"),
            "TaskReporting" => reply("RFC3720"),
            // Keys only the target sends, or only a Text exchange carries.
            "TargetAlias" | "TargetAddress" | "TargetPortalGroupTag" | "SendTargets" => reply("Reject"),
            _ => reply("NotUnderstood"),
        }
    }

    /// Settle values that depend on each other once the operational stage ends.
    pub fn finish(&mut self) -> SessionParams {
        let p = &mut self.params;
        // 13.14: FirstBurstLength must not exceed MaxBurstLength.
        if p.first_burst_length > p.max_burst_length {
            p.first_burst_length = p.max_burst_length;
        }
        p.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg() -> Negotiation {
        Negotiation::new(TargetParams::default(), false)
    }

    fn answer(key: &str, value: &str) -> (String, SessionParams) {
        let mut n = neg();
        let a = n.negotiate(key, value).unwrap().unwrap();
        assert_eq!(a.0, key);
        (a.1, n.finish())
    }

    #[test]
    fn digests_follow_initiator_order() {
        let (a, p) = answer("HeaderDigest", "CRC32C,None");
        assert_eq!((a.as_str(), p.header_digest), ("CRC32C", Digest::Crc32c));
        let (a, p) = answer("DataDigest", "None,CRC32C");
        assert_eq!((a.as_str(), p.data_digest), ("None", Digest::None));
        assert_eq!(answer("HeaderDigest", "MD5").0, "Reject");
        let only_none = TargetParams { header_digest: vec![Digest::None], ..Default::default() };
        let mut n = Negotiation::new(only_none, false);
        assert_eq!(n.negotiate("HeaderDigest", "CRC32C").unwrap().unwrap().1, "Reject");
    }

    #[test]
    fn max_recv_data_segment_length_is_declarative() {
        let (a, p) = answer("MaxRecvDataSegmentLength", "262144");
        assert_eq!(a, "262144");
        assert_eq!(p.initiator_max_recv_data_segment_length, 262144);
        assert_eq!(p.our_max_recv_data_segment_length, 262144);
        assert_eq!(answer("MaxRecvDataSegmentLength", "0x1000").1.initiator_max_recv_data_segment_length, 4096);
        assert_eq!(answer("MaxRecvDataSegmentLength", "100").0, "Reject");
        assert_eq!(answer("MaxRecvDataSegmentLength", "abc").0, "Reject");
    }

    #[test]
    fn numeric_minimum_and_maximum() {
        assert_eq!(answer("MaxBurstLength", "16776192").0, "262144");
        assert_eq!(answer("MaxBurstLength", "65536").0, "65536");
        assert_eq!(answer("FirstBurstLength", "262144").0, "65536");
        assert_eq!(answer("MaxOutstandingR2T", "8").0, "1");
        assert_eq!(answer("MaxOutstandingR2T", "0").0, "Reject");
        assert_eq!(answer("MaxConnections", "8").0, "1");
        assert_eq!(answer("ErrorRecoveryLevel", "2").0, "0");
        assert_eq!(answer("ErrorRecoveryLevel", "3").0, "Reject");
        assert_eq!(answer("DefaultTime2Wait", "0").0, "2");
        assert_eq!(answer("DefaultTime2Wait", "10").0, "10");
        assert_eq!(answer("DefaultTime2Retain", "0").0, "0");
        assert_eq!(answer("DefaultTime2Retain", "60").0, "20");
        assert_eq!(answer("DefaultTime2Retain", "3601").0, "Reject");
    }

    #[test]
    fn first_burst_capped_by_max_burst() {
        let mut n = neg();
        n.negotiate("MaxBurstLength", "4096").unwrap();
        n.negotiate("FirstBurstLength", "65536").unwrap();
        assert_eq!(n.finish().first_burst_length, 4096);
    }

    #[test]
    fn booleans() {
        assert_eq!(answer("InitialR2T", "No").0, "Yes");
        assert_eq!(answer("InitialR2T", "Yes").0, "Yes");
        assert_eq!(answer("ImmediateData", "No").0, "No");
        assert!(answer("ImmediateData", "Yes").1.immediate_data);
        assert_eq!(answer("DataPDUInOrder", "No").0, "Yes");
        assert_eq!(answer("DataSequenceInOrder", "No").0, "Yes");
        assert_eq!(answer("ImmediateData", "yes").0, "Reject");
        let offer = TargetParams { initial_r2t: false, ..Default::default() };
        let mut n = Negotiation::new(offer, false);
        assert_eq!(n.negotiate("InitialR2T", "No").unwrap().unwrap().1, "No");
        assert!(!n.finish().initial_r2t);
    }

    #[test]
    fn obsolete_unknown_and_target_only_keys() {
        assert_eq!(answer("IFMarker", "Yes").0, "No");
        assert_eq!(answer("OFMarkInt", "2048~8192").0, "Irrelevant");
        assert_eq!(answer("X-com.example.Foo", "1").0, "NotUnderstood");
        assert_eq!(answer("Bogus", "1").0, "NotUnderstood");
        assert_eq!(answer("TargetPortalGroupTag", "1").0, "Reject");
    }

    #[test]
    fn discovery_irrelevant_keys_and_duplicates() {
        let mut n = Negotiation::new(TargetParams::default(), true);
        assert_eq!(n.negotiate("MaxBurstLength", "512").unwrap().unwrap().1, "Irrelevant");
        assert_eq!(n.negotiate("HeaderDigest", "None").unwrap().unwrap().1, "None");
        assert_eq!(n.negotiate("HeaderDigest", "None"), Err(NegotiationError::Duplicate("HeaderDigest".into())));
    }
}
