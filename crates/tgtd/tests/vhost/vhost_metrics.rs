//! /metrics for a vhost target: whether a guest is connected, as a VMM attaches and goes away.

use crate::common::{free_port, Tgtd};
use crate::vhost_management::attach_vmm;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The value of the series that starts with `series` (name and labels), once /metrics shows
/// `want` or 10 s passed.
fn series_until(port: u16, series: &str, want: f64) -> Option<f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(stream, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let value =
            text.lines().find(|l| l.starts_with(series)).and_then(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok());
        if value == Some(want) || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn metrics_show_whether_the_guest_is_connected() {
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("vm.sock");
    let port = free_port();
    let tgtd = Tgtd::start_with(&[
        "--metrics",
        &format!("127.0.0.1:{port}"),
        "--vhost-user-scsi",
        &format!("controller={},tid=3", socket.display()),
    ]);
    let labels = format!("{{tid=\"3\",target=\"{}\"}}", socket.display());
    let connected = format!("rtgt_vhost_guest_connected{labels}");
    let connections = format!("rtgt_vhost_guest_connections_total{labels}");
    assert_eq!(series_until(port, &connected, 0.0), Some(0.0), "{}", tgtd.log());
    let vmm = attach_vmm(&socket);
    assert_eq!(series_until(port, &connected, 1.0), Some(1.0));
    assert_eq!(series_until(port, &connections, 1.0), Some(1.0));
    drop(vmm);
    assert_eq!(series_until(port, &connected, 0.0), Some(0.0), "the VMM went away");
    assert_eq!(series_until(port, &connections, 1.0), Some(1.0));
}
