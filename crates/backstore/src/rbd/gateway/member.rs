//! One gateway's membership in an image's registry, kept by a thread of its own: it renews the
//! lease every heartbeat, re-reads the registry (at once when a notification says it changed),
//! takes ownership when the owner is gone and it is next in line (fencing the old owner's client
//! first), and publishes what it sees to `GatewayStatus`. Leaving removes its entry (and its
//! ownership) once the image has no write in flight. A gateway that finds its own client fenced
//! connects again with a new one (a new image handle for the store, the registry and the shared
//! objects moved over) and rejoins as standby; the old image is closed once no command holds it,
//! and only then is the old client's blocklist entry lifted.

use super::registry::{Decision, Entry, Registry, FENCED_PREFIX, HANDOFF_KEY, OWNER_KEY};
use super::{GatewayOptions, GatewayStatus, LocalState, Member, MemberState, HEARTBEAT, LEASE, SAFETY};
use crate::rbd::image::Image;
use crate::rbd::rados::{Cluster, Pool, Wake, Watch};
use crate::rbd::slot::ImageSlot;
use crate::BackstoreError;
use parking_lot::Mutex;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Blocklist entries expire by themselves after this long, should the fenced gateway never come
/// back to lift its own.
const FENCE_EXPIRY_SECS: u64 = 7 * 24 * 3600;
/// How long a notification waits for the other gateways' acks.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(2);

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// ESHUTDOWN is what librados answers once this client is blocklisted (Ceph's EBLOCKLISTED).
fn is_fenced(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ESHUTDOWN)
}

/// The running membership. Dropping it without `leave` only stops the thread.
pub(crate) struct Gateway {
    status: Arc<GatewayStatus>,
    slot: Arc<ImageSlot>,
    shared: Arc<SharedSet>,
    wake: Arc<Wake>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Membership>>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("status", &self.status).finish_non_exhaustive()
    }
}

/// The image's shared objects and where they live.
struct SharedSet {
    pool_name: String,
    namespace: Option<String>,
    objects: Mutex<Vec<Weak<super::SharedObject>>>,
}

/// What the thread works with.
pub(super) struct Membership {
    /// The store's image, replaced here after a reconnection.
    slot: Arc<ImageSlot>,
    /// The client of `image`, on which the registry, its watch and the shared objects live.
    cluster: Cluster,
    pool: Pool,
    pool_name: String,
    namespace: Option<String>,
    oid: String,
    options: GatewayOptions,
    addr: String,
    status: Arc<GatewayStatus>,
    wake: Arc<Wake>,
    watch: Option<Watch>,
    /// When the lease was last renewed.
    renewed: Option<Instant>,
    fenced: bool,
    /// The image's shared objects, whose watches this thread keeps up.
    shared: Arc<SharedSet>,
    /// Images replaced by a reconnection, until no command holds them.
    retiring: Vec<Arc<Image>>,
    /// Closing the retired ones (librbd's close blocks: not on this thread, which must renew).
    closing: Option<JoinHandle<()>>,
    /// The image this membership's client belongs to. Last: dropped after the pool and watch
    /// that live on its client.
    image: Arc<Image>,
}

impl Gateway {
    /// Register in the registry of image `image_id` and start the thread. Blocking (a few
    /// cluster round trips).
    pub(crate) fn join(
        slot: Arc<ImageSlot>,
        namespace: Option<&str>,
        image_id: &str,
        options: GatewayOptions,
    ) -> io::Result<Gateway> {
        let image = slot.get();
        let cluster = image.cluster();
        let pool_name = slot.path().pool.clone();
        let pool_name = pool_name.as_str();
        let wake = Arc::new(Wake::default());
        let status = Arc::new(GatewayStatus::new(&options, wake.clone()));
        let shared = Arc::new(SharedSet {
            pool_name: pool_name.to_string(),
            namespace: namespace.map(str::to_string),
            objects: Mutex::new(Vec::new()),
        });
        let mut m = Membership {
            slot: slot.clone(),
            cluster,
            pool: Pool::open(cluster, pool_name, namespace)?,
            pool_name: pool_name.to_string(),
            namespace: namespace.map(str::to_string),
            oid: format!("rtgt.gateways.{image_id}"),
            addr: cluster.address()?,
            options,
            status: status.clone(),
            wake: wake.clone(),
            watch: None,
            renewed: None,
            fenced: false,
            shared: shared.clone(),
            retiring: Vec::new(),
            closing: None,
            image,
        };
        m.renew()?;
        let registry = m.read()?;
        if let Some(other) = registry.entries.values().find(|e| e.tpg == m.options.tpg && e.name != m.options.name) {
            let why = format!("gateway {} already has target port group {}", other.name, other.tpg);
            let _ = m.remove_entry();
            return Err(io::Error::new(io::ErrorKind::AddrInUse, why));
        }
        m.rewatch();
        m.tick(registry);
        let _ = m.pool.notify(&m.oid, NOTIFY_TIMEOUT);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new().name(format!("rbd-gw-{}", m.options.name)).spawn(move || {
            while !thread_stop.load(Ordering::Acquire) {
                m.wake.wait(HEARTBEAT);
                if thread_stop.load(Ordering::Acquire) {
                    break;
                }
                m.beat();
            }
            m
        })?;
        Ok(Gateway { status, slot, shared, wake, stop, thread: Some(thread) })
    }

    /// Open the image's shared object `rtgt.<kind>.<image id>` (see `shared`), on the same client.
    pub(crate) fn share(&self, oid: String, listener: super::Listener) -> io::Result<Arc<super::SharedObject>> {
        let (pool, namespace) = (&self.shared.pool_name, self.shared.namespace.as_deref());
        // The client is read under the list's lock, which a reconnection takes after replacing
        // the image: the object is either made on the new client or listed in time to be moved.
        let mut shared = self.shared.objects.lock();
        let cluster = self.slot.get().cluster();
        let object = super::SharedObject::new(cluster, pool, namespace, oid, self.status.name(), listener)?;
        shared.retain(|w| w.strong_count() > 0);
        shared.push(Arc::downgrade(&object));
        Ok(object)
    }

    pub(crate) fn status(&self) -> &Arc<GatewayStatus> {
        &self.status
    }

    /// Stop the thread and leave the registry: the entry goes, and the ownership with it, so the
    /// next gateway takes over at once and without fencing. Call once no write is in flight.
    pub(crate) fn leave(&mut self) {
        self.status.set_local(LocalState::Unavailable);
        let Some(m) = self.stop_thread() else { return };
        if !m.fenced {
            if let Err(e) = m.remove_entry() {
                tracing::warn!(gateway = %m.options.name, "leaving the registry failed: {e}");
            }
        }
    }

    pub(super) fn stop_thread(&mut self) -> Option<Membership> {
        // The shared objects live on the image's client, which closes after this.
        for object in self.shared.objects.lock().drain(..).filter_map(|w| w.upgrade()) {
            object.disconnect();
        }
        let thread = self.thread.take()?;
        self.stop.store(true, Ordering::Release);
        self.wake.wake();
        let mut m = thread.join().ok()?;
        m.watch = None;
        Some(m)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.status.set_local(LocalState::Unavailable);
        let _ = self.stop_thread();
    }
}

impl Membership {
    fn entry(&self) -> Entry {
        Entry {
            name: self.options.name.clone(),
            tpg: self.options.tpg,
            portal: self.options.portal.clone(),
            addr: self.addr.clone(),
            expires: now_ms() + LEASE.as_millis() as u64,
            forward: self.status.forward.lock().clone(),
        }
    }

    fn renew(&mut self) -> io::Result<()> {
        let e = self.entry();
        self.pool.update(&self.oid, &[(e.key(), e.value())], &[], None)?;
        self.renewed = Some(Instant::now());
        Ok(())
    }

    fn read(&self) -> io::Result<Registry> {
        let (map, version) = self.pool.omap(&self.oid)?;
        Ok(Registry::parse(&map, version))
    }

    fn rewatch(&mut self) {
        self.watch = None;
        match Watch::new(self.cluster, &self.pool_name, self.namespace.as_deref(), &self.oid, self.wake.clone(), LEASE)
        {
            Ok(w) => self.watch = Some(w),
            // Polling every heartbeat still works; the next beat tries again.
            Err(e) => tracing::warn!(gateway = %self.options.name, "watching the registry failed: {e}"),
        }
    }

    /// One heartbeat: renew, re-read, decide (after connecting again if this client was fenced).
    fn beat(&mut self) {
        self.retire();
        if self.fenced {
            if let Err(e) = self.reconnect() {
                tracing::warn!(gateway = %self.options.name, "reconnecting after being fenced failed: {e}");
                return;
            }
            tracing::warn!(gateway = %self.options.name, client = %self.addr, "reconnected after being fenced");
        }
        if let Err(e) = self.renew() {
            self.failed(&e);
            return;
        }
        if self.watch.as_ref().is_none_or(Watch::is_broken) {
            self.rewatch();
        }
        let request = self.status.handoff_request.lock().take();
        if let Some(tpg) = request {
            self.request_handoff(tpg);
        }
        let shared: Vec<_> = self.shared.objects.lock().iter().filter_map(Weak::upgrade).collect();
        for object in shared {
            object.maintain();
        }
        self.status.beaten();
        match self.read() {
            Ok(registry) => self.tick(registry),
            Err(e) => self.failed(&e),
        }
    }

    /// The cluster did not answer (or fenced this client): stop serving before the lease that
    /// the others see runs out.
    fn failed(&mut self, e: &io::Error) {
        if is_fenced(e) {
            self.fenced = true;
            tracing::error!(gateway = %self.options.name, "this client was fenced (blocklisted): unavailable");
            self.status.set_local(LocalState::Unavailable);
            // Reconnect at once rather than a heartbeat later.
            self.wake.wake();
            return;
        }
        let lapsed = self.renewed.is_none_or(|t| t.elapsed() + SAFETY >= LEASE);
        if lapsed && self.status.set_local(LocalState::Unavailable) {
            tracing::error!(gateway = %self.options.name, "cannot renew the lease ({e}): unavailable");
        }
    }

    fn tick(&mut self, registry: Registry) {
        let now = now_ms();
        // Not while an old image of this gateway is open: its client must stay fenced until
        // closed, or a write it still held could land.
        if self.retiring.is_empty() && self.closing.is_none() {
            self.lift_old_fences(&registry);
        }
        let me = self.options.name.clone();
        let local = match registry.decide(&me, &self.addr, now) {
            Decision::Serve => LocalState::Active,
            Decision::StandBy => LocalState::Standby,
            Decision::TakeOver { fence } => match self.take_over(&registry, fence) {
                Ok(()) => LocalState::Active,
                Err(e) => {
                    tracing::warn!(gateway = %me, "taking ownership failed: {e}");
                    LocalState::Standby
                }
            },
            Decision::HandOff { to } => match self.hand_off(&registry, &to) {
                Ok(()) => LocalState::Standby,
                Err(e) => {
                    tracing::warn!(gateway = %me, to = %to.name, "handing ownership on failed: {e}");
                    LocalState::Active
                }
            },
            Decision::DropHandOff => {
                let _ = self.pool.update(&self.oid, &[], &[HANDOFF_KEY.to_string()], Some(registry.version));
                LocalState::Active
            }
        };
        let owner_alive = registry.owner_alive(now);
        let owner = registry.owner.as_ref().map(|o| o.name.as_str());
        let others: Vec<Member> = registry
            .entries
            .values()
            .filter(|e| e.name != me)
            .map(|e| Member {
                name: e.name.clone(),
                tpg: e.tpg,
                forward: e.forward.clone(),
                state: if !e.alive(now) {
                    MemberState::Lost
                } else if owner_alive && owner == Some(e.name.as_str()) {
                    MemberState::Owner
                } else {
                    MemberState::Standby
                },
            })
            .collect();
        // What the unit's state needs from the cluster is loaded before the first command is
        // served as owner (a RESERVE(6) reservation, which other gateways' nexuses may hold).
        if local == LocalState::Active && self.status.local_state() != LocalState::Active {
            self.status.taking_over(&others);
        }
        // The others first: a listener that sees this gateway's new state sees theirs from the
        // same read (the owner checking a RESERVE holder's gateway right after taking over).
        self.status.set_others(others);
        if self.status.set_local(local) {
            tracing::info!(gateway = %me, state = ?local, "access state changed");
        }
    }

    /// Fence the old owner's client (if there was an owner), then swap the owner record for this
    /// gateway at the version read: another gateway that got there first makes the swap fail.
    fn take_over(&mut self, registry: &Registry, fence: Option<super::registry::Owner>) -> io::Result<()> {
        let mut set = vec![(OWNER_KEY.to_string(), registry.next_owner(&self.options.name, &self.addr).value())];
        if let Some(old) = fence {
            self.blocklist("add", &old.addr)?;
            // The OSDs must know of the blocklist before this gateway's first write reaches them.
            self.cluster.wait_for_latest_osdmap()?;
            set.push((format!("{FENCED_PREFIX}{}", old.addr), old.name.clone()));
            let (gateway, fenced, client) = (&self.options.name, &old.name, &old.addr);
            tracing::warn!(%gateway, %fenced, %client, "fenced the old owner");
        }
        self.pool.update(&self.oid, &set, &[], Some(registry.version))?;
        let _ = self.pool.notify(&self.oid, NOTIFY_TIMEOUT);
        Ok(())
    }

    /// Write the request for group `tpg` to own the unit; the owner acts on it.
    fn request_handoff(&mut self, tpg: u16) {
        let registry = match self.read() {
            Ok(r) => r,
            Err(e) => return self.failed(&e),
        };
        let Some(to) = registry.entries.values().find(|e| e.tpg == tpg) else { return };
        if registry.owner.as_ref().is_some_and(|o| o.name == to.name) {
            return;
        }
        let set = [(HANDOFF_KEY.to_string(), to.name.clone())];
        match self.pool.update(&self.oid, &set, &[], None) {
            Ok(()) => {
                tracing::info!(gateway = %self.options.name, to = %to.name, "ownership asked for");
                let _ = self.pool.notify(&self.oid, NOTIFY_TIMEOUT);
            }
            Err(e) => self.failed(&e),
        }
    }

    /// A clean handoff: stop serving (no new command is admitted), wait until every write issued
    /// is on the OSDs, then name `to` owner at the version read (nothing of this gateway's can land
    /// after `to` serves, so no fencing). On failure this gateway serves again.
    fn hand_off(&mut self, registry: &Registry, to: &Entry) -> io::Result<()> {
        self.status.set_local(LocalState::Standby);
        self.image.flush_blocking()?;
        let mut registry = registry.clone();
        for _ in 0..5 {
            let owner = registry.handed_to(to);
            let set = [(OWNER_KEY.to_string(), owner.value())];
            match self.pool.update(&self.oid, &set, &[HANDOFF_KEY.to_string()], Some(registry.version)) {
                Ok(()) => {
                    tracing::info!(gateway = %self.options.name, to = %to.name, "ownership handed on");
                    let _ = self.pool.notify(&self.oid, NOTIFY_TIMEOUT);
                    return Ok(());
                }
                // A heartbeat wrote meanwhile: read again, still the owner, still asked.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ERANGE) | Some(libc::EOVERFLOW)) => {
                    registry = self.read()?;
                    match registry.decide(&self.options.name, &self.addr, now_ms()) {
                        Decision::HandOff { to: again } if again.name == to.name => continue,
                        _ => return Err(io::Error::other("the request changed meanwhile")),
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::from_raw_os_error(libc::EBUSY))
    }

    /// This client was fenced: connect again with a new client and a new image handle, and move
    /// the store, the registry and the shared objects onto them. The old image is retired (see
    /// `retire`); its commands in flight fail, as every later one would. Blocking.
    fn reconnect(&mut self) -> io::Result<()> {
        let image = self.slot.reopen().map_err(|e| match e {
            BackstoreError::Open { source, .. } => source,
            other => io::Error::other(other.to_string()),
        })?;
        let cluster = image.cluster();
        let pool = Pool::open(cluster, &self.pool_name, self.namespace.as_deref())?;
        let addr = cluster.address()?;
        // Nothing fails from here on. The old watch and pool go before the old client closes.
        self.watch = None;
        self.pool = pool;
        self.cluster = cluster;
        self.addr = addr;
        let old = std::mem::replace(&mut self.image, image.clone());
        drop(self.slot.replace(image));
        for object in self.shared.objects.lock().iter().filter_map(Weak::upgrade) {
            if let Err(e) = object.connect(cluster) {
                // Its old connection must not outlive the old client; reservations answer errors.
                tracing::error!(gateway = %self.options.name, "moving a shared object to the new client failed: {e}");
                object.disconnect();
            }
        }
        self.retiring.push(old);
        self.fenced = false;
        self.renewed = None;
        Ok(())
    }

    /// Close the images replaced by a reconnection that no command holds any more, on a thread of
    /// their own (closing a fenced image fails its way through librbd's steps; it may take time).
    fn retire(&mut self) {
        if self.closing.as_ref().is_some_and(|c| !c.is_finished()) {
            return;
        }
        self.closing = None;
        let (idle, busy): (Vec<_>, Vec<_>) = self.retiring.drain(..).partition(|i| Arc::strong_count(i) == 1);
        self.retiring = busy;
        if idle.is_empty() {
            return;
        }
        match std::thread::Builder::new().name("rbd-close".into()).spawn(move || drop(idle)) {
            Ok(handle) => self.closing = Some(handle),
            Err(e) => tracing::warn!(gateway = %self.options.name, "closing the old image: {e}"),
        }
    }

    /// This gateway is back with a new client: the blocklist entries of its old ones can go.
    fn lift_old_fences(&self, registry: &Registry) {
        for addr in registry.my_old_fences(&self.options.name, &self.addr) {
            let lifted = self.blocklist("rm", &addr).is_ok();
            if lifted {
                let _ = self.pool.update(&self.oid, &[], &[format!("{FENCED_PREFIX}{addr}")], None);
            }
        }
    }

    fn blocklist(&self, op: &str, addr: &str) -> io::Result<()> {
        // Ceph 16 spells it "blocklist"; the address is ours or read from the registry, and is
        // quoted as a JSON string (no quote or backslash can be in a client address, but a
        // registry entry is data: it is escaped anyway).
        let addr_json: String = addr.chars().filter(|c| !matches!(c, '"' | '\\') && !c.is_control()).collect();
        let cmd = format!(
            r#"{{"prefix":"osd blocklist","blocklistop":"{op}","addr":"{addr_json}","expire":{FENCE_EXPIRY_SECS}.0}}"#
        );
        self.cluster
            .mon_command(&cmd)
            .map(|_| ())
            .map_err(|(e, status)| io::Error::new(e.kind(), format!("osd blocklist {op} {addr}: {e}: {status}")))
    }

    /// Remove this gateway's entry, and the owner record if it is this gateway's, atomically.
    fn remove_entry(&self) -> io::Result<()> {
        for _ in 0..5 {
            let registry = self.read()?;
            let mut remove = vec![self.entry().key()];
            if registry.owner.as_ref().is_some_and(|o| o.name == self.options.name && o.addr == self.addr) {
                remove.push(OWNER_KEY.to_string());
            }
            match self.pool.update(&self.oid, &[], &remove, Some(registry.version)) {
                Ok(()) => {
                    let _ = self.pool.notify(&self.oid, NOTIFY_TIMEOUT);
                    return Ok(());
                }
                // Someone wrote meanwhile (a heartbeat): read again.
                Err(e) if matches!(e.raw_os_error(), Some(libc::ERANGE) | Some(libc::EOVERFLOW)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::from_raw_os_error(libc::EBUSY))
    }
}
