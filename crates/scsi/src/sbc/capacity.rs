//! READ CAPACITY(10) and READ CAPACITY(16) (SBC-3 5.15, 5.16).

use crate::cdb::{be32, Cdb};
use crate::lun::LogicalUnit;
use crate::opcodes::{now, Handler};
use crate::sense::Sense;
use crate::spc::truncate;

/// SBC-3 5.15: the last LBA, or 0xffffffff when it does not fit (the initiator then asks for
/// READ CAPACITY(16)), and the block length.
pub(crate) fn read_capacity10(lu: &LogicalUnit, out: &mut Vec<u8>) {
    let last = lu.capacity_blocks().saturating_sub(1);
    let last = u32::try_from(last).unwrap_or(u32::MAX);
    out.extend_from_slice(&last.to_be_bytes());
    out.extend_from_slice(&lu.block_size().to_be_bytes());
}

/// SBC-3 5.16: 32 bytes of parameter data.
pub(crate) fn read_capacity16(lu: &LogicalUnit, alloc_len: u32, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&lu.capacity_blocks().saturating_sub(1).to_be_bytes());
    out.extend_from_slice(&lu.block_size().to_be_bytes());
    out.push(0); // P_TYPE, PROT_EN: no protection information
    out.push(lu.lbppbe()); // P_I_EXPONENT 0, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT
                           // LBPME and LBPRZ on thin units; LOWEST ALIGNED LOGICAL BLOCK ADDRESS 0.
    out.push(if lu.config().thin_provisioning { 0xc0 } else { 0 });
    out.push(0);
    out.resize(start + 32, 0);
    truncate(out, usize::try_from(alloc_len).unwrap_or(usize::MAX));
}

/// READ CAPACITY(10) (SBC-3 5.15): the PMI bit is obsolete in SBC-3 and LOGICAL BLOCK ADDRESS
/// must be 0 without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadCapacity10;

impl Cdb for ReadCapacity10 {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        if c[8] & 0x01 == 0 && be32(c, 2) != 0 {
            return Err(Sense::invalid_cdb_field(2, Some(7)));
        }
        Ok(ReadCapacity10)
    }
}

/// READ CAPACITY(16) (SBC-3 5.16).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadCapacity16 {
    pub alloc_len: u32,
}

impl Cdb for ReadCapacity16 {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(ReadCapacity16 { alloc_len: be32(c, 10) })
    }
}

pub(crate) const READ_CAPACITY10: Handler = now!(ReadCapacity10, |req, ReadCapacity10| {
    read_capacity10(req.lu, req.data_in);
    Ok::<(), Sense>(())
});
pub(crate) const READ_CAPACITY16: Handler = now!(ReadCapacity16, |req, ReadCapacity16 { alloc_len }| {
    read_capacity16(req.lu, alloc_len, req.data_in);
    Ok::<(), Sense>(())
});

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    #[test]
    fn read_capacity10() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_good(&r);
        assert_eq!(d, [0x00, 0x00, 0x07, 0xff, 0x00, 0x00, 0x02, 0x00]);
        // LBA without PMI is invalid.
        assert_sense(&t.run(&[0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0]).0, 0x05, 0x24, 0x00);
        assert_good(&t.run(&[0x25, 0, 0, 0, 0, 1, 0, 0, 1, 0]).0);
    }

    #[test]
    fn read_capacity16_and_allocation_length() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]);
        assert_good(&r);
        assert_eq!(d.len(), 32);
        assert_eq!(&d[..16], [0, 0, 0, 0, 0, 0, 0x07, 0xff, 0, 0, 0x02, 0x00, 0, 0x00, 0, 0]);
        let (r, d) = t.run(&[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 0, 0]);
        assert_good(&r);
        assert_eq!(d.len(), 12);
        let (r, d) = t.run(&[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_good(&r);
        assert!(d.is_empty());
        let thin = TestLun::thin(1 << 20);
        let (_, d) = thin.run(&[0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]);
        assert_eq!(d[14], 0xc0);
    }

    #[test]
    fn big_disk_read_capacity10_saturates() {
        let t = TestLun::null(3 << 41); // 6 TiB of 512-byte blocks
        let (_, d) = t.run(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(d, [0xff, 0xff, 0xff, 0xff, 0, 0, 0x02, 0]);
    }
}
