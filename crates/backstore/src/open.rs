//! Opening a store from what an administrator typed: `--bstype`, `--backing-store`, `--bsopts`,
//! `--bsoflags`.

use crate::{
    Backstore, BackstoreError, FaultRule, FaultStore, FileStore, MemoryStore, NullStore, OpenFlags, UringStore,
};
use std::path::PathBuf;

/// The engines, named as tgt names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackstoreKind {
    Rdwr,
    /// A file or block device through io_uring.
    Aio,
    Memory,
    Null,
    /// A Ceph RBD image; opening one needs the `rbd` cargo feature.
    Rbd,
}

impl BackstoreKind {
    pub fn name(self) -> &'static str {
        match self {
            BackstoreKind::Rdwr => "rdwr",
            BackstoreKind::Aio => "aio",
            BackstoreKind::Memory => "memory",
            BackstoreKind::Null => "null",
            BackstoreKind::Rbd => "rbd",
        }
    }

    /// The engines `show system` lists: every one `--bstype` takes in this build (aio is rdwr on
    /// io_uring; an administrator reading the list must find it there).
    pub fn all() -> &'static [BackstoreKind] {
        #[cfg(feature = "rbd")]
        return &[
            BackstoreKind::Rdwr,
            BackstoreKind::Aio,
            BackstoreKind::Memory,
            BackstoreKind::Null,
            BackstoreKind::Rbd,
        ];
        #[cfg(not(feature = "rbd"))]
        &[BackstoreKind::Rdwr, BackstoreKind::Aio, BackstoreKind::Memory, BackstoreKind::Null]
    }
}

impl std::str::FromStr for BackstoreKind {
    type Err = BackstoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rdwr" | "file" => Ok(BackstoreKind::Rdwr),
            "aio" | "io_uring" => Ok(BackstoreKind::Aio),
            "memory" | "mem" => Ok(BackstoreKind::Memory),
            "null" => Ok(BackstoreKind::Null),
            "rbd" => Ok(BackstoreKind::Rbd),
            other => Err(BackstoreError::BadOption(format!("unknown backing store type '{other}'"))),
        }
    }
}

/// Everything needed to open a store, typed: the daemon builds it from a LUN's checked
/// `--bstype`/`--bsopts`/`--bsoflags`, so nothing here is a string to split again (but an RBD
/// image's connection options, which are librbd's grammar).
#[derive(Debug)]
pub struct BackstoreSpec {
    pub kind: BackstoreKind,
    /// The file or device (rdwr, aio), the image (rbd); ignored by memory and null.
    pub path: Option<PathBuf>,
    /// The capacity of a store without a file: required by memory, optional for null.
    pub size: Option<u64>,
    /// How a file is opened (`--bsoflags`), and whether it may be written at all.
    pub flags: OpenFlags,
    /// `fault=` rules: when any, the store is wrapped in a `FaultStore` (a testing aid).
    pub faults: Vec<FaultRule>,
    /// An RBD image's connection options (`conf=...;id=...`; see `rbd::options`).
    pub rbd_options: String,
    /// The LUN's logical block size: `fault=` rules count in it, and O_DIRECT needs I/O in units
    /// the file accepts.
    pub block_size: u32,
}

impl BackstoreSpec {
    /// A store of `kind` on `path` with every option at its default (512-byte blocks).
    pub fn new(kind: BackstoreKind, path: Option<PathBuf>) -> Self {
        BackstoreSpec {
            kind,
            path,
            size: None,
            flags: OpenFlags::default(),
            faults: Vec::new(),
            rbd_options: String::new(),
            block_size: 512,
        }
    }
}

/// Default size of a null store with no `size=` option: large enough for any test, costs nothing.
const NULL_DEFAULT_SIZE: u64 = 1 << 40;

/// Open the store `spec` describes, behind its fault rules if it has any.
pub fn open(spec: BackstoreSpec) -> Result<Backstore, BackstoreError> {
    let store = open_engine(&spec)?;
    if spec.faults.is_empty() {
        return Ok(store);
    }
    Ok(Backstore::Faulty(Box::new(FaultStore::new(store, spec.faults, spec.block_size))))
}

fn open_engine(spec: &BackstoreSpec) -> Result<Backstore, BackstoreError> {
    let flags = spec.flags;
    if flags.direct && spec.kind != BackstoreKind::Rbd {
        if let Some(path) = spec.path.as_deref() {
            crate::file::check_direct_io(path, spec.block_size)?;
        }
    }
    match spec.kind {
        BackstoreKind::Rdwr => {
            let path = spec
                .path
                .as_deref()
                .ok_or_else(|| BackstoreError::BadOption("the rdwr store needs a backing-store path".into()))?;
            Ok(Backstore::File(FileStore::open(path, flags)?))
        }
        BackstoreKind::Aio => {
            let path = spec
                .path
                .as_deref()
                .ok_or_else(|| BackstoreError::BadOption("the aio store needs a backing-store path".into()))?;
            // A kernel (or seccomp policy) without io_uring still gets the file, through pread/pwrite.
            match UringStore::open(path, flags) {
                Ok(u) => Ok(Backstore::Uring(u)),
                Err(_) => Ok(Backstore::File(FileStore::open(path, flags)?)),
            }
        }
        BackstoreKind::Memory => {
            let size = spec.size.ok_or_else(|| BackstoreError::BadOption("the memory store needs size=".into()))?;
            Ok(Backstore::Memory(MemoryStore::new(size)))
        }
        BackstoreKind::Null => Ok(Backstore::Null(NullStore::new(spec.size.unwrap_or(NULL_DEFAULT_SIZE)))),
        BackstoreKind::Rbd => open_rbd(spec),
    }
}

#[cfg(feature = "rbd")]
fn open_rbd(spec: &BackstoreSpec) -> Result<Backstore, BackstoreError> {
    let path =
        spec.path.as_deref().and_then(|p| p.to_str()).ok_or_else(|| {
            BackstoreError::BadOption("the rbd store needs --backing-store [pool/]image[@snap]".into())
        })?;
    if spec.flags.sync || spec.flags.direct {
        return Err(BackstoreError::BadOption("the rbd store takes no bsoflags".into()));
    }
    if spec.size.is_some() {
        return Err(BackstoreError::BadOption("the rbd store takes no size= (the image has its own)".into()));
    }
    Ok(Backstore::Rbd(crate::RbdStore::open(path, &spec.rbd_options, spec.flags.readonly)?))
}

#[cfg(not(feature = "rbd"))]
fn open_rbd(_spec: &BackstoreSpec) -> Result<Backstore, BackstoreError> {
    Err(BackstoreError::BadOption("this build has no rbd support (cargo feature `rbd`)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BlockStore;

    fn memory(size: Option<u64>) -> BackstoreSpec {
        BackstoreSpec { size, ..BackstoreSpec::new(BackstoreKind::Memory, None) }
    }

    #[test]
    fn rbd_is_named_and_needs_the_feature_or_a_path() {
        let spec = BackstoreSpec::new("rbd".parse().unwrap(), None);
        assert_eq!(spec.kind.name(), "rbd");
        let err = open(spec).unwrap_err().to_string();
        if cfg!(feature = "rbd") {
            assert!(err.contains("[pool/]image"), "{err}");
        } else {
            assert!(err.contains("no rbd support"), "{err}");
            assert!(!BackstoreKind::all().contains(&BackstoreKind::Rbd));
        }
    }

    #[test]
    fn memory_needs_a_size_and_null_has_one() {
        assert!(open(memory(None)).unwrap_err().to_string().contains("needs size="));
        assert_eq!(open(memory(Some(1 << 20))).unwrap().size(), 1 << 20);
        assert_eq!(open(BackstoreSpec::new(BackstoreKind::Null, None)).unwrap().size(), NULL_DEFAULT_SIZE);
    }

    #[test]
    fn fault_rules_wrap_any_engine() {
        let rules = ["read:eio:lba=2", "write:delay=1ms"].map(|r| FaultRule::parse(r).unwrap());
        let store = open(BackstoreSpec { faults: rules.into(), ..memory(Some(1 << 20)) }).unwrap();
        assert!(store.has_faults());
        assert_eq!((store.kind(), store.size()), (BackstoreKind::Memory, 1 << 20));
        let mut buf = [0u8; 512];
        assert!(crate::test_util::block_on(store.read_at(512, &mut buf)).is_ok());
        assert!(crate::test_util::block_on(store.read_at(1024, &mut buf)).is_err());
        assert!(!open(memory(Some(1 << 20))).unwrap().has_faults());
    }

    #[test]
    fn write_cache_is_volatile_unless_opened_sync() {
        let tmp = tempfile::NamedTempFile::new_in("/var/tmp").unwrap();
        tmp.as_file().set_len(1 << 20).unwrap();
        let spec = |sync: bool, direct: bool, fault: Option<&str>| BackstoreSpec {
            flags: OpenFlags { sync, direct, readonly: false },
            faults: fault.into_iter().map(|r| FaultRule::parse(r).unwrap()).collect(),
            ..BackstoreSpec::new(BackstoreKind::Rdwr, Some(tmp.path().to_path_buf()))
        };
        assert!(open(spec(false, false, None)).unwrap().volatile_cache());
        let sync = open(spec(true, false, None)).unwrap();
        assert!(!sync.volatile_cache());
        assert_eq!(sync.open_flags().map(|f| f.sync), Some(true));
        // Behind faults the engine's truth still shows.
        assert!(!open(spec(true, false, Some("read:eio"))).unwrap().volatile_cache());
        if let Ok(direct) = open(spec(false, true, None)) {
            assert!(direct.volatile_cache(), "O_DIRECT alone does not flush the device's cache");
        }
    }
}
