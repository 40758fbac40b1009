//! A tape image file opened for a drive: the position (the header of the object under the head),
//! and the moves and writes a drive makes on it. Writing anywhere ends the tape there (a tape is
//! written sequentially: what followed is gone), as tgt's drive does.
//!
//! Writes go in an order that keeps the file readable if the process dies between them: the data
//! first, then the new end-of-data header after it, and last the header that links them in (it
//! overwrites the old end-of-data header, so until then the tape ends where it did).

use super::format::{BlockHeader, BlockKind, Mam, MediumType, FIRST_HEADER, HEADER_LEN, MAM_LEN, MAX_BLOCK_LEN};
use super::TapeError;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What a new tape is (tgtimg --op new).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTape {
    pub barcode: String,
    /// Capacity in MiB; tgtimg takes 0 as its default, 8000.
    pub capacity_mib: u64,
    pub medium: MediumType,
    /// Seconds since the epoch, for the serial number.
    pub created_secs: u64,
}

/// The object under the head when a read or a space meets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    /// A data block of this many bytes.
    Data(u32),
    Filemark,
    EndOfData,
}

/// A tape image, positioned.
#[derive(Debug)]
pub struct TapeImage {
    file: File,
    path: PathBuf,
    mam: Mam,
    bot: BlockHeader,
    /// The header of the object at the position (end of data when there is nothing more).
    pos: BlockHeader,
    len: u64,
    writable: bool,
    /// Filemarks between the beginning of the tape and the position (the logical file identifier).
    files: u64,
    /// How many times `sync` made the writes durable: which commands flush is part of a drive's
    /// contract (WRITE FILEMARKS, unbuffered writes), and this is how its tests see it.
    syncs: AtomicU64,
}

fn io_at(offset: u64) -> impl FnOnce(io::Error) -> TapeError {
    move |source| TapeError::Io { offset, source }
}

impl TapeImage {
    /// Make a new, empty tape at `path` (replacing any file there, as tgtimg does).
    pub fn create(path: &Path, tape: &NewTape) -> Result<(), TapeError> {
        let capacity = if tape.capacity_mib == 0 { 8000 } else { tape.capacity_mib };
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o660)
            .open(path)
            .map_err(|source| TapeError::Open { path: path.display().to_string(), source })?;
        let bot = BlockHeader {
            kind: BlockKind::Bot,
            ondisk_len: 0,
            // The field is 32 bits: a capacity beyond it is recorded cut, as tgtimg does.
            block_len: capacity as u32,
            number: 0,
            prev: 0,
            curr: 0,
            next: FIRST_HEADER,
        };
        let eod = BlockHeader {
            kind: BlockKind::Eod,
            ondisk_len: 0,
            block_len: 0,
            number: 1,
            prev: 0,
            curr: FIRST_HEADER,
            next: FIRST_HEADER,
        };
        let mam = Mam::new(&tape.barcode, capacity, tape.medium, tape.created_secs);
        file.write_all_at(&bot.encode(), 0).map_err(io_at(0))?;
        file.write_all_at(&mam.0[..], HEADER_LEN).map_err(io_at(HEADER_LEN))?;
        file.write_all_at(&eod.encode(), FIRST_HEADER).map_err(io_at(FIRST_HEADER))?;
        file.sync_all().map_err(io_at(0))
    }

    /// Open the tape at `path`, positioned at the beginning. A file that is not a tape image of
    /// the version understood here is refused (`TapeError::NotATape`).
    pub fn open(path: &Path, readonly: bool) -> Result<Self, TapeError> {
        let file = OpenOptions::new()
            .read(true)
            .write(!readonly)
            .open(path)
            .map_err(|source| TapeError::Open { path: path.display().to_string(), source })?;
        let len = file.metadata().map_err(io_at(0))?.len();
        if len < FIRST_HEADER + HEADER_LEN {
            return Err(TapeError::NotATape("too small for a tape image".into()));
        }
        let mut raw = [0u8; HEADER_LEN as usize];
        file.read_exact_at(&mut raw, 0).map_err(io_at(0))?;
        let bot = BlockHeader::decode(&raw, 0, len).map_err(|e| TapeError::NotATape(e.to_string()))?;
        if bot.kind != BlockKind::Bot {
            return Err(TapeError::NotATape("no beginning-of-tape header".into()));
        }
        let mut mam = Mam(Box::new([0u8; MAM_LEN]));
        file.read_exact_at(&mut mam.0[..], HEADER_LEN).map_err(io_at(HEADER_LEN))?;
        if mam.version() != super::format::FORMAT_VERSION {
            return Err(TapeError::NotATape(format!("unknown media format version {:x}", mam.version())));
        }
        let mut image = TapeImage {
            file,
            path: path.to_path_buf(),
            mam,
            bot,
            pos: bot,
            len,
            writable: !readonly,
            files: 0,
            syncs: AtomicU64::new(0),
        };
        image.rewind()?;
        Ok(image)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn mam(&self) -> &Mam {
        &self.mam
    }

    /// The beginning-of-tape header (tgtimg's show prints it).
    pub fn bot(&self) -> &BlockHeader {
        &self.bot
    }

    pub fn medium_type(&self) -> MediumType {
        self.mam.medium_type()
    }

    /// Whether the file was opened for writing.
    pub fn writable(&self) -> bool {
        self.writable
    }

    /// The header of the object at the position.
    pub fn current(&self) -> &BlockHeader {
        &self.pos
    }

    /// The logical object identifier of the position (SSC-3 4.2.4.3: blocks and filemarks
    /// counted from 0 at the beginning of partition).
    pub fn object_id(&self) -> u64 {
        self.pos.number - 1
    }

    /// The logical file identifier of the position: filemarks before it (SSC-3 4.2.4.3).
    pub fn file_number(&self) -> u64 {
        self.files
    }

    /// Bytes of tape in use up to the position's end of data if the tape ended here: where an
    /// object of `data_len` bytes written here would put the end of data.
    pub fn end_after_write(&self, data_len: u32) -> u64 {
        self.pos.curr + HEADER_LEN + u64::from(data_len)
    }

    fn header_at(&self, offset: u64) -> Result<BlockHeader, TapeError> {
        let mut raw = [0u8; HEADER_LEN as usize];
        if offset.checked_add(HEADER_LEN).is_none_or(|end| end > self.len) {
            return Err(TapeError::Corrupt { offset, why: "block header past the end of the file" });
        }
        self.file.read_exact_at(&mut raw, offset).map_err(io_at(offset))?;
        BlockHeader::decode(&raw, offset, self.len)
    }

    /// Back to the beginning of the tape.
    pub fn rewind(&mut self) -> Result<(), TapeError> {
        let first = self.header_at(FIRST_HEADER)?;
        if first.kind == BlockKind::Bot || first.prev != 0 || first.number != 1 {
            return Err(TapeError::Corrupt { offset: FIRST_HEADER, why: "bad first block" });
        }
        self.pos = first;
        self.files = 0;
        Ok(())
    }

    /// What is under the head, without moving.
    pub fn peek(&self) -> Object {
        match self.pos.kind {
            BlockKind::Data => Object::Data(self.pos.ondisk_len),
            BlockKind::Filemark => Object::Filemark,
            _ => Object::EndOfData,
        }
    }

    /// Read the data block under the head into `buf` (its first `buf.len()` bytes at most: the
    /// caller sizes `buf` from the block length `peek` reported) without moving.
    pub fn read_data(&self, buf: &mut [u8]) -> Result<(), TapeError> {
        let take = buf.len().min(self.pos.ondisk_len as usize);
        let at = self.pos.curr + HEADER_LEN;
        self.file.read_exact_at(&mut buf[..take], at).map_err(io_at(at))
    }

    /// Move past the object under the head; at end of data nothing moves and `EndOfData` is
    /// returned. Returns what was passed over.
    pub fn forward(&mut self) -> Result<Object, TapeError> {
        let passed = self.peek();
        if passed == Object::EndOfData {
            return Ok(passed);
        }
        let next = self.header_at(self.pos.next)?;
        if next.prev != self.pos.curr || next.number != self.pos.number + 1 || next.kind == BlockKind::Bot {
            return Err(TapeError::Corrupt { offset: next.curr, why: "block chain broken" });
        }
        self.pos = next;
        if passed == Object::Filemark {
            self.files += 1;
        }
        Ok(passed)
    }

    /// Move back over the object before the head; None at the beginning of the tape.
    pub fn backward(&mut self) -> Result<Option<Object>, TapeError> {
        if self.pos.number == 1 {
            return Ok(None);
        }
        let prev = self.header_at(self.pos.prev)?;
        if prev.next != self.pos.curr || prev.number + 1 != self.pos.number {
            return Err(TapeError::Corrupt { offset: prev.curr, why: "block chain broken" });
        }
        self.pos = prev;
        let over = self.peek();
        if over == Object::Filemark {
            self.files = self.files.saturating_sub(1);
        }
        Ok(Some(over))
    }

    fn check_writable(&self) -> Result<(), TapeError> {
        if self.writable {
            Ok(())
        } else {
            Err(TapeError::ReadOnly)
        }
    }

    /// Write an object at the position, ending the tape after it; the position is then its end
    /// of data. With `sync`, the object is on stable storage before this returns.
    fn append(&mut self, kind: BlockKind, data: &[u8], sync: bool) -> Result<(), TapeError> {
        self.check_writable()?;
        let len = u32::try_from(data.len()).ok().filter(|&l| l <= MAX_BLOCK_LEN).ok_or(TapeError::BlockTooLong)?;
        let here = self.pos;
        let written = BlockHeader {
            kind,
            ondisk_len: len,
            block_len: len,
            number: here.number,
            prev: here.prev,
            curr: here.curr,
            next: here.curr + HEADER_LEN + u64::from(len),
        };
        let eod = BlockHeader {
            kind: BlockKind::Eod,
            ondisk_len: 0,
            block_len: 0,
            number: here.number + 1,
            prev: here.curr,
            curr: written.next,
            next: written.next,
        };
        let data_at = here.curr + HEADER_LEN;
        self.file.write_all_at(data, data_at).map_err(io_at(data_at))?;
        self.file.write_all_at(&eod.encode(), eod.curr).map_err(io_at(eod.curr))?;
        self.file.write_all_at(&written.encode(), here.curr).map_err(io_at(here.curr))?;
        let end = eod.curr + HEADER_LEN;
        // What followed is no longer on the tape; the file ends with it.
        if self.len > end {
            self.file.set_len(end).map_err(io_at(end))?;
        }
        self.len = end;
        self.pos = eod;
        if kind == BlockKind::Filemark {
            self.files += 1;
        }
        if sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Write a data block at the position (WRITE).
    pub fn write_block(&mut self, data: &[u8], sync: bool) -> Result<(), TapeError> {
        self.append(BlockKind::Data, data, sync)
    }

    /// Write a filemark at the position (WRITE FILEMARKS).
    pub fn write_filemark(&mut self, sync: bool) -> Result<(), TapeError> {
        self.append(BlockKind::Filemark, &[], sync)
    }

    /// End the tape at the position (ERASE): everything from here on is gone.
    pub fn erase(&mut self) -> Result<(), TapeError> {
        self.check_writable()?;
        let here = self.pos;
        let eod = BlockHeader { kind: BlockKind::Eod, ondisk_len: 0, block_len: 0, next: here.curr, ..here };
        self.file.write_all_at(&eod.encode(), here.curr).map_err(io_at(here.curr))?;
        let end = here.curr + HEADER_LEN;
        self.file.set_len(end).map_err(io_at(end))?;
        self.len = end;
        self.pos = eod;
        self.sync()
    }

    /// Make every write so far durable.
    pub fn sync(&self) -> Result<(), TapeError> {
        self.file.sync_data().map_err(io_at(0))?;
        self.syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// How many times the tape was made durable since it was opened.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}
