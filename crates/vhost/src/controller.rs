//! A vhost-user-scsi controller: one unix socket serving one SCSI target to one VM at a time.
//!
//! A thread accepts the VMM's connection and runs the rust-vmm daemon for it; when the VMM goes
//! away (QEMU stops or restarts) the guest's nexus is removed and the thread waits for the next
//! connection on the same socket, so a restarted VM finds its disk again. Everything written and
//! acknowledged went through the scsi crate into the backing store before its used-ring entry was
//! published, so nothing acknowledged is lost across a reconnection.

use crate::backend::{events_pending_id, ScsiBackend};
use crate::events::LunEvent;
use crate::socket::{SocketAccess, SocketError};
use crate::write_budget::{WriteBudget, DEFAULT_WRITE_BUDGET};
use parking_lot::Mutex;
use rtgt_scsi::{Nexus, Target};
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use vhost::vhost_user::Listener;
use vhost_user_backend::{ShutdownHandle, VhostUserBackend, VhostUserDaemon};
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{new_event_consumer_and_notifier, EventConsumer, EventFlag, EventNotifier};

/// Events kept for a guest that has not posted event buffers; older ones are dropped past this
/// (the guest's own rescans and unit attentions still tell it).
const MAX_PENDING_EVENTS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum VhostError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("cannot create an event notifier: {0}")]
    Event(std::io::Error),
    #[error("cannot start the vhost-user thread: {0}")]
    Thread(std::io::Error),
}

/// Options of one controller.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub socket: PathBuf,
    /// Request queues offered (the guest may use fewer).
    pub request_queues: usize,
    /// Who may connect to the socket besides the daemon's user.
    pub access: SocketAccess,
    /// Data-out bytes the device holds at once for commands in flight (see `write_budget`).
    pub write_budget: u64,
}

impl ControllerConfig {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        ControllerConfig {
            socket: socket.into(),
            request_queues: 8,
            access: SocketAccess::default(),
            write_budget: DEFAULT_WRITE_BUDGET,
        }
    }
}

/// What the connections of one controller share.
pub(crate) struct Shared {
    pub target: Arc<Target>,
    pub runtime: tokio::runtime::Handle,
    pub request_queues: usize,
    pub socket: PathBuf,
    /// The socket file's (device, inode): stop removes that file only.
    socket_file: (u64, u64),
    pub write_budget: WriteBudget,
    pub events: Mutex<VecDeque<LunEvent>>,
    events_ready: EventConsumer,
    events_notify: EventNotifier,
    connected: AtomicBool,
    connections: AtomicU64,
    stopping: AtomicBool,
}

impl Shared {
    /// A VMM sent its memory map: register the guest's I_T nexus.
    pub(crate) fn guest_connected(&self) -> Arc<Nexus> {
        let n = self.connections.fetch_add(1, Ordering::Relaxed) + 1;
        self.connected.store(true, Ordering::Relaxed);
        // A new guest scans every LUN itself; earlier hotplug events mean nothing to it.
        self.events.lock().clear();
        tracing::info!(socket = %self.socket.display(), connection = n, "vhost-user-scsi guest connected");
        self.target.add_nexus(format!("vhost-user:{},c,{n}", self.socket.display()))
    }

    pub(crate) fn events_consumed(&self) {
        let _ = self.events_ready.consume();
    }
}

/// A running controller (see the module comment).
pub struct VhostScsiController {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    connection: Arc<Mutex<Option<ShutdownHandle>>>,
}

impl std::fmt::Debug for VhostScsiController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhostScsiController").field("socket", &self.shared.socket).finish_non_exhaustive()
    }
}

impl VhostScsiController {
    /// Listen on `config.socket` (replacing only a stale socket file, see `socket`) and serve
    /// `target` to whichever VMM connects. Commands run on `runtime`.
    pub fn start(
        target: Arc<Target>,
        config: ControllerConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Arc<Self>, VhostError> {
        let bound = crate::socket::bind(&config.socket, config.access)?;
        // From a plain UnixListener the library's Listener never unlinks anything itself.
        let listener = Listener::from(bound.listener);
        let (events_ready, events_notify) =
            new_event_consumer_and_notifier(EventFlag::NONBLOCK).map_err(VhostError::Event)?;
        let shared = Arc::new(Shared {
            target,
            runtime,
            request_queues: config.request_queues.clamp(1, 62),
            socket: config.socket,
            socket_file: bound.file,
            write_budget: WriteBudget::new(config.write_budget),
            events: Mutex::new(VecDeque::new()),
            events_ready,
            events_notify,
            connected: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        let connection = Arc::new(Mutex::new(None));
        let (thread_shared, thread_connection) = (shared.clone(), connection.clone());
        let thread = std::thread::Builder::new()
            .name("vhost-scsi-accept".into())
            .spawn(move || serve(thread_shared, listener, thread_connection))
            .map_err(VhostError::Thread)?;
        Ok(Arc::new(VhostScsiController { shared, thread: Mutex::new(Some(thread)), connection }))
    }

    pub fn socket(&self) -> &Path {
        &self.shared.socket
    }

    pub fn target(&self) -> &Arc<Target> {
        &self.shared.target
    }

    /// Whether a VMM is attached and has sent the guest's memory.
    pub fn connected(&self) -> bool {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// How many guests have connected since the controller started.
    pub fn connections(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// Report a LUN change to the guest through the event queue (when it negotiated the feature).
    pub fn notify(&self, event: LunEvent) {
        {
            let mut events = self.shared.events.lock();
            if events.len() >= MAX_PENDING_EVENTS {
                events.pop_front();
            }
            events.push_back(event);
        }
        let _ = self.shared.events_notify.notify();
    }

    /// Drop the guest's connection and stop listening; the socket file is removed (when it is still
    /// the one this controller created).
    pub fn stop(&self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        if let Some(handle) = self.connection.lock().take() {
            handle.shutdown();
        }
        // Wake the accept: a connection that is closed at once.
        let _ = std::os::unix::net::UnixStream::connect(&self.shared.socket);
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
        crate::socket::remove_if_ours(&self.shared.socket, self.shared.socket_file);
    }
}

/// The accept loop: one daemon per connection, so every guest starts from a clean device.
fn serve(shared: Arc<Shared>, mut listener: Listener, connection: Arc<Mutex<Option<ShutdownHandle>>>) {
    while !shared.stopping.load(Ordering::Relaxed) {
        let backend = ScsiBackend::new(shared.clone());
        let memory = GuestMemoryAtomic::new(GuestMemoryMmap::new());
        let mut daemon = match VhostUserDaemon::new("vhost-scsi".into(), backend.clone(), memory) {
            Ok(daemon) => daemon,
            Err(err) => {
                tracing::error!(%err, "cannot create the vhost-user daemon");
                return;
            }
        };
        let handlers = daemon.get_epoll_handlers();
        let id = events_pending_id(backend.num_queues());
        if let Some(handler) = handlers.first() {
            if let Err(err) = handler.register_listener(shared.events_ready.as_raw_fd(), EventSet::IN, id) {
                tracing::warn!(%err, "hotplug events will not reach the guest");
            }
        }
        if let Err(err) = daemon.start(&mut listener) {
            tracing::warn!(%err, "vhost-user connection not accepted");
            std::thread::sleep(std::time::Duration::from_millis(100));
            continue;
        }
        *connection.lock() = daemon.shutdown_handle();
        if let Err(err) = daemon.wait() {
            tracing::info!(%err, "vhost-user connection ended");
        }
        connection.lock().take();
        for handler in &handlers {
            handler.send_exit_event();
        }
        let conn = &backend.conn;
        if let Some(nexus) = conn.nexus.lock().take() {
            // SAM-5 6.3.4 I_T nexus loss: its tasks (not answered: the guest memory may be gone),
            // reservations and removal preventions go with it.
            shared.target.remove_nexus(&nexus);
        }
        conn.mem.lock().take();
        if shared.connected.swap(false, Ordering::Relaxed) {
            tracing::info!(socket = %shared.socket.display(), "vhost-user-scsi guest disconnected");
        }
    }
}
