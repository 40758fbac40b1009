//! The CDB of a SCSI Command PDU: the 16 bytes in its header and any Extended CDB AHS
//! (RFC 7143 11.2.2.3, 11.3.5).

use crate::pdu::Bhs;

/// The largest CDB carried (16 in the BHS plus an Extended CDB AHS, 11.2.2.3).
const MAX_CDB: usize = 64;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Cdb {
    bytes: [u8; MAX_CDB],
    len: usize,
}

impl Cdb {
    /// The BHS CDB plus any Extended CDB AHS (type 1). None when the AHS is malformed.
    pub fn parse(bhs: &Bhs, ahs: &[u8]) -> Option<Cdb> {
        let mut c = Cdb { bytes: [0; MAX_CDB], len: 16 };
        c.bytes[..16].copy_from_slice(bhs.cdb());
        let mut rest = ahs;
        while rest.len() >= 4 {
            let ahs_len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let ty = rest[2];
            let total = (3 + ahs_len).div_ceil(4) * 4;
            if total > rest.len() || ahs_len == 0 {
                return None;
            }
            if ty == 1 {
                // AHSLength counts the reserved byte and the CDB bytes beyond 16.
                let extra = ahs_len - 1;
                if 16 + extra > MAX_CDB {
                    return None;
                }
                c.bytes[16..16 + extra].copy_from_slice(&rest[4..4 + extra]);
                c.len = 16 + extra;
            }
            rest = &rest[total..];
        }
        Some(c)
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::Opcode;

    #[test]
    fn cdb_with_extended_ahs() {
        let mut b = Bhs::new(Opcode::ScsiCommand);
        b.0[32] = 0x7f;
        // AHSLength 17 (16 extra bytes + reserved), type 1, reserved, 16 bytes, padded to 20.
        let mut ahs = vec![0, 17, 1, 0];
        ahs.extend((0u8..16).map(|i| i + 100));
        let c = Cdb::parse(&b, &ahs).unwrap();
        assert_eq!(c.as_slice().len(), 32);
        assert_eq!(c.as_slice()[0], 0x7f);
        assert_eq!(c.as_slice()[16], 100);
        assert!(Cdb::parse(&b, &[0, 40, 1, 0]).is_none());
        assert_eq!(Cdb::parse(&b, &[]).unwrap().as_slice().len(), 16);
    }
}
