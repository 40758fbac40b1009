//! The SCN listener: where the iSNS server delivers State Change Notifications (RFC 4171 5.6.5.8).
//! A server connects to the SCN Port registered with our portals (open-isns does not send SCNs
//! on the connection a client opened), so while access control is on the client listens on an
//! ephemeral TCP port of the address it reaches the server from.
//!
//! An SCN is only a hint to ask the server again: its content decides nothing, so a forged one
//! costs at most a query. Still, only the server's address is served, at most a few connections
//! at a time, and every message is bounded by the PDU reassembly.

use super::pdu::{self, function, Header, Message, Reassembly};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Connections from the server at once (open-isns keeps one per SCN destination).
const MAX_CONNECTIONS: usize = 4;
/// A connection that says nothing for this long is closed (the server opens a new one).
const IDLE: Duration = Duration::from_secs(3600);

/// A bound listener and the task that serves it; dropping it stops both.
pub struct ScnListener {
    pub local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ScnListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScnListener {
    /// Listens on an ephemeral port of `local`; each SCN from `server`'s address wakes `changed`.
    pub async fn bind(local: IpAddr, server: IpAddr, changed: Arc<Notify>) -> std::io::Result<ScnListener> {
        let listener = TcpListener::bind(SocketAddr::new(local, 0)).await?;
        let local = listener.local_addr()?;
        let task = tokio::spawn(serve(listener, canonical(server), changed));
        Ok(ScnListener { local, task })
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

async fn serve(listener: TcpListener, server: IpAddr, changed: Arc<Notify>) {
    // Dropped with this task (the listener's owner went away): every connection task ends too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                if canonical(peer.ip()) != server {
                    tracing::warn!(%peer, "iSNS: SCN connection from an address other than the server's refused");
                    continue;
                }
                if connections.len() >= MAX_CONNECTIONS {
                    tracing::warn!(%peer, "iSNS: too many SCN connections; refused");
                    continue;
                }
                let changed = changed.clone();
                connections.spawn(async move {
                    if let Err(err) = connection(stream, &changed).await {
                        tracing::debug!(%err, "iSNS: SCN connection ended");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ScnError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Pdu(#[from] pdu::PduError),
    #[error("idle")]
    Idle,
}

/// Reads the server's messages one PDU at a time; answers each request and signals each SCN.
async fn connection(mut stream: TcpStream, changed: &Notify) -> Result<(), ScnError> {
    let mut reassembly = Reassembly::default();
    let mut payload = Vec::new();
    loop {
        let mut head = [0u8; pdu::HEADER_LEN];
        match tokio::time::timeout(IDLE, stream.read_exact(&mut head)).await {
            Err(_) => return Err(ScnError::Idle),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(read) => read?,
        };
        let header = Header::parse(&head)?;
        // The length is 16 bits: at most 64 KiB, and the reassembly bounds the whole message.
        payload.resize(usize::from(header.length), 0);
        stream.read_exact(&mut payload).await?;
        let Some(message) = reassembly.push(header, &payload)? else { continue };
        if let Some(reply) = answer(&message) {
            stream.write_all(&reply.encode()).await?;
        }
        if message.function == function::SCN {
            tracing::info!("iSNS: state change notification; asking the server again");
            changed.notify_one();
        }
    }
}

/// SCNRsp carries the SCN's destination (5.7.5.8), its first attribute; an unknown request is
/// "not supported"; a response needs no answer.
pub fn answer(message: &Message) -> Option<Message> {
    if message.is_response() {
        return None;
    }
    Some(match message.function {
        function::SCN => {
            let attributes = pdu::decode_attributes(&message.payload).unwrap_or_default();
            Message::response(message, 0, attributes.get(..1).unwrap_or_default())
        }
        function::ESI => {
            let attributes = pdu::decode_attributes(&message.payload).unwrap_or_default();
            Message::response(message, 0, &attributes)
        }
        _ => Message::response(message, 15, &[]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isns::pdu::{tag, Attribute};

    #[tokio::test]
    async fn an_scn_is_answered_with_its_destination_and_wakes_the_client() {
        let changed = Arc::new(Notify::new());
        let scn = ScnListener::bind("127.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap(), changed.clone())
            .await
            .unwrap();
        let mut conn = TcpStream::connect(scn.local).await.unwrap();
        let mut payload = Vec::new();
        let attributes = [
            Attribute::string(tag::ISCSI_NAME, "iqn.t:dest"),
            Attribute::u32(tag::ISCSI_SCN_BITMAP, pdu::scn::DD_MEMBER_ADDED),
            Attribute::string(tag::ISCSI_NAME, "iqn.i:1"),
        ];
        pdu::encode_attributes(&attributes, &mut payload);
        let request = Message { function: function::SCN, flags: pdu::flags::SERVER, xid: 9, payload };
        conn.write_all(&request.encode()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), changed.notified()).await.expect("woken by the SCN");
        let mut head = [0u8; pdu::HEADER_LEN];
        conn.read_exact(&mut head).await.unwrap();
        let header = Header::parse(&head).unwrap();
        assert_eq!((header.function, header.xid), (0x8008, 9));
        let mut body = vec![0u8; usize::from(header.length)];
        conn.read_exact(&mut body).await.unwrap();
        let reply = Message { function: header.function, flags: header.flags, xid: 9, payload: body };
        let (status, back) = reply.status_and_attributes().unwrap();
        assert_eq!((status, back.len()), (0, 1));
        assert_eq!(back[0].as_string().as_deref(), Some("iqn.t:dest"));
    }

    #[tokio::test]
    async fn connections_from_elsewhere_are_closed_unread() {
        let changed = Arc::new(Notify::new());
        // The "server" is 127.0.0.2: a connection from 127.0.0.1 is not it.
        let scn = ScnListener::bind("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap(), changed.clone())
            .await
            .unwrap();
        let mut conn = TcpStream::connect(scn.local).await.unwrap();
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut byte)).await.expect("closed");
        assert!(matches!(read, Ok(0) | Err(_)));
    }
}
