//! State the gateways of one image share through the cluster, beside the registry: one RADOS
//! object per kind (`rtgt.<kind>.<image id>`, in the image's pool and namespace) whose omap key
//! `value` holds opaque bytes (the daemon's: persistent reservations), changed only by a
//! compare-and-swap on the object's version. Every change is announced to the other gateways by a
//! notification carrying the new value and an event; each gateway's watch hands both to its
//! listener before it acknowledges, so when `write_if` returns, every gateway that answers holds
//! the new value. A watch that broke (a reconnection) is made again by the membership thread,
//! which then hands the listener the stored value (with no event), so a missed change is caught up.

use crate::rbd::rados::{Cluster, Pool, Watch};
use parking_lot::Mutex;
use std::io;
use std::sync::Arc;
use std::time::Duration;

const VALUE_KEY: &str = "value";
/// How long a change waits for the other gateways to acknowledge it. A gateway that does not
/// answer in time is one cut off from the cluster: it stops serving before its lease runs out.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// Notifications larger than this are not ours (librados bounds them much lower anyway).
const MAX_PAYLOAD: usize = 1 << 20;

/// One change as a listener receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedUpdate<'a> {
    /// The object's version once the value was written: later changes have higher versions.
    pub version: u64,
    pub value: &'a [u8],
    /// What the writer said happened (empty when catching up after a broken watch).
    pub event: &'a [u8],
    /// Written by this gateway (which acted on the event already).
    pub from_self: bool,
}

pub type Listener = Arc<dyn Fn(SharedUpdate<'_>) + Send + Sync>;

/// Where the object lives: on the image's client, replaced when the gateway reconnects.
struct Connection {
    cluster: Cluster,
    pool: Pool,
    watch: Option<Watch>,
}

/// One shared object of an image, as one gateway sees it.
pub struct SharedObject {
    oid: String,
    pool_name: String,
    namespace: Option<String>,
    /// This gateway's name: a notification from it is marked `from_self`.
    origin: String,
    listener: Listener,
    conn: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for SharedObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedObject").field("oid", &self.oid).finish_non_exhaustive()
    }
}

/// Notification payload: origin length (1 byte), origin, version (8 bytes, big-endian), value
/// length (4 bytes), value, event (the rest).
fn encode(origin: &str, version: u64, value: &[u8], event: &[u8]) -> Vec<u8> {
    let origin = &origin.as_bytes()[..origin.len().min(255)];
    let mut p = Vec::with_capacity(13 + origin.len() + value.len() + event.len());
    p.push(origin.len() as u8);
    p.extend_from_slice(origin);
    p.extend_from_slice(&version.to_be_bytes());
    p.extend_from_slice(&(value.len() as u32).to_be_bytes());
    p.extend_from_slice(value);
    p.extend_from_slice(event);
    p
}

/// A notification's parts.
#[derive(Debug, PartialEq, Eq)]
struct Payload<'a> {
    origin: &'a [u8],
    version: u64,
    value: &'a [u8],
    event: &'a [u8],
}

/// The parts of a payload, or `None` for one that is not ours (every length is checked).
fn decode(p: &[u8]) -> Option<Payload<'_>> {
    let (&olen, rest) = p.split_first()?;
    let origin = rest.get(..olen as usize)?;
    let rest = &rest[olen as usize..];
    let version = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    let vlen = u32::from_be_bytes(rest.get(8..12)?.try_into().ok()?) as usize;
    let value = rest.get(12..12usize.checked_add(vlen)?)?;
    Some(Payload { origin, version, value, event: &rest[12 + vlen..] })
}

impl SharedObject {
    pub(crate) fn new(
        cluster: Cluster,
        pool_name: &str,
        namespace: Option<&str>,
        oid: String,
        origin: &str,
        listener: Listener,
    ) -> io::Result<Arc<SharedObject>> {
        let shared = Arc::new(SharedObject {
            oid,
            pool_name: pool_name.to_string(),
            namespace: namespace.map(str::to_string),
            origin: origin.to_string(),
            listener,
            conn: Mutex::new(None),
        });
        shared.connect(cluster)?;
        Ok(shared)
    }

    /// Use `cluster` from now on (a new client after a reconnection); watch again and catch up.
    pub(crate) fn connect(self: &Arc<Self>, cluster: Cluster) -> io::Result<()> {
        let pool = Pool::open(cluster, &self.pool_name, self.namespace.as_deref())?;
        *self.conn.lock() = Some(Connection { cluster, pool, watch: None });
        self.maintain();
        Ok(())
    }

    /// Drop the connection (the client it lives on goes away).
    pub(crate) fn disconnect(&self) {
        *self.conn.lock() = None;
    }

    /// The stored value (empty when never written) and the object's version (0: no object).
    pub fn read(&self) -> io::Result<(Vec<u8>, u64)> {
        let conn = self.conn.lock();
        let conn = conn.as_ref().ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTCONN))?;
        let (mut map, version) = conn.pool.omap(&self.oid)?;
        Ok((map.remove(VALUE_KEY).map(String::into_bytes).unwrap_or_default(), version))
    }

    /// Replace the value if the object is still at `version`, then tell every other gateway (and
    /// wait for them). `Ok(None)`: another gateway changed it first, nothing was written.
    pub fn write_if(&self, version: u64, value: &[u8], event: &[u8]) -> io::Result<Option<u64>> {
        // omap values here are text (the registry's tools print them): the daemon writes JSON.
        let text = std::str::from_utf8(value).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let payload_len = value.len() + event.len() + self.origin.len() + 13;
        if payload_len > MAX_PAYLOAD {
            return Err(io::Error::from_raw_os_error(libc::E2BIG));
        }
        let conn = self.conn.lock();
        let conn = conn.as_ref().ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTCONN))?;
        let Some(new_version) = conn.pool.set_if(&self.oid, VALUE_KEY, text.as_bytes(), version)? else {
            return Ok(None);
        };
        let payload = encode(&self.origin, new_version, value, event);
        if let Err(e) = conn.pool.notify_with(&self.oid, &payload, NOTIFY_TIMEOUT) {
            // Written: the others catch up when their watch comes back or at their next read.
            tracing::warn!(object = %self.oid, "telling the other gateways failed: {e}");
        }
        Ok(Some(new_version))
    }

    /// Watch the object if it is not watched (or the watch broke), then hand the listener what is
    /// stored, so that a change made while unwatched is not missed. Called by the membership
    /// thread every heartbeat.
    pub(crate) fn maintain(self: &Arc<Self>) {
        let mut guard = self.conn.lock();
        let Some(conn) = guard.as_mut() else { return };
        if conn.watch.as_ref().is_some_and(|w| !w.is_broken()) {
            return;
        }
        conn.watch = None;
        // The object must exist to be watched: create it empty (idempotent) first.
        if let Err(e) = conn.pool.update(&self.oid, &[], &[], None) {
            tracing::warn!(object = %self.oid, "creating the shared object failed: {e}");
            return;
        }
        let me = Arc::downgrade(self);
        let on_event = Box::new(move |payload: Option<&[u8]>| {
            let (Some(me), Some(payload)) = (me.upgrade(), payload) else { return };
            match decode(payload) {
                Some(p) => (me.listener)(SharedUpdate {
                    version: p.version,
                    value: p.value,
                    event: p.event,
                    from_self: p.origin == me.origin.as_bytes(),
                }),
                None => tracing::warn!(object = %me.oid, "a notification that is not ours: ignored"),
            }
        });
        match Watch::with(conn.cluster, &self.pool_name, self.namespace.as_deref(), &self.oid, on_event, super::LEASE) {
            Ok(w) => conn.watch = Some(w),
            Err(e) => {
                tracing::warn!(object = %self.oid, "watching the shared object failed: {e}");
                return;
            }
        }
        drop(guard);
        match self.read() {
            Ok((value, version)) => {
                (self.listener)(SharedUpdate { version, value: &value, event: &[], from_self: false })
            }
            Err(e) => tracing::warn!(object = %self.oid, "reading the shared object failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_garbage_is_refused() {
        let p = encode("gw-a", 42, b"{\"x\":1}", b"ev");
        let want = Payload { origin: b"gw-a", version: 42, value: b"{\"x\":1}", event: b"ev" };
        assert_eq!(decode(&p), Some(want));
        let empty = encode("", 1, b"", b"");
        assert_eq!(decode(&empty), Some(Payload { origin: b"", version: 1, value: b"", event: b"" }));
        for cut in 0..p.len() - 2 {
            assert_eq!(decode(&p[..cut]), None, "cut at {cut}");
        }
        let mut huge = encode("a", 1, b"", b"");
        huge[10..14].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&huge), None);
    }
}
