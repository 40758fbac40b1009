//! A vhost-user-scsi device: one unix socket serving one SCSI target to one VM at a time.
//!
//! A thread accepts the VMM's connection and runs the rust-vmm daemon for it; when the VMM goes
//! away (QEMU stops or restarts) the guest's nexus is removed and the thread waits for the next
//! connection on the same socket, so a restarted VM finds its disk again. Everything written and
//! acknowledged went through the scsi crate into the backing store before its used-ring entry was
//! published, so nothing acknowledged is lost across a reconnection.

use crate::backend::{events_pending_id, stop_id, ScsiBackend};
use crate::budget::{ByteBudget, DEFAULT_READ_BUDGET, DEFAULT_WRITE_BUDGET};
use crate::device_state::DeviceState;
use crate::lun_event::LunEvent;
use crate::lun_event::PendingEvents;
use crate::read_budget::ReadBudget;
use crate::socket::{SocketAccess, SocketError};
use parking_lot::Mutex;
use rtgt_scsi::Target;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use vhost::vhost_user::Listener;
use vhost_user_backend::{ShutdownHandle, VhostUserBackend, VhostUserDaemon};
use vm_memory::{GuestMemoryAtomic, GuestMemoryMmap};
use vmm_sys_util::epoll::EventSet;
use vmm_sys_util::event::{new_event_consumer_and_notifier, EventFlag, EventNotifier};

#[derive(Debug, thiserror::Error)]
pub enum VhostError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("cannot create an event notifier: {0}")]
    Event(std::io::Error),
    #[error("cannot start the vhost-user thread: {0}")]
    Thread(std::io::Error),
}

/// Options of one device.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub socket: PathBuf,
    /// Request queues offered (the guest may use fewer).
    pub request_queues: usize,
    /// Who may connect to the socket besides the daemon's user.
    pub access: SocketAccess,
    /// Data-out bytes the device holds at once for commands in flight (see `budget`).
    pub write_budget: u64,
    /// Data-in bytes the device holds at once for commands in flight (see `read_budget`).
    pub read_budget: u64,
}

impl DeviceConfig {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        DeviceConfig {
            socket: socket.into(),
            request_queues: 8,
            access: SocketAccess::default(),
            write_budget: DEFAULT_WRITE_BUDGET,
            read_budget: DEFAULT_READ_BUDGET,
        }
    }
}

/// A running device (see the module comment).
pub struct VhostScsiDevice {
    device: Arc<DeviceState>,
    thread: Mutex<Option<JoinHandle<()>>>,
    connection: Arc<Mutex<Option<ShutdownHandle>>>,
}

impl std::fmt::Debug for VhostScsiDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VhostScsiDevice").field("socket", &self.device.socket).finish_non_exhaustive()
    }
}

impl VhostScsiDevice {
    /// Listen on `config.socket` (replacing only a stale socket file, see `socket`) and serve
    /// `target` to whichever VMM connects. Commands run on `runtime`.
    pub fn start(
        target: Arc<Target>,
        config: DeviceConfig,
        runtime: tokio::runtime::Handle,
    ) -> Result<Arc<Self>, VhostError> {
        let bound = crate::socket::bind(&config.socket, config.access)?;
        // From a plain UnixListener the library's Listener never unlinks anything itself.
        let listener = Listener::from(bound.listener);
        let (events_ready, events_notify) =
            new_event_consumer_and_notifier(EventFlag::NONBLOCK).map_err(VhostError::Event)?;
        let device = Arc::new(DeviceState {
            target,
            runtime,
            request_queues: config.request_queues.clamp(1, 62),
            socket: config.socket,
            socket_file: bound.file,
            write_budget: ByteBudget::new(config.write_budget),
            read_budget: ReadBudget::new(config.read_budget),
            events: Mutex::new(PendingEvents::default()),
            events_ready,
            events_notify,
            connected: AtomicBool::new(false),
            connections: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        let connection = Arc::new(Mutex::new(None));
        let (thread_device, thread_connection) = (device.clone(), connection.clone());
        let thread = std::thread::Builder::new()
            .name("vhost-scsi-accept".into())
            .spawn(move || serve(thread_device, listener, thread_connection))
            .map_err(VhostError::Thread)?;
        Ok(Arc::new(VhostScsiDevice { device, thread: Mutex::new(Some(thread)), connection }))
    }

    pub fn socket(&self) -> &Path {
        &self.device.socket
    }

    pub fn target(&self) -> &Arc<Target> {
        &self.device.target
    }

    /// Read data the device holds now for its guest's commands (those that take the read budget:
    /// see `read_budget`).
    pub fn read_data_held(&self) -> u64 {
        self.device.read_budget.held_bytes()
    }

    /// Whether a VMM is attached and has sent the guest's memory.
    pub fn connected(&self) -> bool {
        self.device.connected.load(Ordering::Relaxed)
    }

    /// How many guests have connected since the device started.
    pub fn connections(&self) -> u64 {
        self.device.connections.load(Ordering::Relaxed)
    }

    /// Report a LUN change to the guest through the event queue (when it negotiated the feature).
    pub fn notify(&self, event: LunEvent) {
        self.device.events.lock().push(event);
        let _ = self.device.events_notify.notify();
    }

    /// Drop the guest's connection and stop listening; the socket file is removed (when it is still
    /// the one this device created).
    pub fn stop(&self) {
        self.device.stopping.store(true, Ordering::Relaxed);
        if let Some(handle) = self.connection.lock().take() {
            handle.shutdown();
        }
        // Wake the accept: a connection that is closed at once.
        let _ = std::os::unix::net::UnixStream::connect(&self.device.socket);
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
        crate::socket::remove_if_ours(&self.device.socket, self.device.socket_file);
    }
}

/// The accept loop: one daemon per connection, so every guest starts from a clean device.
fn serve(device: Arc<DeviceState>, mut listener: Listener, connection: Arc<Mutex<Option<ShutdownHandle>>>) {
    while !device.stopping.load(Ordering::Relaxed) {
        // Ends the daemon's epoll threads (see `ScsiBackend::exit_event`). It outlives the daemon,
        // whose drop joins those threads, and `_stop_workers` (dropped before the daemon) fires it
        // whichever way this iteration ends.
        let stop = match new_event_consumer_and_notifier(EventFlag::NONBLOCK) {
            Ok(stop) => stop,
            Err(err) => {
                tracing::error!(%err, "cannot create the vhost-user stop event");
                return;
            }
        };
        let backend = ScsiBackend::new(device.clone());
        let memory = GuestMemoryAtomic::new(GuestMemoryMmap::new());
        let mut daemon = match VhostUserDaemon::new("vhost-scsi".into(), backend.clone(), memory) {
            Ok(daemon) => daemon,
            Err(err) => {
                tracing::error!(%err, "cannot create the vhost-user daemon");
                return;
            }
        };
        let _stop_workers = StopWorkers(&stop.1);
        let handlers = daemon.get_epoll_handlers();
        for handler in &handlers {
            if let Err(err) = handler.register_listener(stop.0.as_raw_fd(), EventSet::IN, stop_id(backend.num_queues()))
            {
                tracing::error!(%err, "cannot register the vhost-user stop event");
                // Its threads could not be stopped: dropping the daemon would wait for them forever.
                std::mem::forget(daemon);
                return;
            }
        }
        let id = events_pending_id(backend.num_queues());
        if let Some(handler) = handlers.first() {
            if let Err(err) = handler.register_listener(device.events_ready.as_raw_fd(), EventSet::IN, id) {
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
        let _ = stop.1.notify();
        // Task management answers still waiting for aborted commands are lost with the guest.
        backend.deferred_tmfs.discard();
        let conn = &backend.conn;
        if let Some(nexus) = conn.nexus.lock().take() {
            // SAM-5 6.3.4 I_T nexus loss: its tasks (not answered: the guest memory may be gone),
            // reservations and removal preventions go with it.
            device.target.remove_nexus(&nexus);
        }
        conn.mem.lock().take();
        if device.connected.swap(false, Ordering::Relaxed) {
            tracing::info!(socket = %device.socket.display(), "vhost-user-scsi guest disconnected");
        }
    }
}

/// Fires the daemon's stop event when dropped (see `serve`).
struct StopWorkers<'a>(&'a EventNotifier);

impl Drop for StopWorkers<'_> {
    fn drop(&mut self) {
        let _ = self.0.notify();
    }
}
