//! Portals: accept loops, one task per connection (login, then the reader with its writer task), and
//! shutdown: stop accepting, ask full-feature sessions to log out (Async Message, event 1, RFC 7143
//! 11.9.1), close the rest, and wait briefly for in-flight commands.
//!
//! A server can be held closed (`hold`, then `open`): its portals are bound, so a taken port is still
//! an error when it happens, but no connection is accepted until it opens. tgtd holds it while the
//! saved configuration is replayed, so that no initiator logs in to a target whose CHAP accounts or
//! access rules are not all back yet.

use crate::full_feature::Conn;
use crate::login::{login, ConnCtx, LOGIN_DATA_LIMIT};
use crate::params::Digest;
use crate::pdu::{off, Bhs, Opcode, PduReader, RESERVED_TAG};
use crate::session::{next_id, ConnControl};
use crate::splice::{OutStream, PipePool};
use crate::writer::{out_queue, BufPool, OutSender, Outgoing, Stat, Writer};
use crate::Registry;
use bytes::Bytes;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncRead;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How long shutdown waits for sessions to log out and commands to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A live connection as the server sees it.
#[derive(Debug)]
struct LiveConn {
    control: Arc<ConnControl>,
    out: OutSender,
    full_feature: AtomicBool,
}

#[derive(Debug, Default)]
pub(crate) struct ServerState {
    conns: Mutex<HashMap<u64, Arc<LiveConn>>>,
    gone: Notify,
    stopping: AtomicBool,
    listeners: Mutex<Vec<(SocketAddr, JoinHandle<()>)>>,
    /// While set, accept loops wait before their first accept (see the module comment).
    held: AtomicBool,
    opened: Notify,
}

impl ServerState {
    /// Returns once the server is not held.
    async fn wait_open(&self) {
        loop {
            // Registered before the check, so an `open` between the check and the await still wakes it.
            let opened = self.opened.notified();
            if !self.held.load(Ordering::Acquire) {
                return;
            }
            opened.await;
        }
    }
}

#[derive(Debug)]
pub struct IscsiServer {
    pub registry: Arc<Registry>,
    state: Arc<ServerState>,
}

impl IscsiServer {
    pub fn new(registry: Arc<Registry>) -> Arc<Self> {
        Arc::new(IscsiServer { registry, state: Arc::new(ServerState::default()) })
    }

    /// Accept nothing on any portal, bound now or later, until `open`. Connections that arrive
    /// meanwhile wait in the kernel's backlog and are served once the server opens.
    pub fn hold(&self) {
        self.state.held.store(true, Ordering::Release);
    }

    /// Start accepting on every portal (after `hold`).
    pub fn open(&self) {
        self.state.held.store(false, Ordering::Release);
        self.state.opened.notify_waiters();
    }

    /// Bind a portal and serve it in the background (once the server is not held); returns the
    /// bound address (port 0 resolved).
    pub async fn listen(self: &Arc<Self>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        self.registry.add_portal(bound);
        let registry = self.registry.clone();
        let state = self.state.clone();
        let task = tokio::spawn(async move {
            state.wait_open().await;
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        if state.stopping.load(Ordering::Acquire) {
                            continue;
                        }
                        tokio::spawn(serve(stream, registry.clone(), state.clone()));
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept on {bound}: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        self.state.listeners.lock().push((bound, task));
        tracing::info!("iSCSI portal listening on {bound}");
        Ok(bound)
    }

    /// Stop listening on one portal (as returned by `listen`); sessions that came in through it go
    /// on. False when no portal has this address.
    pub fn unlisten(&self, addr: SocketAddr) -> bool {
        let mut listeners = self.state.listeners.lock();
        let Some(i) = listeners.iter().position(|(a, _)| *a == addr) else { return false };
        let (bound, task) = listeners.remove(i);
        drop(listeners);
        task.abort();
        self.registry.remove_portal(bound);
        tracing::info!("iSCSI portal {bound} closed");
        true
    }

    /// The portals listening now, as bound (port 0 resolved), in the order they were opened.
    pub fn portals(&self) -> Vec<SocketAddr> {
        self.state.listeners.lock().iter().map(|(a, _)| *a).collect()
    }

    /// Stop accepting, ask every session to log out, close what remains.
    pub async fn shutdown(&self) {
        self.state.stopping.store(true, Ordering::Release);
        for (addr, task) in self.state.listeners.lock().drain(..) {
            task.abort();
            self.registry.remove_portal(addr);
        }
        let conns: Vec<Arc<LiveConn>> = self.state.conns.lock().values().cloned().collect();
        for c in &conns {
            if c.full_feature.load(Ordering::Acquire) {
                let _ = c.out.send(Outgoing::Pdu { bhs: logout_request(), data: Bytes::new(), stat: Stat::Current });
            } else {
                c.control.close();
            }
        }
        self.wait_idle(SHUTDOWN_GRACE).await;
        let left: Vec<Arc<LiveConn>> = self.state.conns.lock().values().cloned().collect();
        for c in left {
            c.control.close();
        }
        self.wait_idle(Duration::from_millis(500)).await;
    }

    /// Connections now open (logging in or logged in).
    pub fn connection_count(&self) -> usize {
        self.state.conns.lock().len()
    }

    async fn wait_idle(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.state.gone.notified();
            if self.state.conns.lock().is_empty() {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return;
            }
        }
    }
}

/// Async Message, AsyncEvent 1: the target requests a logout within Parameter3 seconds (11.9.1).
fn logout_request() -> Bhs {
    let mut h = Bhs::new(Opcode::AsyncMessage);
    h.set_lun([0; 8]);
    h.set_itt(RESERVED_TAG);
    h.0[off::DATA_SN] = 1;
    h.set_u16_at(42, SHUTDOWN_GRACE.as_secs() as u16);
    h
}

/// Removes the connection from the server's table however the task ends.
struct Registered {
    id: u64,
    state: Arc<ServerState>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.state.conns.lock().remove(&self.id);
        self.state.gone.notify_waiters();
    }
}

#[tracing::instrument(name = "conn", skip_all, fields(peer))]
async fn serve(stream: TcpStream, registry: Arc<Registry>, state: Arc<ServerState>) {
    let _ = stream.set_nodelay(true);
    let (Ok(local), Ok(peer)) = (stream.local_addr(), stream.peer_addr()) else { return };
    tracing::Span::current().record("peer", tracing::field::display(peer));
    let (rd, wr) = stream.into_split();
    serve_io(rd, wr, local, peer, registry, state).await
}

/// One connection over any byte stream: login, then full feature phase until it ends.
pub(crate) async fn serve_io<R, W>(
    rd: R,
    mut wr: W,
    local: SocketAddr,
    peer: SocketAddr,
    registry: Arc<Registry>,
    state: Arc<ServerState>,
) where
    R: AsyncRead + Unpin,
    W: OutStream + Send + 'static,
{
    let mut reader = PduReader::new(rd, LOGIN_DATA_LIMIT);
    let (tx, rx) = out_queue();
    let control = Arc::new(ConnControl::default());
    let id = next_id();
    let live = Arc::new(LiveConn { control: control.clone(), out: tx.clone(), full_feature: AtomicBool::new(false) });
    state.conns.lock().insert(id, live.clone());
    let _registered = Registered { id, state: state.clone() };
    let ctx = ConnCtx { registry: registry.clone(), local, peer, conn_id: id, control: control.clone() };
    let Some(li) = login(&mut reader, &mut wr, &ctx).await else { return };
    drop(ctx);
    let p = li.params.clone();
    reader.header_digest = p.header_digest == Digest::Crc32c;
    reader.data_digest = p.data_digest == Digest::Crc32c;
    reader.max_data_segment = p.our_max_recv_data_segment_length;
    let max_xmit = li.target.as_ref().map(|t| t.target_params().max_xmit_data_segment_length).unwrap_or(u32::MAX);
    let pool = Arc::new(BufPool::default());
    let pipes = Arc::new(PipePool::default());
    // Read data goes from the page cache to the socket when nothing needs its bytes on the way.
    let splice_reads = crate::splice::splice_reads() && !reader.data_digest && wr.kernel_socket().is_some();
    let writer = Writer {
        sock: wr,
        rx,
        stat_sn: li.stat_sn,
        session: li.session.clone(),
        header_digest: reader.header_digest,
        data_digest: reader.data_digest,
        max_data_in: p.initiator_max_recv_data_segment_length.min(max_xmit) as usize,
        max_burst: li.session.params.max_burst_length as usize,
        pool: pool.clone(),
        pipes: pipes.clone(),
        registry: registry.clone(),
        target: li.target.clone(),
        control: control.clone(),
        peer,
    };
    let writer = tokio::spawn(writer.run());
    live.full_feature.store(true, Ordering::Release);
    if state.stopping.load(Ordering::Acquire) {
        let _ = tx.send(Outgoing::Pdu { bhs: logout_request(), data: Bytes::new(), stat: Stat::Current });
    }
    tracing::info!(tsih = li.session.tsih, initiator = %li.session.initiator_name, "logged in");
    // Session-wide values (bursts, R2T rules) come from the leading login; digests and segment
    // lengths are this connection's.
    let mut params = li.session.params.clone();
    params.header_digest = p.header_digest;
    params.data_digest = p.data_digest;
    params.our_max_recv_data_segment_length = p.our_max_recv_data_segment_length;
    params.initiator_max_recv_data_segment_length = p.initiator_max_recv_data_segment_length;
    let cid = li.session.conns.lock().iter().find(|c| c.id == id).map(|c| c.info.cid).unwrap_or(0);
    let mut conn = Conn::new(id, cid, li.session, li.target, params, tx, pool, registry, local, peer);
    conn.pipes = splice_reads.then_some(pipes);
    drop(live);
    conn.run(&mut reader, &control).await;
    conn.session.leave(conn.id);
    drop(conn);
    // Let the writer flush what is queued (a Logout Response) before the socket goes.
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, writer).await;
    tracing::info!("connection closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many connections the server has taken in, polled for up to `limit`.
    async fn connections_within(server: &IscsiServer, want: usize, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        while server.connection_count() != want && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.connection_count()
    }

    #[tokio::test]
    async fn a_held_server_binds_but_serves_nobody_until_it_opens() {
        let server = IscsiServer::new(Registry::new());
        server.hold();
        let addr = server.listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        // The port is bound (the kernel completes the handshake) but nothing is taken in.
        let _client = TcpStream::connect(addr).await.unwrap();
        assert_eq!(connections_within(&server, 1, Duration::from_millis(300)).await, 0);
        server.open();
        assert_eq!(connections_within(&server, 1, Duration::from_secs(5)).await, 1);
        server.shutdown().await;
    }
}
