//! The on-disk structures of a tape image in tgt's format (its version 2), big-endian throughout:
//!
//! - at offset 0, the beginning-of-tape header (48 bytes), whose BLOCK SIZE field holds the
//!   capacity in MiB that tgtimg was given;
//! - at 48, the medium auxiliary memory (MAM, 1104 bytes: format version, capacities, medium
//!   type, serial number, barcode, ...);
//! - at 1152, the first object's header, then each object's data right after its header, and the
//!   next header right after that data: a chain of headers each naming its own offset, the
//!   previous header's and the next one's, ending in an end-of-data header whose next is itself.
//!
//! A header: CRC32C (stored little-endian, over the 44 bytes after it), on-disk length, block
//! length, type, object number, prev, curr, next. The object number counts from 1 for the first
//! object after the beginning of tape, so a position's logical object identifier is number - 1.
//!
//! Everything here is decoded from a file an unprivileged user may have written: every field is
//! checked against the others and the file's length before it is trusted (`TapeError::Corrupt`).

use super::TapeError;

/// Bytes of one block header.
pub const HEADER_LEN: u64 = 48;
/// Bytes of the medium auxiliary memory that follows the beginning-of-tape header.
pub const MAM_LEN: usize = 1104;
/// Offset of the first object's header.
pub const FIRST_HEADER: u64 = HEADER_LEN + MAM_LEN as u64;
/// The format version tgt writes and reads (`tape_fmt_version`).
pub const FORMAT_VERSION: u32 = 2;
/// Largest block this implementation reads or writes: the 24-bit TRANSFER LENGTH of READ(6) and
/// WRITE(6) in variable mode (SSC-3 7.2, 7.9). A header claiming more is corrupt.
pub const MAX_BLOCK_LEN: u32 = 0x00ff_ffff;

/// The block types tgt defines; only these four occur in its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// Beginning of tape: the header at offset 0.
    Bot,
    /// Uncompressed data.
    Data,
    Filemark,
    /// End of data: where the next write goes.
    Eod,
}

impl BlockKind {
    fn code(self) -> u32 {
        match self {
            BlockKind::Data => 0x02,
            BlockKind::Bot => 0x10,
            BlockKind::Eod => 0x20,
            BlockKind::Filemark => 0x40,
        }
    }

    fn from_code(code: u32) -> Option<Self> {
        match code {
            0x02 => Some(BlockKind::Data),
            0x10 => Some(BlockKind::Bot),
            0x20 => Some(BlockKind::Eod),
            0x40 => Some(BlockKind::Filemark),
            _ => None,
        }
    }

    /// The type code tgtimg's show prints in parentheses.
    pub fn type_code(self) -> u32 {
        self.code()
    }
}

/// One block header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    pub kind: BlockKind,
    /// Bytes of data stored after the header (the block's length; 0 for marks).
    pub ondisk_len: u32,
    /// The block's length as written; for the beginning-of-tape header, the capacity in MiB.
    pub block_len: u32,
    pub number: u64,
    pub prev: u64,
    pub curr: u64,
    pub next: u64,
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

impl BlockHeader {
    pub fn encode(&self) -> [u8; HEADER_LEN as usize] {
        let mut b = [0u8; HEADER_LEN as usize];
        b[4..8].copy_from_slice(&self.ondisk_len.to_be_bytes());
        b[8..12].copy_from_slice(&self.block_len.to_be_bytes());
        b[12..16].copy_from_slice(&self.kind.code().to_be_bytes());
        b[16..24].copy_from_slice(&self.number.to_be_bytes());
        b[24..32].copy_from_slice(&self.prev.to_be_bytes());
        b[32..40].copy_from_slice(&self.curr.to_be_bytes());
        b[40..48].copy_from_slice(&self.next.to_be_bytes());
        // tgt stores the checksum in the host's order; every platform it runs on is little-endian.
        let crc = crc32c::crc32c(&b[4..]);
        b[0..4].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Decode the header read at `offset` of a file of `file_len` bytes, checking it against
    /// itself and the file: its checksum, that it says it is at `offset`, that its data and the
    /// header after it fit in the file, and that the chain moves the way its type says.
    pub fn decode(b: &[u8; HEADER_LEN as usize], offset: u64, file_len: u64) -> Result<Self, TapeError> {
        let corrupt = |why: &'static str| TapeError::Corrupt { offset, why };
        if crc32c::crc32c(&b[4..]).to_le_bytes() != b[0..4] {
            return Err(corrupt("block header checksum mismatch"));
        }
        let kind = BlockKind::from_code(be32(b, 12)).ok_or(corrupt("unknown block type"))?;
        let h = BlockHeader {
            kind,
            ondisk_len: be32(b, 4),
            block_len: be32(b, 8),
            number: be64(b, 16),
            prev: be64(b, 24),
            curr: be64(b, 32),
            next: be64(b, 40),
        };
        if h.curr != offset {
            return Err(corrupt("block header is not where its chain says"));
        }
        match kind {
            BlockKind::Bot => {
                if offset != 0 || h.next != FIRST_HEADER || h.ondisk_len != 0 {
                    return Err(corrupt("bad beginning-of-tape header"));
                }
                return Ok(h);
            }
            BlockKind::Data => {
                if h.ondisk_len != h.block_len || h.ondisk_len > MAX_BLOCK_LEN {
                    return Err(corrupt("bad data block length"));
                }
            }
            BlockKind::Filemark | BlockKind::Eod => {
                if h.ondisk_len != 0 {
                    return Err(corrupt("a mark with data"));
                }
            }
        }
        if offset < FIRST_HEADER || h.prev >= offset || h.number == 0 {
            return Err(corrupt("bad previous block"));
        }
        let expected_next = if kind == BlockKind::Eod { offset } else { offset + HEADER_LEN + u64::from(h.ondisk_len) };
        if h.next != expected_next || h.next.checked_add(HEADER_LEN).is_none_or(|end| end > file_len) {
            return Err(corrupt("bad next block"));
        }
        Ok(h)
    }
}

/// Medium types of the MAM (tgt's media.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediumType {
    Unspecified,
    Data,
    Cleaning,
    Diagnostics,
    Worm,
    Microcode,
    Other(u8),
}

impl MediumType {
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => MediumType::Unspecified,
            1 => MediumType::Data,
            2 => MediumType::Cleaning,
            3 => MediumType::Diagnostics,
            4 => MediumType::Worm,
            5 => MediumType::Microcode,
            other => MediumType::Other(other),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            MediumType::Unspecified => 0,
            MediumType::Data => 1,
            MediumType::Cleaning => 2,
            MediumType::Diagnostics => 3,
            MediumType::Worm => 4,
            MediumType::Microcode => 5,
            MediumType::Other(code) => code,
        }
    }
}

// Offsets of the MAM fields used here (tgt's struct MAM, packed as it writes it).
const MAM_VERSION: usize = 0;
const MAM_REMAINING: usize = 8;
const MAM_MAX_CAPACITY: usize = 16;
const MAM_SPACE_REMAINING: usize = 40;
const MAM_MANUFACTURER: usize = 256;
const MAM_SERIAL: usize = 264;
const MAM_SERIAL_LEN: usize = 32;
const MAM_LENGTH: usize = 296;
const MAM_WIDTH: usize = 300;
const MAM_MEDIUM_TYPE: usize = 336;
const MAM_MEDIUM_TYPE_INFO: usize = 338;
const MAM_APPLICATION_VENDOR: usize = 344;
const MAM_BARCODE: usize = 568;
const MAM_BARCODE_LEN: usize = 32;
const MAM_VENDOR_UNIQUE_LEN: u64 = 256;

/// The medium auxiliary memory: kept whole (what is not understood here is written back as it
/// was read), with accessors for the fields a drive and tgtimg use.
#[derive(Clone)]
pub struct Mam(pub Box<[u8; MAM_LEN]>);

impl std::fmt::Debug for Mam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mam")
            .field("version", &self.version())
            .field("barcode", &self.barcode())
            .field("medium_type", &self.medium_type())
            .field("max_capacity", &self.max_capacity())
            .finish()
    }
}

/// A C string field: up to its first NUL (or the whole field), bytes shown as Latin-1.
fn c_string(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    field[..end].iter().map(|&b| b as char).collect()
}

impl Mam {
    /// A new tape's MAM as tgtimg makes it: `capacity_mib` MiB, the barcode (padded with spaces
    /// to 31 characters), the serial number `BARCODE_SECONDS`.
    pub fn new(barcode: &str, capacity_mib: u64, medium: MediumType, created_secs: u64) -> Self {
        let mut m = Box::new([0u8; MAM_LEN]);
        let bytes = capacity_mib.saturating_mul(1 << 20);
        m[MAM_VERSION..MAM_VERSION + 4].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
        m[MAM_REMAINING..MAM_REMAINING + 8].copy_from_slice(&bytes.to_be_bytes());
        m[MAM_MAX_CAPACITY..MAM_MAX_CAPACITY + 8].copy_from_slice(&bytes.to_be_bytes());
        m[MAM_SPACE_REMAINING..MAM_SPACE_REMAINING + 8].copy_from_slice(&MAM_VENDOR_UNIQUE_LEN.to_be_bytes());
        // 384 tracks of 12.7 mm tape, as tgtimg says of every tape.
        m[MAM_LENGTH..MAM_LENGTH + 4].copy_from_slice(&384u32.to_be_bytes());
        m[MAM_WIDTH..MAM_WIDTH + 4].copy_from_slice(&127u32.to_be_bytes());
        m[MAM_MANUFACTURER..MAM_MANUFACTURER + 8].copy_from_slice(b"Foo     ");
        m[MAM_APPLICATION_VENDOR..MAM_APPLICATION_VENDOR + 8].copy_from_slice(b"Bar     ");
        m[MAM_MEDIUM_TYPE] = medium.code();
        if medium == MediumType::Cleaning {
            // The cleaning loads a cartridge allows.
            m[MAM_MEDIUM_TYPE_INFO..MAM_MEDIUM_TYPE_INFO + 2].copy_from_slice(&20u16.to_be_bytes());
        }
        // The fields are C strings: one byte is kept for the NUL.
        let serial = format!("{barcode}_{created_secs}");
        let serial = &serial.as_bytes()[..serial.len().min(MAM_SERIAL_LEN - 1)];
        m[MAM_SERIAL..MAM_SERIAL + serial.len()].copy_from_slice(serial);
        let padded = format!("{barcode:<31}");
        let padded = &padded.as_bytes()[..padded.len().min(MAM_BARCODE_LEN - 1)];
        m[MAM_BARCODE..MAM_BARCODE + padded.len()].copy_from_slice(padded);
        Mam(m)
    }

    pub fn version(&self) -> u32 {
        be32(&self.0[..], MAM_VERSION)
    }

    /// Bytes the tape holds, headers included (tgt compares the end of data with it).
    pub fn max_capacity(&self) -> u64 {
        be64(&self.0[..], MAM_MAX_CAPACITY)
    }

    pub fn medium_type(&self) -> MediumType {
        MediumType::from_code(self.0[MAM_MEDIUM_TYPE])
    }

    /// The barcode as stored (space padded, as tgtimg writes it).
    pub fn barcode(&self) -> String {
        c_string(&self.0[MAM_BARCODE..MAM_BARCODE + MAM_BARCODE_LEN])
    }

    pub fn serial_number(&self) -> String {
        c_string(&self.0[MAM_SERIAL..MAM_SERIAL + MAM_SERIAL_LEN])
    }
}
