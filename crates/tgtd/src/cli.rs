//! tgtd's command line, with tgt's option names (`-f`, `-d`, `-C`, `--iscsi portal=...`) plus rtgt's
//! `--control-socket`.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Where the control socket lives when nothing else is said: tgt's path, so scripts find it.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/tgtd";

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
    /// `write_budget=SIZE` (default 1G), `data_out_timeout=S` (default 30).
    #[arg(long = "iscsi", value_name = "portal=ADDR:PORT")]
    pub iscsi: Vec<String>,

    /// A vhost-user-scsi target on a unix socket, e.g. `controller=/run/rtgt/vm1.sock,tid=5`
    /// (repeatable); add its LUNs with `tgtadm --lld vhost`.
    #[arg(long = "vhost-user-scsi", value_name = "controller=PATH[,tid=N]")]
    pub vhost_user_scsi: Vec<String>,

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
    /// The control socket path: --control-socket, then -C, then $RTGT_CONTROL_SOCKET, then socket.0.
    pub fn socket_path(&self) -> PathBuf {
        if let Some(path) = &self.control_socket {
            return path.clone();
        }
        if let Some(port) = self.control_port {
            return PathBuf::from(format!("{DEFAULT_SOCKET_DIR}/socket.{port}"));
        }
        if let Some(path) = std::env::var_os("RTGT_CONTROL_SOCKET").filter(|p| !p.is_empty()) {
            return PathBuf::from(path);
        }
        PathBuf::from(format!("{DEFAULT_SOCKET_DIR}/socket.0"))
    }

    /// The `--vhost-user-scsi` targets to start.
    pub fn vhost(&self) -> Result<Vec<rtgt_tgtd::vhost::VhostOption>, String> {
        self.vhost_user_scsi.iter().map(|o| rtgt_tgtd::vhost::VhostOption::parse(o)).collect()
    }

    /// `--iscsi nop_interval=S,nop_count=C`: what targets created later start with (as tgt).
    pub fn nop_defaults(&self) -> Result<rtgt_tgtd::state::NopSettings, String> {
        let mut nop = rtgt_tgtd::state::NopSettings::default();
        for spec in &self.iscsi {
            for (key, value) in spec.split(',').filter_map(|item| item.trim().split_once('=')) {
                let slot = match key {
                    "nop_interval" => &mut nop.interval,
                    "nop_count" => &mut nop.count,
                    _ => continue,
                };
                *slot = value.trim().parse().map_err(|_| format!("--iscsi: {key} must be a number, not '{value}'"))?;
            }
        }
        Ok(nop)
    }

    /// `--iscsi login_timeout=S`: how long a login may take before the connection is dropped
    /// (rtgt's; tgt has none). None for the default.
    pub fn login_timeout(&self) -> Result<Option<std::time::Duration>, String> {
        let mut limit = None;
        for spec in &self.iscsi {
            for (key, value) in spec.split(',').filter_map(|item| item.trim().split_once('=')) {
                if key == "login_timeout" {
                    let secs: u64 =
                        value.trim().parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                            format!("--iscsi: login_timeout must be a number of seconds, not '{value}'")
                        })?;
                    limit = Some(std::time::Duration::from_secs(secs));
                }
            }
        }
        Ok(limit)
    }

    /// `--iscsi data_out_timeout=S`: how long a write that holds write budget may go without a
    /// Data-Out PDU before it is ended (rtgt's; tgt has none).
    pub fn data_out_timeout(&self) -> Result<std::time::Duration, String> {
        let mut limit = rtgt_iscsi::limits::DEFAULT_DATA_OUT_TIMEOUT;
        for spec in &self.iscsi {
            for (key, value) in spec.split(',').filter_map(|item| item.trim().split_once('=')) {
                if key == "data_out_timeout" {
                    limit = rtgt_tgtd::control::parse_data_out_timeout(value).ok_or_else(|| {
                        format!("--iscsi: data_out_timeout must be a number of seconds from 1 to 3600, not '{value}'")
                    })?;
                }
            }
        }
        Ok(limit)
    }

    /// `--iscsi max_sessions=N`: the most sessions (all targets, discovery included) at once.
    pub fn max_sessions(&self) -> Result<u32, String> {
        let mut max = rtgt_iscsi::limits::DEFAULT_MAX_SESSIONS;
        for spec in &self.iscsi {
            for (key, value) in spec.split(',').filter_map(|item| item.trim().split_once('=')) {
                if key == "max_sessions" {
                    max = value.trim().parse().ok().filter(|n| (1..=65535).contains(n)).ok_or_else(|| {
                        format!("--iscsi: max_sessions must be a number from 1 to 65535, not '{value}'")
                    })?;
                }
            }
        }
        Ok(max)
    }

    /// `--iscsi write_budget=SIZE`: the write data all connections together may hold in memory
    /// (`1G`, `512M`, bytes); at least 1 MiB.
    pub fn write_budget(&self) -> Result<u64, String> {
        let mut budget = rtgt_iscsi::write_budget::DEFAULT_DAEMON_WRITE_BUDGET;
        for spec in &self.iscsi {
            for (key, value) in spec.split(',').filter_map(|item| item.trim().split_once('=')) {
                if key == "write_budget" {
                    budget = rtgt_tgtd::control::parse_write_budget(value).ok_or_else(|| {
                        format!("--iscsi: write_budget must be a size of at least 1M (e.g. 512M, 2G), not '{value}'")
                    })?;
                }
            }
        }
        Ok(budget)
    }

    /// The portals to serve: from every `--iscsi portal=...`, or the wildcard addresses on 3260.
    pub fn portals(&self) -> Result<Vec<SocketAddr>, String> {
        let mut portals = Vec::new();
        for spec in &self.iscsi {
            for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (key, value) = item.split_once('=').ok_or_else(|| format!("--iscsi: '{item}' is not key=value"))?;
                match key {
                    "portal" => portals.push(parse_portal(value)?),
                    // NOP settings for new targets: see nop_defaults.
                    "nop_interval" | "nop_count" | "login_timeout" => {}
                    // See max_sessions, write_budget and data_out_timeout.
                    "max_sessions" | "write_budget" | "data_out_timeout" => {}
                    other => return Err(format!("--iscsi: unknown option '{other}'")),
                }
            }
        }
        if portals.is_empty() {
            portals.push(SocketAddr::from(([0, 0, 0, 0], 3260)));
            portals.push(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 3260)));
        }
        Ok(portals)
    }
}

/// `ADDR:PORT`, `[V6ADDR]:PORT`, or `ADDR` alone (port 3260).
pub fn parse_portal(text: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 3260));
    }
    Err(format!("--iscsi: '{text}' is not a portal address (ADDR:PORT or [IPV6]:PORT)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Options {
        Options::try_parse_from(std::iter::once("tgtd").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn portals_parse_in_every_spelling() {
        let o = parse(&["-f", "--iscsi", "portal=127.0.0.1:3261", "--iscsi", "portal=[::1]:3262"]);
        assert_eq!(o.portals().unwrap(), vec!["127.0.0.1:3261".parse().unwrap(), "[::1]:3262".parse().unwrap()]);
        assert_eq!(parse_portal("10.0.0.1").unwrap(), "10.0.0.1:3260".parse().unwrap());
        assert_eq!(parse_portal("::1").unwrap(), "[::1]:3260".parse().unwrap());
        assert!(parse_portal("nonsense:80").is_err());
        assert!(parse(&["--iscsi", "colour=red"]).portals().is_err());
        let o = parse(&["--iscsi", "portal=127.0.0.1:3261,login_timeout=3"]);
        assert_eq!(o.portals().unwrap().len(), 1);
        assert_eq!(o.login_timeout().unwrap(), Some(std::time::Duration::from_secs(3)));
        assert_eq!(parse(&[]).login_timeout().unwrap(), None);
        assert!(parse(&["--iscsi", "login_timeout=0"]).login_timeout().is_err());
        assert!(parse(&["--iscsi", "login_timeout=soon"]).login_timeout().is_err());
        assert_eq!(parse(&[]).portals().unwrap().len(), 2);
    }

    #[test]
    fn write_budget_option() {
        let default = rtgt_iscsi::write_budget::DEFAULT_DAEMON_WRITE_BUDGET;
        assert_eq!(parse(&[]).write_budget().unwrap(), default);
        let o = parse(&["--iscsi", "portal=127.0.0.1:3261,write_budget=256M"]);
        assert_eq!(o.write_budget().unwrap(), 256 << 20);
        assert!(o.portals().is_ok());
        for bad in ["100k", "lots", "", "1X"] {
            let err = parse(&["--iscsi", &format!("write_budget={bad}")]).write_budget().unwrap_err();
            assert!(err.contains("write_budget must be a size"), "{err}");
        }
    }

    #[test]
    fn data_out_timeout_option() {
        assert_eq!(parse(&[]).data_out_timeout().unwrap(), rtgt_iscsi::limits::DEFAULT_DATA_OUT_TIMEOUT);
        let o = parse(&["--iscsi", "portal=127.0.0.1:3261,data_out_timeout=5"]);
        assert_eq!(o.data_out_timeout().unwrap(), std::time::Duration::from_secs(5));
        assert_eq!(o.portals().unwrap().len(), 1);
        for bad in ["0", "3601", "soon", ""] {
            let err = parse(&["--iscsi", &format!("data_out_timeout={bad}")]).data_out_timeout().unwrap_err();
            assert!(err.contains("data_out_timeout must be"), "{err}");
        }
    }

    #[test]
    fn max_sessions_option() {
        assert_eq!(parse(&[]).max_sessions().unwrap(), rtgt_iscsi::limits::DEFAULT_MAX_SESSIONS);
        let o = parse(&["--iscsi", "portal=127.0.0.1:3261,max_sessions=7"]);
        assert_eq!(o.max_sessions().unwrap(), 7);
        assert_eq!(o.portals().unwrap().len(), 1);
        assert!(parse(&["--iscsi", "max_sessions=0"]).max_sessions().is_err());
        assert!(parse(&["--iscsi", "max_sessions=lots"]).max_sessions().is_err());
    }

    #[test]
    fn socket_path_precedence() {
        assert_eq!(parse(&["-C", "7"]).socket_path(), PathBuf::from("/var/run/tgtd/socket.7"));
        assert_eq!(parse(&["-C", "7", "--control-socket", "/tmp/x.sock"]).socket_path(), PathBuf::from("/tmp/x.sock"));
    }
}
