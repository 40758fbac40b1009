//! iSNS (RFC 4171) against the real server: open-isns's isnsd on a free loopback port with its
//! database in memory, queried with its own client (`isnsadm --local`, through isnsd's control
//! socket). tgtd is configured as tgt is, with `--mode system --op update --name iSNS*`.

use crate::common::{self, free_port, Tgtd};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One isnsd, stopped by PID when dropped.
pub struct Isnsd {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Isnsd {
    pub fn start(port: u16) -> Isnsd {
        Self::start_with(port, "RegistrationPeriod = 10m\n")
    }

    /// With `extra` lines appended to the server's configuration.
    pub fn start_with(port: u16, extra: &str) -> Isnsd {
        assert!(
            common::have("isnsd") && common::have("isnsadm"),
            "open-isns is not installed (scripts/install-deps installs it): apt-get install -y open-isns-server open-isns-utils"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        // No Database line: the registrations live in memory, so a restart loses them and the
        // daemon must register again. No SLP, no DSA authentication.
        let config = format!(
            "BindAddress = 127.0.0.1:{port}\nControlSocket = {}\nPIDFile = {}\nSLPRegister = 0\nSecurity = 0\n\
             DefaultDiscoveryDomain = 1\n{extra}",
            path("ctl"),
            path("isnsd.pid")
        );
        std::fs::write(dir.path().join("isnsd.conf"), config).unwrap();
        std::fs::write(
            dir.path().join("isnsadm.conf"),
            format!("ControlSocket = {}\nSecurity = 0\nSourceName = iqn.2026-12.org.rtgt.test:isnsadm\n", path("ctl")),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("isnsd.log")).unwrap();
        let child = Command::new("isnsd")
            .args(["-f", "-4", "-c"])
            .arg(dir.path().join("isnsd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start isnsd");
        let mut isnsd = Isnsd { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !isnsd.dir.path().join("ctl").exists() {
            if let Some(status) = isnsd.child.try_wait().unwrap() {
                panic!("isnsd exited at start ({status}): {}", isnsd.log());
            }
            assert!(Instant::now() < deadline, "isnsd did not start: {}", isnsd.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        isnsd
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("isnsd.log")).unwrap_or_default()
    }

    /// `isnsadm --local --query KEY`: every object the server holds that has attribute KEY.
    pub fn query(&self, key: &str) -> String {
        common::text(&self.isnsadm(&["--local", "--query", key]))
    }

    /// isnsadm as the administrator, through isnsd's control socket (a control node).
    pub fn isnsadm(&self, args: &[&str]) -> std::process::Output {
        let conf: PathBuf = self.dir.path().join("isnsadm.conf");
        Command::new("isnsadm").arg("-c").arg(&conf).args(args).output().unwrap()
    }

    /// isnsadm over the network as the storage node `source` (with no default discovery domain,
    /// queries are scoped by the source's domains, even through the control socket).
    pub fn isnsadm_as(&self, source: &str, args: &[&str]) -> std::process::Output {
        let conf = self.dir.path().join(format!("{}.conf", source.replace(':', "_")));
        std::fs::write(
            &conf,
            format!("ServerAddress = 127.0.0.1:{}\nSecurity = 0\nSourceName = {source}\n", self.port),
        )
        .unwrap();
        Command::new("isnsadm").arg("-c").arg(&conf).args(args).output().unwrap()
    }

    /// Registers `name` as an initiator over the network, as an initiator host's iSNS client
    /// would (an initiator must be registered for discovery domains to make it visible).
    pub fn register_initiator(&self, name: &str) {
        let out = self.isnsadm_as(name, &["--register", &format!("initiator={name}")]);
        assert!(out.status.success(), "isnsadm --register initiator={name}: {}", common::text(&out));
    }

    /// What the server holds: its storage nodes and portals.
    pub fn objects(&self) -> String {
        format!("{}{}", self.query("iscsi-name"), self.query("portal"))
    }

    /// Waits (bounded) until `check` holds for the server's objects; panics with them if not.
    pub fn wait_for(&self, what: &str, within: Duration, check: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + within;
        loop {
            let objects = self.objects();
            if check(&objects) {
                return;
            }
            assert!(Instant::now() < deadline, "iSNS server: not {what} within {within:?}:\n{objects}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Isnsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn node(iqn: &str) -> String {
    format!("iSCSI name = \"{iqn}\"")
}

pub fn portal(port: u16) -> String {
    format!("Portal TCP/UDP port = {port}/tcp")
}

/// tgt's keys, one update each (as tgt's own scripts send them).
pub fn point_at(tgtd: &Tgtd, port: u16) {
    for (name, value) in [("iSNSServerIP", "127.0.0.1"), ("iSNSServerPort", &port.to_string()), ("iSNS", "On")] {
        tgtd.tgtadm_ok(&["--mode", "sys", "--op", "update", "--name", name, "--value", value]);
    }
}

const T1: &str = "iqn.2026-12.org.rtgt.test:isns1";
const T2: &str = "iqn.2026-12.org.rtgt.test:isns2";

#[test]
fn targets_and_portals_are_registered_and_deregistered() {
    let isnsd = Isnsd::start(free_port());
    let mut tgtd = Tgtd::start();
    point_at(&tgtd, isnsd.port);
    let show = tgtd.tgtadm_ok(&["--mode", "sys", "--op", "show"]);
    let expected = format!(
        "iSNS:\n    iSNS=On\n    iSNSServerIP=127.0.0.1\n    iSNSServerPort={}\n    iSNSAccessControl=Off\n",
        isnsd.port
    );
    assert!(show.contains(&expected), "{show}");

    tgtd.new_target(1, T1);
    tgtd.new_target(2, T2);
    let within = Duration::from_secs(10);
    isnsd.wait_for("both targets and the portal", within, |o| {
        o.contains(&node(T1)) && o.contains(&node(T2)) && o.contains(&portal(tgtd.port))
    });

    // A portal opened and closed at run time comes and goes on the server.
    let extra = free_port();
    let address = format!("portal=127.0.0.1:{extra}");
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "portal", "--op", "new", "--param", &address]);
    isnsd.wait_for("the new portal", within, |o| o.contains(&portal(extra)));
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "portal", "--op", "delete", "--param", &address]);
    isnsd.wait_for("without the closed portal", within, |o| {
        !o.contains(&portal(extra)) && o.contains(&portal(tgtd.port))
    });

    // A deleted target goes; the other stays.
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "delete", "--tid", "2"]);
    isnsd.wait_for("without the deleted target", within, |o| !o.contains(&node(T2)) && o.contains(&node(T1)));

    // A clean stop takes the whole entity off the server.
    tgtd.tgtadm_ok(&["--mode", "sys", "--op", "delete", "--force"]);
    let status = tgtd.child.wait().unwrap();
    assert!(status.success(), "{}", tgtd.log());
    let entities = isnsd.query("eid");
    assert!(!entities.contains("rtgt:"), "entity left behind after a clean stop:\n{entities}");
    isnsd.wait_for("empty", Duration::ZERO, |o| !o.contains("iSCSI name") && !o.contains("Portal"));
}

#[test]
fn a_down_or_restarting_server_blocks_nothing_and_is_registered_with_again() {
    let port = free_port();
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let image = common::sparse_image(dir.path(), "d.img", 1 << 20);
    // Nothing listens on the server's port: management and logins go on at their usual pace.
    let start = Instant::now();
    point_at(&tgtd, port);
    tgtd.add_disk_target(1, T1, &image);
    tgtd.tgtadm_ok(&["--lld", "iscsi", "--mode", "target", "--op", "show"]);
    let mut session = tgtd.session(T1, 1, &[1]);
    session.logout().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5), "management or login waited on iSNS: {:?}", start.elapsed());

    // The server comes up: the daemon, retrying with back-off, registers (the back-off's first
    // steps are 1, 2, 4, 8 s: 20 s covers them whenever the server starts).
    std::thread::sleep(Duration::from_secs(2));
    let isnsd = Isnsd::start(port);
    isnsd.wait_for("registered after the server came up", Duration::from_secs(20), |o| {
        o.contains(&node(T1)) && o.contains(&portal(tgtd.port))
    });

    // A restart loses the in-memory registrations; the daemon sees its connection close and
    // registers again.
    isnsd.stop();
    let isnsd = Isnsd::start(port);
    isnsd.wait_for("registered again after a server restart", Duration::from_secs(10), |o| o.contains(&node(T1)));
    let log = tgtd.log();
    assert!(log.contains("iSNS: registration failed"), "no retry logged:\n{log}");

    // With the server gone, a stop is not held up by the deregistration.
    isnsd.stop();
    let mut tgtd = tgtd;
    let start = Instant::now();
    tgtd.tgtadm_ok(&["--mode", "sys", "--op", "delete", "--force"]);
    assert!(tgtd.child.wait().unwrap().success());
    assert!(start.elapsed() < Duration::from_secs(5), "stop waited on iSNS: {:?}", start.elapsed());
}

/// A hostile "server" on loopback, speaking raw iSNSP: an answer whose attribute claims 4 GiB and
/// one of a version that does not exist are refused and retried (the daemon and its iSNS client
/// survive); a server's ESI is answered with an ESIRsp before the registration completes.
#[test]
fn hostile_server_answers_are_bounded_and_esi_is_answered() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let tgtd = Tgtd::start();
    tgtd.new_target(1, T1);
    point_at(&tgtd, port);

    // Reads one request (all its PDUs); returns its function and transaction ID.
    fn read_request(conn: &mut std::net::TcpStream) -> (u16, u16) {
        loop {
            let mut header = [0u8; 12];
            conn.read_exact(&mut header).unwrap();
            let word = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
            let mut payload = vec![0u8; usize::from(word(4))];
            conn.read_exact(&mut payload).unwrap();
            assert_eq!(word(0), 1, "iSNSP version");
            if word(6) & 0x0800 != 0 {
                return (word(2), word(8));
            }
        }
    }
    fn pdu(function: u16, xid: u16, version: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for word in [version, function, payload.len() as u16, 0x4000 | 0x0800 | 0x0400, xid, 0] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }
    // The daemon's next connection, within its back-off (1 s, then 2 s) and some slack.
    listener.set_nonblocking(true).unwrap();
    let accept = || {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match listener.accept() {
                Ok((conn, _)) => {
                    conn.set_nonblocking(false).unwrap();
                    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    return conn;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(Instant::now() < deadline, "the daemon did not come back:\n{}", tgtd.log());
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    };

    // 1: success status, then Registration Period with a length of 0xfffffff0.
    let mut conn = accept();
    let (function, xid) = read_request(&mut conn);
    assert_eq!(function, 0x0001, "DevAttrReg");
    let mut payload = 0u32.to_be_bytes().to_vec();
    payload.extend_from_slice(&[0, 0, 0, 6, 0xff, 0xff, 0xff, 0xf0, 0, 0, 0, 1]);
    conn.write_all(&pdu(0x8001, xid, 1, &payload)).unwrap();
    // 2: the daemon came back (after its back-off): an answer in iSNSP version 0x7777.
    let mut conn = accept();
    let (_, xid) = read_request(&mut conn);
    conn.write_all(&pdu(0x8001, xid, 0x7777, &[0; 4])).unwrap();
    // 3: an ESI first, then a proper answer.
    let mut conn = accept();
    let (function, xid) = read_request(&mut conn);
    assert_eq!(function, 0x0001);
    let mut esi = vec![0, 0, 0, 1, 0, 0, 0, 4, b'e', b'1', 0, 0];
    esi.extend_from_slice(&[0, 0, 0, 16, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);
    conn.write_all(&pdu(0x000D, 0x4242, 1, &esi)).unwrap();
    let mut header = [0u8; 12];
    conn.read_exact(&mut header).unwrap();
    let word = |i: usize| u16::from_be_bytes([header[i], header[i + 1]]);
    assert_eq!((word(2), word(8)), (0x800D, 0x4242), "ESIRsp to the ESI");
    let mut payload = vec![0u8; usize::from(word(4))];
    conn.read_exact(&mut payload).unwrap();
    assert_eq!(&payload[..4], &[0, 0, 0, 0], "ESIRsp status");
    assert_eq!(&payload[4..], &esi[..], "ESIRsp echoes the ESI's attributes");
    conn.write_all(&pdu(0x8001, xid, 1, &0u32.to_be_bytes())).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while !tgtd.log().contains("iSNS: registered") {
        assert!(Instant::now() < deadline, "not registered after the good answer:\n{}", tgtd.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = tgtd.log();
    assert!(log.contains("claims 4294967280 bytes"), "{log}");
    assert!(log.contains("iSNSP version 30583"), "{log}");
    tgtd.tgtadm_ok(&["--mode", "sys", "--op", "show"]);
}

/// The server drops an entity not refreshed within its registration period (here 10 s): the
/// daemon refreshes after half of it, so its target is still there well after the period.
#[test]
fn registration_is_refreshed_before_the_server_expires_it() {
    let isnsd = Isnsd::start_with(free_port(), "RegistrationPeriod = 10s\nESIMinInterval = 2s\nESIMaxInterval = 4s\n");
    let tgtd = Tgtd::start();
    tgtd.new_target(1, T1);
    point_at(&tgtd, isnsd.port);
    isnsd.wait_for("registered", Duration::from_secs(10), |o| o.contains(&node(T1)));
    let until = Instant::now() + Duration::from_secs(25);
    while Instant::now() < until {
        let objects = isnsd.objects();
        assert!(objects.contains(&node(T1)), "the registration expired:\n{objects}\n{}", tgtd.log());
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The iSNS settings are part of the saved configuration: a restarted daemon registers again
/// without being told (the clean stop took its registration off the server).
#[test]
fn settings_survive_a_restart() {
    let isnsd = Isnsd::start(free_port());
    let tgtd = Tgtd::start();
    tgtd.new_target(1, T1);
    point_at(&tgtd, isnsd.port);
    isnsd.wait_for("registered", Duration::from_secs(10), |o| o.contains(&node(T1)));
    let dir = tgtd.stop_keeping_dir();
    isnsd.wait_for("deregistered at the stop", Duration::ZERO, |o| !o.contains(&node(T1)));

    let tgtd = Tgtd::start_in(dir, &[]);
    let show = tgtd.tgtadm_ok(&["--mode", "sys", "--op", "show"]);
    let expected = format!("    iSNS=On\n    iSNSServerIP=127.0.0.1\n    iSNSServerPort={}\n", isnsd.port);
    assert!(show.contains(&expected), "{show}");
    isnsd.wait_for("registered after the restart", Duration::from_secs(10), |o| o.contains(&node(T1)));
}

/// targets.conf carries tgt's iSNS keys: `tgt-admin -e` applies them (before the targets), and
/// `tgt-admin --dump` writes them back.
#[test]
fn tgt_admin_applies_and_dumps_the_isns_keys() {
    let isnsd = Isnsd::start(free_port());
    let tgtd = Tgtd::start();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("targets.conf");
    std::fs::write(
        &conf,
        format!(
            "iSNSServerIP 127.0.0.1\niSNSServerPort {}\niSNSAccessControl Off\niSNS On\n\
             <target {T1}>\n\tbacking-store {}\n</target>\n",
            isnsd.port,
            common::sparse_image(dir.path(), "d.img", 1 << 20).display()
        ),
    )
    .unwrap();
    let tgt_admin = |args: &[&str]| {
        let out = Command::new(common::bin_dir().join("tgt-admin"))
            .arg("--control-socket")
            .arg(&tgtd.socket)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "tgt-admin {args:?}: {}", common::text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    tgt_admin(&["-c", conf.to_str().unwrap(), "-e"]);
    isnsd.wait_for("the file's target", Duration::from_secs(10), |o| o.contains(&node(T1)));
    let dump = tgt_admin(&["--dump"]);
    let expected = format!("iSNSServerIP 127.0.0.1\niSNSServerPort {}\niSNSAccessControl Off\niSNS On\n", isnsd.port);
    assert!(dump.contains(&expected), "{dump}");
    // Executing the file again changes nothing (the daemon has the settings already).
    let again = tgt_admin(&["-c", conf.to_str().unwrap(), "-e", "-v"]);
    assert!(!again.contains("system update"), "{again}");
}
