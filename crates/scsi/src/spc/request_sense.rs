//! REQUEST SENSE (SPC-4 6.39). Sense data of failed commands is returned with their status
//! (autosense), so what is left to report here is a pending unit attention, which is consumed
//! (SAM-5 5.14), a deferred error (consumed too), the unit's own state (NOT READY without
//! medium), or NO SENSE.

use super::truncate;
use crate::cdb::Cdb;
use crate::opcodes::{now, Handler, Request};
use crate::sense::{Asc, Sense, SenseFormat, SenseKey};

/// SPC-4 6.39: a pending unit attention first (consumed); with nothing pending, the unit's state as
/// its device type reports it (a disk being sanitized or without medium is NOT READY).
pub(crate) fn run(req: &mut Request<'_>, desc: bool, alloc_len: u8) -> Result<(), Sense> {
    let pending = req.ctx.nexus.unit_attentions.take(req.ctx.lun).map(Sense::unit_attention);
    let deferred = || (req.ops.deferred_error)(req.lu, req.ctx.nexus.id);
    let state = pending.or_else(deferred).or_else(|| (req.ops.state_sense)(req.lu));
    request_sense(state, desc, alloc_len, req.data_in);
    Ok(())
}

pub(crate) fn request_sense(pending: Option<Sense>, desc: bool, alloc_len: u8, out: &mut Vec<u8>) {
    let sense = pending.unwrap_or(Sense::new(SenseKey::NoSense, Asc::NO_ADDITIONAL_SENSE));
    let format = if desc { SenseFormat::Descriptor } else { SenseFormat::Fixed };
    sense.encode_into(format, out);
    truncate(out, usize::from(alloc_len));
}

/// REQUEST SENSE's fields: DESC and ALLOCATION LENGTH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestSense {
    pub desc: bool,
    pub alloc_len: u8,
}

impl Cdb for RequestSense {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(RequestSense { desc: c[1] & 0x01 != 0, alloc_len: c[4] })
    }
}

pub(crate) const REQUEST_SENSE: Handler =
    now!(RequestSense, |req, RequestSense { desc, alloc_len }| run(req, desc, alloc_len));

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    #[test]
    fn reports_and_consumes_a_unit_attention() {
        let t = TestLun::disk(1 << 20);
        let n = t.target.add_nexus("x".into());
        let (r, d) = t.run_on(&n, &[0x03, 0, 0, 0, 0xff, 0], &[]);
        assert_good(&r);
        assert_eq!(d, [0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0]);
        let (r, d) = t.run_on(&n, &[0x03, 0x01, 0, 0, 0xff, 0], &[]);
        assert_good(&r);
        assert_eq!(d, [0x72, 0, 0, 0, 0, 0, 0, 0]);
        let (r, d) = t.run_on(&n, &[0x03, 0, 0, 0, 3, 0], &[]);
        assert_good(&r);
        assert_eq!(d, [0x70, 0, 0]);
    }

    #[test]
    fn reports_not_ready_without_medium() {
        let t = TestLun::disk(1 << 20);
        t.lu.set_online(false);
        let (r, d) = t.run(&[0x03, 0, 0, 0, 0xff, 0]);
        assert_good(&r);
        assert_eq!(d, [0x70, 0, 0x02, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x3a, 0x00, 0, 0, 0, 0]);
    }
}
