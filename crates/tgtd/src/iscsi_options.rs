//! tgtd's `--iscsi key=value,...` options, parsed once into one typed struct. Every occurrence of
//! `--iscsi` and every comma-separated item in it goes through the same scanner; a bad value is
//! refused there, with a message naming the option and what it takes.

use rtgt_tgtd::state::NopSettings;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything `--iscsi` sets, with the defaults for what it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IscsiOptions {
    /// `portal=ADDR:PORT` (repeatable); the wildcard addresses on 3260 when none is given.
    pub portals: Vec<SocketAddr>,
    /// `nop_interval=S`, `nop_count=C`: what targets created later start with (as tgt).
    pub nop: NopSettings,
    /// `login_timeout=S`: how long a login may take before the connection is dropped (rtgt's; tgt
    /// has none). None for the default.
    pub login_timeout: Option<Duration>,
    /// `max_sessions=N`: the most sessions (all targets, discovery included) at once.
    pub max_sessions: u32,
    /// `write_budget=SIZE`: the write data all connections together may hold in memory.
    pub write_budget: u64,
    /// `read_budget=SIZE`: the read data (of READs of 256 KiB and more) all connections together
    /// may hold in memory.
    pub read_budget: u64,
    /// `data_out_timeout=S`: how long a write that holds write budget may go without a Data-Out PDU.
    pub data_out_timeout: Duration,
    /// `send_timeout=S`: how long a connection's socket may accept no bytes while replies wait for
    /// it before the connection is closed.
    pub send_timeout: Duration,
}

/// Why an `--iscsi` item was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IscsiOptionError {
    #[error("--iscsi: '{0}' is not key=value")]
    NotKeyValue(String),
    #[error("--iscsi: unknown option '{0}'")]
    Unknown(String),
    #[error("--iscsi: {option} must be {expected}, not '{value}'")]
    BadValue { option: &'static str, expected: &'static str, value: String },
}

impl Default for IscsiOptions {
    fn default() -> Self {
        IscsiOptions {
            portals: Vec::new(),
            nop: NopSettings::default(),
            login_timeout: None,
            max_sessions: rtgt_iscsi::limits::DEFAULT_MAX_SESSIONS,
            write_budget: rtgt_iscsi::write_budget::DEFAULT_DAEMON_WRITE_BUDGET,
            read_budget: rtgt_iscsi::read_budget::DEFAULT_DAEMON_READ_BUDGET,
            data_out_timeout: rtgt_iscsi::limits::DEFAULT_DATA_OUT_TIMEOUT,
            send_timeout: rtgt_iscsi::limits::DEFAULT_SEND_TIMEOUT,
        }
    }
}

impl IscsiOptions {
    /// Parse every `--iscsi` argument; a later value of the same option wins (portals add up).
    pub fn parse<S: AsRef<str>>(specs: &[S]) -> Result<Self, IscsiOptionError> {
        let mut options = IscsiOptions::default();
        for spec in specs {
            for item in spec.as_ref().split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (key, value) =
                    item.split_once('=').ok_or_else(|| IscsiOptionError::NotKeyValue(item.to_string()))?;
                options.set(key.trim(), value.trim())?;
            }
        }
        if options.portals.is_empty() {
            options.portals.push(SocketAddr::from(([0, 0, 0, 0], 3260)));
            options.portals.push(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 3260)));
        }
        Ok(options)
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), IscsiOptionError> {
        // The option's own name, for the message (a &'static str, not the user's spelling).
        let bad = |option: &'static str, expected: &'static str| IscsiOptionError::BadValue {
            option,
            expected,
            value: value.to_string(),
        };
        match key {
            "portal" => {
                self.portals.push(parse_portal(value).ok_or_else(|| {
                    bad("portal", "an address and port (ADDR:PORT, [IPV6]:PORT or ADDR alone for 3260)")
                })?)
            }
            "nop_interval" => self.nop.interval = value.parse().map_err(|_| bad("nop_interval", "a number"))?,
            "nop_count" => self.nop.count = value.parse().map_err(|_| bad("nop_count", "a number"))?,
            "login_timeout" => {
                let secs: u64 =
                    value.parse().ok().filter(|s| *s > 0).ok_or_else(|| bad("login_timeout", "a number of seconds"))?;
                self.login_timeout = Some(Duration::from_secs(secs));
            }
            "max_sessions" => {
                self.max_sessions = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=65535).contains(n))
                    .ok_or_else(|| bad("max_sessions", "a number from 1 to 65535"))?
            }
            "write_budget" => {
                self.write_budget = rtgt_tgtd::control::parse_write_budget(value)
                    .ok_or_else(|| bad("write_budget", "a size of at least 1M (e.g. 512M, 2G)"))?
            }
            "read_budget" => {
                // The same sizes as write_budget's.
                self.read_budget = rtgt_tgtd::control::parse_write_budget(value)
                    .ok_or_else(|| bad("read_budget", "a size of at least 1M (e.g. 512M, 2G)"))?
            }
            "data_out_timeout" => {
                self.data_out_timeout = rtgt_tgtd::control::parse_data_out_timeout(value)
                    .ok_or_else(|| bad("data_out_timeout", "a number of seconds from 1 to 3600"))?
            }
            "send_timeout" => {
                // The same seconds as data_out_timeout's.
                self.send_timeout = rtgt_tgtd::control::parse_data_out_timeout(value)
                    .ok_or_else(|| bad("send_timeout", "a number of seconds from 1 to 3600"))?
            }
            other => return Err(IscsiOptionError::Unknown(other.to_string())),
        }
        Ok(())
    }
}

/// `ADDR:PORT`, `[V6ADDR]:PORT`, or `ADDR` alone (port 3260).
pub fn parse_portal(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>().ok().map(|ip| SocketAddr::new(ip, 3260))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(specs: &[&str]) -> Result<IscsiOptions, IscsiOptionError> {
        IscsiOptions::parse(specs)
    }

    fn refusal(spec: &str) -> String {
        parse(&[spec]).unwrap_err().to_string()
    }

    #[test]
    fn portals_parse_in_every_spelling() {
        let o = parse(&["portal=127.0.0.1:3261", "portal=[::1]:3262"]).unwrap();
        assert_eq!(o.portals, vec!["127.0.0.1:3261".parse().unwrap(), "[::1]:3262".parse().unwrap()]);
        assert_eq!(parse_portal("10.0.0.1"), Some("10.0.0.1:3260".parse().unwrap()));
        assert_eq!(parse_portal("::1"), Some("[::1]:3260".parse().unwrap()));
        assert_eq!(parse_portal("nonsense:80"), None);
        assert!(refusal("portal=nowhere").starts_with("--iscsi: portal must be an address"));
        assert_eq!(parse(&[] as &[&str]).unwrap().portals.len(), 2, "the wildcard pair by default");
    }

    #[test]
    fn one_scan_reads_every_option() {
        let o = parse(&[
            "portal=127.0.0.1:3261, login_timeout=3",
            "nop_interval=7,nop_count=2,max_sessions=7,write_budget=256M,data_out_timeout=5s",
            "read_budget=128M,send_timeout=7",
        ])
        .unwrap();
        assert_eq!(o.portals.len(), 1);
        assert_eq!(o.login_timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.nop, NopSettings { interval: 7, count: 2 });
        assert_eq!((o.max_sessions, o.write_budget, o.read_budget), (7, 256 << 20, 128 << 20));
        assert_eq!(o.data_out_timeout, Duration::from_secs(5));
        assert_eq!(o.send_timeout, Duration::from_secs(7));
        let d = parse(&["portal=127.0.0.1:1"]).unwrap();
        assert_eq!(d, IscsiOptions { portals: d.portals.clone(), ..IscsiOptions::default() });
    }

    /// Each bad value is refused by the scan that reads it, with the option's name.
    #[test]
    fn a_bad_value_names_its_option() {
        for (spec, option) in [
            ("login_timeout=0", "login_timeout must be a number of seconds"),
            ("login_timeout=soon", "login_timeout must be"),
            ("nop_interval=often", "nop_interval must be a number, not 'often'"),
            ("nop_count=-1", "nop_count must be a number"),
            ("max_sessions=0", "max_sessions must be a number from 1 to 65535"),
            ("max_sessions=lots", "max_sessions must be"),
            ("data_out_timeout=0", "data_out_timeout must be a number of seconds from 1 to 3600"),
            ("data_out_timeout=3601", "data_out_timeout must be"),
            ("data_out_timeout=", "data_out_timeout must be"),
            ("data_out_timeout=soon", "data_out_timeout must be"),
            ("write_budget=lots", "write_budget must be a size"),
            ("write_budget=100k", "write_budget must be a size"),
            ("write_budget=1X", "write_budget must be a size"),
            ("write_budget=", "write_budget must be a size"),
            ("read_budget=100k", "read_budget must be a size"),
            ("read_budget=lots", "read_budget must be a size"),
            ("send_timeout=0", "send_timeout must be a number of seconds from 1 to 3600"),
            ("send_timeout=never", "send_timeout must be"),
        ] {
            let err = refusal(spec);
            assert!(err.starts_with("--iscsi: ") && err.contains(option), "{spec}: {err}");
        }
        assert_eq!(refusal("colour=red"), "--iscsi: unknown option 'colour'");
        assert_eq!(refusal("portal"), "--iscsi: 'portal' is not key=value");
        // A bad item after good ones still refuses the whole command line.
        assert!(parse(&["portal=127.0.0.1:3261", "max_sessions=1,nop_count=x"]).is_err());
    }
}
