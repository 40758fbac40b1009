//! Sense data (SPC-4 4.5): keys, additional sense codes, and their fixed (0x70) and descriptor (0x72)
//! encodings. A failed command is a `Sense` value; it becomes bytes only when the result is returned,
//! in the format the logical unit's CONTROL mode page (D_SENSE) selects.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenseFormat {
    Fixed,
    Descriptor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SenseKey {
    NoSense = 0x0,
    RecoveredError = 0x1,
    NotReady = 0x2,
    MediumError = 0x3,
    HardwareError = 0x4,
    IllegalRequest = 0x5,
    UnitAttention = 0x6,
    DataProtect = 0x7,
    /// A sequential-access device met blank medium or the end of data (SSC-3 4.2.8).
    BlankCheck = 0x8,
    CopyAborted = 0xa,
    AbortedCommand = 0xb,
    /// A write reached the physical end of the medium with data left over (SSC-3).
    VolumeOverflow = 0xd,
    Miscompare = 0xe,
}

/// Additional sense code and qualifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asc(pub u8, pub u8);

impl Asc {
    pub const NO_ADDITIONAL_SENSE: Asc = Asc(0x00, 0x00);
    pub const NOT_READY_CAUSE_NOT_REPORTABLE: Asc = Asc(0x04, 0x00);
    pub const ASYMMETRIC_ACCESS_STATE_TRANSITION: Asc = Asc(0x04, 0x0a);
    pub const TARGET_PORT_IN_STANDBY_STATE: Asc = Asc(0x04, 0x0b);
    pub const TARGET_PORT_IN_UNAVAILABLE_STATE: Asc = Asc(0x04, 0x0c);
    pub const SANITIZE_IN_PROGRESS: Asc = Asc(0x04, 0x1b);
    pub const WRITE_ERROR: Asc = Asc(0x0c, 0x00);
    pub const INVALID_FIELD_IN_INFORMATION_UNIT: Asc = Asc(0x0e, 0x03);
    pub const UNRECOVERED_READ_ERROR: Asc = Asc(0x11, 0x00);
    pub const MISCOMPARE_DURING_VERIFY: Asc = Asc(0x1d, 0x00);
    pub const PARAMETER_LIST_LENGTH_ERROR: Asc = Asc(0x1a, 0x00);
    pub const INVALID_COMMAND_OPERATION_CODE: Asc = Asc(0x20, 0x00);
    pub const LBA_OUT_OF_RANGE: Asc = Asc(0x21, 0x00);
    pub const INVALID_FIELD_IN_CDB: Asc = Asc(0x24, 0x00);
    pub const LOGICAL_UNIT_NOT_SUPPORTED: Asc = Asc(0x25, 0x00);
    pub const INVALID_FIELD_IN_PARAMETER_LIST: Asc = Asc(0x26, 0x00);
    pub const WRITE_PROTECTED: Asc = Asc(0x27, 0x00);
    pub const SPACE_ALLOCATION_FAILED_WRITE_PROTECT: Asc = Asc(0x27, 0x07);
    pub const POWER_ON_RESET_OR_BUS_DEVICE_RESET: Asc = Asc(0x29, 0x00);
    pub const POWER_ON_OCCURRED: Asc = Asc(0x29, 0x01);
    pub const SCSI_BUS_RESET_OCCURRED: Asc = Asc(0x29, 0x02);
    pub const BUS_DEVICE_RESET_FUNCTION_OCCURRED: Asc = Asc(0x29, 0x03);
    pub const I_T_NEXUS_LOSS_OCCURRED: Asc = Asc(0x29, 0x07);
    pub const MODE_PARAMETERS_CHANGED: Asc = Asc(0x2a, 0x01);
    pub const RESERVATIONS_RELEASED: Asc = Asc(0x2a, 0x04);
    pub const ASYMMETRIC_ACCESS_STATE_CHANGED: Asc = Asc(0x2a, 0x06);
    pub const CAPACITY_DATA_HAS_CHANGED: Asc = Asc(0x2a, 0x09);
    pub const COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: Asc = Asc(0x2f, 0x00);
    pub const SANITIZE_COMMAND_FAILED: Asc = Asc(0x31, 0x03);
    pub const SAVING_PARAMETERS_NOT_SUPPORTED: Asc = Asc(0x39, 0x00);
    pub const MEDIUM_NOT_PRESENT: Asc = Asc(0x3a, 0x00);
    pub const INQUIRY_DATA_HAS_CHANGED: Asc = Asc(0x3f, 0x03);
    pub const REPORTED_LUNS_DATA_HAS_CHANGED: Asc = Asc(0x3f, 0x0e);
    pub const INTERNAL_TARGET_FAILURE: Asc = Asc(0x44, 0x00);
    pub const MEDIUM_REMOVAL_PREVENTED: Asc = Asc(0x53, 0x02);
}

/// Where in the CDB or parameter list an invalid field sits (SPC-4 4.5.2.4.2, the FIELD POINTER
/// sense-key-specific information).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPointer {
    /// True when the field is in the CDB, false when in the parameter list (C/D bit).
    pub in_cdb: bool,
    /// The byte offset.
    pub byte: u16,
    /// The bit within that byte (most significant bit of the field), if known.
    pub bit: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sense {
    pub key: SenseKey,
    pub asc: Asc,
    /// The INFORMATION field (e.g. the offset of the first miscompared byte), when valid.
    pub information: Option<u64>,
    /// Sense-key-specific field pointer for ILLEGAL REQUEST.
    pub field: Option<FieldPointer>,
    /// Sense-key-specific progress indication for NOT READY (SPC-4 4.5.2.4.4): the fraction done
    /// of a long operation, in 65536ths.
    pub progress: Option<u16>,
    /// The stream bits of sequential-access devices (SSC-3 4.2.17): `FILEMARK`, `EOM`, `ILI`.
    pub stream: u8,
    /// A deferred error (SPC-4 4.5.5: response code 71h or 73h): the condition is that of an
    /// earlier command already answered GOOD (an immediate one), not of the command it ends.
    pub deferred: bool,
}

impl Sense {
    pub const fn new(key: SenseKey, asc: Asc) -> Self {
        Sense { key, asc, information: None, field: None, progress: None, stream: 0, deferred: false }
    }

    /// The stream bits: a filemark was read, the end of medium (or its early warning, or the
    /// beginning) was met, or a block's length was not the one asked for.
    pub const FILEMARK: u8 = 0x80;
    pub const EOM: u8 = 0x40;
    pub const ILI: u8 = 0x20;

    pub const fn with_stream(mut self, bits: u8) -> Self {
        self.stream = bits & (Self::FILEMARK | Self::EOM | Self::ILI);
        self
    }

    pub const fn illegal_request(asc: Asc) -> Self {
        Sense::new(SenseKey::IllegalRequest, asc)
    }

    pub const fn unit_attention(asc: Asc) -> Self {
        Sense::new(SenseKey::UnitAttention, asc)
    }

    /// INVALID FIELD IN CDB pointing at `byte` (and `bit`, the field's most significant bit).
    pub const fn invalid_cdb_field(byte: u16, bit: Option<u8>) -> Self {
        Sense {
            key: SenseKey::IllegalRequest,
            asc: Asc::INVALID_FIELD_IN_CDB,
            information: None,
            field: Some(FieldPointer { in_cdb: true, byte, bit }),
            progress: None,
            stream: 0,
            deferred: false,
        }
    }

    /// INVALID FIELD IN PARAMETER LIST pointing at `byte` of the data-out buffer.
    pub const fn invalid_param_field(byte: u16, bit: Option<u8>) -> Self {
        Sense {
            key: SenseKey::IllegalRequest,
            asc: Asc::INVALID_FIELD_IN_PARAMETER_LIST,
            information: None,
            field: Some(FieldPointer { in_cdb: false, byte, bit }),
            progress: None,
            stream: 0,
            deferred: false,
        }
    }

    pub const fn lba_out_of_range() -> Self {
        Sense::illegal_request(Asc::LBA_OUT_OF_RANGE)
    }

    /// NOT READY, SANITIZE IN PROGRESS, with how far it has come (SBC-4 4.11.2).
    pub const fn sanitize_in_progress(progress: u16) -> Self {
        let mut sense = Sense::new(SenseKey::NotReady, Asc::SANITIZE_IN_PROGRESS);
        sense.progress = Some(progress);
        sense
    }

    pub const fn with_information(mut self, information: u64) -> Self {
        self.information = Some(information);
        self
    }

    /// The same condition reported as a deferred error.
    pub const fn into_deferred(mut self) -> Self {
        self.deferred = true;
        self
    }

    /// The three SENSE KEY SPECIFIC bytes (SPC-4 4.5.2.4.2), if any.
    fn key_specific(&self) -> Option<[u8; 3]> {
        let Some(field) = self.field else {
            let [hi, lo] = self.progress?.to_be_bytes();
            return Some([0x80, hi, lo]);
        };
        let mut b0 = 0x80; // SKSV
        if field.in_cdb {
            b0 |= 0x40; // C/D
        }
        if let Some(bit) = field.bit {
            b0 |= 0x08 | (bit & 0x07); // BPV, BIT POINTER
        }
        let [hi, lo] = field.byte.to_be_bytes();
        Some([b0, hi, lo])
    }

    /// Append the encoded sense data to `out` (which is not cleared).
    pub fn encode_into(&self, format: SenseFormat, out: &mut Vec<u8>) {
        match format {
            SenseFormat::Fixed => {
                // SPC-4 4.5.3: 18 bytes, ADDITIONAL SENSE LENGTH 10.
                let valid = if self.information.is_some() { 0x80 } else { 0 };
                // The fixed INFORMATION field has 4 bytes; larger values cannot be reported there.
                let info = self.information.map(|v| u32::try_from(v).unwrap_or(u32::MAX)).unwrap_or(0);
                let code = if self.deferred { 0x71 } else { 0x70 };
                out.extend_from_slice(&[valid | code, 0, self.stream | self.key as u8]);
                out.extend_from_slice(&info.to_be_bytes());
                out.extend_from_slice(&[0x0a, 0, 0, 0, 0, self.asc.0, self.asc.1, 0]);
                out.extend_from_slice(&self.key_specific().unwrap_or([0; 3]));
            }
            SenseFormat::Descriptor => {
                // SPC-4 4.5.2: 8-byte header, then descriptors.
                let start = out.len();
                let code = if self.deferred { 0x73 } else { 0x72 };
                out.extend_from_slice(&[code, self.key as u8, self.asc.0, self.asc.1, 0, 0, 0, 0]);
                if let Some(info) = self.information {
                    // SPC-4 4.5.2.2 information descriptor.
                    out.extend_from_slice(&[0x00, 0x0a, 0x80, 0]);
                    out.extend_from_slice(&info.to_be_bytes());
                }
                if let Some(sks) = self.key_specific() {
                    // SPC-4 4.5.2.4 sense key specific descriptor.
                    out.extend_from_slice(&[0x02, 0x06, 0, 0, sks[0], sks[1], sks[2], 0]);
                }
                if self.stream != 0 {
                    // SPC-4 4.5.2.6 stream commands descriptor.
                    out.extend_from_slice(&[0x04, 0x02, 0, self.stream]);
                }
                out[start + 7] = (out.len() - start - 8) as u8;
            }
        }
    }

    pub fn encode(&self, format: SenseFormat) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        self.encode_into(format, &mut out);
        out
    }
}

impl std::fmt::Display for Sense {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} asc 0x{:02x} ascq 0x{:02x}", self.key, self.asc.0, self.asc.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_invalid_opcode() {
        let s = Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE);
        assert_eq!(s.encode(SenseFormat::Fixed), [0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x20, 0x00, 0, 0, 0, 0]);
    }

    #[test]
    fn fixed_invalid_field_with_pointer() {
        let s = Sense::invalid_cdb_field(2, Some(7));
        assert_eq!(
            s.encode(SenseFormat::Fixed),
            [0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x24, 0x00, 0, 0xcf, 0x00, 0x02]
        );
        let s = Sense::invalid_param_field(0x0104, None);
        assert_eq!(s.encode(SenseFormat::Fixed)[15..], [0x80, 0x01, 0x04]);
    }

    #[test]
    fn fixed_miscompare_information() {
        let s = Sense::new(SenseKey::Miscompare, Asc::MISCOMPARE_DURING_VERIFY).with_information(0x1234);
        assert_eq!(
            s.encode(SenseFormat::Fixed),
            [0xf0, 0, 0x0e, 0, 0, 0x12, 0x34, 0x0a, 0, 0, 0, 0, 0x1d, 0x00, 0, 0, 0, 0]
        );
    }

    #[test]
    fn fixed_unit_attention() {
        let s = Sense::unit_attention(Asc::POWER_ON_RESET_OR_BUS_DEVICE_RESET);
        assert_eq!(s.encode(SenseFormat::Fixed), [0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0]);
    }

    #[test]
    fn stream_bits_in_both_formats() {
        let s = Sense::new(SenseKey::NoSense, Asc(0x00, 0x01)).with_stream(Sense::FILEMARK).with_information(3);
        assert_eq!(s.encode(SenseFormat::Fixed), [0xf0, 0, 0x80, 0, 0, 0, 3, 0x0a, 0, 0, 0, 0, 0x00, 0x01, 0, 0, 0, 0]);
        let s = Sense::new(SenseKey::BlankCheck, Asc(0x00, 0x05)).with_stream(Sense::EOM | Sense::ILI);
        assert_eq!(s.encode(SenseFormat::Fixed)[2], 0x68);
        assert_eq!(s.encode(SenseFormat::Descriptor), [0x72, 0x08, 0x00, 0x05, 0, 0, 0, 4, 0x04, 0x02, 0, 0x60]);
    }

    #[test]
    fn deferred_errors_have_their_own_response_codes() {
        let s = Sense::new(SenseKey::BlankCheck, Asc(0x00, 0x05)).with_information(2).into_deferred();
        assert_eq!(s.encode(SenseFormat::Fixed), [0xf1, 0, 0x08, 0, 0, 0, 2, 0x0a, 0, 0, 0, 0, 0x00, 0x05, 0, 0, 0, 0]);
        assert_eq!(s.encode(SenseFormat::Descriptor)[..8], [0x73, 0x08, 0x00, 0x05, 0, 0, 0, 12]);
    }

    #[test]
    fn descriptor_plain() {
        let s = Sense::lba_out_of_range();
        assert_eq!(s.encode(SenseFormat::Descriptor), [0x72, 0x05, 0x21, 0x00, 0, 0, 0, 0]);
    }

    #[test]
    fn descriptor_with_information_and_pointer() {
        let mut s = Sense::invalid_cdb_field(1, None).with_information(5);
        s.field = Some(FieldPointer { in_cdb: true, byte: 1, bit: Some(5) });
        assert_eq!(
            s.encode(SenseFormat::Descriptor),
            [
                0x72, 0x05, 0x24, 0x00, 0, 0, 0, 0x14, // header, 20 bytes of descriptors
                0x00, 0x0a, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 5, // information
                0x02, 0x06, 0x00, 0x00, 0xcd, 0x00, 0x01, 0x00, // sense key specific
            ]
        );
    }
}
