//! `tgtd --metrics`: after a known load through a real iSCSI session, /metrics reports exactly those
//! commands and bytes, scraped directly and through the real Prometheus server's query API.

use crate::common::initiator::Connection;
use crate::common::{self, free_port, Tgtd};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const IQN: &str = "iqn.2026-12.org.rtgt.test:metrics";
const WRITES: u32 = 1000;
const READS: u32 = 200;
const IO: usize = 4096;

/// `GET path` over HTTP/1.0 to 127.0.0.1:port; the status line and the body.
pub fn http_get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

/// The value of the sample of `name` whose labels include every one of `labels` (`key="value"`).
pub fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        (metric == name && labels.iter().all(|l| rest.contains(l))).then(|| value.parse().ok())?
    })
}

/// A tgtd with --metrics and a 16 MiB disk at LUN 1 of tid 1, loaded with `WRITES` 4 KiB writes,
/// `READS` 4 KiB reads and one read past the end; returns it, its metrics port and the session
/// (kept logged in, so the session gauges are known).
fn loaded_tgtd() -> (Tgtd, u16, Connection) {
    let metrics = free_port();
    let tgtd = Tgtd::start_with(&["--metrics", &format!("127.0.0.1:{metrics}")]);
    let image = common::sparse_image(tgtd.dir.path(), "disk.img", 16 << 20);
    tgtd.add_disk_target(1, IQN, &image);
    let mut conn = tgtd.session(IQN, 1, &[1]);
    let block = vec![0x5a; IO];
    for i in 0..WRITES {
        let lba = (i % 4000) * 8;
        assert_eq!(conn.write10(1, lba, &block, 512).unwrap().status, 0);
    }
    for i in 0..READS {
        assert_eq!(conn.read10(1, i * 8, 8, 512).unwrap().status, 0);
    }
    // 16 MiB is 32768 blocks: this one is past the end, ILLEGAL REQUEST.
    assert_eq!(conn.read10(1, 40_000, 8, 512).unwrap().status, 2);
    (tgtd, metrics, conn)
}

#[test]
fn metrics_count_a_known_load_exactly() {
    let (tgtd, port, _session) = loaded_tgtd();
    let (status, text) = http_get(port, "/metrics");
    assert!(status.contains("200"), "{status}\n{}", tgtd.log());
    let lun = ["tid=\"1\"", "lun=\"1\"", "backing_store=\"rdwr\""];
    let with = |extra: &'static str| lun.iter().copied().chain(std::iter::once(extra)).collect::<Vec<_>>();
    assert_eq!(sample(&text, "rtgt_lun_commands_total", &with("kind=\"write\"")), Some(f64::from(WRITES)), "{text}");
    // The read past the end is a read that failed: counted, with no bytes.
    assert_eq!(sample(&text, "rtgt_lun_commands_total", &with("kind=\"read\"")), Some(f64::from(READS + 1)));
    assert_eq!(sample(&text, "rtgt_lun_written_bytes_total", &lun), Some(f64::from(WRITES) * IO as f64));
    assert_eq!(sample(&text, "rtgt_lun_read_bytes_total", &lun), Some(f64::from(READS) * IO as f64));
    assert_eq!(sample(&text, "rtgt_lun_errors_total", &with("sense_key=\"illegal_request\"")), Some(1.0));
    assert_eq!(sample(&text, "rtgt_lun_capacity_bytes", &lun), Some(f64::from(16u32 << 20)));
    assert_eq!(sample(&text, "rtgt_lun_commands_in_flight", &lun), Some(0.0));
    let write_latency = with("direction=\"write\"");
    assert_eq!(sample(&text, "rtgt_lun_latency_seconds_count", &write_latency), Some(f64::from(WRITES)));
    assert_eq!(
        sample(&text, "rtgt_lun_latency_seconds_bucket", &[lun[0], lun[1], "direction=\"write\"", "le=\"+Inf\""]),
        Some(f64::from(WRITES))
    );
    assert_eq!(sample(&text, "rtgt_target_sessions", &["tid=\"1\""]), Some(1.0));
    assert_eq!(sample(&text, "rtgt_sessions", &[]), Some(1.0));
    // target new, logicalunit new, target bind.
    assert_eq!(sample(&text, "rtgt_management_requests_total", &["result=\"done\""]), Some(3.0));
    assert_eq!(sample(&text, "rtgt_management_requests_total", &["result=\"refused\""]), Some(0.0));
    // Only /metrics, only GET.
    assert!(http_get(port, "/").0.contains("404"));

    // tgtadm prints the same counters, for people without Prometheus.
    let text = tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "stats", "--tid", "1", "--lun", "1"]);
    for line in [
        "Target 1 LUN 1 (rdwr):".to_string(),
        format!("    Write commands: {WRITES}"),
        format!("    Read commands: {}", READS + 1),
        format!("    Bytes written: {}", WRITES as usize * IO),
        format!("    Bytes read: {}", READS as usize * IO),
    ] {
        assert!(text.lines().any(|l| l == line), "no '{line}' in:\n{text}");
    }
    assert!(text.contains("illegal_request=1"), "{text}");
    let json = tgtd.tgtadm_ok(&["--mode", "logicalunit", "--op", "stats", "--tid", "1", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let luns = json["lun_stats"].as_array().unwrap();
    // The controller at LUN 0 and the disk.
    assert_eq!(luns.iter().map(|l| l["lun"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1], "{json}");
    assert_eq!(luns[1]["write_commands"], u64::from(WRITES));
    assert_eq!(luns[1]["write_latency"]["count"], u64::from(WRITES));
    assert_eq!(luns[1]["bytes_written"], WRITES as usize * IO);
    let missing = tgtd.tgtadm(&["--mode", "logicalunit", "--op", "stats", "--tid", "1", "--lun", "9"]);
    assert!(!missing.status.success());
    let text = http_get(port, "/metrics").1;
    assert_eq!(sample(&text, "rtgt_management_requests_total", &["result=\"refused\""]), Some(1.0), "{text}");
}

/// The Prometheus server, killed by PID when dropped.
struct Prometheus {
    child: Child,
    port: u16,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(dir: &std::path::Path, target_port: u16) -> Prometheus {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: rtgt\n    static_configs:\n      - targets: ['127.0.0.1:{target_port}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    Prometheus { child, port }
}

/// `/api/v1/query?query=...` percent-encoded: Ok(the result's series) when Prometheus took the
/// query, Err(its answer) when it refused it, or None while it is not answering yet.
fn promql_series(prometheus: &Prometheus, query: &str) -> Option<Result<Vec<serde_json::Value>, String>> {
    let encoded: String = query
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'_' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    // Not listening yet while Prometheus starts.
    TcpStream::connect(("127.0.0.1", prometheus.port)).ok()?;
    let (status, body) = http_get(prometheus.port, &format!("/api/v1/query?query={encoded}"));
    let json: serde_json::Value = serde_json::from_str(&body).ok()?;
    if !status.contains("200") || json["status"] != "success" {
        return Some(Err(format!("{status}: {body}")));
    }
    Some(Ok(json["data"]["result"].as_array()?.clone()))
}

/// The first result's value, if any.
fn promql(prometheus: &Prometheus, query: &str) -> Option<f64> {
    let series = promql_series(prometheus, query)?.ok()?;
    series.first()?["value"][1].as_str()?.parse().ok()
}

/// Every PromQL expression of the Grafana dashboard in dist/, with Grafana's rate interval made a
/// plain range.
fn dashboard_queries() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../dist/grafana/rtgt.json");
    let text = std::fs::read_to_string(path).expect("dist/grafana/rtgt.json");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("the dashboard has panels");
    let queries: Vec<String> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t["expr"].as_str().expect("every target has an expr").replace("$__rate_interval", "1m"))
        .collect();
    assert!(queries.len() >= panels.len(), "a panel without a query: {queries:?}");
    assert!(!queries.iter().any(|q| q.contains('$')), "a Grafana variable the test does not know: {queries:?}");
    queries
}

#[test]
fn prometheus_scrapes_the_known_load() {
    assert!(
        common::have("prometheus"),
        "prometheus is not installed: run scripts/install-deps (Debian package prometheus)"
    );
    let (tgtd, port, _session) = loaded_tgtd();
    let prometheus = start_prometheus(tgtd.dir.path(), port);
    let queries = [
        (r#"rtgt_lun_commands_total{tid="1",lun="1",kind="write"}"#, f64::from(WRITES)),
        (r#"rtgt_lun_written_bytes_total{tid="1",lun="1"}"#, f64::from(WRITES) * IO as f64),
        (r#"rtgt_lun_read_bytes_total{tid="1",lun="1"}"#, f64::from(READS) * IO as f64),
        (r#"rtgt_lun_latency_seconds_count{tid="1",lun="1",direction="write"}"#, f64::from(WRITES)),
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    for (query, expected) in queries {
        loop {
            let got = promql(&prometheus, query);
            if got == Some(expected) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{query}: {got:?}, expected {expected}\n{}",
                std::fs::read_to_string(tgtd.dir.path().join("prometheus.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    // The dashboard's queries: Prometheus takes each, and each answers with series; those of
    // the per-LUN panels with one for the loaded LUN (rates need two scrapes: wait for them).
    for query in dashboard_queries() {
        loop {
            let got = promql_series(&prometheus, &query);
            if let Some(Err(refused)) = &got {
                panic!("Prometheus refused the dashboard's query {query}: {refused}");
            }
            let series = got.and_then(Result::ok).unwrap_or_default();
            let loaded = |s: &serde_json::Value| s["metric"]["tid"] == "1" && s["metric"]["lun"] == "1";
            let wanted = if query.contains("rtgt_lun_") { series.iter().any(loaded) } else { !series.is_empty() };
            if wanted {
                break;
            }
            assert!(Instant::now() < deadline, "{query}: no series for the loaded LUN: {series:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// The systemd unit's environment file sets TGTD_METRICS: an address turns /metrics on, and the
/// file's default, empty, leaves it off without failing the start.
#[test]
fn tgtd_metrics_environment_variable() {
    for (value, served) in [("", false), ("127.0.0.1:PORT", true)] {
        let dir = tempfile::tempdir().unwrap();
        let (port, metrics) = (free_port(), free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_tgtd"))
            .args(["-f", "--iscsi", &format!("portal=127.0.0.1:{port}"), "--control-socket"])
            .arg(dir.path().join("control.sock"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env("TGTD_METRICS", value.replace("PORT", &metrics.to_string()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(child.try_wait().unwrap().is_none(), "tgtd exited with TGTD_METRICS={value:?}");
            assert!(Instant::now() < deadline, "tgtd did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The metrics listener is bound just after the portals: give it a moment either way.
        let settle = Instant::now() + Duration::from_secs(2);
        let mut up = TcpStream::connect(("127.0.0.1", metrics)).is_ok();
        while !up && Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(50));
            up = TcpStream::connect(("127.0.0.1", metrics)).is_ok();
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(up, served, "TGTD_METRICS={value:?}");
    }
}
