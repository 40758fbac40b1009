//! Forwarding between the gateways of one image: a gateway that does not own the unit sends the
//! commands it cannot serve (media access) to the owner, which runs them for the originating
//! initiator port and sends back status, sense and data. Only the owner ever touches the image,
//! so fencing and COMPARE AND WRITE's atomicity stay as they are; a non-owner is active/
//! non-optimized (one more hop).
//!
//! The wire, on a TCP connection from a non-owner to the owner's listener (one listener per
//! multi-gateway LUN, on the host of the gateway's `portal=`, else loopback, at a port the system
//! picks), big-endian:
//! - opening, client: `RTGTFWD2` and the 16-byte token the owner put in its registry entry
//!   (readable only by the cluster's authenticated clients); a wrong token closes the connection;
//!   the owner answers `RTGTFWD2` before any request. An owner from before version 2 closes such a
//!   connection unanswered, and the forwarder opens another with `RTGTFWD1`, which the owner takes
//!   too: then no reply is ever `ABORTED` (unknown to a version 1 forwarder, which would answer
//!   CHECK CONDITION without sense); a command task management ended closes the connection;
//! - request: u16 port name length, the initiator port name (name and ISID), u16 relative target
//!   port, u16 CDB length, the CDB, u32 data-out length, the data-out;
//! - reply: u8 status, u32 data-out length the CDB called for, u16 sense length, the sense, u32
//!   data-in length, the data-in; status `ABORTED` (no SCSI status) says task management on the
//!   owner ended the command (below), its sense field naming the other gateway's event the owner
//!   acted on when it did (`PeerEvent`: u8 object, u64 version), or empty (the owner's own event).
//!
//! A connection opened with `RTGTMOD1` instead carries an administrator's change of the unit's
//! mode parameters (`mode_change`).
//!
//! Every length is checked against its bound before it sizes anything. One command at a time per
//! connection; a non-owner keeps idle connections for reuse and opens more as commands overlap.
//! A command whose connection fails, or whose owner dies with it in flight, is failed back to the
//! initiator with NOT READY, ASYMMETRIC ACCESS STATE TRANSITION (which it retries), never replayed.
//! Aborting a forwarded command (ABORT TASK, CLEAR TASK SET, LUN reset, PREEMPT AND ABORT on this
//! gateway) drops its connection: the reply is never read. On the owner, the command runs as a task
//! of the proxy nexus for that initiator port, so task management and PREEMPT AND ABORT there abort
//! it too; the owner then replies `ABORTED`. Whatever aborts a proxy's task on the owner is one the
//! unit's gateways all act on (a CLEAR TASK SET, a reset, PREEMPT AND ABORT: each announced through
//! the cluster), so the forwarding gateway aborts its own task too, and an aborted task has no
//! answer (SAM-5 5.6; TAS 0). Which of the two hears of it first is a race (with three gateways
//! and a clear through the third, or a reset through the owner): on `ABORTED`, the forwarding
//! gateway waits for its own abort rather than fail the command, which would answer NOT READY to
//! an initiator that must get nothing. Unless it had acted on that event before it sent the
//! command (it keeps the last version of each shared object it acted on): then no abort of its own
//! is coming, and it fails the command at once as in a transition, which the initiator retries. A
//! gateway that does not hear of it within `ABORTED_GRACE` (cut off from the cluster) fails the
//! command as before.

use super::peer_event::{self, Acted, PeerEvent};
use parking_lot::Mutex;
use rtgt_backstore::rbd::GatewayStatus;
use rtgt_scsi::{
    AbortCause, AbortTask, AccessState, ForwardFuture, ForwardReply, ForwardRequest, LogicalUnit, Nexus, ScsiStatus,
    Sense, Target, TaskResult, MAX_TRANSFER_BYTES,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAGIC: &[u8; 8] = b"RTGTFWD2";
/// The opening of a forwarder from before `ABORTED` (and of this one facing an owner as old).
const MAGIC_V1: &[u8; 8] = b"RTGTFWD1";
pub(super) const TOKEN_LEN: usize = 16;
/// An iSCSI name is at most 223 bytes, and the ISID part adds a few more.
const MAX_PORT_NAME: usize = 512;
/// The longest CDB (variable length, 32-byte CDBs and their additional length) the core takes.
const MAX_CDB: usize = 260;
/// Sense data is at most 252 bytes (SPC-4 4.5.1), plus its header.
const MAX_SENSE: usize = 260;
/// Idle connections a non-owner keeps to the owner.
const MAX_IDLE: usize = 32;
/// Proxy nexuses an owner keeps per LUN (one per initiator port and gateway port).
const MAX_PROXIES: usize = 4096;
/// Opening a connection to the owner: beyond this it is taken as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A command the owner has not answered by then is failed (initiators time out sooner anyway).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// The reply's status byte of a command task management ended on the owner: no SCSI status (SAM-5
/// 5.3.1 defines none above 0x40), so no answer can be taken for it.
const ABORTED: u8 = 0xff;
/// How long a forwarding gateway waits for its own abort of a command the owner replied `ABORTED`
/// to: the announcing gateway waits 5 s for every other to act on its event, so by then this one
/// has, or is cut off from the cluster.
const ABORTED_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
enum WireError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{what} length {len} beyond {max}")]
    TooLong { what: &'static str, len: usize, max: usize },
    #[error("timed out")]
    TimedOut,
    #[error("the owner published no usable address")]
    NoOwner,
}

/// The answer a forwarded command gets when the owner cannot be reached or went away with it.
fn transition() -> Sense {
    AccessState::Transitioning.refusal()
}

/// A fresh token from the system's randomness.
fn new_token() -> std::io::Result<[u8; TOKEN_LEN]> {
    use std::io::Read;
    let mut token = [0u8; TOKEN_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut token)?;
    Ok(token)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; TOKEN_LEN]> {
    if text.len() != TOKEN_LEN * 2 {
        return None;
    }
    let mut out = [0u8; TOKEN_LEN];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Compares in time independent of where the first difference is.
fn same_token(a: &[u8; TOKEN_LEN], b: &[u8; TOKEN_LEN]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn read_bytes(stream: &mut TcpStream, what: &'static str, len: usize, max: usize) -> Result<Vec<u8>, WireError> {
    if len > max {
        return Err(WireError::TooLong { what, len, max });
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

fn put_u16_len(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_u32_len(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// What the owner said of a forwarded command.
enum Answer {
    Reply(ForwardReply),
    /// Task management ended it there (`ABORTED`), acting on another gateway's event if named.
    Aborted(Option<PeerEvent>),
}

fn status_of(code: u8) -> ScsiStatus {
    match code {
        0x00 => ScsiStatus::Good,
        0x04 => ScsiStatus::ConditionMet,
        0x08 => ScsiStatus::Busy,
        0x18 => ScsiStatus::ReservationConflict,
        0x28 => ScsiStatus::TaskSetFull,
        0x30 => ScsiStatus::AcaActive,
        0x40 => ScsiStatus::TaskAborted,
        _ => ScsiStatus::CheckCondition,
    }
}

// ---- The non-owner's side ----

/// Sends commands to the owner on behalf of this gateway's nexuses.
#[derive(Debug)]
pub(crate) struct Forwarder {
    status: Arc<GatewayStatus>,
    /// Idle connections, each with the owner address it was opened to.
    idle: Mutex<Vec<(String, TcpStream)>>,
    acted: Acted,
}

impl Forwarder {
    pub(crate) fn new(status: Arc<GatewayStatus>) -> Arc<Self> {
        Arc::new(Forwarder { status, idle: Mutex::new(Vec::new()), acted: Acted::default() })
    }

    /// This gateway has acted on `event` (its watch saw it, or it announced it).
    pub(super) fn acted_on(&self, event: PeerEvent) {
        self.acted.note(event);
    }

    pub(crate) fn forward(self: &Arc<Self>, request: ForwardRequest) -> ForwardFuture {
        let me = self.clone();
        Box::pin(async move {
            let Some(published) = me.status.owner_forward() else {
                return Err(transition());
            };
            // An owner that stops being one (its lease lapsed: dead, hung or cut off; it will be
            // fenced) never answers what it still had: fail the command as soon as that is known.
            let owner_gone = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    if me.status.owner_forward().as_deref() != Some(published.as_str()) {
                        return;
                    }
                }
            };
            let answer = tokio::select! {
                sent = tokio::time::timeout(REPLY_TIMEOUT, me.send(published.clone(), &request)) => match sent {
                    Ok(Ok(answer)) => answer,
                    Ok(Err(e)) => {
                        tracing::debug!(port = %request.initiator_port, "forwarding to the owner failed: {e}");
                        return Err(transition());
                    }
                    Err(_) => return Err(transition()),
                },
                _ = owner_gone => return Err(transition()),
            };
            match answer {
                Answer::Reply(reply) => Ok(reply),
                // Aborted on the owner by an event this gateway acts on too: its own abort of the
                // task drops this future before the grace ends, unless it acted on the event
                // before it sent the command (see the module comment).
                Answer::Aborted(event) => {
                    let acted = async {
                        loop {
                            if event.is_some_and(|e| me.acted.covers(e)) {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    };
                    if tokio::time::timeout(ABORTED_GRACE, acted).await.is_ok() {
                        tracing::debug!(
                            port = %request.initiator_port,
                            "the owner aborted a forwarded command for an event this gateway acted on before sending it"
                        );
                        return Err(transition());
                    }
                    tracing::warn!(
                        port = %request.initiator_port,
                        "the owner aborted a forwarded command and this gateway did not: failed as in a transition"
                    );
                    Err(transition())
                }
            }
        })
    }

    async fn send(&self, published: String, request: &ForwardRequest) -> Result<Answer, WireError> {
        let reused = {
            let mut idle = self.idle.lock();
            idle.iter().position(|(to, _)| *to == published).map(|at| idle.swap_remove(at).1)
        };
        let mut stream = match reused {
            Some(s) => s,
            None => open(&published).await?.0,
        };
        let mut out =
            Vec::with_capacity(16 + request.initiator_port.len() + request.cdb.len() + request.data_out.len());
        put_u16_len(&mut out, request.initiator_port.as_bytes());
        out.extend_from_slice(&request.relative_port.to_be_bytes());
        put_u16_len(&mut out, &request.cdb);
        put_u32_len(&mut out, &request.data_out);
        stream.write_all(&out).await?;
        let status = stream.read_u8().await?;
        let data_out_expected = stream.read_u32().await?;
        let sense_len = usize::from(stream.read_u16().await?);
        let sense = read_bytes(&mut stream, "sense", sense_len, MAX_SENSE).await?;
        let data_len = stream.read_u32().await? as usize;
        let data_in = read_bytes(&mut stream, "data-in", data_len, MAX_TRANSFER_BYTES as usize).await?;
        {
            let mut idle = self.idle.lock();
            if idle.len() < MAX_IDLE {
                idle.push((published, stream));
            }
        }
        if status == ABORTED {
            return Ok(Answer::Aborted(PeerEvent::decode(&sense)));
        }
        let status = status_of(status);
        let sense = (status == ScsiStatus::CheckCondition && !sense.is_empty()).then_some(sense);
        Ok(Answer::Reply(ForwardReply { status, sense, data_out_expected, data_in }))
    }
}

/// The address and token of what an owner published (`host:port/token`).
pub(super) fn published_address(published: &str) -> Option<(&str, [u8; TOKEN_LEN])> {
    let (addr, token) = published.rsplit_once('/')?;
    Some((addr, unhex(token)?))
}

/// Connect to `host:port/token` and open the session: version 2, or 1 with an owner that knows
/// no other; returns the magic it opened with.
async fn open(published: &str) -> Result<(TcpStream, &'static [u8; 8]), WireError> {
    let (addr, token) = published_address(published).ok_or(WireError::NoOwner)?;
    match open_with(addr, &token, MAGIC).await {
        Ok(stream) => Ok((stream, MAGIC)),
        // Closed unanswered: an owner from before version 2 (or one that took the token for a
        // wrong one, which closes the next opening as well). Nothing was sent to run yet.
        Err(WireError::Io(e))
            if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset) =>
        {
            tracing::debug!(addr, "the owner does not take forwarding version 2: opening with version 1");
            Ok((open_with(addr, &token, MAGIC_V1).await?, MAGIC_V1))
        }
        Err(e) => Err(e),
    }
}

async fn open_with(addr: &str, token: &[u8; TOKEN_LEN], magic: &[u8; 8]) -> Result<TcpStream, WireError> {
    let mut stream =
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await.map_err(|_| WireError::TimedOut)??;
    stream.set_nodelay(true)?;
    let mut hello = magic.to_vec();
    hello.extend_from_slice(token);
    stream.write_all(&hello).await?;
    if magic == MAGIC {
        let mut answer = [0u8; 8];
        tokio::time::timeout(CONNECT_TIMEOUT, stream.read_exact(&mut answer))
            .await
            .map_err(|_| WireError::TimedOut)??;
        if &answer != MAGIC {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a forwarding answer").into());
        }
    }
    Ok(stream)
}

// ---- The owner's side ----

/// Listen for forwarded commands to LUN `lun` of `target` (the unit `unit`), and publish where in
/// the registry. The listener lives as long as the unit does.
pub(crate) fn listen(
    status: &Arc<GatewayStatus>,
    portal: &str,
    unit: &Arc<LogicalUnit>,
    target: &Arc<Target>,
    lun: u64,
    save: super::SaveConfig,
) -> Result<(), String> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| "no runtime to listen with".to_string())?;
    // The portal's host is where the other gateways reach this one; without one, loopback.
    let host = portal.rsplit_once(':').map(|(h, _)| h).filter(|h| !h.is_empty()).unwrap_or("127.0.0.1");
    let bind = format!("{host}:0");
    let std_listener = std::net::TcpListener::bind(&bind).map_err(|e| format!("forwarding listener on {bind}: {e}"))?;
    std_listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let local = std_listener.local_addr().map_err(|e| e.to_string())?;
    let token = new_token().map_err(|e| format!("no randomness for the forwarding token: {e}"))?;
    let server = Arc::new(Server {
        token,
        unit: Arc::downgrade(unit),
        target: Arc::downgrade(target),
        lun,
        proxies: Mutex::new(HashMap::new()),
        max_proxies: MAX_PROXIES,
        save,
    });
    let _guard = runtime.enter();
    let listener = TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
    runtime.spawn(server.accept(listener));
    status.set_forward(format!("{local}/{}", hex(&token)));
    Ok(())
}

struct Server {
    token: [u8; TOKEN_LEN],
    unit: Weak<LogicalUnit>,
    target: Weak<Target>,
    lun: u64,
    /// The nexus standing for each (initiator port, relative target port) forwarded from.
    proxies: Mutex<HashMap<(String, u16), Arc<Nexus>>>,
    /// Beyond this many proxies, commands from a new initiator port get BUSY (`MAX_PROXIES`).
    max_proxies: usize,
    /// Saves the daemon's configuration after an administrator's change asked by another gateway.
    save: super::SaveConfig,
}

/// Ends the wait of a forwarded command that task management aborted here, saying why (and for
/// which other gateway's event, when acting on one).
struct Aborted(Mutex<Option<tokio::sync::oneshot::Sender<Why>>>);

/// Why a forwarded command's task was aborted here.
type Why = (AbortCause, Option<PeerEvent>);

impl AbortTask for Aborted {
    fn abort(&self, cause: AbortCause) {
        if let Some(tell) = self.0.lock().take() {
            let _ = tell.send((cause, peer_event::acting_now()));
        }
    }
}

/// How a forwarded command's task ended on the owner.
enum Ended {
    Completed(TaskResult),
    /// Task management ended it (acting on another gateway's event, if named): the non-owner is
    /// told `ABORTED`.
    Aborted(Option<PeerEvent>),
    /// It cannot be answered at all (`AbortCause::Lost`): the connection closes, and the non-owner
    /// fails the command.
    Lost,
}

/// What the owner sends for a command task management ended here: `ABORTED` naming the event it
/// acted on, to a forwarder that knows it; None, close the connection, to one from before.
fn aborted_reply(tells_aborted: bool, event: Option<PeerEvent>) -> Option<Vec<u8>> {
    if !tells_aborted {
        return None;
    }
    let mut out = vec![ABORTED];
    out.extend_from_slice(&0u32.to_be_bytes()); // data-out length
    let event = event.map(PeerEvent::encode);
    put_u16_len(&mut out, event.as_ref().map_or(&[][..], |e| &e[..]));
    out.extend_from_slice(&0u32.to_be_bytes()); // data-in length
    Some(out)
}

static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

impl Server {
    async fn accept(self: Arc<Self>, listener: TcpListener) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let me = self.clone();
                        tokio::spawn(async move {
                            if let Err(e) = me.serve(stream).await {
                                tracing::debug!(%peer, "forwarding connection ended: {e}");
                            }
                        });
                    }
                    Err(e) => tracing::warn!("forwarding listener: {e}"),
                },
                _ = tick.tick() => {}
            }
            if self.unit.strong_count() == 0 {
                return;
            }
        }
    }

    /// The unit still served as LUN `lun` of the target.
    fn served(&self) -> Option<Arc<Target>> {
        let unit = self.unit.upgrade()?;
        let target = self.target.upgrade()?;
        let current = target.lun(self.lun)?;
        Arc::ptr_eq(&unit, &current).then_some(target)
    }

    fn proxy(&self, target: &Target, port: String, relative_port: u16) -> Option<Arc<Nexus>> {
        let mut proxies = self.proxies.lock();
        let key = (port, relative_port);
        if let Some(n) = proxies.get(&key) {
            return Some(n.clone());
        }
        if proxies.len() >= self.max_proxies {
            return None;
        }
        // The target's own if it made it first (a reservation held through it, loaded when this
        // gateway took the unit over): one nexus per initiator port and port.
        let nexus = target.proxy_nexus(&key.0, relative_port);
        proxies.insert(key, nexus.clone());
        Some(nexus)
    }

    /// Run one forwarded command as a task of `nexus`, a proxy, until it completes or task
    /// management here ends it.
    async fn run_task(
        &self,
        target: &Target,
        nexus: &Nexus,
        cdb: &[u8],
        data_out: &[u8],
        data_in: &mut Vec<u8>,
    ) -> Ended {
        let (tell, mut told) = tokio::sync::oneshot::channel();
        let abort = Arc::new(Aborted(Mutex::new(Some(tell))));
        let tag = NEXT_TAG.fetch_add(1, Ordering::Relaxed);
        let id = nexus.tasks().start(tag, self.lun, u64::MAX, abort);
        let run = target.execute_forwarded(nexus, self.lun, cdb, data_out, data_in);
        let (result, cause) = tokio::select! {
            result = run => (Some(result), None),
            cause = &mut told => (None, Some(cause.ok())),
        };
        if nexus.tasks().end(id) {
            // Still in the set, so never aborted: it completed.
            return result.map_or(Ended::Lost, Ended::Completed);
        }
        // Taken by task management, whose handle runs just after taking it (a task that completed
        // meanwhile is aborted all the same: SAM-5 5.6).
        let cause = match cause {
            Some(cause) => cause,
            None => told.await.ok(),
        };
        match cause {
            Some((AbortCause::Aborted | AbortCause::Reset, event)) => Ended::Aborted(event),
            Some((AbortCause::Lost, _)) | None => Ended::Lost,
        }
    }

    async fn serve(&self, mut stream: TcpStream) -> Result<(), WireError> {
        stream.set_nodelay(true)?;
        let mut hello = [0u8; MAGIC.len() + TOKEN_LEN];
        tokio::time::timeout(CONNECT_TIMEOUT, stream.read_exact(&mut hello))
            .await
            .map_err(|_| WireError::TimedOut)??;
        let mut token = [0u8; TOKEN_LEN];
        token.copy_from_slice(&hello[MAGIC.len()..]);
        if !same_token(&token, &self.token) {
            return Ok(());
        }
        if &hello[..MAGIC.len()] == super::mode_change::MAGIC {
            let (Some(unit), Some(target)) = (self.unit.upgrade(), self.served()) else { return Ok(()) };
            return Ok(super::mode_change::serve(stream, unit, target, self.lun, self.save.clone()).await?);
        }
        // Whether the forwarder takes `ABORTED` (version 2).
        let tells_aborted = match &hello[..MAGIC.len()] {
            m if m == MAGIC => {
                stream.write_all(MAGIC).await?;
                true
            }
            m if m == MAGIC_V1 => false,
            _ => return Ok(()),
        };
        // Reused from command to command: emptied before each, so that no reply (BUSY, or one after
        // an aborted command's partial data) carries what an earlier command, maybe another
        // initiator's, read.
        let mut data_in = Vec::new();
        loop {
            data_in.clear();
            let port_len = match stream.read_u16().await {
                Ok(n) => usize::from(n),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                Err(e) => return Err(e.into()),
            };
            let port = read_bytes(&mut stream, "port name", port_len, MAX_PORT_NAME).await?;
            let port = String::from_utf8_lossy(&port).into_owned();
            let relative_port = stream.read_u16().await?;
            let cdb_len = usize::from(stream.read_u16().await?);
            let cdb = read_bytes(&mut stream, "CDB", cdb_len, MAX_CDB).await?;
            let data_len = stream.read_u32().await? as usize;
            let data_out = read_bytes(&mut stream, "data-out", data_len, MAX_TRANSFER_BYTES as usize).await?;
            let Some(target) = self.served() else {
                return Ok(());
            };
            let result = match self.proxy(&target, port, relative_port) {
                None => TaskResult { status: ScsiStatus::Busy, sense: None, data_out_expected: 0 },
                Some(nexus) => match self.run_task(&target, &nexus, &cdb, &data_out, &mut data_in).await {
                    Ended::Completed(result) => result,
                    Ended::Aborted(event) => match aborted_reply(tells_aborted, event) {
                        Some(out) => {
                            stream.write_all(&out).await?;
                            continue;
                        }
                        None => return Ok(()),
                    },
                    Ended::Lost => return Ok(()),
                },
            };
            let sense = result.sense.unwrap_or_default();
            let mut out = Vec::with_capacity(12 + sense.len() + data_in.len());
            out.push(result.status as u8);
            out.extend_from_slice(&result.data_out_expected.to_be_bytes());
            put_u16_len(&mut out, &sense[..sense.len().min(MAX_SENSE)]);
            put_u32_len(&mut out, &data_in);
            stream.write_all(&out).await?;
        }
    }
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
