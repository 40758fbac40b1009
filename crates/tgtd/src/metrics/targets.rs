//! The per-target part of /metrics: sessions and connections of each iSCSI target, what its logins
//! and connections counted (`rtgt_iscsi::counters`), and whether each vhost target has a guest.
//!
//! The iSCSI counters of what belongs to no target (discovery sessions, logins naming an unknown
//! target) are in the same families without the tid and target labels, so a sum over a family is
//! the daemon's total and no initiator-chosen name ever becomes a label.

use super::collect::{counter, gauge};
use crate::Daemon;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder};
use prometheus_client::metrics::MetricType;
use rtgt_iscsi::counters::{IscsiCountersSnapshot, LoginRefusal, REJECT_REASONS};

type Labels = Vec<(&'static str, String)>;

/// One row per iSCSI target, then the untargeted one (no labels).
struct Row {
    labels: Labels,
    /// Sessions and connections; None for the untargeted row (discovery sessions are counted by
    /// rtgt_sessions).
    sessions: Option<(u64, u64)>,
    counters: IscsiCountersSnapshot,
}

fn rows(daemon: &Daemon) -> Vec<Row> {
    let mut rows: Vec<Row> = daemon
        .targets
        .iscsi_targets()
        .into_iter()
        .map(|t| {
            let sessions = t.sessions();
            let connections: usize = sessions.iter().map(|s| s.connections.len()).sum();
            Row {
                labels: vec![("tid", t.tid().to_string()), ("target", t.name().to_string())],
                sessions: Some((sessions.len() as u64, connections as u64)),
                counters: t.counters().snapshot(),
            }
        })
        .collect();
    rows.push(Row { labels: Vec::new(), sessions: None, counters: daemon.registry.untargeted_counters().snapshot() });
    rows
}

fn with(labels: &Labels, key: &'static str, value: &str) -> Labels {
    let mut all = labels.clone();
    all.push((key, value.to_string()));
    all
}

fn family<F>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    rows: &[Row],
    mut sample: F,
) -> std::fmt::Result
where
    F: FnMut(&Row, &mut MetricEncoder) -> std::fmt::Result,
{
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for row in rows {
        sample(row, &mut metric)?;
    }
    Ok(())
}

pub(super) fn encode(daemon: &Daemon, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    use MetricType::{Counter, Gauge};
    let rows = rows(daemon);
    let (targets, _) = rows.split_at(rows.len() - 1);
    family(encoder, "rtgt_target_sessions", "iSCSI sessions logged in to the target.", Gauge, targets, |r, m| {
        gauge(m, &r.labels, r.sessions.map_or(0, |s| s.0))
    })?;
    family(
        encoder,
        "rtgt_target_connections",
        "iSCSI connections of the target's sessions.",
        Gauge,
        targets,
        |r, m| gauge(m, &r.labels, r.sessions.map_or(0, |s| s.1)),
    )?;
    family(
        encoder,
        "rtgt_iscsi_logins_accepted",
        "Logins accepted (a new session or a connection joining one); without tid/target: discovery sessions.",
        Counter,
        &rows,
        |r, m| counter(m, &r.labels, r.counters.logins_accepted),
    )?;
    family(
        encoder,
        "rtgt_iscsi_logins_refused",
        "Logins refused, by reason; without tid/target: discovery sessions and logins naming no known target.",
        Counter,
        &rows,
        |r, m| {
            for why in LoginRefusal::ALL {
                counter(m, &with(&r.labels, "reason", why.name()), r.counters.refused(why))?;
            }
            Ok(())
        },
    )?;
    family(
        encoder,
        "rtgt_iscsi_chap_failures",
        "Logins whose CHAP exchange failed (wrong response, unknown user, broken CHAP keys).",
        Counter,
        &rows,
        |r, m| counter(m, &r.labels, r.counters.chap_failures),
    )?;
    family(
        encoder,
        "rtgt_iscsi_digest_errors",
        "PDUs received with a wrong CRC32C header or data digest.",
        Counter,
        &rows,
        |r, m| {
            counter(m, &with(&r.labels, "digest", "header"), r.counters.header_digest_errors)?;
            counter(m, &with(&r.labels, "digest", "data"), r.counters.data_digest_errors)
        },
    )?;
    family(encoder, "rtgt_iscsi_pdus_rejected", "Reject PDUs sent, by reason.", Counter, &rows, |r, m| {
        for (i, (_, reason)) in REJECT_REASONS.iter().enumerate() {
            counter(m, &with(&r.labels, "reason", reason), r.counters.rejects[i])?;
        }
        Ok(())
    })?;
    family(
        encoder,
        "rtgt_iscsi_send_timeouts",
        "Connections closed because their socket accepted no reply bytes for the send timeout.",
        Counter,
        &rows,
        |r, m| counter(m, &r.labels, r.counters.send_timeouts),
    )?;
    encode_vhost(daemon, encoder)
}

fn encode_vhost(daemon: &Daemon, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
    let devices: Vec<(Labels, bool, u64)> = daemon
        .targets
        .vhost_targets()
        .into_iter()
        .map(|d| {
            let labels = vec![("tid", d.target().tid.to_string()), ("target", d.target().name.clone())];
            (labels, d.connected(), d.connections())
        })
        .collect();
    let mut metric = encoder.encode_descriptor(
        "rtgt_vhost_guest_connected",
        "1 while a VMM is attached to the vhost target and has sent the guest's memory.",
        None,
        MetricType::Gauge,
    )?;
    for (labels, connected, _) in &devices {
        gauge(&mut metric, labels, u64::from(*connected))?;
    }
    let mut metric = encoder.encode_descriptor(
        "rtgt_vhost_guest_connections",
        "Guests that connected to the vhost target since it started.",
        None,
        MetricType::Counter,
    )?;
    for (labels, _, connections) in &devices {
        counter(&mut metric, labels, *connections)?;
    }
    Ok(())
}
