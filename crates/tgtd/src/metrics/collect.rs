//! What /metrics reports, read from the daemon at each scrape: every logical unit's counters
//! (`rtgt_scsi::stats`), sessions and connections per iSCSI target, and daemon-wide gauges.
//!
//! Labels are bounded by configuration, never by what an initiator sends: tid, the target's name
//! (set by the administrator), the LUN number and the backing store's kind. No initiator name, no
//! path, no CHAP user.

use crate::targets::TransportBinding;
use crate::Daemon;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use rtgt_scsi::stats::{sense_key_name, CommandKind, HistogramSnapshot, LunStatsSnapshot, LATENCY_BOUNDS_US};
use std::sync::Arc;

/// The sense keys the SCSI core can answer with; each gets a series per unit (zero until seen) so
/// `rate()` sees the first error.
const SENSE_KEYS: [u8; 10] = [0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0xa, 0xb, 0xe];

/// Renders the daemon's state for prometheus-client's encoder.
#[derive(Debug)]
pub struct DaemonCollector {
    pub daemon: Arc<Daemon>,
}

/// One unit, read once per scrape.
struct Unit {
    labels: Vec<(&'static str, String)>,
    stats: LunStatsSnapshot,
    capacity: u64,
}

impl DaemonCollector {
    fn units(&self) -> Vec<Unit> {
        let mut units = Vec::new();
        for entry in self.daemon.targets.all() {
            let transport = match entry.binding {
                TransportBinding::Iscsi(_) => "iscsi",
                TransportBinding::Vhost(_) => "vhost",
            };
            for (lun, unit) in entry.scsi.luns() {
                let store = unit.store().map_or("none", |s| s.kind().name());
                units.push(Unit {
                    labels: vec![
                        ("tid", entry.scsi.tid.to_string()),
                        ("target", entry.scsi.name.clone()),
                        ("transport", transport.to_string()),
                        ("lun", lun.to_string()),
                        ("backing_store", store.to_string()),
                    ],
                    stats: unit.stats().snapshot(),
                    capacity: unit.size_bytes(),
                });
            }
        }
        units
    }
}

/// Encode one family: a descriptor and one sample per unit.
fn family<'a, F>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    units: &'a [Unit],
    mut sample: F,
) -> std::fmt::Result
where
    F: FnMut(&'a Unit, &mut MetricEncoder) -> std::fmt::Result,
{
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for unit in units {
        sample(unit, &mut metric)?;
    }
    Ok(())
}

pub(super) fn counter(
    metric: &mut MetricEncoder,
    labels: &Vec<(&'static str, String)>,
    value: u64,
) -> std::fmt::Result {
    metric.encode_family(labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)
}

pub(super) fn gauge(metric: &mut MetricEncoder, labels: &Vec<(&'static str, String)>, value: u64) -> std::fmt::Result {
    metric.encode_family(labels)?.encode_gauge(&value)
}

fn histogram(
    metric: &mut MetricEncoder,
    labels: &Vec<(&'static str, String)>,
    h: &HistogramSnapshot,
) -> std::fmt::Result {
    // The encoder sums the buckets itself: it wants each bucket's own count, not the running total.
    let mut buckets = Vec::with_capacity(LATENCY_BOUNDS_US.len() + 1);
    let mut below = 0;
    for (&bound, &cumulative) in LATENCY_BOUNDS_US.iter().zip(h.cumulative.iter()) {
        buckets.push((bound as f64 / 1e6, cumulative - below));
        below = cumulative;
    }
    buckets.push((f64::INFINITY, h.count - below));
    metric.encode_family(labels)?.encode_histogram::<NoLabelSet>(h.sum.as_secs_f64(), h.count, &buckets, None)
}

/// The unit's labels plus one more.
fn with(labels: &[(&'static str, String)], key: &'static str, value: &str) -> Vec<(&'static str, String)> {
    let mut all = labels.to_vec();
    all.push((key, value.to_string()));
    all
}

impl Collector for DaemonCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let units = self.units();
        use MetricType::{Counter, Gauge, Histogram};
        family(&mut encoder, "rtgt_lun_commands", "SCSI commands completed, by kind.", Counter, &units, |u, m| {
            for kind in CommandKind::ALL {
                counter(m, &with(&u.labels, "kind", kind.name()), u.stats.commands(kind))?;
            }
            Ok(())
        })?;
        family(
            &mut encoder,
            "rtgt_lun_read_bytes",
            "Bytes read by commands that completed GOOD.",
            Counter,
            &units,
            |u, m| counter(m, &u.labels, u.stats.bytes_read),
        )?;
        family(
            &mut encoder,
            "rtgt_lun_written_bytes",
            "Bytes written by commands that completed GOOD.",
            Counter,
            &units,
            |u, m| counter(m, &u.labels, u.stats.bytes_written),
        )?;
        family(
            &mut encoder,
            "rtgt_lun_errors",
            "Commands ended with CHECK CONDITION, by sense key.",
            Counter,
            &units,
            |u, m| {
                for key in SENSE_KEYS {
                    counter(m, &with(&u.labels, "sense_key", sense_key_name(key)), u.stats.errors[usize::from(key)])?;
                }
                Ok(())
            },
        )?;
        family(
            &mut encoder,
            "rtgt_lun_reservation_conflicts",
            "Commands ended with RESERVATION CONFLICT.",
            Counter,
            &units,
            |u, m| counter(m, &u.labels, u.stats.reservation_conflicts),
        )?;
        family(
            &mut encoder,
            "rtgt_lun_commands_in_flight",
            "Commands arrived and not yet completed.",
            Gauge,
            &units,
            |u, m| gauge(m, &u.labels, u.stats.in_flight),
        )?;
        family(&mut encoder, "rtgt_lun_capacity_bytes", "The unit's capacity.", Gauge, &units, |u, m| {
            gauge(m, &u.labels, u.capacity)
        })?;
        family(
            &mut encoder,
            "rtgt_lun_latency_seconds",
            "Time from a command's arrival at the unit to its status, reads and writes.",
            Histogram,
            &units,
            |u, m| {
                histogram(m, &with(&u.labels, "direction", "read"), &u.stats.read_latency)?;
                histogram(m, &with(&u.labels, "direction", "write"), &u.stats.write_latency)
            },
        )?;
        super::targets::encode(&self.daemon, &mut encoder)?;
        #[cfg(feature = "rbd")]
        super::rbd::encode(&self.daemon, &mut encoder)?;
        self.encode_daemon(&mut encoder)
    }
}

impl DaemonCollector {
    fn encode_daemon(&self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        let registry = &self.daemon.registry;
        let plain = |encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64| -> std::fmt::Result {
            encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)
        };
        plain(encoder, "rtgt_sessions", "iSCSI sessions logged in, all targets.", u64::from(registry.session_count()))?;
        plain(
            encoder,
            "rtgt_max_sessions",
            "The session limit (--iscsi max_sessions).",
            u64::from(registry.max_sessions()),
        )?;
        plain(
            encoder,
            "rtgt_write_budget_bytes",
            "Data-Out the daemon may hold (--iscsi write_budget).",
            registry.write_budget(),
        )?;
        plain(encoder, "rtgt_write_budget_in_use_bytes", "Data-Out held now.", registry.write_data_held())?;
        let (connection_waits, daemon_waits) = registry.write_budget_waits();
        let mut metric = encoder.encode_descriptor(
            "rtgt_write_budget_waits",
            "Writes whose R2Ts waited for room, by the budget that was full (a connection's or the daemon's).",
            None,
            MetricType::Counter,
        )?;
        counter(&mut metric, &vec![("budget", "connection".to_string())], connection_waits)?;
        counter(&mut metric, &vec![("budget", "daemon".to_string())], daemon_waits)?;
        plain(
            encoder,
            "rtgt_read_budget_bytes",
            "Read data of large READs the daemon may hold until it is sent (--iscsi read_budget).",
            registry.read_budget(),
        )?;
        plain(encoder, "rtgt_read_budget_in_use_bytes", "Read data held now.", registry.read_data_held())?;
        let (connection_waits, daemon_waits) = registry.read_budget_waits();
        let mut metric = encoder.encode_descriptor(
            "rtgt_read_budget_waits",
            "READs that waited for room before running, by the budget that was full (a connection's or the daemon's).",
            None,
            MetricType::Counter,
        )?;
        counter(&mut metric, &vec![("budget", "connection".to_string())], connection_waits)?;
        counter(&mut metric, &vec![("budget", "daemon".to_string())], daemon_waits)?;
        let (done, refused) = self.daemon.counters.management_requests();
        let mut metric = encoder.encode_descriptor(
            "rtgt_management_requests",
            "Management (tgtadm) requests answered, done or refused.",
            None,
            MetricType::Counter,
        )?;
        counter(&mut metric, &vec![("result", "done".to_string())], done)?;
        counter(&mut metric, &vec![("result", "refused".to_string())], refused)?;
        let rbd = if cfg!(feature = "rbd") { "yes" } else { "no" };
        let labels = [("version", env!("CARGO_PKG_VERSION")), ("rbd", rbd)];
        encoder.encode_descriptor("rtgt_build", "The tgtd build.", None, MetricType::Info)?.encode_info(&labels)
    }
}

/// The Prometheus text exposition (format 0.0.4) of the daemon now.
pub fn render(registry: &prometheus_client::registry::Registry) -> String {
    let mut text = String::new();
    if let Err(err) = prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
        tracing::error!(%err, "cannot encode /metrics");
    }
    text
}
