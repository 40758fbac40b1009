//! What RECEIVE COPY RESULTS reports about a finished EXTENDED COPY: kept by the disk's state
//! (`sbc::state`), produced by `xcopy`. A leaf, so the state does not reach into the handler.

/// What RECEIVE COPY RESULTS reports about a finished copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CopyOutcome {
    pub ok: bool,
    pub segments_processed: u16,
    /// Bytes written to destinations.
    pub transferred: u64,
    /// The sense of a failed copy, for FAILED SEGMENT DETAILS.
    pub sense_key: u8,
    pub asc: (u8, u8),
}
