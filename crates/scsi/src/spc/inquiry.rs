//! INQUIRY (SPC-4 6.6): standard inquiry data; EVPD requests go to `vpd`.

use super::{put_ascii, truncate, vpd};
use crate::cdb::{be16, Cdb};
use crate::lun::LogicalUnit;
use crate::opcodes::{now, Handler};
use crate::sense::Sense;

pub(crate) fn inquiry(
    lu: &LogicalUnit,
    vpd_pages: &[u8],
    evpd: bool,
    page_code: u8,
    alloc_len: u16,
    data_in: &mut Vec<u8>,
) -> Result<(), Sense> {
    if evpd {
        vpd::page(lu, vpd_pages, page_code, data_in)?;
    } else {
        standard(lu, data_in);
    }
    truncate(data_in, usize::from(alloc_len));
    Ok(())
}

/// SPC-4 6.6.2 standard INQUIRY data, 66 bytes.
fn standard(lu: &LogicalUnit, out: &mut Vec<u8>) {
    let config = lu.config();
    out.push(lu.peripheral_byte());
    out.push(if config.removable { 0x80 } else { 0 }); // RMB
    out.push(0x06); // VERSION: SPC-4
    out.push(0x12); // HISUP, RESPONSE DATA FORMAT 2
    out.push(0); // ADDITIONAL LENGTH, set below
                 // SCCS ACC TPGS 3PC PROTECT: TPGS 01b (implicit asymmetric access) when the unit has
                 // port groups, 11b when SET TARGET PORT GROUPS may change them too (SPC-4 5.15.2.8).
    out.push(match lu.port_groups() {
        Some(g) if g.explicit() => 0x30,
        Some(_) => 0x10,
        None => 0,
    });
    out.push(0); // ENCSERV MULTIP
    out.push(0x02); // CMDQUE
    put_ascii(out, &config.vendor_id, 8);
    put_ascii(out, &config.product_id, 16);
    put_ascii(out, &config.product_rev, 4);
    out.resize(58, 0); // vendor specific 36..56, clocking, reserved
    for v in config.device_type.version_descriptors() {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.resize(66, 0);
    out[4] = (out.len() - 5) as u8;
}

/// Standard INQUIRY data for a LUN that does not exist (SPC-4 6.6.2: peripheral qualifier 011b,
/// device type 1Fh).
pub(crate) fn no_such_lun(alloc_len: u16, out: &mut Vec<u8>) {
    out.push(0x7f);
    out.extend_from_slice(&[0, 0x06, 0x12, 31, 0, 0, 0x02]);
    out.resize(36, b' ');
    truncate(out, usize::from(alloc_len));
}

/// INQUIRY's fields (SPC-4 6.6.1): a page code without EVPD is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inquiry {
    pub evpd: bool,
    pub page_code: u8,
    pub alloc_len: u16,
}

impl Cdb for Inquiry {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let evpd = c[1] & 0x01 != 0;
        if !evpd && c[2] != 0 {
            return Err(Sense::invalid_cdb_field(2, Some(7)));
        }
        Ok(Inquiry { evpd, page_code: c[2], alloc_len: be16(c, 3) })
    }
}

pub(crate) const INQUIRY: Handler = now!(Inquiry, |req, Inquiry { evpd, page_code, alloc_len }| inquiry(
    req.lu,
    req.ops.vpd_pages,
    evpd,
    page_code,
    alloc_len,
    req.data_in
));

#[cfg(test)]
mod tests {
    #[test]
    fn page_without_evpd_is_refused_by_the_decoder() {
        use crate::cdb::Cdb;
        let refused = super::Inquiry::decode(&[0x12, 0, 0x80, 0, 0xff, 0]);
        assert_eq!(refused, Err(crate::sense::Sense::invalid_cdb_field(2, Some(7))));
    }

    use crate::test_util::*;

    #[test]
    fn standard_data() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&[0x12, 0, 0, 0, 0xff, 0]);
        assert_good(&r);
        assert_eq!(d.len(), 66);
        assert_eq!(&d[..8], &[0x00, 0x00, 0x06, 0x12, 61, 0, 0, 0x02]);
        assert_eq!(&d[8..36], b"IET     VIRTUAL-DISK    0001");
        assert_eq!(&d[58..64], &[0x00, 0xa0, 0x04, 0x60, 0x04, 0xc0]);
    }

    #[test]
    fn allocation_length_truncates() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&[0x12, 0, 0, 0, 5, 0]);
        assert_good(&r);
        assert_eq!(d, [0x00, 0x00, 0x06, 0x12, 61]);
        let (r, d) = t.run(&[0x12, 0, 0, 0, 0, 0]);
        assert_good(&r);
        assert!(d.is_empty());
        // 16-bit allocation length (SPC-4): 0x0100 = 256.
        let (_, d) = t.run(&[0x12, 0, 0, 0x01, 0x00, 0]);
        assert_eq!(d.len(), 66);
    }

    #[test]
    fn page_without_evpd_and_cmddt_are_invalid() {
        let t = TestLun::disk(1 << 20);
        let (r, _) = t.run(&[0x12, 0, 0x83, 0, 0xff, 0]);
        assert_sense(&r, 0x05, 0x24, 0x00);
        let (r, _) = t.run(&[0x12, 0x02, 0, 0, 0xff, 0]);
        assert_sense(&r, 0x05, 0x24, 0x00);
    }

    #[test]
    fn controller_identity() {
        let t = TestLun::controller();
        let (r, d) = t.run(&[0x12, 0, 0, 0, 0xff, 0]);
        assert_good(&r);
        assert_eq!(d[0], 0x0c);
        assert_eq!(&d[16..32], b"Controller      ");
    }
}
