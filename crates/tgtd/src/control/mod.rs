//! The management socket server: receives `rtgt_mgmt::Request`s from tgtadm and applies them to the
//! `Daemon`.
//!
//! Each connection is served by its own task and may carry any number of requests, one at a time.
//! Requests are applied one at a time across all connections (tgt's management is serial too, and it
//! keeps "check, then change" steps such as "refuse to stop while targets exist" free of races), on
//! the blocking pool because opening a backing file may block. A malformed request gets an error
//! response; a connection that stalls mid-message is dropped after a timeout; nothing a client sends
//! can stop the accept loop.

pub mod access;
mod account_ops;
mod advice;
mod audit;
mod changer_ops;
pub(crate) use changer_ops::changer_param;
mod lun_gateways;
mod lun_ops;
mod portal_ops;
mod session_ops;
pub(crate) mod show;
pub mod socket;
mod system_ops;

pub use system_ops::{install_debug_switch, parse_data_out_timeout, parse_write_budget, DebugSwitch};
mod target_ops;
#[cfg(test)]
mod tests;
mod vhost_ops;

use crate::Daemon;
use parking_lot::Mutex;
use rtgt_mgmt::{
    decode, encode, frame_length, AccountOp, ErrorCode, LunOp, MgmtError, Op, PortalOp, Reply, Request, Response,
    TargetOp,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

/// A client that opened a connection but sends nothing is dropped after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Once a length prefix has arrived, the body must follow within this time.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The result of applying one request: the answer, and whether the daemon must stop once it is sent.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub result: Result<Reply, MgmtError>,
    pub stop: bool,
}

impl From<Result<Reply, MgmtError>> for Outcome {
    fn from(result: Result<Reply, MgmtError>) -> Self {
        Outcome { result, stop: false }
    }
}

/// What the connection tasks share.
struct Control {
    daemon: Arc<Daemon>,
    access: access::ControlAccess,
    /// Serialises request application (see the module comment).
    apply_lock: Mutex<()>,
}

/// Serve management requests on `listener` until the daemon stops; only peers `access` permits
/// get their requests applied.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>, access: access::ControlAccess) {
    let control = Arc::new(Control { daemon, access, apply_lock: Mutex::new(()) });
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let control = control.clone();
                tokio::spawn(async move {
                    if let Err(err) = control.connection(stream).await {
                        tracing::debug!(%err, "management connection ended");
                    }
                });
            }
            Err(err) => {
                // Out of descriptors, most likely: back off instead of spinning.
                tracing::warn!(%err, "cannot accept a management connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

impl Control {
    async fn connection(self: &Arc<Self>, mut stream: UnixStream) -> std::io::Result<()> {
        let (peer, refused) = match self.admit(&stream) {
            Ok(peer) => (Some(peer), None),
            Err(err) => (None, Some(err)),
        };
        loop {
            let mut prefix = [0u8; 4];
            match tokio::time::timeout(IDLE_TIMEOUT, stream.read_exact(&mut prefix)).await {
                Err(_) => return Ok(()),
                Ok(Err(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(Err(err)) => return Err(err),
                Ok(Ok(_)) => {}
            }
            let len = match frame_length(prefix) {
                Ok(len) => len,
                Err(err) => {
                    // The stream cannot be resynchronised after a bad length: answer and close.
                    let error = MgmtError::with_message(ErrorCode::InvalidRequest, err.to_string());
                    return send(&mut stream, &Response::Error(error)).await;
                }
            };
            if let Some(refusal) = &refused {
                // Answered as soon as the length is known, nothing of the body read or allocated:
                // a peer that may not manage tgtd costs no memory, whatever it announces. The
                // answer says why, so tgtadm can print it.
                send(&mut stream, &Response::Error(refusal.clone())).await?;
                // What the peer is still writing is read into a small buffer and dropped, so that
                // a tgtadm in mid-write is not cut off before it reads the refusal.
                let _ = tokio::time::timeout(BODY_TIMEOUT, discard(&mut stream, len)).await;
                return Ok(());
            }
            let body = match tokio::time::timeout(BODY_TIMEOUT, read_body(&mut stream, len)).await {
                Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "request body stalled")),
                Ok(result) => result?,
            };
            let outcome = match decode::<Request>(&body) {
                Ok(request) => match &peer {
                    Some(peer) => self.apply(*peer, request).await,
                    // Unreachable: without a peer the connection was refused above.
                    None => return Ok(()),
                },
                Err(err) => Outcome::from(Err(MgmtError::with_message(
                    ErrorCode::InvalidRequest,
                    format!("malformed request: {err}"),
                ))),
            };
            send(&mut stream, &Response::from(outcome.result)).await?;
            if outcome.stop {
                self.daemon.request_stop();
                // The connection stays open until the process exits (the runtime drops this task
                // only then): tgtadm waits for that end, so once `system delete` returns, the
                // control socket, the portals and the state directory are free for a new tgtd.
                let _held_until_exit = stream;
                std::future::pending::<()>().await;
                return Ok(());
            }
        }
    }

    /// SO_PEERCRED against the access rule: the admitted peer (named in the audit lines), or the
    /// refusal, logged once per connection.
    fn admit(&self, stream: &UnixStream) -> Result<access::Peer, MgmtError> {
        let cred = stream.peer_cred().map_err(|err| {
            tracing::warn!(%err, "management connection refused: its credentials cannot be read");
            MgmtError::with_message(ErrorCode::PermissionDenied, "the peer's credentials cannot be read")
        })?;
        let peer = access::Peer { uid: cred.uid(), gid: cred.gid(), pid: cred.pid() };
        let groups = || {
            use std::os::fd::AsFd;
            access::peer_groups(stream.as_fd()).unwrap_or_else(|err| {
                tracing::warn!(%err, "the peer's supplementary groups cannot be read: only its primary group counts");
                Vec::new()
            })
        };
        self.access.check(&peer, groups).inspect_err(|_| {
            tracing::warn!(
                uid = peer.uid,
                gid = peer.gid,
                pid = peer.pid,
                "management connection refused: user not allowed"
            );
        })?;
        Ok(peer)
    }

    async fn apply(self: &Arc<Self>, peer: access::Peer, request: Request) -> Outcome {
        tracing::debug!(?request, "management request");
        // Rendered before the request is consumed; the audit line is written once the outcome is known.
        let what = audit::render(&request);
        let read_only = audit::is_read_only(&request.op);
        if let Op::Target(TargetOp::New { tid, name }) = &request.op {
            advice::warn_about_target_name(*tid, name);
        }
        let this = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _serial = this.apply_lock.lock();
            dispatch(&this.daemon, request)
        });
        match task.await {
            Ok(outcome) => {
                self.daemon.counters.management_request(outcome.result.is_ok());
                let who = audit::who(&peer);
                match &outcome.result {
                    Err(err) => tracing::info!("management: {who} refused: {what}: {err}"),
                    Ok(_) if !read_only => tracing::info!("management: {who} {what}"),
                    Ok(_) => {}
                }
                outcome
            }
            Err(err) => {
                tracing::error!(%err, "management request failed inside the daemon");
                Outcome::from(Err(MgmtError::with_message(
                    ErrorCode::Unknown,
                    "internal error while applying the request",
                )))
            }
        }
    }
}

/// A request body of `len` bytes (already bounded by `frame_length`). The buffer grows with what
/// arrives rather than being sized by the announced length up front.
async fn read_body(stream: &mut UnixStream, len: usize) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::with_capacity(len.min(64 << 10));
    (&mut *stream).take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(body)
}

/// Read and drop up to `len` bytes, a small buffer at a time; stops at end of stream.
async fn discard(stream: &mut UnixStream, len: usize) -> std::io::Result<()> {
    let mut buf = [0u8; 4096];
    let mut left = len;
    while left > 0 {
        let n = stream.read(&mut buf[..left.min(4096)]).await?;
        if n == 0 {
            break;
        }
        left -= n;
    }
    Ok(())
}

async fn send(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let frame = match encode(response) {
        Ok(frame) => frame,
        Err(err) => {
            tracing::error!(%err, "cannot encode a management response");
            let fallback = Response::Error(MgmtError::with_message(ErrorCode::Unknown, err.to_string()));
            encode(&fallback).map_err(|e| std::io::Error::other(e.to_string()))?
        }
    };
    stream.write_all(&frame).await?;
    stream.flush().await
}

/// Apply one request to the daemon. Synchronous: the caller runs it where blocking is allowed.
/// A change is written to the state file before it is answered, so an acknowledged change survives
/// a crash.
pub(crate) fn dispatch(daemon: &Daemon, request: Request) -> Outcome {
    let Request { lld, op } = request;
    let changes = changes_configuration(&op);
    let mut outcome = match op {
        // vhost targets live in their own table; they are saved like the iSCSI ones.
        op @ (Op::Target(_) | Op::LogicalUnit(_)) if lld == rtgt_mgmt::Lld::Vhost => {
            vhost_ops::apply(daemon, op).into()
        }
        Op::Target(op) => target_ops::apply(daemon, op).into(),
        Op::LogicalUnit(op) => lun_ops::apply(daemon, op).into(),
        Op::System(op) => system_ops::apply(daemon, op),
        Op::Account(op) => account_ops::apply(daemon, op).into(),
        Op::Portal(op) => portal_ops::apply(daemon, op).into(),
        Op::Lld(op) => portal_ops::apply_lld(daemon, op).into(),
        Op::Session(op) => session_ops::apply_session(daemon, op).into(),
        Op::Connection(op) => session_ops::apply_connection(daemon, op).into(),
    };
    if changes && outcome.result.is_ok() {
        if let Err(err) = daemon.config.save(daemon) {
            tracing::error!(%err, "the running configuration could not be saved");
            outcome.result = Err(MgmtError::with_message(
                ErrorCode::Unknown,
                format!("applied, but not saved (it will not survive a restart): {err}"),
            ));
        }
    }
    outcome
}

/// Whether a successful `op` changes what the state file holds.
fn changes_configuration(op: &Op) -> bool {
    match op {
        Op::Target(op) => !matches!(op, TargetOp::Show { .. }),
        Op::LogicalUnit(op) => !matches!(op, LunOp::Show { .. }),
        Op::Account(op) => !matches!(op, AccountOp::Show { .. }),
        Op::Portal(op) => !matches!(op, PortalOp::Show),
        // The iSNS settings are saved; the other system settings come from the command line.
        Op::System(rtgt_mgmt::SystemOp::Update { params }) => params.iter().any(|p| crate::isns::is_setting(&p.name)),
        Op::System(_) | Op::Lld(_) | Op::Session(_) | Op::Connection(_) => false,
    }
}
