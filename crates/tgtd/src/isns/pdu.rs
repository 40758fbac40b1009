//! iSNSP messages (RFC 4171 5): the 12-byte PDU header, tag-length-value attributes, and the few
//! messages a target sends (DevAttrReg, DevAttrQry, DevDereg, SCNReg) or must answer (ESI, SCN). Everything read from
//! the server is bounded before it sizes anything: a server can be wrong or hostile too.

use std::net::{IpAddr, Ipv6Addr};

/// RFC 4171 5.1: the only iSNSP version.
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 12;
/// A PDU's payload length is 16 bits; longer messages span several PDUs (5.2).
pub const MAX_PDU_PAYLOAD: usize = 65532;
/// A reassembled message from the server larger than this is refused: the answers a target waits
/// for (registration and deregistration responses) are small.
pub const MAX_MESSAGE: usize = 1 << 20;

/// RFC 4171 6.1: function IDs; a response is its request's ID with the top bit set.
pub mod function {
    pub const DEV_ATTR_REG: u16 = 0x0001;
    pub const DEV_ATTR_QRY: u16 = 0x0002;
    pub const SCN_REG: u16 = 0x0005;
    pub const DEV_DEREG: u16 = 0x0004;
    pub const SCN: u16 = 0x0008;
    pub const ESI: u16 = 0x000D;
    pub const RESPONSE: u16 = 0x8000;
}

/// RFC 4171 5.1.4: header flags.
pub mod flags {
    pub const CLIENT: u16 = 0x8000;
    pub const SERVER: u16 = 0x4000;
    /// DevAttrReg: the entity's previous registration is replaced as a whole, so objects no
    /// longer listed (a deleted target or portal) go with it.
    pub const REPLACE: u16 = 0x1000;
    pub const LAST_PDU: u16 = 0x0800;
    pub const FIRST_PDU: u16 = 0x0400;
}

/// RFC 4171 6.1: attribute tags used here.
pub mod tag {
    pub const DELIMITER: u32 = 0;
    pub const ENTITY_IDENTIFIER: u32 = 1;
    pub const ENTITY_PROTOCOL: u32 = 2;
    pub const REGISTRATION_PERIOD: u32 = 6;
    pub const PORTAL_IP_ADDRESS: u32 = 16;
    pub const PORTAL_PORT: u32 = 17;
    /// Where the server sends SCNs for the portal's entity (6.5.7).
    pub const SCN_PORT: u32 = 23;
    pub const ISCSI_NAME: u32 = 32;
    pub const ISCSI_NODE_TYPE: u32 = 33;
    pub const ISCSI_ALIAS: u32 = 34;
    pub const ISCSI_SCN_BITMAP: u32 = 35;
}

/// RFC 4171 6.4.4: the iSCSI Node SCN Bitmap; bit 31 of the RFC's numbering is the least
/// significant.
pub mod scn {
    pub const DD_MEMBER_ADDED: u32 = 1 << 0;
    pub const DD_MEMBER_REMOVED: u32 = 1 << 1;
    pub const OBJECT_UPDATED: u32 = 1 << 2;
    pub const OBJECT_ADDED: u32 = 1 << 3;
    pub const OBJECT_REMOVED: u32 = 1 << 4;
    pub const OBJECT_CHANGES: u32 = OBJECT_UPDATED | OBJECT_ADDED | OBJECT_REMOVED;
    /// Only events about initiators (and the registering node itself).
    pub const INITIATOR_AND_SELF: u32 = 1 << 7;
}

/// Entity Protocol value for iSCSI (6.2.2).
pub const PROTOCOL_ISCSI: u32 = 2;
/// iSCSI Node Type bit for a target (6.4.2).
pub const NODE_TYPE_TARGET: u32 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PduError {
    #[error("iSNSP version {0} is not supported")]
    Version(u16),
    #[error("attribute {tag} claims {len} bytes but {left} remain")]
    AttributeOverrun { tag: u32, len: usize, left: usize },
    #[error("truncated attribute header")]
    TruncatedAttribute,
    #[error("response without an error code")]
    NoStatus,
    #[error("message larger than {MAX_MESSAGE} bytes")]
    TooLarge,
    #[error("PDU out of sequence")]
    Sequence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub function: u16,
    pub length: u16,
    pub flags: u16,
    pub xid: u16,
    pub seq: u16,
}

impl Header {
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Header, PduError> {
        let word = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        if word(0) != VERSION {
            return Err(PduError::Version(word(0)));
        }
        Ok(Header { function: word(2), length: word(4), flags: word(6), xid: word(8), seq: word(10) })
    }

    fn encode(&self, out: &mut Vec<u8>) {
        for word in [VERSION, self.function, self.length, self.flags, self.xid, self.seq] {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }
}

/// One attribute as it travels: values are kept as bytes; the few read back are decoded on use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub tag: u32,
    pub value: Vec<u8>,
}

impl Attribute {
    /// RFC 4171 5.4: strings are NUL-terminated and padded to a multiple of 4 bytes.
    pub fn string(tag: u32, text: &str) -> Attribute {
        let mut value = text.as_bytes().to_vec();
        value.push(0);
        value.resize(value.len().div_ceil(4) * 4, 0);
        Attribute { tag, value }
    }

    pub fn u32(tag: u32, n: u32) -> Attribute {
        Attribute { tag, value: n.to_be_bytes().to_vec() }
    }

    /// Addresses are 16 bytes; IPv4 ones IPv4-mapped (6.3.1).
    pub fn ip(tag: u32, ip: IpAddr) -> Attribute {
        let v6 = match ip {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        Attribute { tag, value: v6.octets().to_vec() }
    }

    /// A TCP port: the UDP bit (bit 15 of the upper half) stays clear (6.3.2).
    pub fn tcp_port(tag: u32, port: u16) -> Attribute {
        Attribute::u32(tag, u32::from(port))
    }

    /// An attribute named without a value: in a query, "return this attribute" (5.6.5.2).
    pub fn empty(tag: u32) -> Attribute {
        Attribute { tag, value: Vec::new() }
    }

    pub fn delimiter() -> Attribute {
        Attribute { tag: tag::DELIMITER, value: Vec::new() }
    }

    pub fn as_u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.value.as_slice()).ok().map(u32::from_be_bytes)
    }

    pub fn as_string(&self) -> Option<String> {
        let end = self.value.iter().position(|b| *b == 0).unwrap_or(self.value.len());
        std::str::from_utf8(&self.value[..end]).ok().map(str::to_string)
    }

    pub fn as_ip(&self) -> Option<IpAddr> {
        let bytes = <[u8; 16]>::try_from(self.value.as_slice()).ok()?;
        let v6 = Ipv6Addr::from(bytes);
        Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
    }
}

pub fn encode_attributes(attributes: &[Attribute], out: &mut Vec<u8>) {
    for a in attributes {
        out.extend_from_slice(&a.tag.to_be_bytes());
        out.extend_from_slice(&(a.value.len() as u32).to_be_bytes());
        out.extend_from_slice(&a.value);
    }
}

/// Parses a payload's attributes; every length is checked against what is left before use.
pub fn decode_attributes(mut bytes: &[u8]) -> Result<Vec<Attribute>, PduError> {
    let mut attributes = Vec::new();
    while !bytes.is_empty() {
        if bytes.len() < 8 {
            return Err(PduError::TruncatedAttribute);
        }
        let tag = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
        let left = bytes.len() - 8;
        if len > left {
            return Err(PduError::AttributeOverrun { tag, len, left });
        }
        attributes.push(Attribute { tag, value: bytes[8..8 + len].to_vec() });
        bytes = &bytes[8 + len..];
    }
    Ok(attributes)
}

/// One whole message: its function, transaction and payload (reassembled across PDUs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub function: u16,
    pub flags: u16,
    pub xid: u16,
    pub payload: Vec<u8>,
}

impl Message {
    /// A request: source, message key, delimiter, operating attributes (5.6.1).
    pub fn request(
        function: u16,
        extra_flags: u16,
        xid: u16,
        source: &str,
        key: &[Attribute],
        operating: &[Attribute],
    ) -> Message {
        let mut payload = Vec::new();
        encode_attributes(&[Attribute::string(tag::ISCSI_NAME, source)], &mut payload);
        encode_attributes(key, &mut payload);
        encode_attributes(&[Attribute::delimiter()], &mut payload);
        encode_attributes(operating, &mut payload);
        Message { function, flags: flags::CLIENT | extra_flags, xid, payload }
    }

    /// A response from the client to a server's request (ESI, SCN): status then attributes.
    pub fn response(to: &Message, status: u32, attributes: &[Attribute]) -> Message {
        let mut payload = status.to_be_bytes().to_vec();
        encode_attributes(attributes, &mut payload);
        Message { function: to.function | function::RESPONSE, flags: flags::CLIENT, xid: to.xid, payload }
    }

    /// The PDUs carrying this message: one, or several with sequence IDs when it exceeds 64 KiB.
    pub fn encode(&self) -> Vec<u8> {
        let chunks: Vec<&[u8]> =
            if self.payload.is_empty() { vec![&[][..]] } else { self.payload.chunks(MAX_PDU_PAYLOAD).collect() };
        let mut out = Vec::with_capacity(self.payload.len() + HEADER_LEN * chunks.len());
        let last = chunks.len() - 1;
        for (seq, chunk) in chunks.iter().enumerate() {
            let mut flags = self.flags & !(flags::FIRST_PDU | flags::LAST_PDU);
            if seq == 0 {
                flags |= flags::FIRST_PDU;
            }
            if seq == last {
                flags |= flags::LAST_PDU;
            }
            // Both casts are in range: chunks are at most MAX_PDU_PAYLOAD, and a message of
            // 65536 PDUs (4 GiB) is never built from a daemon's targets and portals.
            let header =
                Header { function: self.function, length: chunk.len() as u16, flags, xid: self.xid, seq: seq as u16 };
            header.encode(&mut out);
            out.extend_from_slice(chunk);
        }
        out
    }

    pub fn is_response(&self) -> bool {
        self.function & function::RESPONSE != 0
    }

    /// A response's status word and attributes.
    pub fn status_and_attributes(&self) -> Result<(u32, Vec<Attribute>), PduError> {
        let status = self.payload.get(..4).ok_or(PduError::NoStatus)?;
        let status = u32::from_be_bytes([status[0], status[1], status[2], status[3]]);
        Ok((status, decode_attributes(&self.payload[4..])?))
    }
}

/// Reassembles a message from PDUs as they arrive (5.2): same transaction, sequence IDs counting
/// up from 0, total size bounded.
#[derive(Debug, Default)]
pub struct Reassembly {
    partial: Option<Message>,
    next_seq: u16,
}

impl Reassembly {
    /// Adds one PDU; returns the message once its last PDU is in.
    pub fn push(&mut self, header: Header, payload: &[u8]) -> Result<Option<Message>, PduError> {
        let message = match self.partial.as_mut() {
            None if header.seq == 0 => {
                self.next_seq = 0;
                self.partial.insert(Message {
                    function: header.function,
                    flags: header.flags,
                    xid: header.xid,
                    payload: Vec::new(),
                })
            }
            Some(m) if m.xid == header.xid && m.function == header.function && header.seq == self.next_seq => m,
            _ => {
                self.partial = None;
                return Err(PduError::Sequence);
            }
        };
        if message.payload.len() + payload.len() > MAX_MESSAGE {
            self.partial = None;
            return Err(PduError::TooLarge);
        }
        message.payload.extend_from_slice(payload);
        self.next_seq = self.next_seq.wrapping_add(1);
        if header.flags & flags::LAST_PDU != 0 {
            return Ok(self.partial.take());
        }
        Ok(None)
    }
}

/// RFC 4171 6.4: the status a response carries; the names of the common ones for logs.
pub fn status_name(status: u32) -> &'static str {
    match status {
        0 => "Successful",
        1 => "Unknown Error",
        2 => "Message Format Error",
        3 => "Invalid Registration",
        5 => "Invalid Query",
        6 => "Source Unknown",
        7 => "Source Absent",
        8 => "Source Unauthorized",
        9 => "No Such Entry",
        10 => "Version Not Supported",
        11 => "Internal Error",
        12 => "Busy",
        15 => "Message Not Supported",
        17 => "SCN Registration Rejected",
        22 => "Invalid Deregistration",
        _ => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reassemble(bytes: &[u8]) -> Result<Vec<Message>, PduError> {
        let mut r = Reassembly::default();
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let header = Header::parse(rest[..HEADER_LEN].try_into().unwrap())?;
            let end = HEADER_LEN + header.length as usize;
            if let Some(m) = r.push(header, &rest[HEADER_LEN..end])? {
                out.push(m);
            }
            rest = &rest[end..];
        }
        Ok(out)
    }

    #[test]
    fn a_registration_has_rfc_4171_layout() {
        let key = [Attribute::string(tag::ENTITY_IDENTIFIER, "e1")];
        let op = [Attribute::u32(tag::ENTITY_PROTOCOL, PROTOCOL_ISCSI)];
        let m = Message::request(function::DEV_ATTR_REG, flags::REPLACE, 7, "iqn.x", &key, &op);
        let bytes = m.encode();
        // Version 1, DevAttrReg, length, client|replace|first|last, xid 7, seq 0.
        assert_eq!(&bytes[..12], &[0, 1, 0, 1, 0, 48, 0x9c, 0, 0, 7, 0, 0]);
        // Source: tag 32, "iqn.x\0" padded to 8 bytes.
        assert_eq!(&bytes[12..28], &[0, 0, 0, 32, 0, 0, 0, 8, b'i', b'q', b'n', b'.', b'x', 0, 0, 0]);
        // Key "e1\0" padded to 4, the delimiter, then the protocol.
        assert_eq!(&bytes[28..40], &[0, 0, 0, 1, 0, 0, 0, 4, b'e', b'1', 0, 0]);
        assert_eq!(&bytes[40..48], &[0; 8]);
        assert_eq!(&bytes[48..], &[0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 2]);
        assert_eq!(reassemble(&bytes).unwrap(), vec![Message { flags: 0x9c00, ..m }]);
    }

    #[test]
    fn ipv4_portals_are_mapped_and_read_back() {
        let a = Attribute::ip(tag::PORTAL_IP_ADDRESS, "127.0.0.1".parse().unwrap());
        assert_eq!(a.value, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
        assert_eq!(a.as_ip(), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(Attribute::ip(16, "::1".parse().unwrap()).as_ip(), Some("::1".parse().unwrap()));
    }

    #[test]
    fn long_messages_span_pdus_and_come_back_whole() {
        let op: Vec<Attribute> =
            (0..3000).map(|i| Attribute::string(tag::ISCSI_NAME, &format!("iqn.t{i:040}"))).collect();
        let m = Message::request(function::DEV_ATTR_REG, 0, 1, "iqn.s", &[], &op);
        assert!(m.payload.len() > MAX_PDU_PAYLOAD);
        let bytes = m.encode();
        assert_eq!(u16::from_be_bytes([bytes[6], bytes[7]]) & (flags::FIRST_PDU | flags::LAST_PDU), flags::FIRST_PDU);
        let back = reassemble(&bytes).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].payload, m.payload);
    }

    #[test]
    fn hostile_responses_are_refused_not_trusted() {
        // An attribute claiming more bytes than the payload holds.
        let mut payload = 0u32.to_be_bytes().to_vec();
        payload.extend_from_slice(&[0, 0, 0, 6, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 1]);
        let m = Message { function: 0x8001, flags: 0, xid: 1, payload };
        assert!(matches!(m.status_and_attributes(), Err(PduError::AttributeOverrun { tag: 6, .. })));
        // A truncated attribute header, and a response without its status word.
        assert_eq!(decode_attributes(&[0, 0, 0, 6, 0]), Err(PduError::TruncatedAttribute));
        let empty = Message { function: 0x8001, flags: 0, xid: 1, payload: vec![0, 0] };
        assert_eq!(empty.status_and_attributes(), Err(PduError::NoStatus));
        // Wrong version, a PDU out of sequence, and a message that never ends.
        assert_eq!(Header::parse(&[0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), Err(PduError::Version(2)));
        let mut r = Reassembly::default();
        let h = |seq, flags| Header { function: 0x8001, length: 0, flags, xid: 1, seq };
        assert_eq!(r.push(h(1, 0), &[]), Err(PduError::Sequence));
        let chunk = vec![0u8; 65535];
        let mut r = Reassembly::default();
        let mut result = Ok(None);
        for seq in 0..=(MAX_MESSAGE / chunk.len()) as u16 {
            result = r.push(h(seq, 0), &chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(PduError::TooLarge));
        // Readers of single values do not trust lengths either.
        assert_eq!(Attribute { tag: 6, value: vec![1, 2] }.as_u32(), None);
        assert_eq!(Attribute { tag: 16, value: vec![1; 4] }.as_ip(), None);
    }
}
