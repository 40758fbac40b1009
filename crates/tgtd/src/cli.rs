//! tgtd's command line, with tgt's option names (`-f`, `-d`, `-C`, `--iscsi portal=...`) plus rtgt's
//! `--control-socket`.

use clap::Parser;
use std::path::PathBuf;

/// Where state lives when `--state-dir` is not given.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/rtgt";

#[derive(Debug, Parser)]
#[command(name = "tgtd", version, about = "rtgt SCSI target daemon (tgt-compatible)")]
pub struct Options {
    /// Stay in the foreground and log to stderr (colour on a terminal only; `<N>` syslog
    /// priorities when stderr is the journal). Default: daemonize and log to syslog.
    #[arg(short = 'f', long = "foreground")]
    pub foreground: bool,

    /// Log level: 0 = info, 1 = debug, 2 = trace. The RUST_LOG environment variable (e.g.
    /// `debug`, `rtgt_iscsi=trace,info`) overrides it.
    #[arg(short = 'd', long = "debug", value_name = "LEVEL", default_value_t = 0)]
    pub debug: u8,

    /// Control port N: the control socket is /var/run/tgtd/socket.N (default 0).
    #[arg(short = 'C', long = "control-port", value_name = "N")]
    pub control_port: Option<u16>,

    /// The control socket's path (overrides -C and $RTGT_CONTROL_SOCKET; default
    /// /var/run/tgtd/socket.0).
    #[arg(long = "control-socket", value_name = "PATH")]
    pub control_socket: Option<PathBuf>,

    /// Members of this group may manage tgtd too: the control socket gets mode 0660 and this group
    /// (otherwise 0600: root and tgtd's own user only).
    #[arg(long = "control-group", value_name = "NAME")]
    pub control_group: Option<String>,

    /// The group that may connect to vhost-user-scsi sockets (QEMU's): they get mode 0660 and this
    /// group (otherwise 0600: root and tgtd's own user only).
    #[arg(long = "vhost-group", value_name = "NAME")]
    pub vhost_group: Option<String>,

    /// iSCSI driver options (repeatable, or comma-separated): `portal=ADDR:PORT` (default
    /// 0.0.0.0:3260 and [::]:3260), `max_sessions=N` (default 4096), `nop_interval=S`,
    /// `nop_count=C` (default 0: no probing), `login_timeout=S` (default 30),
    /// `write_budget=SIZE` (default 1G), `read_budget=SIZE` (default 1G), `data_out_timeout=S`
    /// (default 30), `send_timeout=S` (default 30).
    #[arg(long = "iscsi", value_name = "portal=ADDR:PORT")]
    pub iscsi: Vec<String>,

    /// A vhost-user-scsi target on a unix socket, e.g. `controller=/run/rtgt/vm1.sock,tid=5`
    /// (repeatable); add its LUNs with `tgtadm --lld vhost`.
    #[arg(long = "vhost-user-scsi", value_name = "controller=PATH[,tid=N]")]
    pub vhost_user_scsi: Vec<String>,

    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (off by default; also set by the
    /// environment variable TGTD_METRICS, which the systemd unit's environment file sets; empty is
    /// off). Anyone who can reach the address can read them: bind to loopback or a management
    /// network.
    #[arg(long = "metrics", value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Write the daemon's process id to FILE once it serves (removed when it stops), as tgt's `-p`.
    #[arg(short = 'p', long = "pid-file", value_name = "FILE")]
    pub pid_file: Option<PathBuf>,

    /// Where state that survives restarts is kept (running configuration, APTPL reservations;
    /// default /var/lib/rtgt).
    #[arg(long = "state-dir", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Start with no targets instead of restoring the saved configuration.
    #[arg(long = "no-restore")]
    pub no_restore: bool,

    /// Let the kernel write core dumps of tgtd (off by default: its memory holds CHAP secrets).
    #[arg(long = "allow-core-dumps")]
    pub allow_core_dumps: bool,

    /// Accepted for tgt compatibility; rtgt sizes its workers to the machine.
    #[arg(short = 't', long = "nr_iothreads", value_name = "N", hide = true)]
    pub nr_iothreads: Option<u32>,
}

impl Options {
    /// The control socket path (`rtgt_mgmt::socket_path`: --control-socket, then -C, then
    /// $RTGT_CONTROL_SOCKET, then socket.0), the same rule tgtadm and tgt-admin follow.
    pub fn socket_path(&self) -> PathBuf {
        use rtgt_mgmt::socket_path::{control_socket, SOCKET_ENV};
        let env = std::env::var_os(SOCKET_ENV);
        control_socket(self.control_socket.as_deref(), self.control_port.map(u32::from), env.as_deref())
    }

    /// The `--vhost-user-scsi` targets to start.
    pub fn vhost(&self) -> Result<Vec<rtgt_tgtd::vhost::VhostOption>, String> {
        self.vhost_user_scsi.iter().map(|o| rtgt_tgtd::vhost::VhostOption::parse(o)).collect()
    }

    /// Every `--iscsi` option, scanned once.
    pub fn iscsi(&self) -> Result<crate::iscsi_options::IscsiOptions, crate::iscsi_options::IscsiOptionError> {
        crate::iscsi_options::IscsiOptions::parse(&self.iscsi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("tgtd").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn iscsi_options_come_from_every_occurrence() {
        let o = parse(&["-f", "--iscsi", "portal=127.0.0.1:3261", "--iscsi", "portal=[::1]:3262,max_sessions=7"]);
        let iscsi = o.iscsi().unwrap();
        assert_eq!(iscsi.portals, vec!["127.0.0.1:3261".parse().unwrap(), "[::1]:3262".parse().unwrap()]);
        assert_eq!(iscsi.max_sessions, 7);
        assert!(parse(&["--iscsi", "colour=red"]).iscsi().is_err());
    }

    #[test]
    fn socket_path_precedence() {
        assert_eq!(parse(&["-C", "7"]).socket_path(), PathBuf::from("/var/run/tgtd/socket.7"));
        assert_eq!(parse(&["-C", "7", "--control-socket", "/tmp/x.sock"]).socket_path(), PathBuf::from("/tmp/x.sock"));
    }
}
