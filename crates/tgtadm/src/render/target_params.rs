//! `--mode target --op show --tid N`: tgt prints the target's iSCSI parameters as `key=value`
//! lines in a fixed order, NOP settings first. Scripts read these lines by key, so every key tgt
//! prints is printed here, in tgt's order; keys only rtgt has follow at the end.

use rtgt_mgmt::TargetView;
use std::fmt::Write;

/// tgt 1.0.85's keys in its order, each with the value printed when the daemon does not report the
/// key: the marker keys (RFC 7143 drops markers; "Reject" is the answer to any offer) and iSER's
/// keys (RFC 7145; rtgt has no iSER, so RDMAExtensions is No and the others keep their defaults).
const TGT_KEYS: &[(&str, &str)] = &[
    ("MaxRecvDataSegmentLength", "8192"),
    ("HeaderDigest", "None"),
    ("DataDigest", "None"),
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
    ("OFMarkInt", "Reject"),
    ("IFMarkInt", "Reject"),
    ("MaxConnections", "1"),
    ("RDMAExtensions", "No"),
    ("TargetRecvDataSegmentLength", "262144"),
    ("InitiatorRecvDataSegmentLength", "262144"),
    ("MaxOutstandingUnexpectedPDUs", "0"),
    ("MaxXmitDataSegmentLength", "8192"),
    ("MaxQueueCmd", "128"),
];

/// The parameter lines for one target.
pub fn target_params(t: &TargetView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "nop_interval={}", t.nop_interval.unwrap_or(0));
    let _ = writeln!(out, "nop_count={}", t.nop_count.unwrap_or(0));
    let reported = |name: &str| t.params.iter().find(|p| p.name.eq_ignore_ascii_case(name)).map(|p| p.value.as_str());
    for (name, fallback) in TGT_KEYS {
        let value = reported(name).unwrap_or(fallback);
        let value = match *name {
            // tgt prints one digest; rtgt's setting is a preference list ("None,CRC32C": None
            // preferred, CRC32C accepted), so the text shows the preferred one and --json the list.
            "HeaderDigest" | "DataDigest" => value.split(',').next().unwrap_or(value).trim(),
            _ => value,
        };
        let _ = writeln!(out, "{name}={value}");
    }
    for p in t.params.iter().filter(|p| !TGT_KEYS.iter().any(|(name, _)| p.name.eq_ignore_ascii_case(name))) {
        let _ = writeln!(out, "{}={}", p.name, p.value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtgt_mgmt::{Lld, TargetParam, TargetState};

    fn view(params: &[(&str, &str)]) -> TargetView {
        TargetView {
            tid: 1,
            name: "iqn.a".into(),
            driver: Lld::Iscsi,
            state: TargetState::Ready,
            nop_interval: Some(5),
            nop_count: None,
            nexuses: vec![],
            luns: vec![],
            accounts: vec![],
            acl: vec![],
            params: params.iter().map(|(n, v)| TargetParam { name: n.to_string(), value: v.to_string() }).collect(),
        }
    }

    /// Debian's tgtadm 1.0.85 for a new target: every key, in its order; values the daemon reports
    /// replace the defaults, a digest list shows its preferred digest, rtgt's own keys come last.
    #[test]
    fn every_tgt_key_in_tgt_order() {
        let text = target_params(&view(&[
            ("MaxRecvDataSegmentLength", "262144"),
            ("HeaderDigest", "None,CRC32C"),
            ("DataDigest", "CRC32C,None"),
            ("MaxConnections", "1"),
            ("MaxSessions", "0"),
        ]));
        let expected = "\
nop_interval=5
nop_count=0
MaxRecvDataSegmentLength=262144
HeaderDigest=None
DataDigest=CRC32C
InitialR2T=Yes
MaxOutstandingR2T=1
ImmediateData=Yes
FirstBurstLength=65536
MaxBurstLength=262144
DataPDUInOrder=Yes
DataSequenceInOrder=Yes
ErrorRecoveryLevel=0
IFMarker=No
OFMarker=No
DefaultTime2Wait=2
DefaultTime2Retain=20
OFMarkInt=Reject
IFMarkInt=Reject
MaxConnections=1
RDMAExtensions=No
TargetRecvDataSegmentLength=262144
InitiatorRecvDataSegmentLength=262144
MaxOutstandingUnexpectedPDUs=0
MaxXmitDataSegmentLength=8192
MaxQueueCmd=128
MaxSessions=0
";
        assert_eq!(text, expected);
    }
}
