//! The queue between a connection's producers (the reader, running commands) and its writer, with
//! a byte count of what waits in it. An initiator that sends commands but never reads the answers
//! would otherwise make the target hold every answer in memory; instead the reader stops taking
//! new PDUs off the socket while more than `QUEUE_LIMIT` bytes wait, which leaves the initiator
//! to TCP's flow control.

use crate::outgoing::Outgoing;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};

/// Bytes of answers queued for one connection before its reader pauses.
pub(crate) const QUEUE_LIMIT: usize = 16 << 20;

/// The header and other fixed bytes counted for each queued item besides its payload.
const ITEM_OVERHEAD: usize = 64;

#[derive(Debug, Default)]
struct Shared {
    bytes: AtomicUsize,
    /// The writer is gone: nothing will drain the queue any more.
    closed: AtomicBool,
    drained: Notify,
}

/// The producers' end.
#[derive(Debug, Clone)]
pub(crate) struct OutSender {
    tx: mpsc::UnboundedSender<Outgoing>,
    shared: Arc<Shared>,
}

/// The writer's end.
#[derive(Debug)]
pub(crate) struct OutReceiver {
    rx: mpsc::UnboundedReceiver<Outgoing>,
    shared: Arc<Shared>,
}

/// What an item costs while it waits: its payload plus a fixed overhead, so that even a flood of
/// small answers (NOP-In, Reject) is bounded.
fn cost(item: &Outgoing) -> usize {
    ITEM_OVERHEAD
        + match item {
            Outgoing::Pdu { data, .. } => data.len(),
            // The same before and after the writer takes a pipe out of the reply.
            Outgoing::Scsi(r) => r.send_len + r.sense.as_ref().map_or(0, Vec::len),
            Outgoing::Close => 0,
        }
}

pub(crate) fn out_queue() -> (OutSender, OutReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::default());
    (OutSender { tx, shared: shared.clone() }, OutReceiver { rx, shared })
}

impl OutSender {
    /// Queue an item; Err when the writer is gone (the item is dropped).
    pub fn send(&self, item: Outgoing) -> Result<(), ()> {
        let c = cost(&item);
        self.shared.bytes.fetch_add(c, Ordering::AcqRel);
        if self.tx.send(item).is_err() {
            self.shared.bytes.fetch_sub(c, Ordering::AcqRel);
            return Err(());
        }
        Ok(())
    }

    /// Bytes waiting now.
    pub fn queued(&self) -> usize {
        self.shared.bytes.load(Ordering::Acquire)
    }

    /// Whether a new request may be read now: the queue is below its limit (or the writer is gone).
    pub fn has_room(&self) -> bool {
        self.queued() < QUEUE_LIMIT || self.shared.closed.load(Ordering::Acquire)
    }

    /// Wait until the queue is below its limit (or the writer is gone).
    pub async fn room(&self) {
        // The common case costs two loads, not a turn through the Notify's waiter list.
        if self.has_room() {
            return;
        }
        loop {
            let drained = self.shared.drained.notified();
            tokio::pin!(drained);
            // Registered before the check, so a drain between the check and the await wakes us.
            drained.as_mut().enable();
            if self.queued() < QUEUE_LIMIT || self.shared.closed.load(Ordering::Acquire) {
                return;
            }
            drained.await;
        }
    }
}

impl OutReceiver {
    pub async fn recv(&mut self) -> Option<Outgoing> {
        self.rx.recv().await
    }

    pub fn try_recv(&mut self) -> Option<Outgoing> {
        self.rx.try_recv().ok()
    }

    /// Items handed to the socket (or dropped) no longer count.
    pub fn release(&self, items: &[Outgoing]) {
        let c: usize = items.iter().map(cost).sum();
        self.shared.bytes.fetch_sub(c, Ordering::AcqRel);
        self.shared.drained.notify_waiters();
    }
}

impl Drop for OutReceiver {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.drained.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outgoing::Stat;
    use crate::pdu::{Bhs, Opcode};
    use bytes::Bytes;
    use std::time::Duration;

    fn nop_in(len: usize) -> Outgoing {
        Outgoing::Pdu { bhs: Bhs::new(Opcode::NopIn), data: Bytes::from(vec![0u8; len]), stat: Stat::Advance }
    }

    #[tokio::test]
    async fn room_waits_for_the_writer_to_drain() {
        let (tx, mut rx) = out_queue();
        for _ in 0..(QUEUE_LIMIT / (1 << 20)) + 1 {
            tx.send(nop_in(1 << 20)).unwrap();
        }
        assert!(tx.queued() > QUEUE_LIMIT);
        // Full: no room until the writer takes items off.
        assert!(tokio::time::timeout(Duration::from_millis(50), tx.room()).await.is_err());
        let waiter = tokio::spawn({
            let tx = tx.clone();
            async move { tx.room().await }
        });
        let mut taken = Vec::new();
        while let Some(item) = rx.try_recv() {
            taken.push(item);
        }
        rx.release(&taken);
        tokio::time::timeout(Duration::from_secs(2), waiter).await.unwrap().unwrap();
        assert_eq!(tx.queued(), 0);
    }

    #[tokio::test]
    async fn a_gone_writer_never_blocks_the_reader() {
        let (tx, rx) = out_queue();
        for _ in 0..(QUEUE_LIMIT / (1 << 20)) + 1 {
            tx.send(nop_in(1 << 20)).unwrap();
        }
        drop(rx);
        tokio::time::timeout(Duration::from_secs(2), tx.room()).await.unwrap();
        assert!(tx.send(nop_in(1)).is_err());
    }
}
