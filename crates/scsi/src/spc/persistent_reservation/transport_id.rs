//! iSCSI TransportIDs (SPC-4 7.6.4.6): how PERSISTENT RESERVE names initiator ports in SPEC_I_PT,
//! REGISTER AND MOVE and READ FULL STATUS. Format 00b carries the iSCSI name alone (every port of
//! that initiator); format 01b carries the initiator port name "<name>,i,0x<ISID>".

use crate::sense::Sense;

/// SPC-4 7.6.1 PROTOCOL IDENTIFIER for iSCSI.
const PROTOCOL_ISCSI: u8 = 0x5;

/// One TransportID parsed from a parameter list: the port (or name) and its encoded length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TransportId {
    pub port: String,
    pub len: usize,
}

/// Parse the TransportID at `at` in a parameter list; errors point at the offending byte.
pub(crate) fn parse(list: &[u8], at: usize) -> Result<TransportId, Sense> {
    let bad = |byte: usize| Sense::invalid_param_field(u16::try_from(byte).unwrap_or(u16::MAX), None);
    let header = list.get(at..at + 4).ok_or_else(|| bad(at))?;
    let format = header[0] >> 6;
    if header[0] & 0x0f != PROTOCOL_ISCSI || header[0] & 0x30 != 0 || format > 1 {
        return Err(bad(at));
    }
    let additional = usize::from(u16::from_be_bytes([header[2], header[3]]));
    // The name field is null-terminated and padded to a multiple of four (at least 20 bytes).
    if additional < 4 || additional % 4 != 0 {
        return Err(bad(at + 2));
    }
    let body = list.get(at + 4..at + 4 + additional).ok_or_else(|| bad(at + 2))?;
    let end = body.iter().position(|&b| b == 0).ok_or_else(|| bad(at + 4))?;
    let text = std::str::from_utf8(&body[..end]).map_err(|_| bad(at + 4))?;
    if text.is_empty() || !text.is_ascii() {
        return Err(bad(at + 4));
    }
    let port = match (format, text.split_once(",i,")) {
        (0, None) => text.to_string(),
        (1, Some((name, isid))) if !name.is_empty() && valid_isid(isid) => text.to_string(),
        _ => return Err(bad(at + 4)),
    };
    Ok(TransportId { port, len: 4 + additional })
}

/// "0x" and twelve hex digits.
fn valid_isid(isid: &str) -> bool {
    let digits = isid.strip_prefix("0x").or_else(|| isid.strip_prefix("0X"));
    digits.is_some_and(|d| d.len() == 12 && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Encode `port` (an initiator port, or a bare name) as a TransportID.
pub(crate) fn encode(port: &str, out: &mut Vec<u8>) {
    let format: u8 = if port.contains(",i,") { 1 } else { 0 };
    // Name plus terminator, padded to a multiple of four, at least 20 bytes (SPC-4 7.6.4.6).
    let additional = (port.len() + 1).div_ceil(4).max(5) * 4;
    out.push(format << 6 | PROTOCOL_ISCSI);
    out.push(0);
    out.extend_from_slice(&u16::try_from(additional).unwrap_or(0xfffc).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(port.as_bytes());
    out.resize(start + additional, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_formats() {
        for port in ["iqn.1994-05.com.example:host,i,0x00023d000001", "iqn.1994-05.com.example:host", "x"] {
            let mut out = vec![0xee];
            encode(port, &mut out);
            assert_eq!((out.len() - 1) % 4, 0);
            assert!(out.len() > 24);
            let id = parse(&out, 1).unwrap();
            assert_eq!(id.port, port);
            assert_eq!(id.len, out.len() - 1);
        }
        let mut out = Vec::new();
        encode("iqn.x,i,0x00023d000001", &mut out);
        assert_eq!(out[0], 0x45);
        assert_eq!(&out[2..4], &[0, 24]);
        assert_eq!(&out[4..26], b"iqn.x,i,0x00023d000001");
        assert_eq!(out[26], 0);
    }

    #[test]
    fn rejects_malformed() {
        let mut good = Vec::new();
        encode("iqn.x", &mut good);
        // Another protocol (Fibre Channel 0).
        let mut fc = good.clone();
        fc[0] = 0x00;
        assert_eq!(parse(&fc, 0), Err(Sense::invalid_param_field(0, None)));
        // Length past the list, not a multiple of four, no terminator.
        let mut long = good.clone();
        long[3] = 40;
        assert!(parse(&long, 0).is_err());
        let mut odd = good.clone();
        odd[3] = 21;
        assert!(parse(&odd, 0).is_err());
        let mut unterminated = good.clone();
        for b in &mut unterminated[4..] {
            *b = b'a';
        }
        assert!(parse(&unterminated, 0).is_err());
        // Format 01b without an ISID, format 00b with one, a bad ISID.
        let mut f1 = good.clone();
        f1[0] = 0x45;
        assert!(parse(&f1, 0).is_err());
        let mut out = Vec::new();
        encode("iqn.x,i,0x12", &mut out);
        assert!(parse(&out, 0).is_err());
        assert!(parse(&[0x05, 0], 0).is_err());
        assert!(parse(&[], 3).is_err());
    }
}
