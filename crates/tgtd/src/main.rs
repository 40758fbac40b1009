//! tgtd: the rtgt SCSI target daemon.
//!
//! Start-up order matters to scripts: the control socket and every portal accept connections before
//! the daemon says it is ready (to systemd via NOTIFY_SOCKET, and to the parent process when it
//! daemonizes), so a `tgtadm` run right after start never fails.

mod cli;
mod daemonize;
mod iscsi_options;
mod logging;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::Options;
use daemonize::ReadyPipe;
use iscsi_options::IscsiOptions;
use rtgt_tgtd::{control, Daemon};
use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

fn main() {
    let options = Options::parse();
    if let Err(err) = run(options) {
        eprintln!("tgtd: {err:#}");
        std::process::exit(1);
    }
}

fn run(options: Options) -> Result<()> {
    let iscsi = options.iscsi()?;
    let vhost = options.vhost().map_err(anyhow::Error::msg)?;
    let control_group = options.control_group.as_deref().map(|g| group_id("--control-group", g)).transpose()?;
    let vhost_group = options.vhost_group.as_deref().map(|g| group_id("--vhost-group", g)).transpose()?;
    let socket = options.socket_path();
    check_no_other_daemon(&socket)?;
    let ready = if options.foreground { ReadyPipe::none() } else { daemonize::daemonize()? };
    logging::init(options.foreground, options.debug);
    raise_descriptor_limit(iscsi.max_sessions);
    if !options.allow_core_dumps {
        keep_memory_private();
    }
    // Measuring what counting costs (bench/compare --metrics) needs a daemon that does not count;
    // nobody else wants one, so it is an environment switch and not an option.
    if std::env::var_os("RTGT_LUN_STATS").is_some_and(|v| v == "off") {
        tracing::warn!("RTGT_LUN_STATS=off: per-LUN statistics are not counted");
        rtgt_scsi::stats::set_counting(false);
    }
    // READ data spliced from the page cache to the socket (issue 19) is off unless asked for: it
    // lost to the copy path on loopback (bench/README), and is kept to be measured behind a NIC.
    if std::env::var_os("RTGT_SPLICE_READS").is_some_and(|v| v == "on") {
        tracing::warn!("RTGT_SPLICE_READS=on: large READs are spliced from the page cache, not copied");
        rtgt_iscsi::splice::set_splice_reads(true);
    }
    // A testing aid: a gateway that acts on the other gateways' resets, CLEAR TASK SETs and mode
    // parameter changes late, as a busy one may, so the tests can order what the gateways do
    // deterministically.
    #[cfg(feature = "rbd")]
    if let Some(ms) = std::env::var("RTGT_PEER_EVENT_DELAY_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        tracing::warn!(
            "RTGT_PEER_EVENT_DELAY_MS={ms}: other gateways' events are acted on {ms} ms late (a testing aid)"
        );
        rtgt_tgtd::set_peer_event_delay(std::time::Duration::from_millis(ms));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // The lock is held (by this descriptor) for the rest of the daemon's life.
    let (state_dir, _lock) = state_dir(&options)?.unzip();
    let control = Control {
        socket,
        group: control_group,
        vhost_group,
        pid_file: options.pid_file.clone(),
        metrics: metrics_address(options.metrics)?,
    };
    runtime.block_on(serve(iscsi, control, state_dir, !options.no_restore, vhost, ready))
}

/// `--metrics`, else TGTD_METRICS (the systemd unit's environment file; empty or unset is off).
fn metrics_address(option: Option<SocketAddr>) -> Result<Option<SocketAddr>> {
    if option.is_some() {
        return Ok(option);
    }
    match std::env::var("TGTD_METRICS") {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map(Some).with_context(|| format!("TGTD_METRICS={value:?} is not ADDR:PORT"))
        }
        _ => Ok(None),
    }
}

/// The control socket and who may use it besides root and tgtd's own user.
struct Control {
    socket: PathBuf,
    group: Option<u32>,
    /// `--vhost-group`: who may connect to the vhost-user-scsi sockets.
    vhost_group: Option<u32>,
    /// `--pid-file`: written once the daemon serves, so whoever reads it finds a ready daemon.
    pid_file: Option<PathBuf>,
    /// `--metrics ADDR:PORT`: where /metrics is served, if anywhere.
    metrics: Option<SocketAddr>,
}

/// `--control-group NAME` or `--vhost-group NAME` (or a numeric gid).
fn group_id(option: &str, name: &str) -> Result<u32> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(group)) => Ok(group.gid.as_raw()),
        Ok(None) => bail!("{option}: no group named '{name}'"),
        Err(err) => bail!("{option}: cannot look up '{name}': {err}"),
    }
}

/// tgtd's memory holds CHAP secrets (and the data passing through it): a non-dumpable process
/// gets no core file and cannot be ptrace-attached or have /proc/PID/mem read by other non-root
/// processes of the same user.
fn keep_memory_private() {
    if let Err(err) = nix::sys::prctl::set_dumpable(false) {
        tracing::warn!(%err, "cannot mark tgtd non-dumpable: a core dump could hold CHAP secrets");
    }
}

/// Each session holds at least one socket, and backing files take more: the usual soft limit of
/// 1024 descriptors would refuse connections long before `max_sessions`. Raise the soft limit to
/// the hard one (what any unprivileged process may do), and say so when even that is too low.
fn raise_descriptor_limit(max_sessions: u32) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    if soft < hard {
        if let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::warn!(%err, "cannot raise the open file limit");
        }
    }
    let now = getrlimit(Resource::RLIMIT_NOFILE).map(|(soft, _)| soft).unwrap_or(soft);
    // Headroom for backing files, the control socket and listeners.
    if now < u64::from(max_sessions) + 256 {
        tracing::warn!(open_files = now, max_sessions, "the open file limit is below max_sessions: logins may fail");
    }
}

/// The state directory, created if needed, and its lock. An explicit `--state-dir` that cannot be
/// used is an error; the default one (under /var/lib, usually root's) only costs persistence, with
/// a warning, so an unprivileged tgtd still runs. Taken after the fork: the lock belongs to the
/// daemon's own open file description, not to the parent that exits.
fn state_dir(options: &Options) -> Result<Option<(PathBuf, std::fs::File)>> {
    let (dir, explicit) = match &options.state_dir {
        Some(dir) => (dir.clone(), true),
        None => (PathBuf::from(cli::DEFAULT_STATE_DIR), false),
    };
    // Created private: it holds CHAP secrets and what tgtd replays at start.
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir) {
        Ok(()) => {
            // Whoever else could write it could configure this daemon: refuse, explicit or not.
            rtgt_tgtd::state::file::check_private(&dir)?;
            let lock = rtgt_tgtd::state::file::lock_dir(&dir)?;
            Ok(Some((dir, lock)))
        }
        Err(err) if !explicit => {
            tracing::warn!(dir = %dir.display(), %err, "state directory unusable: nothing will be persisted");
            Ok(None)
        }
        Err(err) => Err(err).with_context(|| format!("cannot create the state directory {}", dir.display())),
    }
}

/// Refuse to start over a live daemon's socket; a stale file from a crash is fine.
fn check_no_other_daemon(socket: &Path) -> Result<()> {
    if socket.exists() && std::os::unix::net::UnixStream::connect(socket).is_ok() {
        bail!("another tgtd is already serving the control socket {}", socket.display());
    }
    Ok(())
}

async fn serve(
    iscsi: IscsiOptions,
    control: Control,
    state_dir: Option<PathBuf>,
    restore: bool,
    vhost: Vec<rtgt_tgtd::vhost::VhostOption>,
    mut ready: ReadyPipe,
) -> Result<()> {
    // The handlers come first, before the control socket or a portal exists: once either is
    // there, a service manager or a script may send SIGTERM, and a daemon still replaying its
    // configuration must then stop cleanly (the loop below sees the signal as soon as the start
    // is over), not die of the signal's default action and leave its socket behind.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    // SIGHUP is what logrotate and habit send to "reopen logs". tgtd writes to stderr or syslog,
    // neither of which it holds open by name, so there is nothing to reopen: the signal is logged
    // and otherwise ignored rather than killing the daemon (its default action).
    let mut sighup = signal(SignalKind::hangup())?;
    let daemon = Daemon::with_state_dir(state_dir);
    // One iSNS entity per daemon instance (host and control socket), the same after a restart.
    daemon.isns.set_entity_id(format!("rtgt:{}:{}", rtgt_tgtd::isns::host_name(), control.socket.display()));
    daemon.config.set_nop_default(iscsi.nop);
    daemon.registry.set_max_sessions(iscsi.max_sessions);
    daemon.registry.set_write_budget(iscsi.write_budget);
    daemon.registry.set_read_budget(iscsi.read_budget);
    daemon.registry.set_data_out_timeout(iscsi.data_out_timeout);
    daemon.registry.set_send_timeout(iscsi.send_timeout);
    if let Some(limit) = iscsi.login_timeout {
        daemon.registry.set_login_timeout(limit);
    }
    // vhost sockets first: once the control socket answers, every start-up target is listening.
    daemon.vhost.set_socket_group(control.vhost_group);
    rtgt_tgtd::vhost::start_from_options(&daemon, &vhost)?;
    let socket = control.socket;
    let control_listener = bind_control_socket(&socket, control.group)?;
    // Portals are bound now (a taken port fails the start) but accept nothing until the saved
    // configuration is back: a target whose CHAP accounts are not yet restored must not be
    // reachable with AuthMethod=None, nor listed by an unauthenticated discovery session.
    daemon.iscsi.hold();
    let bound = bind_portals(&daemon, &iscsi.portals).await?;
    daemon.config.set_boot_portals(bound.clone());
    if restore {
        restore_configuration(&daemon, &ready).await?;
    }
    daemon.iscsi.open();
    if let Some(addr) = control.metrics {
        // Bound before the daemon says it is ready: a taken port fails the start, as a portal's does.
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen for --metrics on {addr}"))?;
        tokio::spawn(rtgt_tgtd::metrics::serve(listener, daemon.clone()));
    }
    let access = control::access::ControlAccess::for_this_process(control.group);
    tokio::spawn(control::serve(control_listener, daemon.clone(), access));

    let list: Vec<String> = bound.iter().map(|a| a.to_string()).collect();
    tracing::info!(portals = %list.join(" "), control = %socket.display(), "tgtd ready");
    if let Some(path) = &control.pid_file {
        write_pid_file(path)?;
    }
    notify_systemd();
    ready.ready();

    loop {
        tokio::select! {
            _ = sigterm.recv() => { tracing::info!("SIGTERM: stopping"); break }
            _ = sigint.recv() => { tracing::info!("SIGINT: stopping"); break }
            _ = sighup.recv() => tracing::info!("SIGHUP: nothing to reopen (logs go to stderr or syslog)"),
            _ = daemon.stop.notified() => { tracing::info!("stop requested through the control socket"); break }
        }
    }
    daemon.shutdown().await;
    let _ = std::fs::remove_file(&socket);
    if let Some(path) = &control.pid_file {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("tgtd stopped");
    Ok(())
}

/// Rebuild the saved configuration before anyone is served (the iSCSI server is held until it
/// ends, and the control socket is served only after it). A step that fails (a backing file gone)
/// is logged and skipped; an unreadable state file stops the start, as starting empty would
/// overwrite it.
async fn restore_configuration(daemon: &Arc<Daemon>, ready: &ReadyPipe) -> Result<()> {
    let d = daemon.clone();
    // Replaying may open files and portals: blocking work, off the runtime's workers.
    let report = tokio::task::spawn_blocking(move || d.config.restore(&d))
        .await
        .context("restoring the running configuration")?
        .map_err(anyhow::Error::msg)?;
    for failure in &report.failed {
        tracing::error!("{failure}");
        ready.tell(failure);
    }
    if report.applied > 0 || !report.failed.is_empty() {
        tracing::info!(applied = report.applied, failed = report.failed.len(), "running configuration restored");
    }
    Ok(())
}

/// `--pid-file`: this process's id and a newline, replacing an old file (never following a link
/// planted where it should be).
fn write_pid_file(path: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let pid = std::process::id();
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        writeln!(file, "{pid}")
    };
    write().with_context(|| format!("cannot write the pid file {}", path.display()))
}

/// Mode 0600, or 0660 owned by the control group: the file mode keeps other users from even
/// connecting; the peer credential check in `control` is the second gate. The socket gets its mode
/// and group before it appears at `socket` (see `control::socket`). Only a stale socket can be
/// there: check_no_other_daemon ran before, and it is replaced.
fn bind_control_socket(socket: &Path, group: Option<u32>) -> Result<tokio::net::UnixListener> {
    let listener = control::socket::bind(socket, group)
        .with_context(|| format!("cannot bind the control socket {}", socket.display()))?;
    listener.set_nonblocking(true)?;
    Ok(tokio::net::UnixListener::from_std(listener)?)
}

/// Bind every portal. The default pair 0.0.0.0 and [::] on one port is allowed to come up as one
/// dual-stack socket, or IPv4 only on a host without IPv6.
async fn bind_portals(daemon: &Arc<Daemon>, portals: &[SocketAddr]) -> Result<Vec<SocketAddr>> {
    let mut bound: Vec<SocketAddr> = Vec::new();
    for &addr in portals {
        match daemon.iscsi.listen(addr).await {
            Ok(local) => bound.push(local),
            Err(err) if addr.ip().is_unspecified() && addr.is_ipv6() && wildcard_v4_bound(&bound, addr.port()) => {
                tracing::warn!(%addr, %err, "IPv6 wildcard portal not bound; IPv4 wildcard serves");
            }
            Err(err) => return Err(err).with_context(|| format!("cannot listen on portal {addr}")),
        }
    }
    Ok(bound)
}

fn wildcard_v4_bound(bound: &[SocketAddr], port: u16) -> bool {
    bound.iter().any(|a| a.is_ipv4() && a.ip().is_unspecified() && a.port() == port)
}

/// Tell systemd (Type=notify) that start-up is complete, when it asked to be told.
fn notify_systemd() {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(err) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready]) {
            tracing::warn!(%err, "cannot notify systemd");
        }
    }
}
