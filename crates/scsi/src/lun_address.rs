//! SAM-5 4.7 LUN addressing: the 8-byte LUN field of transports to and from a LUN number.
//!
//! Peripheral device addressing (method 00b, bus 0) carries LUNs below 256 in byte 1; flat space
//! addressing (method 01b) carries 14 bits in bytes 0-1. Other methods are not used by this target;
//! they decode to a number that matches no configured LUN.

/// Decode an 8-byte LUN field (peripheral and flat addressing) to a LUN number.
pub fn decode_lun(raw: [u8; 8]) -> u64 {
    match raw[0] >> 6 {
        // SAM-5 4.7.6 peripheral device addressing; a non-zero bus number is a different LUN space.
        0b00 if raw[0] & 0x3f == 0 => u64::from(raw[1]),
        // SAM-5 4.7.7 flat space addressing.
        0b01 => (u64::from(raw[0] & 0x3f) << 8) | u64::from(raw[1]),
        // Anything else (extended, logical unit addressing, other buses, or non-zero second-level
        // fields) cannot name one of ours; keep the whole field so it is never mistaken for one.
        _ => u64::from_be_bytes(raw) | (1 << 63),
    }
}

/// Encode a LUN number for REPORT LUNS and transports (peripheral below 256, flat up to 16383).
/// Larger numbers are not representable in a single level and are truncated to 14 bits.
pub fn encode_lun(lun: u64) -> [u8; 8] {
    let mut raw = [0u8; 8];
    if lun < 256 {
        raw[1] = lun as u8;
    } else {
        let lun = lun & 0x3fff;
        raw[0] = 0x40 | (lun >> 8) as u8;
        raw[1] = lun as u8;
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peripheral_and_flat() {
        assert_eq!(encode_lun(0), [0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode_lun(5), [0, 5, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode_lun(256), [0x41, 0x00, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode_lun(16383), [0x7f, 0xff, 0, 0, 0, 0, 0, 0]);
        for lun in [0u64, 1, 255, 256, 300, 16383] {
            assert_eq!(decode_lun(encode_lun(lun)), lun);
        }
        assert_eq!(decode_lun([0x40, 0x07, 0, 0, 0, 0, 0, 0]), 7);
    }

    #[test]
    fn other_methods_match_nothing_small() {
        assert!(decode_lun([0x01, 0x01, 0, 0, 0, 0, 0, 0]) > 16383);
        assert!(decode_lun([0xc0, 0, 0, 0, 0, 0, 0, 0]) > 16383);
    }
}
