//! Framing on a byte stream (RFC 7143 11.1): BHS, AHS, header digest, data segment padded to four
//! bytes, data digest. Reading checks the data segment length against our limit before allocating and
//! reads into one reused buffer; `encode_pdu` renders a PDU for the less hot paths (login, tests).

use super::bhs::{Bhs, BHS_LEN};
use super::digest::{crc32c, crc32c_append, from_wire, to_wire};
use super::error::PduError;
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// One received or to-be-sent PDU. `data` is the data segment without padding or digest.
#[derive(Debug, Clone)]
pub struct Pdu {
    pub bhs: Bhs,
    pub ahs: Vec<u8>,
    pub data: BytesMut,
}

/// Padding after a data segment of `len` bytes.
pub fn pad_len(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// Reads PDUs from one connection.
///
/// Bytes come off the socket in large reads into one buffer that holds several PDUs at once; a
/// PDU's data segment is split off that buffer without a copy. Nothing is consumed before a whole
/// PDU is there, so a `read_pdu` future dropped half-way (a `select!` on shutdown) loses nothing.
#[derive(Debug)]
pub struct PduReader<R> {
    inner: R,
    buf: BytesMut,
    pub header_digest: bool,
    pub data_digest: bool,
    /// The largest data segment accepted (our MaxRecvDataSegmentLength, or a login-phase bound).
    pub max_data_segment: u32,
    last: Bhs,
}

/// Room asked of the allocator before each socket read: enough for a burst of 4 KiB writes at
/// QD32 or a 128 KiB Data-Out sequence in one read.
const READ_CHUNK: usize = 256 * 1024;

impl<R: AsyncRead + Unpin> PduReader<R> {
    pub fn new(inner: R, max_data_segment: u32) -> Self {
        PduReader {
            inner,
            buf: BytesMut::new(),
            header_digest: false,
            data_digest: false,
            max_data_segment,
            last: Bhs::default(),
        }
    }

    /// The header of the PDU read last (for a Reject after a data digest error).
    pub fn last_header(&self) -> &Bhs {
        &self.last
    }

    /// Whether a whole PDU header is already buffered (more work without waiting for the socket).
    pub fn has_buffered_header(&self) -> bool {
        self.buf.len() >= BHS_LEN
    }

    /// Read until at least `need` bytes are buffered. A close before any byte of a PDU is `Closed`;
    /// a close inside one is an I/O error.
    async fn fill(&mut self, need: usize) -> Result<(), PduError> {
        while self.buf.len() < need {
            let want = (need - self.buf.len()).max(READ_CHUNK);
            if self.buf.capacity() - self.buf.len() < want {
                // Reclaims the space of consumed PDUs when no split-off segment still uses it.
                self.buf.reserve(want);
            }
            if self.inner.read_buf(&mut self.buf).await? == 0 {
                return Err(if self.buf.is_empty() {
                    PduError::Closed
                } else {
                    PduError::Io(std::io::ErrorKind::UnexpectedEof.into())
                });
            }
        }
        Ok(())
    }

    /// Read one PDU. `Closed` when the peer closed between PDUs.
    pub async fn read_pdu(&mut self) -> Result<Pdu, PduError> {
        self.read_pdu_if(|_| true).await
    }

    /// Read one PDU whose header `accept` approves; otherwise stop after the header with
    /// `UnknownOpcode` (the stream is then out of step: for phases where anything else is fatal).
    pub async fn read_pdu_if(&mut self, accept: impl Fn(&Bhs) -> bool) -> Result<Pdu, PduError> {
        loop {
            match self.take_buffered(&accept) {
                Next::Pdu(r) => return r,
                Next::Need(n) => self.fill(n).await?,
            }
        }
    }

    /// The next PDU if the buffer already holds all of it: what a reader with more work queued
    /// takes without a trip through its `select!` (no future, no waker). None when more bytes must
    /// come off the socket first (nothing is consumed then).
    pub fn try_read_buffered(&mut self) -> Option<Result<Pdu, PduError>> {
        match self.take_buffered(&|_: &Bhs| true) {
            Next::Pdu(r) => Some(r),
            Next::Need(_) => None,
        }
    }

    /// Take one PDU off the buffer, or say how many bytes must be buffered to go on. Every check
    /// that can fail on the header (digest, length bound) is made as soon as the header is there,
    /// before waiting for (or reserving room for) the data segment.
    fn take_buffered(&mut self, accept: &impl Fn(&Bhs) -> bool) -> Next {
        if self.buf.len() < BHS_LEN {
            return Next::Need(BHS_LEN);
        }
        let mut bhs = Bhs::default();
        bhs.0.copy_from_slice(&self.buf[..BHS_LEN]);
        if !accept(&bhs) {
            self.last = bhs.clone();
            return Next::Pdu(Err(PduError::UnknownOpcode(bhs.opcode_raw())));
        }
        let ahs_len = bhs.ahs_len();
        let digest_len = if self.header_digest { 4 } else { 0 };
        let head = BHS_LEN + ahs_len + digest_len;
        if self.buf.len() < head {
            return Next::Need(head);
        }
        self.last = bhs.clone();
        let ahs = &self.buf[BHS_LEN..BHS_LEN + ahs_len];
        if self.header_digest {
            let d: [u8; 4] = self.buf[head - 4..head].try_into().unwrap_or_default();
            let crc = crc32c_append(crc32c(&bhs.0), ahs);
            if crc != from_wire(d) {
                return Next::Pdu(Err(PduError::HeaderDigest));
            }
        }
        // Check the announced length before waiting for (or reserving) that many bytes.
        let len = bhs.data_segment_len();
        if len > self.max_data_segment {
            return Next::Pdu(Err(PduError::DataSegmentTooLong { len, limit: self.max_data_segment }));
        }
        let len = len as usize;
        let padded = len + pad_len(len);
        let total = padded + if self.data_digest && len > 0 { 4 } else { 0 };
        if self.buf.len() < head + total {
            return Next::Need(head + total);
        }
        let ahs = if ahs_len == 0 { Vec::new() } else { ahs.to_vec() };
        self.buf.advance(head);
        let mut seg = self.buf.split_to(total);
        if self.data_digest && len > 0 {
            let d: [u8; 4] = seg[padded..padded + 4].try_into().unwrap_or_default();
            if crc32c(&seg[..padded]) != from_wire(d) {
                return Next::Pdu(Err(PduError::DataDigest));
            }
        }
        seg.truncate(len);
        Next::Pdu(Ok(Pdu { bhs, ahs, data: seg }))
    }
}

/// What the buffer holds: a whole PDU (or the error that ends reading it), or not enough bytes yet.
enum Next {
    Pdu(Result<Pdu, PduError>),
    Need(usize),
}

/// Append a whole PDU (header, AHS, digests, padded data) to `out`. The DataSegmentLength and
/// TotalAHSLength fields are set from `ahs` and `data`.
pub fn encode_pdu(out: &mut Vec<u8>, bhs: &Bhs, ahs: &[u8], data: &[u8], header_digest: bool, data_digest: bool) {
    let mut h = bhs.clone();
    h.0[4] = (ahs.len() / 4) as u8;
    h.set_data_segment_len(data.len() as u32);
    out.reserve(BHS_LEN + ahs.len() + data.len() + 12);
    out.extend_from_slice(&h.0);
    out.extend_from_slice(ahs);
    if header_digest {
        out.extend_from_slice(&to_wire(crc32c_append(crc32c(&h.0), ahs)));
    }
    if !data.is_empty() {
        let pad = [0u8; 3];
        let pad = &pad[..pad_len(data.len())];
        out.extend_from_slice(data);
        out.extend_from_slice(pad);
        if data_digest {
            out.extend_from_slice(&to_wire(crc32c_append(crc32c(data), pad)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pdu::bhs::Opcode;

    fn nop_out(data: &[u8]) -> Bhs {
        let mut b = Bhs::new(Opcode::NopOut);
        b.0[0] |= 0x40;
        b.set_itt(5);
        b.set_ttt(0xffff_ffff);
        b.set_data_segment_len(data.len() as u32);
        b
    }

    async fn roundtrip(hd: bool, dd: bool, data: &[u8]) -> Pdu {
        let mut wire = Vec::new();
        encode_pdu(&mut wire, &nop_out(data), &[], data, hd, dd);
        assert_eq!(wire.len() % 4, 0);
        let mut r = PduReader::new(&wire[..], 8192);
        r.header_digest = hd;
        r.data_digest = dd;
        let pdu = r.read_pdu().await.unwrap();
        assert!(matches!(r.read_pdu().await, Err(PduError::Closed)));
        pdu
    }

    #[tokio::test]
    async fn roundtrips_with_and_without_digests() {
        for (hd, dd) in [(false, false), (true, false), (false, true), (true, true)] {
            for data in [&b""[..], b"a", b"abcd", b"hello"] {
                let p = roundtrip(hd, dd, data).await;
                assert_eq!(&p.data[..], data);
                assert_eq!(p.bhs.itt(), 5);
            }
        }
    }

    #[tokio::test]
    async fn wire_layout_of_a_padded_segment() {
        // NOP-Out, 5 data bytes: 48 header + 5 data + 3 pad.
        let mut wire = Vec::new();
        encode_pdu(&mut wire, &nop_out(b"hello"), &[], b"hello", false, false);
        assert_eq!(wire.len(), 56);
        assert_eq!(&wire[0..8], &[0x40, 0x80, 0, 0, 0, 0, 0, 5]);
        assert_eq!(&wire[48..56], b"hello\0\0\0");
    }

    #[tokio::test]
    async fn header_digest_mismatch_is_detected() {
        let mut wire = Vec::new();
        encode_pdu(&mut wire, &nop_out(b""), &[], b"", true, false);
        wire[48] ^= 1;
        let mut r = PduReader::new(&wire[..], 8192);
        r.header_digest = true;
        assert!(matches!(r.read_pdu().await, Err(PduError::HeaderDigest)));
    }

    #[tokio::test]
    async fn data_digest_mismatch_is_detected() {
        let mut wire = Vec::new();
        encode_pdu(&mut wire, &nop_out(b"abc"), &[], b"abc", false, true);
        wire[49] ^= 1;
        let mut r = PduReader::new(&wire[..], 8192);
        r.data_digest = true;
        assert!(matches!(r.read_pdu().await, Err(PduError::DataDigest)));
    }

    #[tokio::test]
    async fn oversized_segment_is_refused_before_reading_it() {
        let mut b = nop_out(b"");
        b.set_data_segment_len(0x00ff_ffff);
        let mut r = PduReader::new(&b.0[..], 8192);
        assert!(matches!(r.read_pdu().await, Err(PduError::DataSegmentTooLong { len: 0xff_ffff, limit: 8192 })));
    }

    #[tokio::test]
    async fn truncated_pdu_is_an_io_error() {
        let b = nop_out(b"");
        let mut r = PduReader::new(&b.0[..20], 8192);
        assert!(matches!(r.read_pdu().await, Err(PduError::Io(_))));
    }

    #[tokio::test]
    async fn buffered_pdus_are_taken_without_the_socket_and_a_partial_one_is_left() {
        let mut wire = Vec::new();
        encode_pdu(&mut wire, &nop_out(b"one"), &[], b"one", false, false);
        encode_pdu(&mut wire, &nop_out(b"two!"), &[], b"two!", false, false);
        let whole = wire.len();
        encode_pdu(&mut wire, &nop_out(b"three"), &[], b"three", false, false);
        // Everything but the last byte of the third PDU arrives.
        let mut r = PduReader::new(&wire[..wire.len() - 1], 8192);
        assert!(r.try_read_buffered().is_none(), "nothing is buffered before the first read");
        assert_eq!(&r.read_pdu().await.unwrap().data[..], b"one");
        assert_eq!(&r.try_read_buffered().unwrap().unwrap().data[..], b"two!");
        // The third is incomplete: not taken, nothing consumed, and the socket then says EOF.
        assert!(r.try_read_buffered().is_none());
        assert!(r.try_read_buffered().is_none());
        assert_eq!(r.buf.len(), wire.len() - 1 - whole);
        assert!(matches!(r.read_pdu().await, Err(PduError::Io(_))));
    }

    #[tokio::test]
    async fn a_buffered_pdu_over_the_limit_is_refused_from_its_header() {
        let mut b = nop_out(b"");
        b.set_data_segment_len(9000);
        let mut r = PduReader::new(&b.0[..], 8192);
        r.fill(BHS_LEN).await.unwrap();
        assert!(matches!(r.try_read_buffered(), Some(Err(PduError::DataSegmentTooLong { len: 9000, limit: 8192 }))));
    }

    #[tokio::test]
    async fn ahs_is_read() {
        let mut b = nop_out(b"xy");
        b.0[4] = 1;
        let mut wire = b.0.to_vec();
        wire.extend_from_slice(&[1, 2, 3, 4]);
        wire.extend_from_slice(b"xy\0\0");
        let mut r = PduReader::new(&wire[..], 8192);
        let p = r.read_pdu().await.unwrap();
        assert_eq!(p.ahs, vec![1, 2, 3, 4]);
        assert_eq!(&p.data[..], b"xy");
    }
}
