//! SAM-5 4.7 LUN addressing: the 8-byte LUN field of transports to and from a LUN number.
//! SKELETON.

/// Decode an 8-byte LUN field (peripheral and flat addressing) to a LUN number.
pub fn decode_lun(raw: [u8; 8]) -> u64 {
    let _ = raw;
    todo!()
}

/// Encode a LUN number for REPORT LUNS and transports (peripheral below 256, flat up to 16383).
pub fn encode_lun(lun: u64) -> [u8; 8] {
    let _ = lun;
    todo!()
}
