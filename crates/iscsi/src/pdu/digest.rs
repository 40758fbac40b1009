//! CRC32C digests (RFC 7143 11.1 and 13.1): header digests cover the BHS and AHS, data digests the
//! data segment including its padding. The 32-bit value travels least significant byte first, which
//! is how the RFC 3720 B.4 test vectors are written.

/// The iSCSI CRC32C (Castagnoli) of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// Continue a CRC32C over another piece (data segment then padding).
pub(crate) fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// The four digest bytes as sent on the wire.
pub(crate) fn to_wire(crc: u32) -> [u8; 4] {
    crc.to_le_bytes()
}

pub(crate) fn from_wire(bytes: [u8; 4]) -> u32 {
    u32::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 3720 B.4 test vectors, given there as the bytes of the digest field.
    #[test]
    fn rfc3720_vectors() {
        assert_eq!(to_wire(crc32c(&[0u8; 32])), [0xaa, 0x36, 0x91, 0x8a]);
        assert_eq!(to_wire(crc32c(&[0xffu8; 32])), [0x43, 0xab, 0xa8, 0x62]);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(to_wire(crc32c(&inc)), [0x4e, 0x79, 0xdd, 0x46]);
        let dec: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(to_wire(crc32c(&dec)), [0x5c, 0xdb, 0x3f, 0x11]);
    }

    #[test]
    fn append_matches_whole() {
        let data: Vec<u8> = (0u8..100).collect();
        assert_eq!(crc32c_append(crc32c(&data[..37]), &data[37..]), crc32c(&data));
        assert_eq!(from_wire(to_wire(0x1234_5678)), 0x1234_5678);
    }
}
