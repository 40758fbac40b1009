//! A store on a regular file or a block device, with positioned reads and writes (pread/pwrite).
//!
//! `--bsoflags direct` opens with O_DIRECT (through an aligned bounce buffer, since callers' buffers
//! carry no alignment promise) and `--bsoflags sync` with O_SYNC. FUA writes without O_SYNC are
//! followed by fdatasync before they complete.
//!
//! The calls block the calling thread; on page-cache-backed files that is a few microseconds. An
//! io_uring engine that never blocks the runtime is the planned replacement for slow devices.

use crate::{check_range, BackstoreError, BlockStore, ErrorKind};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// How the file is opened (tgt's `--bsoflags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenFlags {
    pub direct: bool,
    pub sync: bool,
    pub readonly: bool,
}

#[derive(Debug)]
pub struct FileStore {
    file: File,
    path: PathBuf,
    size: AtomicU64,
    flags: OpenFlags,
    is_block_device: bool,
}

const DIRECT_ALIGN: usize = 4096;

impl FileStore {
    pub fn open(path: &Path, flags: OpenFlags) -> Result<Self, BackstoreError> {
        let open_err = |source| BackstoreError::Open { path: path.display().to_string(), source };
        let mut custom = 0;
        if flags.direct {
            custom |= libc::O_DIRECT;
        }
        if flags.sync {
            custom |= libc::O_SYNC;
        }
        let file =
            OpenOptions::new().read(true).write(!flags.readonly).custom_flags(custom).open(path).map_err(open_err)?;
        let meta = file.metadata().map_err(open_err)?;
        let is_block_device = meta.file_type().is_block_device();
        if !is_block_device && !meta.is_file() {
            return Err(open_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file or block device",
            )));
        }
        let store = FileStore { file, path: path.to_path_buf(), size: AtomicU64::new(0), flags, is_block_device };
        store.reload_size()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn flags(&self) -> OpenFlags {
        self.flags
    }

    fn measure(&self) -> std::io::Result<u64> {
        if self.is_block_device {
            (&self.file).seek(SeekFrom::End(0))
        } else {
            Ok(self.file.metadata()?.len())
        }
    }

    /// pread into possibly uninitialized memory (see `Backstore::read_uninit`); `None` with
    /// O_DIRECT, whose reads go through the aligned bounce buffer.
    pub(crate) fn read_uninit(
        &self,
        offset: u64,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> Option<Result<(), BackstoreError>> {
        if self.flags.direct {
            return None;
        }
        if let Err(e) = check_range(ErrorKind::Read, offset, buf.len() as u64, self.size()) {
            return Some(Err(e));
        }
        let fd = self.file.as_raw_fd();
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            let at = offset + done as u64;
            // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`, memory this
            // function borrows mutably; MaybeUninit<u8> has the layout of u8, and pread never
            // reads the buffer, so its bytes need not be initialized.
            let n = unsafe { libc::pread(fd, rest.as_mut_ptr().cast(), rest.len(), at as libc::off_t) };
            match n {
                n if n > 0 => done += n as usize,
                0 => {
                    let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                    return Some(Err(BackstoreError::io(ErrorKind::Read, at, eof)));
                }
                _ => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Some(Err(BackstoreError::io(ErrorKind::Read, at, e)));
                    }
                }
            }
        }
        Some(Ok(()))
    }

    /// Move `[offset, offset + len)` into `pipe` by page reference (see `Backstore::read_into_pipe`);
    /// `None` with O_DIRECT (no page cache to reference) or when the pipe cannot take the range.
    pub(crate) fn read_into_pipe(
        &self,
        offset: u64,
        len: usize,
        pipe: &mut crate::PagePipe,
    ) -> Option<Result<(), BackstoreError>> {
        if self.flags.direct {
            return None;
        }
        if let Err(e) = check_range(ErrorKind::Read, offset, len as u64, self.size()) {
            return Some(Err(e));
        }
        match pipe.fill_from(self.file.as_raw_fd(), offset, len) {
            Ok(Ok(())) => Some(Ok(())),
            Ok(Err(_refused)) => None,
            Err((at, e)) => Some(Err(BackstoreError::io(ErrorKind::Read, at, e))),
        }
    }

    fn read_direct(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let mut bounce = AlignedBuf::new(buf.len());
        self.file.read_exact_at(bounce.as_mut_slice(), offset)?;
        buf.copy_from_slice(bounce.as_mut_slice());
        Ok(())
    }

    fn write_direct(&self, offset: u64, buf: &[u8]) -> std::io::Result<()> {
        let mut bounce = AlignedBuf::new(buf.len());
        bounce.as_mut_slice().copy_from_slice(buf);
        self.file.write_all_at(bounce.as_mut_slice(), offset)
    }

    fn zero_fill(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        const STEP: u64 = 1 << 20;
        let zeros = vec![0u8; STEP.min(len) as usize];
        let mut done = 0;
        while done < len {
            let n = STEP.min(len - done) as usize;
            let at = offset + done;
            let result = if self.flags.direct {
                self.write_direct(at, &zeros[..n])
            } else {
                self.file.write_all_at(&zeros[..n], at)
            };
            result.map_err(|e| BackstoreError::io(ErrorKind::Unmap, at, e))?;
            done += n as u64;
        }
        Ok(())
    }
}

impl BlockStore for FileStore {
    fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    async fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackstoreError> {
        check_range(ErrorKind::Read, offset, buf.len() as u64, self.size())?;
        let result =
            if self.flags.direct { self.read_direct(offset, buf) } else { self.file.read_exact_at(buf, offset) };
        result.map_err(|e| BackstoreError::io(ErrorKind::Read, offset, e))
    }

    async fn write_at(&self, offset: u64, buf: &[u8], fua: bool) -> Result<(), BackstoreError> {
        check_range(ErrorKind::Write, offset, buf.len() as u64, self.size())?;
        let result =
            if self.flags.direct { self.write_direct(offset, buf) } else { self.file.write_all_at(buf, offset) };
        result.map_err(|e| BackstoreError::io(ErrorKind::Write, offset, e))?;
        // O_SYNC already made the data durable; otherwise FUA needs an explicit data sync.
        if fua && !self.flags.sync {
            self.file.sync_data().map_err(|e| BackstoreError::io(ErrorKind::Flush, offset, e))?;
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), BackstoreError> {
        self.file.sync_data().map_err(|e| BackstoreError::io(ErrorKind::Flush, 0, e))
    }

    async fn unmap(&self, offset: u64, len: u64) -> Result<(), BackstoreError> {
        check_range(ErrorKind::Unmap, offset, len, self.size())?;
        if len == 0 {
            return Ok(());
        }
        if !self.is_block_device {
            let (Ok(off), Ok(n)) = (i64::try_from(offset), i64::try_from(len)) else {
                return Err(BackstoreError::out_of_range(ErrorKind::Unmap, offset, len));
            };
            // SAFETY: fallocate on a file descriptor we own, with plain integer arguments.
            let rc = unsafe {
                libc::fallocate(self.file.as_raw_fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, off, n)
            };
            if rc == 0 {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                // The filesystem cannot punch holes: fall back to writing zeros.
                Some(libc::EOPNOTSUPP) | Some(libc::ENOSYS) => {}
                _ => return Err(BackstoreError::io(ErrorKind::Unmap, offset, err)),
            }
        }
        self.zero_fill(offset, len)
    }

    /// SEEK_DATA/SEEK_HOLE: a hole is deallocated. Block devices, and filesystems without the
    /// seek extensions, report everything allocated.
    fn allocation(&self, offset: u64, len: u64) -> Result<(bool, u64), BackstoreError> {
        check_range(ErrorKind::Read, offset, len, self.size())?;
        if len == 0 || self.is_block_device {
            return Ok((true, len));
        }
        let Ok(off) = i64::try_from(offset) else {
            return Err(BackstoreError::out_of_range(ErrorKind::Read, offset, len));
        };
        let fd = self.file.as_raw_fd();
        // SAFETY: lseek on a file descriptor we own; it moves a file offset nobody else relies on
        // (all I/O here is positioned: pread/pwrite).
        let data = unsafe { libc::lseek(fd, off, libc::SEEK_DATA) };
        if data < 0 {
            let err = std::io::Error::last_os_error();
            return match err.raw_os_error() {
                // No data at or after offset: a hole up to the end of the file.
                Some(libc::ENXIO) => Ok((false, len)),
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Ok((true, len)),
                _ => Err(BackstoreError::io(ErrorKind::Read, offset, err)),
            };
        }
        let data = data as u64;
        if data > offset {
            return Ok((false, (data - offset).min(len)));
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, off, libc::SEEK_HOLE) };
        if hole < 0 {
            let err = std::io::Error::last_os_error();
            return Err(BackstoreError::io(ErrorKind::Read, offset, err));
        }
        let hole = hole as u64;
        Ok((true, hole.saturating_sub(offset).clamp(1, len)))
    }

    fn reload_size(&self) -> Result<u64, BackstoreError> {
        let size = self.measure().map_err(|e| BackstoreError::io(ErrorKind::Size, 0, e))?;
        self.size.store(size, Ordering::Relaxed);
        Ok(size)
    }
}

/// Refuse `--bsoflags direct` clearly where it cannot work, before any I/O fails obscurely: a
/// filesystem without O_DIRECT (tmpfs refuses the open with EINVAL), or one whose direct I/O needs
/// larger or more aligned units than the LUN's blocks and the bounce buffers provide. Kernels that
/// cannot tell the alignment (statx STATX_DIOALIGN, Linux 6.1) are trusted.
pub(crate) fn check_direct_io(path: &Path, block_size: u32) -> Result<(), BackstoreError> {
    let refuse = |why: String| BackstoreError::Open {
        path: path.display().to_string(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, why),
    };
    let no_direct = || refuse("the filesystem does not support O_DIRECT (--bsoflags direct)".into());
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path) {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return Err(no_direct()),
        Err(source) => return Err(BackstoreError::Open { path: path.display().to_string(), source }),
    };
    // SAFETY: statx is plain data; all-zero is a valid value for it.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx on a descriptor we own with an empty path (AT_EMPTY_PATH), writing into `stx`.
    let rc =
        unsafe { libc::statx(file.as_raw_fd(), c"".as_ptr(), libc::AT_EMPTY_PATH, libc::STATX_DIOALIGN, &mut stx) };
    if rc != 0 || stx.stx_mask & libc::STATX_DIOALIGN == 0 {
        return Ok(());
    }
    let offset_align = stx.stx_dio_offset_align;
    if offset_align == 0 {
        return Err(no_direct());
    }
    if offset_align > block_size.max(1) {
        return Err(refuse(format!(
            "O_DIRECT on this file needs I/O in units of {offset_align} bytes, larger than the LUN's \
             {block_size}-byte blocks (use a larger --blocksize or leave out --bsoflags direct)"
        )));
    }
    if stx.stx_dio_mem_align as usize > DIRECT_ALIGN {
        return Err(refuse(format!("O_DIRECT on this file needs {}-byte aligned memory", stx.stx_dio_mem_align)));
    }
    Ok(())
}

/// A heap buffer aligned for O_DIRECT, its length rounded up to the alignment.
struct AlignedBuf {
    ptr: *mut u8,
    len: usize,
    layout: Layout,
}

impl AlignedBuf {
    fn new(len: usize) -> Self {
        let layout = Layout::from_size_align(len.max(1).next_multiple_of(DIRECT_ALIGN), DIRECT_ALIGN)
            .expect("O_DIRECT buffer layout");
        // SAFETY: the layout has a non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        AlignedBuf { ptr, len, layout }
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: ptr points to layout.size() >= len zeroed bytes owned by self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: ptr was allocated with this layout and is freed once.
        unsafe { dealloc(self.ptr, self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::block_on;

    #[test]
    fn reads_into_uninitialized_memory() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.as_file().set_len(1 << 20).unwrap();
        let store = FileStore::open(tmp.path(), OpenFlags::default()).unwrap();
        let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        block_on(store.write_at(4096, &data, false)).unwrap();
        let mut buf: Vec<u8> = Vec::with_capacity(data.len());
        store.read_uninit(4096, &mut buf.spare_capacity_mut()[..data.len()]).unwrap().unwrap();
        // SAFETY: read_uninit returned Ok, so it wrote every byte of the capacity it was given.
        unsafe { buf.set_len(data.len()) };
        assert_eq!(buf, data);
        // Past the end: refused before any read. A file cut short under the store: end of file.
        let mut buf: Vec<u8> = Vec::with_capacity(8192);
        let e = store.read_uninit((1 << 20) - 4096, &mut buf.spare_capacity_mut()[..8192]).unwrap().unwrap_err();
        assert!(matches!(e, BackstoreError::OutOfRange { .. }), "{e}");
        tmp.as_file().set_len(8192).unwrap();
        let e = store.read_uninit(4096, &mut buf.spare_capacity_mut()[..8192]).unwrap().unwrap_err();
        assert!(
            matches!(&e, BackstoreError::Io { offset: 8192, source, .. } if source.kind() == std::io::ErrorKind::UnexpectedEof),
            "{e}"
        );
        let direct = FileStore { flags: OpenFlags { direct: true, ..OpenFlags::default() }, ..store };
        assert!(direct.read_uninit(0, &mut buf.spare_capacity_mut()[..512]).is_none());
    }

    #[test]
    fn reads_back_writes_and_reports_size() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.as_file().set_len(1 << 20).unwrap();
        let store = FileStore::open(tmp.path(), OpenFlags::default()).unwrap();
        assert_eq!(store.size(), 1 << 20);
        let data = vec![0x5au8; 4096];
        block_on(store.write_at(8192, &data, true)).unwrap();
        let mut back = vec![0u8; 4096];
        block_on(store.read_at(8192, &mut back)).unwrap();
        assert_eq!(back, data);
        let on_disk = std::fs::read(tmp.path()).unwrap();
        assert_eq!(&on_disk[8192..12288], &data[..]);
    }

    #[test]
    fn allocation_follows_holes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.img");
        std::fs::File::create(&path).unwrap().set_len(4 << 20).unwrap();
        let store = FileStore::open(&path, OpenFlags::default()).unwrap();
        let whole = 4u64 << 20;
        assert_eq!(store.allocation(0, whole).unwrap(), (false, whole));
        crate::test_util::block_on(store.write_at(1 << 20, &[1u8; 65536], false)).unwrap();
        let (mapped, n) = store.allocation(0, whole).unwrap();
        // Filesystems without SEEK_DATA report everything allocated; with it the first MiB is a hole.
        if !mapped {
            assert_eq!(n, 1 << 20);
            let (mapped, n) = store.allocation(1 << 20, whole - (1 << 20)).unwrap();
            assert!(mapped);
            assert!(n >= 65536);
            crate::test_util::block_on(store.unmap(1 << 20, 65536)).unwrap();
            assert_eq!(store.allocation(1 << 20, 65536).unwrap(), (false, 65536));
        }
        assert!(store.allocation(whole, 1).is_err());
    }

    #[test]
    fn unmap_reads_zero_and_size_reload_follows_file() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.as_file().set_len(1 << 20).unwrap();
        let store = FileStore::open(tmp.path(), OpenFlags::default()).unwrap();
        block_on(store.write_at(0, &vec![1u8; 65536], false)).unwrap();
        block_on(store.unmap(4096, 8192)).unwrap();
        let mut back = vec![9u8; 16384];
        block_on(store.read_at(0, &mut back)).unwrap();
        assert!(back[..4096].iter().all(|&b| b == 1));
        assert!(back[4096..12288].iter().all(|&b| b == 0));
        assert!(back[12288..].iter().all(|&b| b == 1));
        tmp.as_file().set_len(2 << 20).unwrap();
        assert_eq!(store.reload_size().unwrap(), 2 << 20);
    }

    #[test]
    fn direct_io_reads_and_writes_or_is_refused_clearly() {
        // tmpfs has no O_DIRECT; /var/tmp is normally on a disk filesystem.
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let path = dir.path().join("direct.img");
        std::fs::File::create(&path).unwrap().set_len(1 << 20).unwrap();
        if let Err(e) = check_direct_io(&path, 512) {
            let text = e.to_string();
            assert!(text.contains("O_DIRECT"), "{text}");
            eprintln!("SKIPPED direct I/O round trip: {text}");
            return;
        }
        let flags = OpenFlags { direct: true, ..OpenFlags::default() };
        let store = FileStore::open(&path, flags).unwrap();
        // An odd-sized, unaligned caller buffer goes through the bounce buffer.
        let data: Vec<u8> = (0..1536u32).map(|i| (i % 253) as u8).collect();
        block_on(store.write_at(512, &data[..1024], true)).unwrap();
        let mut back = vec![0u8; 1025];
        block_on(store.read_at(512, &mut back[1..])).unwrap();
        assert_eq!(&back[1..], &data[..1024]);
        assert_eq!(&std::fs::read(&path).unwrap()[512..1536], &data[..1024]);
    }

    #[test]
    fn direct_io_on_tmpfs_is_refused_by_name() {
        let dir = std::path::Path::new("/dev/shm");
        if !dir.is_dir() {
            eprintln!("SKIPPED: no /dev/shm tmpfs");
            return;
        }
        let tmp = tempfile::NamedTempFile::new_in(dir).unwrap();
        tmp.as_file().set_len(4096).unwrap();
        match check_direct_io(tmp.path(), 512) {
            Err(e) => assert!(e.to_string().contains("does not support O_DIRECT"), "{e}"),
            // Kernels since 6.6 give tmpfs O_DIRECT: then it must work.
            Ok(()) => {
                FileStore::open(tmp.path(), OpenFlags { direct: true, ..OpenFlags::default() }).map(|_| ()).unwrap()
            }
        }
    }

    #[test]
    fn beyond_end_is_refused() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.as_file().set_len(4096).unwrap();
        let store = FileStore::open(tmp.path(), OpenFlags::default()).unwrap();
        let mut buf = vec![0u8; 512];
        assert!(matches!(block_on(store.read_at(4096, &mut buf)), Err(BackstoreError::OutOfRange { .. })));
    }
}
