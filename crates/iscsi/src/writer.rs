//! The response path of one connection: a task that owns the socket's write half, stamps StatSN,
//! ExpCmdSN and MaxCmdSN at send time (so they are always current and in order, RFC 7143 4.2.2.2),
//! splits read data into Data-In PDUs, and batches whatever is queued into one vectored write.
//! Small payloads are copied into one reused buffer; large ones are written from where they lie,
//! and read data waiting in a pipe is spliced to the socket (`splice`). A socket that takes no
//! byte for the send timeout ends the connection (`send_timeout`): the replies it held, and their
//! read budget, are given back.

use crate::counters::IscsiCounters;
use crate::pdu::off;
use crate::pdu::{pad_len, Bhs, Opcode, RESERVED_TAG};
use crate::registry::{IscsiTarget, Registry};
use crate::send_timeout::{is_stall, progress_within};
use crate::session::{ConnControl, Session};
use crate::splice::{ConnPipe, OutStream, PartsCursor, PipePool};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub(crate) use crate::out_queue::{out_queue, OutReceiver, OutSender};
pub(crate) use crate::outgoing::{Outgoing, Residual, ScsiReply, Stat, RESIDUAL_OVERFLOW, RESIDUAL_UNDERFLOW};

/// Payloads up to this size are copied into the batch buffer rather than written in place. Above
/// it a payload is one more iovec of the batch's writev, which costs the kernel less than the copy
/// costs us (sense data, inquiry pages and the like stay copied; read data of a block or more goes
/// from where it lies).
const COPY_LIMIT: usize = 1024;
/// Stop collecting a batch past this many bytes.
const BATCH_BYTES: usize = 1024 * 1024;

/// Reused data-in buffers of one connection.
#[derive(Debug, Default)]
pub(crate) struct BufPool(Mutex<Vec<Vec<u8>>>);

impl BufPool {
    const KEEP: usize = 256;
    pub fn take(&self) -> Vec<u8> {
        self.0.lock().pop().unwrap_or_default()
    }
    pub fn give(&self, mut v: Vec<u8>) {
        // A buffer as large as a budgeted READ's is freed, not kept: its memory was counted in the
        // read budget only while its data waited (see `read_budget`).
        if v.capacity() as u64 >= crate::read_budget::SMALL_READ {
            return;
        }
        v.clear();
        let mut p = self.0.lock();
        if p.len() < Self::KEEP {
            p.push(v);
        }
    }
}

/// Where a piece of the batch's bytes lies.
enum Seg {
    Own(usize, usize),
    Item(usize, usize, usize),
    /// The next this many bytes of the batch's pipe with that index.
    Pipe(usize, usize),
}

/// A reply's payload as the renderer sees it.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Bytes(&'a [u8]),
    /// Index into the batch's pipes, and how many bytes of it this PDU takes.
    Pipe(usize, usize),
}

impl Payload<'_> {
    fn len(&self) -> usize {
        match self {
            Payload::Bytes(b) => b.len(),
            Payload::Pipe(_, n) => *n,
        }
    }
}

/// The writing half of a connection: a TCP socket's, or any byte stream's (the fuzz targets use an
/// in-memory pipe).
pub(crate) struct Writer<W> {
    pub sock: W,
    pub rx: OutReceiver,
    pub stat_sn: u32,
    pub session: Arc<Session>,
    pub header_digest: bool,
    pub data_digest: bool,
    /// The largest Data-In payload (the initiator's MaxRecvDataSegmentLength, capped by us).
    pub max_data_in: usize,
    /// The longest Data-In sequence (MaxBurstLength).
    pub max_burst: usize,
    pub pool: Arc<BufPool>,
    /// Where pipes of spliced read data go back to.
    pub pipes: Arc<PipePool>,
    /// The send timeout's value, read before each batch.
    pub registry: Arc<Registry>,
    /// Where a send timeout is counted (None: discovery, counted in the registry's).
    pub target: Option<Arc<IscsiTarget>>,
    /// Closed by the writer on a send timeout, so that the reader ends too.
    pub control: Arc<ConnControl>,
    pub peer: SocketAddr,
}

impl<W: OutStream> Writer<W> {
    pub async fn run(mut self) {
        let mut batch: Vec<Outgoing> = Vec::new();
        let mut own: Vec<u8> = Vec::with_capacity(64 * 1024);
        let mut segs: Vec<Seg> = Vec::new();
        let mut pipes: Vec<ConnPipe> = Vec::new();
        let mut closing = false;
        while !closing {
            let Some(first) = self.rx.recv().await else { break };
            batch.push(first);
            let mut bytes = 0usize;
            while bytes < BATCH_BYTES {
                match self.rx.try_recv() {
                    Some(m) => {
                        if let Outgoing::Scsi(r) = &m {
                            bytes += r.send_len;
                        }
                        batch.push(m);
                    }
                    None => break,
                }
            }
            own.clear();
            segs.clear();
            let (exp, max) = self.session.window_stamps();
            let mut ok = true;
            for (i, item) in batch.iter_mut().enumerate() {
                let piped = match item {
                    Outgoing::Scsi(r) => self.take_pipe(r, &mut pipes),
                    _ => Ok(None),
                };
                let Ok(piped) = piped else {
                    // Read data that can be neither spliced nor copied out: the status cannot be
                    // sent without it, so the connection ends (the initiator retries elsewhere).
                    ok = false;
                    break;
                };
                match &*item {
                    Outgoing::Pdu { bhs, data, stat } => {
                        let mut h = bhs.clone();
                        h.set_u32_at(off::EXP_CMD_SN, exp);
                        h.set_u32_at(off::MAX_CMD_SN, max);
                        h.set_u32_at(off::STAT_SN, self.stat_sn);
                        if *stat == Stat::Advance {
                            self.stat_sn = self.stat_sn.wrapping_add(1);
                        }
                        self.push_pdu(&mut own, &mut segs, h, Payload::Bytes(data), i, 0);
                    }
                    Outgoing::Scsi(r) => {
                        let payload = match piped {
                            Some((p, n)) => Payload::Pipe(p, n),
                            None => Payload::Bytes(&r.data[..r.send_len.min(r.data.len())]),
                        };
                        self.push_scsi(&mut own, &mut segs, r, payload, i, exp, max)
                    }
                    Outgoing::Close => closing = true,
                }
            }
            if ok {
                let stall = self.registry.send_timeout();
                if let Err(e) = write_segments(&mut self.sock, &own, &segs, &batch, &mut pipes, stall).await {
                    ok = false;
                    if is_stall(&e) {
                        self.send_timed_out(stall);
                    }
                }
            }
            self.rx.release(&batch);
            for item in batch.drain(..) {
                if let Outgoing::Scsi(r) = item {
                    self.pool.give(r.data);
                    // The data is in the socket (or the connection is ending): its read budget
                    // goes back now.
                    drop(r.held);
                }
            }
            for p in pipes.drain(..) {
                self.pipes.give(p);
            }
            if !ok {
                break;
            }
        }
        let _ = self.sock.shutdown().await;
        // Anything still queued is dropped with the receiver; senders see a closed channel.
    }

    /// The socket took no byte for `stall` with replies to send: the initiator has stopped reading.
    /// The connection ends (the reader is told; the session goes as when the initiator drops the
    /// connection), and what it held is dropped: the batch by the caller, the queue with the writer.
    fn send_timed_out(&self, stall: Duration) {
        tracing::warn!(
            initiator = %self.session.initiator_name,
            peer = %self.peer,
            secs = stall.as_secs_f64(),
            "connection closed: its socket accepted no reply bytes within the send timeout"
        );
        self.counters().send_timeout();
        self.control.close();
    }

    fn counters(&self) -> &IscsiCounters {
        self.target.as_ref().map_or(&self.registry.untargeted, |t| &t.counters)
    }

    /// Take the reply's pipe into the batch's `pipes`: `(index, bytes to send)` to splice from,
    /// or None for a reply without one. Where the pipe cannot be spliced (the socket is not a
    /// kernel socket, or data digests need the bytes) its bytes are copied into `r.data` instead.
    fn take_pipe(&self, r: &mut ScsiReply, pipes: &mut Vec<ConnPipe>) -> std::io::Result<Option<(usize, usize)>> {
        let Some(mut pipe) = r.pipe.take() else { return Ok(None) };
        let n = r.send_len.min(pipe.len());
        if self.data_digest || self.sock.kernel_socket().is_none() {
            r.data.clear();
            let copied = pipe.read_into(&mut r.data, n);
            self.pipes.give(pipe);
            return copied.map(|()| None);
        }
        pipes.push(pipe);
        Ok(Some((pipes.len() - 1, n)))
    }

    /// Header (+digest) into `own`, payload copied, referenced or spliced, then padding and data
    /// digest (never with a pipe: `take_pipe` copies those).
    fn push_pdu(
        &self,
        own: &mut Vec<u8>,
        segs: &mut Vec<Seg>,
        mut h: Bhs,
        data: Payload<'_>,
        item: usize,
        item_off: usize,
    ) {
        let len = data.len();
        h.set_data_segment_len(len as u32);
        own.extend_from_slice(&h.0);
        if self.header_digest {
            own.extend_from_slice(&crate::pdu::crc32c(&h.0).to_le_bytes());
        }
        if len == 0 {
            return;
        }
        match data {
            Payload::Bytes(b) if b.len() <= COPY_LIMIT => own.extend_from_slice(b),
            Payload::Bytes(_) => {
                close_own(own, segs);
                segs.push(Seg::Item(item, item_off, item_off + len));
            }
            Payload::Pipe(p, n) => {
                close_own(own, segs);
                segs.push(Seg::Pipe(p, n));
            }
        }
        let pad = [0u8; 3];
        let pad = &pad[..pad_len(len)];
        own.extend_from_slice(pad);
        if let (true, Payload::Bytes(b)) = (self.data_digest, data) {
            let crc = crc32c::crc32c_append(crate::pdu::crc32c(b), pad);
            own.extend_from_slice(&crc.to_le_bytes());
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn push_scsi(
        &mut self,
        own: &mut Vec<u8>,
        segs: &mut Vec<Seg>,
        r: &ScsiReply,
        payload: Payload<'_>,
        item: usize,
        exp: u32,
        max: u32,
    ) {
        let len = payload.len();
        // Status goes in the last Data-In unless there is sense data to send (RFC 7143 11.7.4).
        let collapse = len > 0 && r.sense.is_none();
        let chunk = self.max_data_in.max(512);
        let burst = self.max_burst.max(chunk);
        let mut offset = 0usize;
        let mut data_sn = 0u32;
        while offset < len {
            let n = chunk.min(len - offset).min(burst - offset % burst);
            let last = offset + n == len;
            let mut h = Bhs::new(Opcode::DataIn);
            let mut flags = 0u8;
            if last || (offset + n).is_multiple_of(burst) {
                flags |= 0x80; // F: end of a sequence
            }
            h.set_lun(r.lun);
            h.set_itt(r.itt);
            h.set_ttt(RESERVED_TAG);
            h.set_u32_at(off::EXP_CMD_SN, exp);
            h.set_u32_at(off::MAX_CMD_SN, max);
            h.set_u32_at(off::DATA_SN, data_sn);
            h.set_u32_at(off::BUFFER_OFFSET, offset as u32);
            if last && collapse {
                flags |= 0x01 | r.residual.flags; // S, O/U
                h.0[3] = r.status;
                h.set_u32_at(off::STAT_SN, self.stat_sn);
                self.stat_sn = self.stat_sn.wrapping_add(1);
                h.set_u32_at(off::RESIDUAL_COUNT, r.residual.count);
            }
            h.set_flags(flags);
            let part = match payload {
                Payload::Bytes(b) => Payload::Bytes(&b[offset..offset + n]),
                Payload::Pipe(p, _) => Payload::Pipe(p, n),
            };
            self.push_pdu(own, segs, h, part, item, offset);
            offset += n;
            data_sn = data_sn.wrapping_add(1);
        }
        if collapse {
            return;
        }
        let mut h = Bhs::new(Opcode::ScsiResponse);
        h.set_flags(0x80 | r.residual.flags);
        h.0[2] = 0; // command completed at target
        h.0[3] = r.status;
        h.set_itt(r.itt);
        h.set_u32_at(off::STAT_SN, self.stat_sn);
        self.stat_sn = self.stat_sn.wrapping_add(1);
        h.set_u32_at(off::EXP_CMD_SN, exp);
        h.set_u32_at(off::MAX_CMD_SN, max);
        h.set_u32_at(off::DATA_SN, data_sn); // ExpDataSN: the Data-In PDUs sent
        h.set_u32_at(off::RESIDUAL_COUNT, r.residual.count);
        let mut sense_seg = Vec::new();
        if let Some(s) = &r.sense {
            // 11.4.7: SenseLength then the sense bytes.
            let n = s.len().min(1024);
            sense_seg.extend_from_slice(&(n as u16).to_be_bytes());
            sense_seg.extend_from_slice(&s[..n]);
        }
        self.push_pdu(own, segs, h, Payload::Bytes(&sense_seg), item, usize::MAX);
    }
}

/// End the current run of `own` bytes as a segment.
fn close_own(own: &[u8], segs: &mut Vec<Seg>) {
    let start = segs.iter().rev().find_map(|s| if let Seg::Own(_, e) = s { Some(*e) } else { None }).unwrap_or(0);
    if own.len() > start {
        segs.push(Seg::Own(start, own.len()));
    } else {
        // Keep the bookkeeping of where `own` was cut even for an empty run.
        segs.push(Seg::Own(start, start));
    }
}

fn item_bytes(item: &Outgoing) -> &[u8] {
    match item {
        Outgoing::Pdu { data, .. } => data,
        Outgoing::Scsi(r) => &r.data,
        Outgoing::Close => &[],
    }
}

/// Write the batch; each socket call must make progress within `stall` (see `send_timeout`).
async fn write_segments<W: OutStream>(
    sock: &mut W,
    own: &[u8],
    segs: &[Seg],
    batch: &[Outgoing],
    pipes: &mut [ConnPipe],
    stall: Duration,
) -> std::io::Result<()> {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(segs.len() * 2 + 1);
    let mut own_end = 0;
    if !pipes.is_empty() {
        // `take_pipe` keeps pipes only for a kernel socket.
        let Some(tcp) = sock.kernel_socket() else { return Err(std::io::ErrorKind::Unsupported.into()) };
        return write_spliced(tcp, own, segs, batch, pipes, stall).await;
    }
    for s in segs {
        match s {
            Seg::Own(a, b) => {
                if b > a {
                    parts.push(&own[*a..*b]);
                }
                own_end = *b;
            }
            Seg::Item(i, a, b) => parts.push(&item_bytes(&batch[*i])[*a..*b]),
            Seg::Pipe(..) => return Err(std::io::ErrorKind::Unsupported.into()),
        }
    }
    if own.len() > own_end {
        parts.push(&own[own_end..]);
    }
    write_all_vectored(sock, &parts, stall).await
}

/// The batch with spliced payloads: the bytes before each pipe segment go out in one sendmsg
/// marked MSG_MORE, then the segment is spliced; the last call of the batch is not marked, so
/// the socket pushes what it holds.
async fn write_spliced(
    tcp: &tokio::net::TcpStream,
    own: &[u8],
    segs: &[Seg],
    batch: &[Outgoing],
    pipes: &mut [ConnPipe],
    stall: Duration,
) -> std::io::Result<()> {
    let mut own_end = segs.iter().rev().find_map(|s| if let Seg::Own(_, e) = s { Some(*e) } else { None }).unwrap_or(0);
    let tail = &own[own_end..];
    // Whether bytes follow segment `k`: if none, its splice is the batch's last call and pushes.
    let bytes_after = |k: usize| {
        !tail.is_empty()
            || segs[k + 1..].iter().any(|s| match s {
                Seg::Own(a, b) => b > a,
                Seg::Item(..) | Seg::Pipe(..) => true,
            })
    };
    let mut parts: Vec<&[u8]> = Vec::with_capacity(segs.len() + 1);
    own_end = 0;
    for (k, s) in segs.iter().enumerate() {
        match s {
            Seg::Own(a, b) => {
                if b > a {
                    parts.push(&own[*a..*b]);
                }
                own_end = *b;
            }
            Seg::Item(i, a, b) => parts.push(&item_bytes(&batch[*i])[*a..*b]),
            Seg::Pipe(p, n) => {
                crate::splice::send_all(tcp, &parts, true, stall).await?;
                parts.clear();
                crate::splice::splice_all(tcp, &mut pipes[*p], *n, bytes_after(k), stall).await?;
            }
        }
    }
    if own.len() > own_end {
        parts.push(&own[own_end..]);
    }
    crate::splice::send_all(tcp, &parts, false, stall).await
}

/// Write every part, in as few `writev` calls as the socket allows, each of which must take some
/// bytes within `stall`.
async fn write_all_vectored<W: OutStream>(sock: &mut W, parts: &[&[u8]], stall: Duration) -> std::io::Result<()> {
    let fd = sock.kernel_socket().map(|s| s.as_raw_fd());
    let mut at = PartsCursor::default();
    while at.idx < parts.len() {
        let n = if parts.len() - at.idx == 1 {
            progress_within(stall, fd, sock.write(&parts[at.idx][at.skip..])).await?
        } else {
            progress_within(stall, fd, sock.write_vectored(&at.slices(parts))).await?
        };
        at.advance(parts, n)?;
    }
    Ok(())
}
