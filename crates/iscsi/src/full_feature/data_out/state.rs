//! The Data-Out state of one connection, owned by `data_out`: the writes still receiving their
//! data (with their R2Ts) and the queue of writes waiting for write budget before their first R2T.
//! Kept apart from the handlers so the connection can hold it without depending on them.

use crate::full_feature::cdb::Cdb;
use crate::write_budget::Reservation;
use bytes::BytesMut;
use std::collections::{HashMap, VecDeque};
use tokio::time::Instant;

/// The writes of one connection that still wait on Data-Out or on budget for their R2Ts.
#[derive(Debug, Default)]
pub(crate) struct DataOutState {
    /// Writes still receiving Data-Out, by ITT.
    pub pending: HashMap<u32, PendingWrite>,
    /// The writes waiting, oldest first, for room in the write budget before their first R2T
    /// (ITT and task id).
    pub awaiting_r2t: VecDeque<(u32, u64)>,
}

#[derive(Debug)]
pub(crate) struct R2tState {
    pub ttt: u32,
    pub offset: u32,
    pub len: u32,
    pub received: u32,
    pub data_sn: u32,
}

/// A write command still receiving its data.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    pub id: u64,
    pub lun_raw: [u8; 8],
    pub lun: u64,
    pub cdb: Cdb,
    pub edtl: u32,
    pub buf: BytesMut,
    pub unsolicited_left: u32,
    pub unsol_data_sn: u32,
    pub r2ts: VecDeque<R2tState>,
    pub next_r2t_offset: u32,
    pub r2t_sn: u32,
    /// Queued for admission to R2Ts.
    pub queued: bool,
    /// The budget this write's data holds: what may arrive unasked, the whole transfer once admitted.
    pub budget: Reservation,
    /// When the write last heard from the initiator, or was admitted or started expecting
    /// unsolicited data: the Data-Out timeout counts from here. None while it waits for budget,
    /// when the next move is the target's.
    pub last_heard: Option<Instant>,
}
