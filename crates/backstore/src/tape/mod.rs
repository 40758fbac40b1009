//! Tape images in tgt's file format, so that tapes move between rtgt and tgt unchanged: a file
//! holds the beginning-of-tape header, the medium auxiliary memory and a chain of block headers,
//! each followed by its data (`format` has the layout). `image` opens one for a drive and moves
//! and writes on it; the SCSI meaning of it all (sense data, modes) is the scsi crate's `ssc`.
//!
//! Files are read and written with plain positioned I/O: a tape drive does one thing at a time
//! and its objects are small, so there is nothing to gain from the engines the disks use.

mod format;
mod image;

pub use format::{BlockHeader, BlockKind, Mam, MediumType, FIRST_HEADER, FORMAT_VERSION, HEADER_LEN, MAX_BLOCK_LEN};
pub use image::{NewTape, Object, TapeImage};

/// Why a tape operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TapeError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a tape image this implementation reads.
    #[error("not a tape image: {0}")]
    NotATape(String),
    #[error("I/O error at offset {offset}: {source}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    /// A structure in the file contradicts itself or the file (a damaged or hostile image).
    #[error("tape image damaged at offset {offset}: {why}")]
    Corrupt { offset: u64, why: &'static str },
    #[error("the tape image was opened read-only")]
    ReadOnly,
    #[error("a block is longer than {MAX_BLOCK_LEN} bytes")]
    BlockTooLong,
}

#[cfg(test)]
mod tests;
