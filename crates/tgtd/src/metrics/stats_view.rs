//! `tgtadm --mode logicalunit --op stats`: the counters /metrics exports, as a management reply.

use rtgt_mgmt::{ErrorCode, LatencyView, LunStatsView, MgmtError, Reply};
use rtgt_scsi::stats::{sense_key_name, CommandKind, HistogramSnapshot, LATENCY_BOUNDS_US};
use rtgt_scsi::{LogicalUnit, Target};

/// The counters of LUN `lun` of `target`, or of every LUN it has.
pub fn reply(target: &Target, lun: Option<u64>) -> Result<Reply, MgmtError> {
    let views = match lun {
        Some(lun) => {
            let unit = target.lun(lun).ok_or_else(|| MgmtError::new(ErrorCode::NoLun))?;
            vec![view(target.tid, lun, &unit)]
        }
        None => target.luns().iter().map(|(lun, unit)| view(target.tid, *lun, unit)).collect(),
    };
    Ok(Reply::LunStats(views))
}

fn view(tid: u32, lun: u64, unit: &LogicalUnit) -> LunStatsView {
    let s = unit.stats().snapshot();
    let errors = (0u8..16)
        .filter(|&key| s.errors[usize::from(key)] > 0)
        .map(|key| (sense_key_name(key).to_string(), s.errors[usize::from(key)]))
        .collect();
    LunStatsView {
        tid,
        lun,
        backing_store: unit.store().map_or("none", |st| st.kind().name()).to_string(),
        read_commands: s.commands(CommandKind::Read),
        write_commands: s.commands(CommandKind::Write),
        unmap_commands: s.commands(CommandKind::Unmap),
        other_commands: s.commands(CommandKind::Other),
        bytes_read: s.bytes_read,
        bytes_written: s.bytes_written,
        in_flight: s.in_flight,
        reservation_conflicts: s.reservation_conflicts,
        errors,
        read_latency: latency(&s.read_latency),
        write_latency: latency(&s.write_latency),
    }
}

fn latency(h: &HistogramSnapshot) -> LatencyView {
    LatencyView {
        count: h.count,
        sum_us: u64::try_from(h.sum.as_micros()).unwrap_or(u64::MAX),
        buckets: LATENCY_BOUNDS_US.iter().copied().zip(h.cumulative.iter().copied()).collect(),
    }
}
