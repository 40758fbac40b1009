//! Framing: each message is a 4-byte big-endian length followed by that many bytes of JSON.
//!
//! Blocking helpers over `std::io` serve tgtadm; the daemon reads the 4 bytes and the body with its
//! async runtime and calls [`frame_length`] and [`decode`] itself, so this crate needs no runtime.

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::io::{self, Read, Write};

/// The largest message either side accepts. A `show` of thousands of targets fits easily; a
/// corrupt or hostile length cannot make the reader allocate gigabytes.
pub const MAX_FRAME_LEN: usize = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("message of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    TooLarge(usize),
    #[error("empty message")]
    Empty,
    #[error("malformed message: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Check a length prefix and return the body length it announces.
pub fn frame_length(prefix: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// A whole frame (prefix and JSON body) for `message`.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, FrameError> {
    let mut frame = vec![0u8; 4];
    serde_json::to_writer(&mut frame, message)?;
    let len = frame.len() - 4;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge(len));
    }
    frame[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(frame)
}

/// Parse a frame body (without the prefix).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    Ok(serde_json::from_slice(body)?)
}

/// Write one framed message and flush.
pub fn write_message<W: Write, T: Serialize>(writer: &mut W, message: &T) -> Result<(), FrameError> {
    writer.write_all(&encode(message)?)?;
    writer.flush()?;
    Ok(())
}

/// Read one framed message.
pub fn read_message<R: Read, T: DeserializeOwned>(reader: &mut R) -> Result<T, FrameError> {
    let mut prefix = [0u8; 4];
    reader.read_exact(&mut prefix)?;
    let len = frame_length(prefix)?;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    decode(&body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;
    use std::io::Cursor;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(message: T) {
        let mut buf = Vec::new();
        write_message(&mut buf, &message).unwrap();
        assert_eq!(u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize, buf.len() - 4);
        let back: T = read_message(&mut Cursor::new(buf)).unwrap();
        assert_eq!(back, message);
    }

    #[test]
    fn requests_round_trip() {
        let spec = LunSpec {
            device_type: DeviceType::Disk,
            backing_store: Some("/srv/disk0.img".into()),
            store: StoreSpec::parse(Some("rdwr"), "size=1G", "sync:direct").unwrap(),
            block_size: Some(4096),
            params: vec![LunParam::ThinProvisioning(true)],
        };
        let requests = [
            Request::iscsi(Op::Target(TargetOp::New { tid: 0, name: "iqn.2001-04.com.example:t0".into() })),
            Request::iscsi(Op::Target(TargetOp::Delete { tid: 1, force: true })),
            Request::iscsi(Op::Target(TargetOp::Show { tid: None })),
            Request::iscsi(Op::Target(TargetOp::Bind {
                tid: 1,
                rules: vec![
                    AclEntry::All,
                    AclEntry::parse_address("10.0.0.0/8").unwrap(),
                    AclEntry::parse_address("::1").unwrap(),
                    AclEntry::InitiatorName("iqn.1994-05.com.redhat:abc".into()),
                ],
            })),
            Request::iscsi(Op::Target(TargetOp::Update { tid: 1, params: vec![Param::new("HeaderDigest", "CRC32C")] })),
            Request::iscsi(Op::LogicalUnit(LunOp::New { tid: 1, lun: 3, spec })),
            Request::iscsi(Op::LogicalUnit(LunOp::Delete { tid: 1, lun: 3 })),
            Request::iscsi(Op::LogicalUnit(LunOp::Update {
                tid: 1,
                lun: 3,
                changes: vec![LunChange::Set(LunParam::Readonly(true)), LunChange::ReloadCapacity],
            })),
            Request::iscsi(Op::System(SystemOp::Show)),
            Request::iscsi(Op::System(SystemOp::Delete { force: false })),
            Request::iscsi(Op::System(SystemOp::Update { params: vec![Param::new("State", "offline")] })),
        ];
        for request in requests {
            round_trip(request);
        }
    }

    fn lun_view() -> LunView {
        LunView {
            lun: 1,
            device_type: DeviceType::Disk,
            scsi_id: "IET     00010001".into(),
            scsi_sn: "beaf11".into(),
            vendor_id: "IET".into(),
            product_id: "VIRTUAL-DISK".into(),
            product_rev: "0001".into(),
            size: 64 << 20,
            block_size: 512,
            online: true,
            removable: false,
            prevent_removal: false,
            readonly: false,
            swp: false,
            thin_provisioning: false,
            backing_store_type: "rdwr".into(),
            backing_store_path: Some("/tmp/disk.img".into()),
            backing_store_flags: String::new(),
            mode_pages: Vec::new(),
            descriptor_sense: false,
            missing: None,
            faults: vec!["read:eio:lba=100-199".into()],
            changer: Vec::new(),
        }
    }

    #[test]
    fn responses_round_trip() {
        let target = TargetView {
            tid: 1,
            name: "iqn.2001-04.com.example:t1".into(),
            driver: Lld::Iscsi,
            state: TargetState::Ready,
            nop_interval: Some(5),
            nop_count: None,
            nexuses: vec![NexusView {
                id: 1,
                initiator: "iqn.1994-05.org.test:init1".into(),
                alias: None,
                isid: "800000123400".into(),
                connections: vec![ConnectionView {
                    cid: 0,
                    initiator_address: "127.0.0.1:51234".parse().unwrap(),
                    target_address: "127.0.0.1:3260".parse().unwrap(),
                }],
                params: Vec::new(),
            }],
            luns: vec![lun_view()],
            accounts: vec![AccountView { user: "alice".into(), outgoing: true }],
            acl: vec![AclEntry::All],
            params: vec![TargetParam { name: "MaxConnections".into(), value: "1".into() }],
        };
        let responses = [
            Response::Ok(Reply::Done),
            Response::Ok(Reply::TargetList(vec![target])),
            Response::Ok(Reply::Lun(lun_view())),
            Response::Ok(Reply::System(SystemView {
                state: SystemState::Ready,
                debug: false,
                llds: vec![LldView { name: "iscsi".into(), state: "ready".into(), targets: Vec::new() }],
                backing_stores: vec![BackingStoreView { name: "rdwr".into(), oflags: Some("sync:direct".into()) }],
                device_types: vec![DeviceType::Disk, DeviceType::Controller],
                limits: Some(Limits {
                    max_sessions: 4096,
                    sessions: 2,
                    write_budget: 1 << 30,
                    write_data_held: 0,
                    read_budget: 1 << 30,
                    read_data_held: 4 << 20,
                    login_timeout_secs: 30,
                    data_out_timeout_secs: 30,
                    send_timeout_secs: 30,
                }),
                isns: Some(crate::IsnsView {
                    enabled: true,
                    server_ip: "127.0.0.1".into(),
                    server_port: 3205,
                    access_control: false,
                }),
            })),
            Response::Error(MgmtError::new(ErrorCode::NoTarget)),
            Response::Error(MgmtError::with_message(ErrorCode::InvalidRequest, "bad size")),
        ];
        for response in responses {
            round_trip(response);
        }
    }

    #[test]
    fn two_messages_in_a_row() {
        let mut buf = Vec::new();
        write_message(&mut buf, &Response::Ok(Reply::Done)).unwrap();
        write_message(&mut buf, &Request::iscsi(Op::System(SystemOp::Show))).unwrap();
        let mut cursor = Cursor::new(buf);
        let _: Response = read_message(&mut cursor).unwrap();
        let r: Request = read_message(&mut cursor).unwrap();
        assert_eq!(r.op, Op::System(SystemOp::Show));
    }

    #[test]
    fn oversize_frames_are_refused_before_reading_the_body() {
        let prefix = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        assert!(matches!(frame_length(prefix), Err(FrameError::TooLarge(_))));
        // Only the prefix is there: the reader must refuse without waiting for 4 GiB.
        let mut cursor = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        assert!(matches!(read_message::<_, Request>(&mut cursor), Err(FrameError::TooLarge(_))));
        assert_eq!(frame_length((MAX_FRAME_LEN as u32).to_be_bytes()).unwrap(), MAX_FRAME_LEN);
    }

    #[test]
    fn garbage_and_truncated_frames_are_errors() {
        let mut frame = 7u32.to_be_bytes().to_vec();
        frame.extend_from_slice(b"garbage");
        assert!(matches!(read_message::<_, Request>(&mut Cursor::new(frame)), Err(FrameError::Malformed(_))));

        // Well-formed JSON of the wrong shape.
        let body = br#"{"lld":"iscsi","op":{"target":{"new":{"tid":"one"}}}}"#;
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(body);
        assert!(matches!(read_message::<_, Request>(&mut Cursor::new(frame)), Err(FrameError::Malformed(_))));

        let mut short = 100u32.to_be_bytes().to_vec();
        short.extend_from_slice(b"{}");
        assert!(matches!(read_message::<_, Request>(&mut Cursor::new(short)), Err(FrameError::Io(_))));
        assert!(matches!(read_message::<_, Request>(&mut Cursor::new(vec![0, 0])), Err(FrameError::Io(_))));
        assert!(matches!(frame_length([0; 4]), Err(FrameError::Empty)));
        assert!(decode::<Request>(b"\xff\xfe").is_err());
    }
}
