//! Vital product data pages (SPC-4 7.8, SBC-3 6.5): supported pages, unit serial number, device
//! identification, block limits, block device characteristics, logical block provisioning.

use super::put_ascii;
use crate::lun::LogicalUnit;
use crate::sense::Sense;

pub(crate) const SUPPORTED: u8 = 0x00;
pub(crate) const SERIAL: u8 = 0x80;
pub(crate) const DEVICE_ID: u8 = 0x83;
pub(crate) const THIRD_PARTY_COPY: u8 = 0x8f;
pub(crate) const BLOCK_LIMITS: u8 = 0xb0;
pub(crate) const BLOCK_CHARACTERISTICS: u8 = 0xb1;
pub(crate) const PROVISIONING: u8 = 0xb2;

/// Width of the unit serial number, right-aligned as tgt shows it.
const SERIAL_WIDTH: usize = 36;
/// MAXIMUM UNMAP LBA COUNT / WRITE SAME length advertised on thin units (in blocks).
pub(crate) const MAX_UNMAP_BLOCKS: u32 = 0x4_0000;
/// MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT.
pub(crate) const MAX_UNMAP_DESCRIPTORS: u32 = 256;

/// Build VPD page `code` into `out` from the unit's type's `pages`; unknown pages are INVALID FIELD
/// IN CDB (SPC-4 6.6.1).
pub(crate) fn page(lu: &LogicalUnit, pages: &[u8], code: u8, out: &mut Vec<u8>) -> Result<(), Sense> {
    let config = lu.config();
    if !pages.contains(&code) {
        return Err(Sense::invalid_cdb_field(2, Some(7)));
    }
    out.extend_from_slice(&[lu.peripheral_byte(), code, 0, 0]);
    match code {
        SUPPORTED => out.extend_from_slice(pages),
        SERIAL => {
            let sn = config.scsi_sn.as_bytes();
            let pad = SERIAL_WIDTH.saturating_sub(sn.len());
            out.resize(out.len() + pad, b' ');
            put_ascii(out, &config.scsi_sn, sn.len().min(SERIAL_WIDTH));
        }
        DEVICE_ID => device_identification(lu, out),
        BLOCK_LIMITS => block_limits(lu, out),
        BLOCK_CHARACTERISTICS => {
            // SBC-3 6.5.2: MEDIUM ROTATION RATE 1 = non-rotating would be a guess; 0 = not reported.
            out.resize(4 + 0x3c, 0);
            if config.thin_provisioning {
                // WABEREQ 01b and WACEREQ 01b: after SANITIZE BLOCK ERASE or CRYPTOGRAPHIC ERASE
                // (offered on thin units) reads succeed and return zeros.
                out[7] = 0x50;
            }
        }
        THIRD_PARTY_COPY => super::xcopy::third_party_copy_page(out),
        _ => provisioning(lu, out),
    }
    let len = (out.len() - 4) as u16;
    out[2..4].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

/// SPC-4 7.8.6: a T10 vendor ID designator carrying the SCSI ID (which already starts with the
/// 8-byte vendor identification), and an NAA locally assigned designator (NAA 3, SPC-4 7.8.6.6.4)
/// derived from it, both associated with the logical unit; then the relative target port
/// identifier of the port the command came through (SPC-4 7.8.6.6.5), which initiators need to
/// name that port in PERSISTENT RESERVE OUT REGISTER AND MOVE, and its target port group when the
/// unit has several.
fn device_identification(lu: &LogicalUnit, out: &mut Vec<u8>) {
    let config = lu.config();
    let id = config.scsi_id.as_bytes();
    let id_len = id.len().min(248);
    // Code set 2 (ASCII), association 0, designator type 1 (T10 vendor ID).
    out.extend_from_slice(&[0x02, 0x01, 0x00, id_len as u8]);
    put_ascii(out, &config.scsi_id, id_len);
    // Code set 1 (binary), association 0, designator type 3 (NAA), 8 bytes.
    out.extend_from_slice(&[0x01, 0x03, 0x00, 0x08]);
    out.extend_from_slice(&lu.naa().to_be_bytes());
    // Code set 1 (binary), association 1 (target port), designator type 4, 4 bytes: the identifier
    // sits in the last two. PIV stays 0: the page is the same whichever transport asks, and every
    // transport of rtgt presents one port per target.
    out.extend_from_slice(&[0x01, 0x14, 0x00, 0x04, 0x00, 0x00]);
    out.extend_from_slice(&lu.relative_target_port().to_be_bytes());
    // With asymmetric access, the port's target port group (designator type 5, SPC-4 7.8.6.6.6),
    // which initiators match against REPORT TARGET PORT GROUPS.
    if let Some(groups) = lu.port_groups() {
        out.extend_from_slice(&[0x01, 0x15, 0x00, 0x04, 0x00, 0x00]);
        out.extend_from_slice(&groups.group().to_be_bytes());
    }
}

/// SBC-3 6.5.3 block limits, page length 0x3c.
fn block_limits(lu: &LogicalUnit, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + 0x3c, 0);
    let page = &mut out[start..];
    // WSNZ: on a thin unit a WRITE SAME of zero blocks writes (deallocates, for zeros) to the end
    // of the medium, which is cheap; a fully provisioned unit refuses it rather than rewrite the
    // whole medium in one command.
    page[0] = u8::from(!lu.config().thin_provisioning);
    page[1] = crate::sbc::locked_write::MAX_COMPARE_AND_WRITE_BLOCKS;
    // OPTIMAL TRANSFER LENGTH GRANULARITY: one physical block.
    let per_physical = 1u16 << lu.lbppbe();
    page[2..4].copy_from_slice(&per_physical.to_be_bytes());
    // MAXIMUM TRANSFER LENGTH, enforced by the media-access commands.
    page[4..8].copy_from_slice(&lu.max_transfer_blocks().to_be_bytes());
    if lu.config().thin_provisioning {
        page[16..20].copy_from_slice(&MAX_UNMAP_BLOCKS.to_be_bytes());
        page[20..24].copy_from_slice(&MAX_UNMAP_DESCRIPTORS.to_be_bytes());
        // OPTIMAL UNMAP GRANULARITY: one physical block.
        page[24..28].copy_from_slice(&u32::from(per_physical).to_be_bytes());
        // MAXIMUM WRITE SAME LENGTH.
        page[32..40].copy_from_slice(&u64::from(MAX_UNMAP_BLOCKS).to_be_bytes());
    }
    // WRITE ATOMIC(16): MAXIMUM ATOMIC TRANSFER LENGTH; alignment, granularity and boundaries
    // are unrestricted/unsupported (0).
    let atomic = crate::sbc::locked_write::MAX_ATOMIC_TRANSFER_BLOCKS.min(lu.max_transfer_blocks());
    page[40..44].copy_from_slice(&atomic.to_be_bytes());
}

/// SBC-3 6.5.4 logical block provisioning.
fn provisioning(lu: &LogicalUnit, out: &mut Vec<u8>) {
    if lu.config().thin_provisioning {
        // THRESHOLD EXPONENT 0; LBPU, LBPWS, LBPWS10, LBPRZ (unmapped blocks read as zeros);
        // PROVISIONING TYPE 2 (thin).
        out.extend_from_slice(&[0, 0xe4, 0x02, 0]);
    } else {
        out.extend_from_slice(&[0, 0, 0, 0]);
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    fn vpd(t: &TestLun, page: u8) -> Vec<u8> {
        let (r, d) = t.run(&[0x12, 0x01, page, 0x01, 0x00, 0]);
        assert_good(&r);
        assert_eq!(usize::from(u16::from_be_bytes([d[2], d[3]])) + 4, d.len());
        assert_eq!(d[1], page);
        d
    }

    #[test]
    fn supported_pages() {
        let t = TestLun::disk(1 << 20);
        assert_eq!(vpd(&t, 0x00), [0x00, 0x00, 0x00, 0x07, 0x00, 0x80, 0x83, 0x8f, 0xb0, 0xb1, 0xb2]);
        let c = TestLun::controller();
        assert_eq!(vpd(&c, 0x00), [0x0c, 0x00, 0x00, 0x03, 0x00, 0x80, 0x83]);
    }

    #[test]
    fn every_listed_page_is_readable_and_others_are_not() {
        let t = TestLun::disk(1 << 20);
        for p in [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2] {
            vpd(&t, p);
        }
        let (r, _) = t.run(&[0x12, 0x01, 0x81, 0, 0xff, 0]);
        assert_sense(&r, 0x05, 0x24, 0x00);
    }

    #[test]
    fn serial_is_right_aligned() {
        let t = TestLun::disk(1 << 20);
        let d = vpd(&t, 0x80);
        assert_eq!(d.len(), 40);
        assert_eq!(&d[4..34], [b' '; 30]);
        assert_eq!(&d[34..], b"beaf11");
    }

    #[test]
    fn device_identification_designators() {
        let t = TestLun::disk(1 << 20);
        let d = vpd(&t, 0x83);
        assert_eq!(&d[4..8], [0x02, 0x01, 0x00, 16]);
        assert_eq!(&d[8..24], b"IET     00010001");
        assert_eq!(&d[24..28], [0x01, 0x03, 0x00, 0x08]);
        assert_eq!(d[28] >> 4, 0x3);
        // Relative target port identifier 1, associated with the target port.
        assert_eq!(&d[36..44], [0x01, 0x14, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01]);
        assert_eq!(d.len(), 44);
    }

    #[test]
    fn block_limits_and_provisioning_follow_thin_provisioning() {
        let t = TestLun::disk(1 << 20);
        let d = vpd(&t, 0xb0);
        assert_eq!(d[3], 0x3c);
        // WSNZ 1 (not thin), MAXIMUM COMPARE AND WRITE LENGTH 255, MAXIMUM ATOMIC TRANSFER LENGTH 8192.
        assert_eq!(&d[4..6], [0x01, 0xff]);
        assert_eq!(&d[44..48], [0x00, 0x00, 0x20, 0x00]);
        assert_eq!(&d[48..64], [0; 16]);
        assert_eq!(&d[20..28], [0; 8]);
        assert_eq!(vpd(&t, 0xb2), [0, 0xb2, 0, 4, 0, 0, 0, 0]);
        let thin = TestLun::thin(1 << 20);
        let d = vpd(&thin, 0xb0);
        assert_eq!(d[4], 0x00, "WSNZ 0 on thin units");
        assert_eq!(&d[20..24], [0x00, 0x04, 0x00, 0x00]);
        assert_eq!(&d[24..28], [0x00, 0x00, 0x01, 0x00]);
        assert_eq!(vpd(&thin, 0xb2), [0, 0xb2, 0, 4, 0, 0xe4, 0x02, 0]);
    }
}
