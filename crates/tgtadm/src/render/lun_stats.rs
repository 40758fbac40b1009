//! `--mode logicalunit --op stats`: one block per LUN (rtgt's own layout; tgt has no such command).

use rtgt_mgmt::{LatencyView, LunStatsView};
use std::fmt::Write;

pub fn lun_stats(v: &LunStatsView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Target {} LUN {} ({}):", v.tid, v.lun, v.backing_store);
    let lines = [
        ("Read commands", v.read_commands),
        ("Write commands", v.write_commands),
        ("Unmap commands", v.unmap_commands),
        ("Other commands", v.other_commands),
        ("Bytes read", v.bytes_read),
        ("Bytes written", v.bytes_written),
        ("Commands in flight", v.in_flight),
        ("Reservation conflicts", v.reservation_conflicts),
    ];
    for (name, value) in lines {
        let _ = writeln!(out, "    {name}: {value}");
    }
    let errors: Vec<String> = v.errors.iter().map(|(key, n)| format!("{key}={n}")).collect();
    let _ = writeln!(out, "    Errors: {}", if errors.is_empty() { "none".to_string() } else { errors.join(" ") });
    let _ = writeln!(out, "    Read latency: {}", latency(&v.read_latency));
    let _ = writeln!(out, "    Write latency: {}", latency(&v.write_latency));
    out
}

/// Count and mean, and the bound under which 99% of the commands completed.
fn latency(l: &LatencyView) -> String {
    if l.count == 0 {
        return "no commands".to_string();
    }
    let mean = l.sum_us / l.count;
    // The smallest bucket holding 99% of the commands; past the last bound, say so.
    let wanted = l.count - l.count / 100;
    let p99 = l.buckets.iter().find(|(_, n)| *n >= wanted).map(|(bound, _)| format!("<= {bound} us"));
    format!("{} commands, mean {mean} us, p99 {}", l.count, p99.unwrap_or_else(|| "above the last bucket".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let latency = LatencyView { count: 100, sum_us: 5000, buckets: vec![(50, 98), (100, 99), (250, 100)] };
        let v = LunStatsView {
            tid: 1,
            lun: 2,
            backing_store: "rdwr".into(),
            read_commands: 3,
            write_commands: 100,
            unmap_commands: 0,
            other_commands: 4,
            bytes_read: 1536,
            bytes_written: 409600,
            in_flight: 0,
            reservation_conflicts: 0,
            errors: vec![("illegal_request".into(), 1)],
            read_latency: LatencyView { count: 0, sum_us: 0, buckets: vec![] },
            write_latency: latency,
        };
        let text = lun_stats(&v);
        assert!(text.starts_with("Target 1 LUN 2 (rdwr):\n    Read commands: 3\n    Write commands: 100\n"), "{text}");
        assert!(text.contains("    Errors: illegal_request=1\n"), "{text}");
        assert!(text.contains("    Read latency: no commands\n"), "{text}");
        assert!(text.contains("    Write latency: 100 commands, mean 50 us, p99 <= 100 us\n"), "{text}");
    }
}
