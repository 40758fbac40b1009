//! A small synchronous iSCSI initiator for the tests, written from RFC 7143's PDU layouts: enough to
//! log in, run SCSI commands with immediate data, R2T/Data-Out and Data-In, and to send deliberately
//! broken PDUs. It is independent of the daemon's codec, so the two check each other.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const OP_NOP_OUT: u8 = 0x00;
pub const OP_SCSI_CMD: u8 = 0x01;
pub const OP_LOGIN: u8 = 0x03;
pub const OP_TEXT: u8 = 0x04;
pub const OP_DATA_OUT: u8 = 0x05;
pub const OP_LOGOUT: u8 = 0x06;
pub const OP_NOP_IN: u8 = 0x20;
pub const OP_SCSI_RSP: u8 = 0x21;
pub const OP_LOGIN_RSP: u8 = 0x23;
pub const OP_TEXT_RSP: u8 = 0x24;
pub const OP_DATA_IN: u8 = 0x25;
pub const OP_LOGOUT_RSP: u8 = 0x26;
pub const OP_R2T: u8 = 0x31;
pub const OP_REJECT: u8 = 0x3f;

/// One received PDU: its 48-byte header and data segment (padding removed).
#[derive(Debug, Clone)]
pub struct Pdu {
    pub bhs: [u8; 48],
    pub data: Vec<u8>,
}

impl Pdu {
    pub fn opcode(&self) -> u8 {
        self.bhs[0] & 0x3f
    }
    pub fn u32_at(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.bhs[at..at + 4].try_into().unwrap())
    }
    pub fn itt(&self) -> u32 {
        self.u32_at(16)
    }
}

/// Outcome of one SCSI command.
#[derive(Debug, Clone)]
pub struct ScsiOutcome {
    pub status: u8,
    pub data_in: Vec<u8>,
    pub sense: Vec<u8>,
    /// (overflow, underflow, residual count)
    pub residual: (bool, bool, u32),
}

impl ScsiOutcome {
    /// (sense key, ASC, ASCQ) of fixed-format sense; zeros when there is none.
    pub fn sense_code(&self) -> (u8, u8, u8) {
        match self.sense.get(..14) {
            Some(s) => (s[2] & 0x0f, s[12], s[13]),
            None => (0, 0, 0),
        }
    }

    /// The INFORMATION field of fixed-format sense when VALID is set.
    pub fn information(&self) -> Option<u32> {
        match self.sense.get(..7) {
            Some(s) if s[0] & 0x80 != 0 => Some(u32::from_be_bytes([s[3], s[4], s[5], s[6]])),
            _ => None,
        }
    }
}

pub struct Connection {
    pub stream: TcpStream,
    pub cmd_sn: u32,
    pub exp_stat_sn: u32,
    next_itt: u32,
    /// The target's MaxRecvDataSegmentLength: the largest data segment we may send.
    pub target_mrdsl: u32,
    pub first_burst: u32,
    pub immediate_data: bool,
    pub initial_r2t: bool,
    pub isid: [u8; 6],
    /// 0 to create a session; the TSIH the target gave, after login (set it to join a session).
    pub tsih: u16,
    pub cid: u16,
}

pub fn write_u32(buf: &mut [u8], at: usize, v: u32) {
    buf[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Encode key=value pairs as a text data segment.
pub fn text_keys(keys: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in keys {
        out.extend_from_slice(k.as_bytes());
        out.push(b'=');
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Decode a text data segment into key=value pairs.
pub fn parse_keys(data: &[u8]) -> Vec<(String, String)> {
    data.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let s = String::from_utf8_lossy(s);
            match s.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (s.to_string(), String::new()),
            }
        })
        .collect()
}

pub fn key<'a>(keys: &'a [(String, String)], name: &str) -> Option<&'a str> {
    keys.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

impl Connection {
    pub fn connect(addr: SocketAddr) -> std::io::Result<Connection> {
        let stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            cmd_sn: 1,
            exp_stat_sn: 0,
            next_itt: 1,
            target_mrdsl: 8192,
            first_burst: 65536,
            immediate_data: true,
            initial_r2t: true,
            isid: [0x80, 0, 0, 0x12, 0x34, 0x56],
            tsih: 0,
            cid: 0,
        })
    }

    pub fn itt(&mut self) -> u32 {
        let itt = self.next_itt;
        self.next_itt += 1;
        itt
    }

    /// Send a header and data segment (padded to 4 bytes), no digests.
    pub fn send(&mut self, bhs: &[u8; 48], data: &[u8]) -> std::io::Result<()> {
        let mut header = *bhs;
        let len = data.len() as u32;
        header[5..8].copy_from_slice(&len.to_be_bytes()[1..]);
        let mut wire = header.to_vec();
        wire.extend_from_slice(data);
        wire.resize(wire.len().next_multiple_of(4), 0);
        self.stream.write_all(&wire)
    }

    /// Receive one PDU (no digests). Err on close or timeout.
    pub fn recv(&mut self) -> std::io::Result<Pdu> {
        let mut bhs = [0u8; 48];
        self.stream.read_exact(&mut bhs)?;
        let ahs = bhs[4] as usize * 4;
        let len = u32::from_be_bytes([0, bhs[5], bhs[6], bhs[7]]) as usize;
        let mut rest = vec![0u8; ahs + len.next_multiple_of(4)];
        self.stream.read_exact(&mut rest)?;
        let data = rest[ahs..ahs + len].to_vec();
        Ok(Pdu { bhs, data })
    }

    /// True when the target closed the connection (reads EOF or reset) within the timeout.
    pub fn closed_by_target(&mut self) -> bool {
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {
                    return false
                }
                Err(_) => return true,
            }
        }
    }

    /// One login request/response exchange.
    pub fn login_step(&mut self, transit: bool, csg: u8, nsg: u8, keys: &[u8]) -> std::io::Result<Pdu> {
        let mut bhs = [0u8; 48];
        bhs[0] = 0x40 | OP_LOGIN;
        bhs[1] = if transit { 0x80 } else { 0 } | (csg << 2) | nsg;
        bhs[8..14].copy_from_slice(&self.isid);
        bhs[14..16].copy_from_slice(&self.tsih.to_be_bytes());
        write_u32(&mut bhs, 16, 0x7000_0000);
        bhs[20..22].copy_from_slice(&self.cid.to_be_bytes());
        write_u32(&mut bhs, 24, self.cmd_sn);
        write_u32(&mut bhs, 28, self.exp_stat_sn);
        self.send(&bhs, keys)?;
        let rsp = self.recv()?;
        if rsp.opcode() == OP_LOGIN_RSP {
            self.exp_stat_sn = rsp.u32_at(24).wrapping_add(1);
        }
        Ok(rsp)
    }

    /// Log in to a normal session (target = Some) or a discovery session (None), going straight
    /// from the security stage to full feature with the given extra operational keys.
    pub fn login(
        &mut self,
        initiator: &str,
        target: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, String> {
        let mut keys = vec![("InitiatorName", initiator), ("AuthMethod", "None")];
        match target {
            Some(t) => {
                keys.push(("SessionType", "Normal"));
                keys.push(("TargetName", t));
            }
            None => keys.push(("SessionType", "Discovery")),
        }
        let mut rsp = self.login_step(true, 0, 1, &text_keys(&keys)).map_err(|e| e.to_string())?;
        check_login(&rsp)?;
        // The target may hold us in the security stage for more exchanges before it agrees to move on.
        while rsp.bhs[1] & 0x80 == 0 {
            rsp = self.login_step(true, 0, 1, &[]).map_err(|e| e.to_string())?;
            check_login(&rsp)?;
        }
        let mut op_keys: Vec<(&str, &str)> =
            vec![("HeaderDigest", "None"), ("DataDigest", "None"), ("MaxRecvDataSegmentLength", "262144")];
        if target.is_some() {
            op_keys.extend_from_slice(&[
                ("InitialR2T", "Yes"),
                ("ImmediateData", "Yes"),
                ("MaxBurstLength", "262144"),
                ("FirstBurstLength", "65536"),
                ("ErrorRecoveryLevel", "0"),
            ]);
        }
        for (k, v) in extra {
            op_keys.retain(|(name, _)| name != k);
            op_keys.push((k, v));
        }
        let mut answered = Vec::new();
        let mut rsp = self.login_step(true, 1, 3, &text_keys(&op_keys)).map_err(|e| e.to_string())?;
        loop {
            check_login(&rsp)?;
            answered.extend(parse_keys(&rsp.data));
            if rsp.bhs[1] & 0x80 != 0 && rsp.bhs[1] & 0x03 == 3 {
                self.tsih = u16::from_be_bytes([rsp.bhs[14], rsp.bhs[15]]);
                break;
            }
            rsp = self.login_step(true, 1, 3, &[]).map_err(|e| e.to_string())?;
        }
        if let Some(v) = key(&answered, "MaxRecvDataSegmentLength") {
            self.target_mrdsl = v.parse().unwrap_or(8192);
        }
        if let Some(v) = key(&answered, "FirstBurstLength") {
            self.first_burst = v.parse().unwrap_or(65536);
        }
        if let Some(v) = key(&answered, "ImmediateData") {
            self.immediate_data = v == "Yes";
        }
        if let Some(v) = key(&answered, "InitialR2T") {
            self.initial_r2t = v == "Yes";
        }
        Ok(answered)
    }

    /// SendTargets=All on a discovery session: the key/value pairs answered.
    pub fn send_targets(&mut self, what: &str) -> std::io::Result<Vec<(String, String)>> {
        let mut bhs = [0u8; 48];
        bhs[0] = OP_TEXT;
        bhs[1] = 0x80;
        let itt = self.itt();
        write_u32(&mut bhs, 16, itt);
        write_u32(&mut bhs, 20, 0xffff_ffff);
        write_u32(&mut bhs, 24, self.cmd_sn);
        write_u32(&mut bhs, 28, self.exp_stat_sn);
        self.cmd_sn += 1;
        self.send(&bhs, &text_keys(&[("SendTargets", what)]))?;
        let rsp = self.recv()?;
        assert_eq!(rsp.opcode(), OP_TEXT_RSP, "expected a Text Response, got {rsp:?}");
        self.exp_stat_sn = rsp.u32_at(24).wrapping_add(1);
        Ok(parse_keys(&rsp.data))
    }

    /// Run one SCSI command on `lun`, sending `data_out` (immediate data, then Data-Out on R2T) and
    /// collecting up to `expected_in` bytes of Data-In.
    pub fn scsi(&mut self, lun: u64, cdb: &[u8], data_out: &[u8], expected_in: u32) -> std::io::Result<ScsiOutcome> {
        let itt = self.itt();
        let mut bhs = [0u8; 48];
        bhs[0] = OP_SCSI_CMD;
        let writing = !data_out.is_empty();
        bhs[1] = 0x80 | if expected_in > 0 { 0x40 } else { 0 } | if writing { 0x20 } else { 0 } | 0x01;
        bhs[8..16].copy_from_slice(&lun_field(lun));
        write_u32(&mut bhs, 16, itt);
        let edtl = if writing { data_out.len() as u32 } else { expected_in };
        write_u32(&mut bhs, 20, edtl);
        write_u32(&mut bhs, 24, self.cmd_sn);
        write_u32(&mut bhs, 28, self.exp_stat_sn);
        self.cmd_sn = self.cmd_sn.wrapping_add(1);
        bhs[32..32 + cdb.len()].copy_from_slice(cdb);
        let immediate = if writing && self.immediate_data {
            data_out.len().min(self.first_burst as usize).min(self.target_mrdsl as usize)
        } else {
            0
        };
        self.send(&bhs, &data_out[..immediate])?;
        let mut data_in = Vec::new();
        loop {
            let pdu = self.recv()?;
            match pdu.opcode() {
                OP_R2T => {
                    let ttt = pdu.u32_at(20);
                    let offset = pdu.u32_at(40) as usize;
                    let length = pdu.u32_at(44) as usize;
                    self.send_data_out(lun, itt, ttt, &data_out[offset..offset + length], offset)?;
                }
                OP_DATA_IN => {
                    let offset = pdu.u32_at(40) as usize;
                    if data_in.len() < offset + pdu.data.len() {
                        data_in.resize(offset + pdu.data.len(), 0);
                    }
                    data_in[offset..offset + pdu.data.len()].copy_from_slice(&pdu.data);
                    if pdu.bhs[1] & 0x01 != 0 {
                        self.exp_stat_sn = pdu.u32_at(24).wrapping_add(1);
                        let flags = pdu.bhs[1];
                        return Ok(ScsiOutcome {
                            status: pdu.bhs[3],
                            data_in,
                            sense: Vec::new(),
                            residual: (flags & 0x04 != 0, flags & 0x02 != 0, pdu.u32_at(44)),
                        });
                    }
                }
                OP_SCSI_RSP => {
                    self.exp_stat_sn = pdu.u32_at(24).wrapping_add(1);
                    let sense = if pdu.data.len() >= 2 {
                        let n = u16::from_be_bytes([pdu.data[0], pdu.data[1]]) as usize;
                        pdu.data[2..(2 + n).min(pdu.data.len())].to_vec()
                    } else {
                        Vec::new()
                    };
                    let flags = pdu.bhs[1];
                    return Ok(ScsiOutcome {
                        status: pdu.bhs[3],
                        data_in,
                        sense,
                        residual: (flags & 0x04 != 0, flags & 0x02 != 0, pdu.u32_at(44)),
                    });
                }
                OP_NOP_IN => {}
                other => {
                    return Err(std::io::Error::other(format!(
                        "unexpected opcode {other:#x} during a command: {pdu:?}"
                    )))
                }
            }
        }
    }

    /// Answer an R2T with Data-Out PDUs no larger than the target's MaxRecvDataSegmentLength.
    pub fn send_data_out(&mut self, lun: u64, itt: u32, ttt: u32, data: &[u8], offset: usize) -> std::io::Result<()> {
        let chunk = self.target_mrdsl as usize;
        let pieces: Vec<&[u8]> = data.chunks(chunk.max(1)).collect();
        for (sn, piece) in pieces.iter().enumerate() {
            let mut bhs = [0u8; 48];
            bhs[0] = OP_DATA_OUT;
            bhs[1] = if sn + 1 == pieces.len() { 0x80 } else { 0 };
            bhs[8..16].copy_from_slice(&lun_field(lun));
            write_u32(&mut bhs, 16, itt);
            write_u32(&mut bhs, 20, ttt);
            write_u32(&mut bhs, 28, self.exp_stat_sn);
            write_u32(&mut bhs, 36, sn as u32);
            write_u32(&mut bhs, 40, (offset + sn * chunk) as u32);
            self.send(&bhs, piece)?;
        }
        Ok(())
    }

    /// NOP-Out ping; returns the NOP-In's data.
    pub fn ping(&mut self, payload: &[u8]) -> std::io::Result<Pdu> {
        let mut bhs = [0u8; 48];
        bhs[0] = 0x40 | OP_NOP_OUT;
        bhs[1] = 0x80;
        let itt = self.itt();
        write_u32(&mut bhs, 16, itt);
        write_u32(&mut bhs, 20, 0xffff_ffff);
        write_u32(&mut bhs, 24, self.cmd_sn);
        write_u32(&mut bhs, 28, self.exp_stat_sn);
        self.send(&bhs, payload)?;
        self.recv()
    }

    /// Logout (close the session); returns the Logout Response.
    pub fn logout(&mut self) -> std::io::Result<Pdu> {
        let mut bhs = [0u8; 48];
        bhs[0] = 0x40 | OP_LOGOUT;
        bhs[1] = 0x80;
        let itt = self.itt();
        write_u32(&mut bhs, 16, itt);
        write_u32(&mut bhs, 24, self.cmd_sn);
        write_u32(&mut bhs, 28, self.exp_stat_sn);
        self.send(&bhs, &[])?;
        self.recv()
    }

    pub fn read10(&mut self, lun: u64, lba: u32, blocks: u16, block_size: u32) -> std::io::Result<ScsiOutcome> {
        let mut cdb = [0u8; 10];
        cdb[0] = 0x28;
        cdb[2..6].copy_from_slice(&lba.to_be_bytes());
        cdb[7..9].copy_from_slice(&blocks.to_be_bytes());
        self.scsi(lun, &cdb, &[], blocks as u32 * block_size)
    }

    pub fn write10(&mut self, lun: u64, lba: u32, data: &[u8], block_size: u32) -> std::io::Result<ScsiOutcome> {
        let mut cdb = [0u8; 10];
        cdb[0] = 0x2a;
        cdb[2..6].copy_from_slice(&lba.to_be_bytes());
        cdb[7..9].copy_from_slice(&((data.len() as u32 / block_size) as u16).to_be_bytes());
        self.scsi(lun, &cdb, data, 0)
    }
}

fn check_login(rsp: &Pdu) -> Result<(), String> {
    if rsp.opcode() != OP_LOGIN_RSP {
        return Err(format!("expected a Login Response, got opcode {:#x}", rsp.opcode()));
    }
    match (rsp.bhs[36], rsp.bhs[37]) {
        (0, 0) => Ok(()),
        (class, detail) => Err(format!("login status {class:#04x}{detail:02x}")),
    }
}

/// SAM peripheral addressing for LUNs below 256, flat space above.
pub fn lun_field(lun: u64) -> [u8; 8] {
    let mut f = [0u8; 8];
    if lun < 256 {
        f[1] = lun as u8;
    } else {
        f[0] = 0x40 | ((lun >> 8) as u8 & 0x3f);
        f[1] = lun as u8;
    }
    f
}
