//! The error every backing-store operation returns: which operation failed, where, and why.

use std::io;

/// The operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Open,
    Read,
    Write,
    Flush,
    Unmap,
    Size,
}

#[derive(Debug, thiserror::Error)]
pub enum BackstoreError {
    #[error("{op:?} of {len} bytes at offset {offset} is beyond the end of the store")]
    OutOfRange { op: ErrorKind, offset: u64, len: u64 },
    #[error("{op:?} at offset {offset} failed: {source}")]
    Io {
        op: ErrorKind,
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// Only the first `done` bytes of the operation went through (a device that completed part of
    /// a request); the caller may retry the rest or report it, but must not treat it as success.
    #[error("{op:?} at offset {offset} stopped after {done} bytes")]
    Short { op: ErrorKind, offset: u64, done: u64 },
    /// COMPARE AND WRITE found different data; `offset` is that of the first differing byte,
    /// counted from the start of the compared range. Nothing was written.
    #[error("miscompare at byte {offset} of the compared range")]
    Miscompare { offset: u64 },
    #[error("bad backing-store option: {0}")]
    BadOption(String),
    #[error("cannot open {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl BackstoreError {
    pub fn out_of_range(op: ErrorKind, offset: u64, len: u64) -> Self {
        BackstoreError::OutOfRange { op, offset, len }
    }

    pub fn io(op: ErrorKind, offset: u64, source: io::Error) -> Self {
        BackstoreError::Io { op, offset, source }
    }

    /// True when the underlying device ran out of space (thin provisioning exhausted): ENOSPC, or
    /// EDQUOT for a quota (a file system's, or an RBD pool's).
    pub fn is_no_space(&self) -> bool {
        matches!(self, BackstoreError::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)))
    }
}
