//! The virtio-scsi wire formats (virtio 1.2, 5.6.6): request and response headers of the request
//! queues, task management and asynchronous notification messages of the control queue, event
//! records of the event queue, the device configuration space, and the 8-byte virtio LUN.
//!
//! Everything is little-endian and read from plain byte slices, so nothing here needs `unsafe` and
//! every length is checked before use.

use virtio_bindings::virtio_scsi::{VIRTIO_SCSI_CDB_SIZE, VIRTIO_SCSI_SENSE_SIZE};

/// The CDB field of a request header (the config space's cdb_size; we never change it).
pub const CDB_SIZE: usize = VIRTIO_SCSI_CDB_SIZE as usize;
/// The sense field of a response header (the config space's sense_size).
pub const SENSE_SIZE: usize = VIRTIO_SCSI_SENSE_SIZE as usize;
/// lun[8], id u64, task_attr, prio, crn, cdb[CDB_SIZE].
pub const REQUEST_HEADER_LEN: usize = 8 + 8 + 3 + CDB_SIZE;
/// sense_len u32, resid u32, status_qualifier u16, status u8, response u8, sense[SENSE_SIZE].
pub const RESPONSE_HEADER_LEN: usize = 4 + 4 + 2 + 1 + 1 + SENSE_SIZE;
/// type u32, subtype u32, lun[8], id u64.
pub const TMF_REQUEST_LEN: usize = 24;
/// type u32, lun[8], event_requested u32.
pub const AN_REQUEST_LEN: usize = 16;
/// event u32, lun[8], reason u32.
pub const EVENT_LEN: usize = 16;
/// The virtio_scsi_config structure.
pub const CONFIG_LEN: usize = 36;
/// Where its sense_size and cdb_size are (u32 each), the only fields a driver may write.
pub const CONFIG_SENSE_SIZE_AT: usize = 20;
pub const CONFIG_CDB_SIZE_AT: usize = 24;

/// The highest LUN a virtio LUN field can carry (flat space addressing, 14 bits).
pub const MAX_LUN: u32 = 0x3fff;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

fn lun_at(b: &[u8], at: usize) -> [u8; 8] {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    v
}

/// What the 8-byte virtio LUN field names (virtio 1.2, 5.6.6.1: byte 0 is 1, byte 1 the target,
/// bytes 2-3 the LUN in SAM flat or peripheral format, bytes 4-7 zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtioLun {
    /// A LUN of the one target this device serves (target 0).
    Lun(u64),
    /// Another target number, or a malformed field: the device answers BAD_TARGET.
    BadTarget,
}

impl VirtioLun {
    pub fn decode(raw: [u8; 8]) -> Self {
        if raw[0] != 1 || raw[1] != 0 {
            return VirtioLun::BadTarget;
        }
        // Bytes 4-7 (further addressing levels) are unused by virtio; a field that sets them names a
        // LUN we cannot have, kept distinct so that it never aliases a configured one.
        if raw[4..].iter().any(|&b| b != 0) {
            return VirtioLun::Lun(u64::from_be_bytes(raw) | (1 << 63));
        }
        VirtioLun::Lun(rtgt_scsi::decode_lun([raw[2], raw[3], 0, 0, 0, 0, 0, 0]))
    }

    /// The field for LUN `lun` of target 0, as Linux builds it (flat addressing: 0x40 | high bits).
    pub fn encode(lun: u64) -> [u8; 8] {
        let lun = lun & u64::from(MAX_LUN);
        [1, 0, 0x40 | (lun >> 8) as u8, lun as u8, 0, 0, 0, 0]
    }
}

/// A request queue's header (virtio_scsi_cmd_req).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub lun: [u8; 8],
    /// The guest's tag, used by ABORT TASK and QUERY TASK.
    pub id: u64,
    pub task_attr: u8,
    pub cdb: [u8; CDB_SIZE],
}

impl RequestHeader {
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < REQUEST_HEADER_LEN {
            return None;
        }
        let mut cdb = [0u8; CDB_SIZE];
        cdb.copy_from_slice(&b[19..19 + CDB_SIZE]);
        Some(RequestHeader { lun: lun_at(b, 0), id: u64_at(b, 8), task_attr: b[16], cdb })
    }

    pub fn encode(&self) -> [u8; REQUEST_HEADER_LEN] {
        let mut b = [0u8; REQUEST_HEADER_LEN];
        b[0..8].copy_from_slice(&self.lun);
        b[8..16].copy_from_slice(&self.id.to_le_bytes());
        b[16] = self.task_attr;
        b[19..].copy_from_slice(&self.cdb);
        b
    }
}

/// virtio 1.2 5.6.6.1: the response field of a request's (and a TMF's) answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Response {
    Ok = 0,
    Overrun = 1,
    Aborted = 2,
    BadTarget = 3,
    Reset = 4,
    Busy = 5,
    TransportFailure = 6,
    TargetFailure = 7,
    NexusFailure = 8,
    Failure = 9,
    FunctionSucceeded = 10,
    FunctionRejected = 11,
    IncorrectLun = 12,
}

/// A request queue's answer header (virtio_scsi_cmd_resp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHeader {
    pub resid: u32,
    pub status: u8,
    pub response: Response,
    pub sense: Vec<u8>,
}

impl ResponseHeader {
    pub fn only(response: Response) -> Self {
        ResponseHeader { resid: 0, status: 0, response, sense: Vec::new() }
    }

    pub fn encode(&self) -> [u8; RESPONSE_HEADER_LEN] {
        let mut b = [0u8; RESPONSE_HEADER_LEN];
        let sense_len = self.sense.len().min(SENSE_SIZE);
        b[0..4].copy_from_slice(&(sense_len as u32).to_le_bytes());
        b[4..8].copy_from_slice(&self.resid.to_le_bytes());
        b[10] = self.status;
        b[11] = self.response as u8;
        b[12..12 + sense_len].copy_from_slice(&self.sense[..sense_len]);
        b
    }

    /// For tests and tools playing the guest.
    pub fn parse(b: &[u8]) -> Option<(u32, u32, u8, u8, Vec<u8>)> {
        if b.len() < RESPONSE_HEADER_LEN {
            return None;
        }
        let sense_len = (u32_at(b, 0) as usize).min(SENSE_SIZE);
        Some((u32_at(b, 0), u32_at(b, 4), b[10], b[11], b[12..12 + sense_len].to_vec()))
    }
}

/// A control queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRequest {
    Tmf {
        subtype: u32,
        lun: [u8; 8],
        id: u64,
    },
    /// AN_QUERY or AN_SUBSCRIBE: which asynchronous events the guest wants.
    AsyncNotify {
        subscribe: bool,
        lun: [u8; 8],
        event_requested: u32,
    },
}

impl ControlRequest {
    /// None for a message too short for its type or of an unknown type.
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < 4 {
            return None;
        }
        match u32_at(b, 0) {
            virtio_bindings::virtio_scsi::VIRTIO_SCSI_T_TMF if b.len() >= TMF_REQUEST_LEN => {
                Some(ControlRequest::Tmf { subtype: u32_at(b, 4), lun: lun_at(b, 8), id: u64_at(b, 16) })
            }
            t @ (virtio_bindings::virtio_scsi::VIRTIO_SCSI_T_AN_QUERY
            | virtio_bindings::virtio_scsi::VIRTIO_SCSI_T_AN_SUBSCRIBE)
                if b.len() >= AN_REQUEST_LEN =>
            {
                Some(ControlRequest::AsyncNotify {
                    subscribe: t == virtio_bindings::virtio_scsi::VIRTIO_SCSI_T_AN_SUBSCRIBE,
                    lun: lun_at(b, 4),
                    event_requested: u32_at(b, 12),
                })
            }
            _ => None,
        }
    }

    /// For tests and tools playing the guest.
    pub fn encode_tmf(subtype: u32, lun: [u8; 8], id: u64) -> [u8; TMF_REQUEST_LEN] {
        let mut b = [0u8; TMF_REQUEST_LEN];
        b[4..8].copy_from_slice(&subtype.to_le_bytes());
        b[8..16].copy_from_slice(&lun);
        b[16..24].copy_from_slice(&id.to_le_bytes());
        b
    }
}

/// An event queue record (virtio_scsi_event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub event: u32,
    pub lun: [u8; 8],
    pub reason: u32,
}

impl Event {
    pub fn encode(&self) -> [u8; EVENT_LEN] {
        let mut b = [0u8; EVENT_LEN];
        b[0..4].copy_from_slice(&self.event.to_le_bytes());
        b[4..12].copy_from_slice(&self.lun);
        b[12..16].copy_from_slice(&self.reason.to_le_bytes());
        b
    }
}

/// The device configuration space (virtio_scsi_config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    pub num_queues: u32,
    pub seg_max: u32,
    pub max_sectors: u32,
    pub cmd_per_lun: u32,
}

impl Config {
    pub fn encode(&self) -> [u8; CONFIG_LEN] {
        let mut b = [0u8; CONFIG_LEN];
        let words = [
            self.num_queues,
            self.seg_max,
            self.max_sectors,
            self.cmd_per_lun,
            EVENT_LEN as u32,
            SENSE_SIZE as u32,
            CDB_SIZE as u32,
        ];
        for (i, w) in words.iter().enumerate() {
            b[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        // max_channel 0 (u16 at 28), max_target 0 (u16 at 30): one target; max_lun at 32.
        b[32..36].copy_from_slice(&MAX_LUN.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtio_lun_decodes_flat_and_rejects_other_targets() {
        // virtio 1.2 5.6.6.1: byte 0 = 1, byte 1 = target, bytes 2-3 = 0x40 | LUN high, LUN low.
        assert_eq!(VirtioLun::decode([1, 0, 0x40, 0x05, 0, 0, 0, 0]), VirtioLun::Lun(5));
        assert_eq!(VirtioLun::decode([1, 0, 0x41, 0x02, 0, 0, 0, 0]), VirtioLun::Lun(0x102));
        // Peripheral addressing in bytes 2-3 is a SAM LUN too.
        assert_eq!(VirtioLun::decode([1, 0, 0x00, 0x03, 0, 0, 0, 0]), VirtioLun::Lun(3));
        assert_eq!(VirtioLun::decode([1, 1, 0x40, 0x00, 0, 0, 0, 0]), VirtioLun::BadTarget);
        assert_eq!(VirtioLun::decode([0, 0, 0x40, 0x00, 0, 0, 0, 0]), VirtioLun::BadTarget);
        assert_eq!(VirtioLun::encode(0x102), [1, 0, 0x41, 0x02, 0, 0, 0, 0]);
        // A non-zero second level can never be mistaken for a configured LUN.
        match VirtioLun::decode([1, 0, 0x40, 0x01, 0, 1, 0, 0]) {
            VirtioLun::Lun(n) => assert!(n > u64::from(MAX_LUN)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn request_header_round_trips_and_short_input_is_refused() {
        let mut cdb = [0u8; CDB_SIZE];
        cdb[0] = 0x12;
        let h = RequestHeader { lun: VirtioLun::encode(1), id: 0x1122_3344_5566_7788, task_attr: 0, cdb };
        let bytes = h.encode();
        assert_eq!(bytes.len(), 51);
        assert_eq!(&bytes[8..16], &[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
        assert_eq!(RequestHeader::parse(&bytes), Some(h));
        assert_eq!(RequestHeader::parse(&bytes[..50]), None);
    }

    #[test]
    fn response_header_layout() {
        let r = ResponseHeader { resid: 512, status: 2, response: Response::Ok, sense: vec![0x70, 0, 5] };
        let b = r.encode();
        assert_eq!(b.len(), 108);
        assert_eq!(&b[0..4], &[3, 0, 0, 0]);
        assert_eq!(&b[4..8], &[0, 2, 0, 0]);
        assert_eq!((b[10], b[11]), (2, 0));
        assert_eq!(&b[12..15], &[0x70, 0, 5]);
        assert_eq!(ResponseHeader::parse(&b), Some((3, 512, 2, 0, vec![0x70, 0, 5])));
    }

    #[test]
    fn control_messages_parse_by_type_and_length() {
        let tmf = ControlRequest::encode_tmf(5, VirtioLun::encode(1), 9);
        assert_eq!(
            ControlRequest::parse(&tmf),
            Some(ControlRequest::Tmf { subtype: 5, lun: VirtioLun::encode(1), id: 9 })
        );
        assert_eq!(ControlRequest::parse(&tmf[..20]), None);
        let mut an = [0u8; 16];
        an[0] = 1;
        an[12] = 0x10;
        assert_eq!(
            ControlRequest::parse(&an),
            Some(ControlRequest::AsyncNotify { subscribe: false, lun: [0; 8], event_requested: 0x10 })
        );
        let mut unknown = [0u8; 24];
        unknown[0] = 7;
        assert_eq!(ControlRequest::parse(&unknown), None);
        assert_eq!(ControlRequest::parse(&[]), None);
    }

    #[test]
    fn config_space_layout() {
        let c = Config { num_queues: 2, seg_max: 126, max_sectors: 0xffff, cmd_per_lun: 128 };
        let b = c.encode();
        assert_eq!(&b[0..4], &[2, 0, 0, 0]);
        assert_eq!(&b[16..20], &[16, 0, 0, 0]); // event_info_size
        assert_eq!(&b[CONFIG_SENSE_SIZE_AT..][..4], &[96, 0, 0, 0]); // sense_size
        assert_eq!(&b[CONFIG_CDB_SIZE_AT..][..4], &[32, 0, 0, 0]); // cdb_size
        assert_eq!(&b[32..36], &[0xff, 0x3f, 0, 0]); // max_lun
    }
}
