//! Typed access to the Basic Header Segment (RFC 7143 11.2). Fields common to every PDU have named
//! accessors; opcode-specific 32-bit fields are read with `u32_at` and the offset constants in `off`.

use super::error::PduError;

pub const BHS_LEN: usize = 48;

/// The "reserved" tag value (RFC 7143 11.2.1.8 and others): no task, no target transfer.
pub const RESERVED_TAG: u32 = 0xffff_ffff;

/// Initiator and target opcodes (RFC 7143 11.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    NopOut = 0x00,
    ScsiCommand = 0x01,
    TaskMgmtRequest = 0x02,
    LoginRequest = 0x03,
    TextRequest = 0x04,
    DataOut = 0x05,
    LogoutRequest = 0x06,
    SnackRequest = 0x10,
    NopIn = 0x20,
    ScsiResponse = 0x21,
    TaskMgmtResponse = 0x22,
    LoginResponse = 0x23,
    TextResponse = 0x24,
    DataIn = 0x25,
    LogoutResponse = 0x26,
    R2t = 0x31,
    AsyncMessage = 0x32,
    Reject = 0x3f,
}

/// A Basic Header Segment kept as its wire bytes, with typed accessors for each field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bhs(pub [u8; BHS_LEN]);

/// Byte offsets of opcode-specific fields (RFC 7143 section 11).
pub mod off {
    /// Initiator Task Tag, all PDUs.
    pub const ITT: usize = 16;
    /// Target Transfer Tag (Data-Out, R2T, NOP, Text) / Expected Data Transfer Length (SCSI Command)
    /// / Referenced Task Tag (TMF request).
    pub const TTT: usize = 20;
    pub const EDTL: usize = 20;
    pub const REF_TASK_TAG: usize = 20;
    /// CmdSN (requests) / StatSN (responses).
    pub const CMD_SN: usize = 24;
    pub const STAT_SN: usize = 24;
    /// ExpStatSN (requests) / ExpCmdSN (responses).
    pub const EXP_STAT_SN: usize = 28;
    pub const EXP_CMD_SN: usize = 28;
    pub const MAX_CMD_SN: usize = 32;
    /// DataSN / R2TSN / ExpDataSN / RefCmdSN (TMF request).
    pub const DATA_SN: usize = 36;
    pub const REF_CMD_SN: usize = 32;
    pub const BUFFER_OFFSET: usize = 40;
    pub const RESIDUAL_COUNT: usize = 44;
    pub const DESIRED_LENGTH: usize = 44;
    /// The CDB of a SCSI Command.
    pub const CDB: usize = 32;
}

impl TryFrom<u8> for Opcode {
    type Error = PduError;
    fn try_from(v: u8) -> Result<Self, PduError> {
        Ok(match v {
            0x00 => Opcode::NopOut,
            0x01 => Opcode::ScsiCommand,
            0x02 => Opcode::TaskMgmtRequest,
            0x03 => Opcode::LoginRequest,
            0x04 => Opcode::TextRequest,
            0x05 => Opcode::DataOut,
            0x06 => Opcode::LogoutRequest,
            0x10 => Opcode::SnackRequest,
            0x20 => Opcode::NopIn,
            0x21 => Opcode::ScsiResponse,
            0x22 => Opcode::TaskMgmtResponse,
            0x23 => Opcode::LoginResponse,
            0x24 => Opcode::TextResponse,
            0x25 => Opcode::DataIn,
            0x26 => Opcode::LogoutResponse,
            0x31 => Opcode::R2t,
            0x32 => Opcode::AsyncMessage,
            0x3f => Opcode::Reject,
            other => return Err(PduError::UnknownOpcode(other)),
        })
    }
}

impl Default for Bhs {
    fn default() -> Self {
        Bhs([0u8; BHS_LEN])
    }
}

impl Bhs {
    /// A zeroed header with the opcode set (and the F bit, which almost every target PDU carries).
    pub fn new(op: Opcode) -> Self {
        let mut b = Bhs::default();
        b.0[0] = op as u8;
        b.0[1] = 0x80;
        b
    }
    pub fn opcode_raw(&self) -> u8 {
        self.0[0] & 0x3f
    }
    pub fn opcode(&self) -> Result<Opcode, PduError> {
        Opcode::try_from(self.opcode_raw())
    }
    /// The I bit: an immediate request (RFC 7143 11.1.1).
    pub fn immediate(&self) -> bool {
        self.0[0] & 0x40 != 0
    }
    /// Byte 1: the opcode-specific flags.
    pub fn flags(&self) -> u8 {
        self.0[1]
    }
    pub fn set_flags(&mut self, f: u8) {
        self.0[1] = f;
    }
    /// The F (final) bit, bit 7 of byte 1.
    pub fn final_bit(&self) -> bool {
        self.0[1] & 0x80 != 0
    }
    /// TotalAHSLength in bytes (the field counts 4-byte words).
    pub fn ahs_len(&self) -> usize {
        self.0[4] as usize * 4
    }
    pub fn data_segment_len(&self) -> u32 {
        u32::from_be_bytes([0, self.0[5], self.0[6], self.0[7]])
    }
    /// Sets DataSegmentLength; values are limited to 24 bits by the negotiated limits long before.
    pub fn set_data_segment_len(&mut self, len: u32) {
        let b = len.to_be_bytes();
        self.0[5..8].copy_from_slice(&b[1..4]);
    }
    pub fn lun(&self) -> [u8; 8] {
        let mut l = [0u8; 8];
        l.copy_from_slice(&self.0[8..16]);
        l
    }
    pub fn set_lun(&mut self, lun: [u8; 8]) {
        self.0[8..16].copy_from_slice(&lun);
    }
    pub fn u32_at(&self, offset: usize) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(&self.0[offset..offset + 4]);
        u32::from_be_bytes(b)
    }
    pub fn set_u32_at(&mut self, offset: usize, v: u32) {
        self.0[offset..offset + 4].copy_from_slice(&v.to_be_bytes());
    }
    pub fn u16_at(&self, offset: usize) -> u16 {
        u16::from_be_bytes([self.0[offset], self.0[offset + 1]])
    }
    pub fn set_u16_at(&mut self, offset: usize, v: u16) {
        self.0[offset..offset + 2].copy_from_slice(&v.to_be_bytes());
    }
    pub fn itt(&self) -> u32 {
        self.u32_at(off::ITT)
    }
    pub fn set_itt(&mut self, v: u32) {
        self.set_u32_at(off::ITT, v)
    }
    pub fn ttt(&self) -> u32 {
        self.u32_at(off::TTT)
    }
    pub fn set_ttt(&mut self, v: u32) {
        self.set_u32_at(off::TTT, v)
    }
    pub fn cmd_sn(&self) -> u32 {
        self.u32_at(off::CMD_SN)
    }
    pub fn exp_stat_sn(&self) -> u32 {
        self.u32_at(off::EXP_STAT_SN)
    }
    pub fn data_sn(&self) -> u32 {
        self.u32_at(off::DATA_SN)
    }
    pub fn buffer_offset(&self) -> u32 {
        self.u32_at(off::BUFFER_OFFSET)
    }
    /// Login: ISID (bytes 8..14).
    pub fn isid(&self) -> [u8; 6] {
        let mut i = [0u8; 6];
        i.copy_from_slice(&self.0[8..14]);
        i
    }
    /// Login: TSIH (bytes 14..16).
    pub fn tsih(&self) -> u16 {
        self.u16_at(14)
    }
    /// Login and Logout: CID (bytes 20..22).
    pub fn cid(&self) -> u16 {
        self.u16_at(20)
    }
    /// SCSI Command: the 16-byte CDB.
    pub fn cdb(&self) -> &[u8] {
        &self.0[off::CDB..off::CDB + 16]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A SCSI Command (RFC 7143 11.3): READ(10) of 8 blocks, ITT 0x11223344, EDTL 4096, CmdSN 7.
    fn read10() -> Bhs {
        let mut b = [0u8; 48];
        b[0] = 0x01;
        b[1] = 0xc1; // F, R, ATTR simple
        b[5..8].copy_from_slice(&[0, 0, 0]);
        b[8..16].copy_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        b[16..20].copy_from_slice(&[0x11, 0x22, 0x33, 0x44]);
        b[20..24].copy_from_slice(&[0, 0, 0x10, 0]);
        b[24..28].copy_from_slice(&[0, 0, 0, 7]);
        b[28..32].copy_from_slice(&[0, 0, 0, 3]);
        b[32] = 0x28;
        b[40] = 8;
        Bhs(b)
    }

    #[test]
    fn scsi_command_fields() {
        let b = read10();
        assert_eq!(b.opcode().unwrap(), Opcode::ScsiCommand);
        assert!(!b.immediate());
        assert!(b.final_bit());
        assert_eq!(b.lun(), [0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(b.itt(), 0x1122_3344);
        assert_eq!(b.u32_at(off::EDTL), 4096);
        assert_eq!(b.cmd_sn(), 7);
        assert_eq!(b.exp_stat_sn(), 3);
        assert_eq!(b.cdb()[0], 0x28);
        assert_eq!(b.cdb()[7..9], [0, 8]);
    }

    #[test]
    fn login_fields_and_setters() {
        let mut b = Bhs::default();
        b.0[0] = 0x43;
        b.0[8..14].copy_from_slice(&[0x80, 1, 2, 3, 4, 5]);
        b.0[14..16].copy_from_slice(&[0x12, 0x34]);
        b.0[20..22].copy_from_slice(&[0, 9]);
        assert!(b.immediate());
        assert_eq!(b.opcode().unwrap(), Opcode::LoginRequest);
        assert_eq!(b.isid(), [0x80, 1, 2, 3, 4, 5]);
        assert_eq!(b.tsih(), 0x1234);
        assert_eq!(b.cid(), 9);
        b.set_data_segment_len(0x01_0203);
        assert_eq!(&b.0[4..8], &[0, 1, 2, 3]);
        assert_eq!(b.data_segment_len(), 0x01_0203);
    }

    #[test]
    fn unknown_opcode() {
        let mut b = Bhs::default();
        b.0[0] = 0x1c;
        assert!(matches!(b.opcode(), Err(PduError::UnknownOpcode(0x1c))));
        assert_eq!(Bhs::new(Opcode::Reject).0[0..2], [0x3f, 0x80]);
    }
}
