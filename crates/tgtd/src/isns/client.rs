//! The background task that keeps the iSNS server's view of this daemon right: one TCP connection
//! to the server, a full registration (with the Replace flag, so whatever was deleted goes too)
//! whenever the served targets or portals change or half the registration period has passed, a
//! deregistration when the last target goes, iSNS is turned off, or the daemon stops. With access
//! control on, also an SCN listener registered with the portals, SCNReg for every target, and the
//! discovery-domain answers (`access`) asked after each registration, every `access::REFRESH` and
//! on every SCN.

use super::access::{self, AccessControl};
use super::pdu::{self, flags, function, tag, Attribute, Header, Message, Reassembly};
use super::scn::ScnListener;
use super::{IsnsSettings, EXCHANGE_TIMEOUT};
use rtgt_iscsi::{IscsiServer, Registry};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// The longest wait between two attempts to reach a server that is down.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// How long the stop waits for the deregistration.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Targets and portals change through management requests; they are compared this often.
const POLL: Duration = Duration::from_secs(1);
/// Refresh bounds whatever period the server names (RFC 4171 6.2.6 lets it name any).
const MIN_REFRESH: Duration = Duration::from_secs(5);
const MAX_REFRESH: Duration = Duration::from_secs(3600);
/// Without a period from the server, refresh as if it had said one hour (open-isns's default).
const DEFAULT_REFRESH: Duration = Duration::from_secs(1800);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("malformed message from the server: {0}")]
    Pdu(#[from] pdu::PduError),
    #[error("the server closed the connection")]
    Closed,
    #[error("the server refused: {} ({status})", pdu::status_name(*status))]
    Refused { status: u32 },
}

/// Where the task reads what the daemon serves.
pub struct Source {
    pub registry: Arc<Registry>,
    pub iscsi: Arc<IscsiServer>,
}

/// What is registered (or to be): the iSCSI targets' names and the listening portals, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Snapshot {
    targets: Vec<String>,
    portals: Vec<SocketAddr>,
}

impl Source {
    fn snapshot(&self) -> Snapshot {
        let mut targets: Vec<String> = self.registry.targets().iter().map(|t| t.name().to_string()).collect();
        targets.sort();
        let mut portals = self.iscsi.portals();
        portals.sort();
        portals.dedup();
        Snapshot { targets, portals }
    }
}

/// What the server holds for us, as far as we know.
struct Registered {
    server: SocketAddr,
    /// The name the registration was sent as: a node the server knows, so it may deregister.
    source: String,
    snapshot: Snapshot,
    refresh_at: Instant,
    /// Registered with SCN ports and SCNReg (access control was on).
    with_scn: bool,
}

pub struct Worker {
    settings: watch::Receiver<IsnsSettings>,
    source: Source,
    entity_id: String,
    conn: Option<Connection>,
    registered: Option<Registered>,
    backoff: Duration,
    next_try: Instant,
    access: Arc<AccessControl>,
    /// While access control is on: where the server sends SCNs, and how they reach this task.
    scn: Option<ScnListener>,
    scn_events: Arc<Notify>,
    /// When the discovery-domain answers are to be asked again.
    access_due: Instant,
}

impl Worker {
    pub fn new(
        settings: watch::Receiver<IsnsSettings>,
        source: Source,
        entity_id: String,
        access: Arc<AccessControl>,
    ) -> Worker {
        Worker {
            settings,
            source,
            entity_id,
            conn: None,
            registered: None,
            backoff: FIRST_BACKOFF,
            next_try: Instant::now(),
            access,
            scn: None,
            scn_events: Arc::new(Notify::new()),
            access_due: Instant::now(),
        }
    }

    /// The connection is gone or unusable: whatever it told us about access is not trusted.
    fn lose_connection(&mut self) {
        self.conn = None;
        self.access.forget_all();
    }

    pub async fn run(mut self) {
        loop {
            let settings = self.settings.borrow_and_update().clone();
            let wanted = settings.server();
            // Off, another server, or stopping: take our registration off the server that has it.
            if self.registered.as_ref().is_some_and(|r| Some(r.server) != wanted) {
                if let Err(err) = self.deregister().await {
                    tracing::warn!(%err, "iSNS: deregistration failed");
                }
                self.registered = None;
                self.lose_connection();
            }
            if self.conn.as_ref().is_some_and(|c| Some(c.server) != wanted) {
                self.lose_connection();
            }
            if settings.stopping {
                return;
            }
            if !settings.access_control {
                self.scn = None;
            }
            if let Some(server) = wanted {
                self.sync(server, settings.access_control).await;
            }
            let poll = tokio::time::sleep(POLL);
            tokio::select! {
                changed = self.settings.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // New settings deserve a prompt try, whatever failed before.
                    self.backoff = FIRST_BACKOFF;
                    self.next_try = Instant::now();
                }
                _ = poll => {}
                _ = self.scn_events.notified() => self.access_due = Instant::now(),
                read = fill(&mut self.conn) => {
                    if let Err(err) = read.and_then(|()| self.answer_server()) {
                        // The server went away (a restart loses in-memory registrations):
                        // register again on a new connection, after the back-off.
                        tracing::warn!(%err, "iSNS: connection to the server lost");
                        self.lose_connection();
                        if let Some(r) = self.registered.as_mut() {
                            r.refresh_at = Instant::now();
                        }
                        self.next_try = Instant::now() + self.backoff;
                    }
                }
            }
        }
    }

    /// Registers again if what is served changed or the refresh is due, and asks the access
    /// answers again when due, when back-off allows.
    async fn sync(&mut self, server: SocketAddr, access_control: bool) {
        let now = Instant::now();
        let snapshot = self.source.snapshot();
        let due = match &self.registered {
            Some(r) => r.snapshot != snapshot || now >= r.refresh_at || r.with_scn != access_control,
            None => !snapshot.targets.is_empty(),
        };
        if now < self.next_try {
            return;
        }
        let access_due = access_control && self.registered.is_some() && now >= self.access_due;
        if !due && !access_due {
            return;
        }
        let result = if !due {
            self.refresh_access().await
        } else if snapshot.targets.is_empty() {
            // No target is left to speak for the entity: take it off the server.
            self.access.forget_all();
            self.deregister().await.map(|()| self.registered = None)
        } else {
            match self.register(server, snapshot, access_control).await {
                Ok(()) if access_control => self.after_registration().await,
                other => other,
            }
        };
        match result {
            Ok(()) => self.backoff = FIRST_BACKOFF,
            Err(err) => {
                tracing::warn!(%server, %err, retry_in = ?self.backoff, "iSNS: registration failed");
                self.lose_connection();
                self.next_try = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
    }

    /// A registration (with Replace) drops the server's SCN registrations with the old entity:
    /// register each target for SCNs again, then ask who may see it.
    async fn after_registration(&mut self) -> Result<(), ClientError> {
        let Some(registered) = self.registered.as_ref() else { return Ok(()) };
        let (server, targets) = (registered.server, registered.snapshot.targets.clone());
        if self.scn.is_some() {
            for target in &targets {
                let conn = self.connection(server).await?;
                let xid = conn.next_xid();
                match conn.exchange(&access::scn_registration(xid, target)).await {
                    Ok(_) => {}
                    // The answers are still asked every few seconds without SCNs.
                    Err(ClientError::Refused { status }) => {
                        tracing::warn!(target, status = pdu::status_name(status), "iSNS: SCN registration refused")
                    }
                    Err(err) => return Err(err),
                }
            }
        }
        self.refresh_access().await
    }

    /// Asks the server, as each target, which initiators share a discovery domain with it.
    async fn refresh_access(&mut self) -> Result<(), ClientError> {
        let Some(registered) = self.registered.as_ref() else { return Ok(()) };
        let (server, targets) = (registered.server, registered.snapshot.targets.clone());
        self.access_due = Instant::now() + access::REFRESH;
        self.access.retain(&targets);
        for target in &targets {
            let conn = self.connection(server).await?;
            let xid = conn.next_xid();
            match conn.exchange(&access::initiators_query(xid, target)).await {
                Ok(answer) => {
                    let initiators = access::initiators_in(&answer);
                    tracing::debug!(target, ?initiators, "iSNS: discovery domains answered");
                    self.access.confirm(target, initiators);
                }
                // "No such entry": no initiator shares a domain with it.
                Err(ClientError::Refused { status: 9 }) => self.access.confirm(target, Vec::new()),
                Err(ClientError::Refused { status }) => {
                    tracing::warn!(
                        target,
                        status = pdu::status_name(status),
                        "iSNS: access query refused; target closed"
                    );
                    self.access.forget(target);
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    async fn connection(&mut self, server: SocketAddr) -> Result<&mut Connection, ClientError> {
        if self.conn.as_ref().is_some_and(|c| c.server != server) {
            self.lose_connection();
        }
        if self.conn.is_none() {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(server))
                .await
                .map_err(|_| ClientError::Timeout(CONNECT_TIMEOUT))??;
            let _ = stream.set_nodelay(true);
            self.conn = Some(Connection::new(server, stream));
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// DevAttrReg with Replace: the entity, every portal, every target (RFC 4171 5.6.5.1).
    async fn register(&mut self, server: SocketAddr, snapshot: Snapshot, with_scn: bool) -> Result<(), ClientError> {
        let entity_id = self.entity_id.clone();
        let local = self.connection(server).await?.stream.local_addr()?.ip();
        if with_scn && self.scn.as_ref().is_none_or(|l| l.local.ip() != local) {
            self.scn = match ScnListener::bind(local, server.ip(), self.scn_events.clone()).await {
                Ok(listener) => Some(listener),
                Err(err) => {
                    tracing::warn!(%err, "iSNS: no SCN listener; discovery domains are asked every few seconds only");
                    None
                }
            };
        }
        let scn_port = self.scn.as_ref().map(|l| l.local);
        let conn = self.connection(server).await?;
        let mut operating = vec![
            Attribute::string(tag::ENTITY_IDENTIFIER, &entity_id),
            Attribute::u32(tag::ENTITY_PROTOCOL, pdu::PROTOCOL_ISCSI),
        ];
        let mut portals: Vec<SocketAddr> = snapshot
            .portals
            .iter()
            .map(|p| if p.ip().is_unspecified() { SocketAddr::new(local, p.port()) } else { *p })
            .collect();
        portals.dedup();
        for portal in portals {
            operating.push(Attribute::ip(tag::PORTAL_IP_ADDRESS, portal.ip()));
            operating.push(Attribute::tcp_port(tag::PORTAL_PORT, portal.port()));
            // The server connects to the portal's address at this port: only where we listen.
            if let Some(scn) = scn_port.filter(|s| s.ip() == portal.ip()) {
                operating.push(Attribute::tcp_port(tag::SCN_PORT, scn.port()));
            }
        }
        for name in &snapshot.targets {
            operating.push(Attribute::string(tag::ISCSI_NAME, name));
            operating.push(Attribute::u32(tag::ISCSI_NODE_TYPE, pdu::NODE_TYPE_TARGET));
        }
        let source = snapshot.targets[0].clone();
        let key = [Attribute::string(tag::ENTITY_IDENTIFIER, &entity_id)];
        let xid = conn.next_xid();
        let request = Message::request(function::DEV_ATTR_REG, flags::REPLACE, xid, &source, &key, &operating);
        let answer = conn.exchange(&request).await?;
        let period = answer
            .iter()
            .find(|a| a.tag == tag::REGISTRATION_PERIOD)
            .and_then(Attribute::as_u32)
            .map_or(DEFAULT_REFRESH, |secs| Duration::from_secs(u64::from(secs) / 2));
        let refresh = period.clamp(MIN_REFRESH, MAX_REFRESH);
        tracing::info!(%server, targets = snapshot.targets.len(), portals = snapshot.portals.len(), "iSNS: registered");
        self.registered = Some(Registered { server, source, snapshot, refresh_at: Instant::now() + refresh, with_scn });
        Ok(())
    }

    /// DevDereg of the whole entity (RFC 4171 5.6.5.4), sent as the node that registered it.
    async fn deregister(&mut self) -> Result<(), ClientError> {
        let Some(registered) = self.registered.as_ref() else { return Ok(()) };
        let (server, source) = (registered.server, registered.source.clone());
        let entity_id = self.entity_id.clone();
        let conn = self.connection(server).await?;
        let xid = conn.next_xid();
        let operating = [Attribute::string(tag::ENTITY_IDENTIFIER, &entity_id)];
        conn.exchange(&Message::request(function::DEV_DEREG, 0, xid, &source, &[], &operating)).await?;
        tracing::info!(%server, "iSNS: deregistered");
        Ok(())
    }

    /// Handles what the server sent unasked (ESI, SCN) in the data read so far.
    fn answer_server(&mut self) -> Result<(), ClientError> {
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
        while let Some(message) = conn.next_message()? {
            conn.queue_answer(&message);
            // A server may send SCNs on our own connection too: the same hint.
            if message.function == function::SCN {
                self.access_due = Instant::now();
            }
        }
        Ok(())
    }
}

/// Reads what the server sent; pending forever when there is no connection. Cancel-safe: it is
/// one `read`, whose bytes are kept in the connection's buffer.
async fn fill(conn: &mut Option<Connection>) -> Result<(), ClientError> {
    let Some(conn) = conn.as_mut() else { return std::future::pending().await };
    conn.flush_replies().await?;
    conn.fill().await
}

struct Connection {
    server: SocketAddr,
    stream: TcpStream,
    /// Bytes read but not yet a whole PDU; never more than one PDU's worth (header + 64 KiB).
    buffer: Vec<u8>,
    reassembly: Reassembly,
    xid: u16,
    /// Answers owed to the server's own requests, sent before the next read.
    pending_replies: Vec<Message>,
}

impl Connection {
    fn new(server: SocketAddr, stream: TcpStream) -> Connection {
        Connection {
            server,
            stream,
            buffer: Vec::new(),
            reassembly: Reassembly::default(),
            xid: 0,
            pending_replies: Vec::new(),
        }
    }

    fn next_xid(&mut self) -> u16 {
        self.xid = self.xid.wrapping_add(1);
        self.xid
    }

    /// One read into the buffer; an end of stream is an error (the server went away).
    async fn fill(&mut self) -> Result<(), ClientError> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// The next whole message in the buffer, if one is complete. A PDU's length is 16 bits, so
    /// the buffer never holds more than one PDU plus one read; the reassembly bounds messages.
    fn next_message(&mut self) -> Result<Option<Message>, ClientError> {
        loop {
            let Some(head) = self.buffer.get(..pdu::HEADER_LEN) else { return Ok(None) };
            let header = Header::parse(head.try_into().expect("HEADER_LEN bytes"))?;
            let end = pdu::HEADER_LEN + usize::from(header.length);
            if self.buffer.len() < end {
                return Ok(None);
            }
            let done = self.reassembly.push(header, &self.buffer[pdu::HEADER_LEN..end]);
            self.buffer.drain(..end);
            if let Some(message) = done? {
                return Ok(Some(message));
            }
        }
    }

    /// The server's own requests get an answer: ESI is echoed back (RFC 4171 5.6.5.13, so the
    /// server keeps us), an SCN acknowledged; anything else is "not understood". A late answer
    /// to a request given up on gets none.
    fn queue_answer(&mut self, message: &Message) {
        self.pending_replies.extend(super::scn::answer(message));
    }

    async fn flush_replies(&mut self) -> Result<(), ClientError> {
        for reply in std::mem::take(&mut self.pending_replies) {
            self.stream.write_all(&reply.encode()).await?;
        }
        Ok(())
    }

    /// Sends a request and waits (bounded) for its response; returns the response's attributes
    /// when its status is success.
    async fn exchange(&mut self, request: &Message) -> Result<Vec<Attribute>, ClientError> {
        let xid = request.xid;
        let wait = async {
            self.flush_replies().await?;
            self.stream.write_all(&request.encode()).await?;
            loop {
                while let Some(message) = self.next_message()? {
                    if message.is_response() && message.xid == xid {
                        return Ok::<Message, ClientError>(message);
                    }
                    self.queue_answer(&message);
                }
                self.flush_replies().await?;
                self.fill().await?;
            }
        };
        let response = tokio::time::timeout(EXCHANGE_TIMEOUT, wait)
            .await
            .map_err(|_| ClientError::Timeout(EXCHANGE_TIMEOUT))??;
        let (status, attributes) = response.status_and_attributes()?;
        if status != 0 {
            return Err(ClientError::Refused { status });
        }
        Ok(attributes)
    }
}
