//! READ ELEMENT STATUS (SMC-3 6.11): the status of the elements of one type (or of all four, in
//! type order: transport, storage, import/export, data transfer) from a starting address on, at
//! most NUMBER OF ELEMENTS of them, each page under its own header (SMC-3 6.11.2-6.11.4).
//!
//! Descriptors have one length for the whole answer, as tgt reports them: 12 bytes, the primary
//! volume tag (36) with VOLTAG, the device identifier's 4-byte header, and with DVCID the 34 bytes
//! of a drive's identification (vendor, product, serial, as tgt lays them out). The header's counts
//! are those of everything asked for; the data is then cut to the allocation length, built only as
//! far as it is read, so a 64k-element library asked for 8 bytes builds 16.

use super::changer;
use super::library::{Element, ElementType};
use crate::cdb::{be16, be24, Cdb};
use crate::lun::LogicalUnit;
use crate::medium_drive::DriveIdentity;
use crate::opcodes::{now, Handler};
use crate::sense::Sense;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReadElementStatus {
    pub voltag: bool,
    /// None: every type.
    pub kind: Option<ElementType>,
    pub start: u16,
    pub count: u16,
    pub dvcid: bool,
    pub alloc_len: u32,
}

impl Cdb for ReadElementStatus {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let kind = match c[1] & 0x0f {
            0 => None,
            code => Some(ElementType::from_code(code).ok_or(Sense::invalid_cdb_field(1, Some(3)))?),
        };
        Ok(ReadElementStatus {
            voltag: c[1] & 0x10 != 0,
            kind,
            start: be16(c, 2),
            count: be16(c, 4),
            // CURDATA (bit 1) asks not to move anything to learn the status: nothing ever moves to.
            dvcid: c[6] & 0x01 != 0,
            alloc_len: be24(c, 7),
        })
    }
}

/// One descriptor's length for these flags.
pub(crate) fn descriptor_len(voltag: bool, dvcid: bool) -> usize {
    12 + if voltag { 36 } else { 0 } + 4 + if dvcid { IDENTIFIER_LEN } else { 0 }
}

/// Vendor (8), product (16) and serial number (10).
const IDENTIFIER_LEN: usize = 34;
/// DATA TRANSFER DEVICE REMOVED: a drive element no drive is bound to (SPC-4 annex D).
const NO_DRIVE: (u8, u8) = (0x3b, 0x1a);

/// SMC-3 6.11.5-6.11.8: element status bits by type.
const FULL: u8 = 0x01;
const IMPEXP: u8 = 0x02;
const EXCEPT: u8 = 0x04;
const ACCESS: u8 = 0x08;
const EXENAB: u8 = 0x10;
const INENAB: u8 = 0x20;

fn put_field(out: &mut Vec<u8>, text: &str, width: usize) {
    crate::spc::put_ascii(out, text, width);
}

fn descriptor(out: &mut Vec<u8>, e: &Element, id: Option<&DriveIdentity>, c: &ReadElementStatus) {
    let start = out.len();
    out.extend_from_slice(&e.address.to_be_bytes());
    let mut flags = u8::from(e.medium.is_some()) * FULL;
    let mut asc = (0, 0);
    match e.kind {
        ElementType::Transport => {}
        ElementType::Storage => flags |= ACCESS,
        ElementType::ImportExport => {
            flags |= ACCESS | INENAB | EXENAB;
            if e.medium.as_ref().is_some_and(|m| m.imported) {
                flags |= IMPEXP;
            }
        }
        ElementType::DataTransfer => {
            flags |= ACCESS;
            if e.drive.is_none() {
                flags |= EXCEPT;
                asc = NO_DRIVE;
            }
        }
    }
    out.extend_from_slice(&[flags, 0, asc.0, asc.1, 0, 0, 0]);
    let source = e.medium.as_ref().and_then(|m| m.source);
    // SVALID, and MEDIUM TYPE 0: unspecified, as tgt reports it.
    out.push(if source.is_some() { 0x80 } else { 0 });
    out.extend_from_slice(&source.unwrap_or(0).to_be_bytes());
    if c.voltag {
        // PRIMARY VOLUME TAG INFORMATION: the tag space-padded, then reserved and VOLUME SEQUENCE
        // NUMBER 0.
        put_field(out, e.medium.as_ref().map_or("", |m| m.tag()), 32);
        out.extend_from_slice(&[0; 4]);
    }
    match (c.dvcid, id) {
        (true, Some(id)) => {
            // CODE SET 2 (ASCII), IDENTIFIER TYPE 1 (T10 vendor identification).
            out.extend_from_slice(&[0x02, 0x01, 0, IDENTIFIER_LEN as u8]);
            put_field(out, &id.vendor, 8);
            put_field(out, &id.product, 16);
            put_field(out, &id.serial, 10);
        }
        _ => out.extend_from_slice(&[0; 4]),
    }
    out.resize(start + descriptor_len(c.voltag, c.dvcid), 0);
}

fn read_element_status(lu: &LogicalUnit, c: ReadElementStatus, out: &mut Vec<u8>) -> Result<(), Sense> {
    let changer = changer(lu)?;
    // The elements asked for, copied out so that no lock is held while drives are asked who they are.
    let mut chosen: Vec<Element> = {
        let library = changer.library();
        library
            .elements
            .iter()
            .filter(|e| c.kind.is_none_or(|k| e.kind == k) && e.address >= c.start)
            .cloned()
            .collect()
    };
    chosen.sort_by_key(|e| (e.kind, e.address));
    chosen.truncate(usize::from(c.count));
    let len = descriptor_len(c.voltag, c.dvcid);
    let pages = ElementType::ALL.map(|k| chosen.iter().filter(|e| e.kind == k).count());
    let total: usize = pages.iter().filter(|&&n| n > 0).map(|n| 8 + n * len).sum();
    let alloc = c.alloc_len as usize;

    // Element status data header (SMC-3 6.11.2): the byte count leaves out the header itself.
    out.extend_from_slice(&chosen.iter().map(|e| e.address).min().unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&(chosen.len() as u16).to_be_bytes());
    out.push(0);
    out.extend_from_slice(&(total as u32).to_be_bytes()[1..]);
    let mut rest = chosen.iter().peekable();
    for (kind, n) in ElementType::ALL.into_iter().zip(pages) {
        if n == 0 || out.len() >= alloc {
            continue;
        }
        // Element status page header (SMC-3 6.11.3): PVOLTAG, descriptor length, byte count.
        out.extend_from_slice(&[kind.code(), if c.voltag { 0x80 } else { 0 }]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.push(0);
        out.extend_from_slice(&((n * len) as u32).to_be_bytes()[1..]);
        while let Some(e) = rest.next_if(|e| e.kind == kind) {
            if out.len() >= alloc {
                break;
            }
            let id = if c.dvcid && kind == ElementType::DataTransfer { changer.identity(e.drive) } else { None };
            descriptor(out, e, id.as_ref(), &c);
        }
        // Skip what was not built of this page.
        while rest.next_if(|e| e.kind == kind).is_some() {}
    }
    crate::spc::truncate(out, alloc);
    Ok(())
}

pub(crate) const READ_ELEMENT_STATUS: Handler =
    now!(ReadElementStatus, |req, c| read_element_status(req.lu, c, req.data_in));
