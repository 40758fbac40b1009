//! MODE SENSE(6/10) and MODE SELECT(6/10) (SPC-4 6.11-6.14): the framework every device type
//! shares (header, page selection, page control, the administrator's pages, checking MODE SELECT
//! against the changeable mask) and the pages every type has, control (SPC-4 7.5.8) and
//! informational exceptions control (SPC-4 7.5.11). A device type adds its own pages, header bits
//! and block descriptors through `ModePages` (the disk's are in `sbc::mode_pages`). Changeable
//! here: D_SENSE and SWP.
//! MODE SELECT's handler, which takes the pages accepted here and makes the change (stored first
//! when several servers serve the unit), is `mode_select`'s.

use super::truncate;
use crate::lun::{LogicalUnit, LunConfig, ModeParams};
use crate::sense::{Asc, Sense};

const CONTROL: u8 = 0x0a;
const INFORMATIONAL_EXCEPTIONS: u8 = 0x1c;
const ALL_PAGES: u8 = 0x3f;
/// The pages every device type has.
const SHARED: [u8; 2] = [CONTROL, INFORMATIONAL_EXCEPTIONS];

/// Page control (SPC-4 6.11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageControl {
    Current,
    Changeable,
    Default,
}

/// The longest page any type builds (the CD/DVD capabilities page, 30 bytes).
pub(crate) const MAX_PAGE: usize = 30;

/// What a device type adds to MODE SENSE and MODE SELECT.
pub(crate) struct ModePages {
    /// Its own page codes (besides control and informational exceptions).
    pub pages: &'static [u8],
    /// Fill one of `pages` (parameters from byte 2 on) and return its length; with `changeable`,
    /// set each bit MODE SELECT may change instead of the values. The unit is there for pages that
    /// describe its state (a changer's element addresses).
    pub image: fn(lu: &LogicalUnit, code: u8, values: ModeParams, changeable: bool, page: &mut [u8; MAX_PAGE]) -> usize,
    /// Take the values of one of `pages` that MODE SELECT accepted.
    pub apply: fn(code: u8, page: &[u8], values: &mut ModeParams),
    /// The DEVICE-SPECIFIC PARAMETER of the mode parameter header.
    pub device_specific: fn(&LogicalUnit) -> u8,
    /// Whether MODE SENSE reports a block descriptor and MODE SELECT accepts one.
    pub block_descriptors: bool,
}

/// One page's bytes (page code byte with PS clear, page length, parameters). `values` holds the
/// parameters for current/default pages; for the changeable page each changeable bit is set.
fn page_image(
    lu: &LogicalUnit,
    types: &ModePages,
    code: u8,
    values: ModeParams,
    pc: PageControl,
) -> ([u8; MAX_PAGE], usize) {
    let mut p = [0u8; MAX_PAGE];
    let changeable = pc == PageControl::Changeable;
    let len = match code {
        CONTROL => {
            if changeable || values.d_sense {
                p[2] |= 0x04; // D_SENSE
            }
            if !changeable {
                p[3] = 0x10; // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
            }
            if changeable || values.swp {
                p[4] |= 0x08; // SWP
            }
            if !changeable {
                // BUSY TIMEOUT PERIOD: unlimited.
                p[8] = 0xff;
                p[9] = 0xff;
            }
            12
        }
        INFORMATIONAL_EXCEPTIONS => {
            if !changeable {
                p[2] = 0x08; // DEXCPT: informational exceptions are not reported
            }
            12
        }
        _ => (types.image)(lu, code, values, changeable, &mut p),
    };
    p[0] = code;
    p[1] = (len - 2) as u8;
    (p, len)
}

/// One page as MODE SENSE reports it, appended to `out`: the administrator's bytes (`mode_page=`)
/// where there are some, with the bits MODE SELECT may change following the current values; the
/// built-in image otherwise. Returns the page's length.
fn put_page(
    lu: &LogicalUnit,
    config: &LunConfig,
    types: &ModePages,
    code: u8,
    values: ModeParams,
    pc: PageControl,
    out: &mut Vec<u8>,
) -> usize {
    let start = out.len();
    let builtin = SHARED.contains(&code) || types.pages.contains(&code);
    match config.mode_pages.iter().find(|m| m.page == code && m.subpage == 0) {
        // Nothing in the administrator's page is changeable except what the built-in page of that
        // code makes changeable.
        Some(m) => {
            out.extend_from_slice(&[code, m.data.len() as u8]);
            if pc == PageControl::Changeable {
                out.resize(start + 2 + m.data.len(), 0);
            } else {
                out.extend_from_slice(&m.data);
            }
            if builtin {
                let (image, len) = page_image(lu, types, code, values, pc);
                let (mask, _) = page_image(lu, types, code, values, PageControl::Changeable);
                for i in 2..len.min(m.data.len() + 2) {
                    let b = &mut out[start + i];
                    *b = (*b & !mask[i]) | (image[i] & mask[i]);
                }
            }
        }
        None => {
            let (image, len) = page_image(lu, types, code, values, pc);
            out.extend_from_slice(&image[..len]);
        }
    }
    out.len() - start
}

/// Page codes the unit reports, built-in and the administrator's, in code order.
fn all_pages(config: &LunConfig, types: &ModePages) -> Vec<u8> {
    let mut all: Vec<u8> = SHARED.to_vec();
    all.extend_from_slice(types.pages);
    all.extend(config.mode_pages.iter().filter(|m| m.subpage == 0).map(|m| m.page));
    all.sort_unstable();
    all.dedup();
    all
}

/// MODE SENSE(6/10)'s fields (SPC-4 6.11, 6.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModeSenseRequest {
    pub ten: bool,
    pub dbd: bool,
    pub llbaa: bool,
    pub pc: u8,
    pub page_code: u8,
    pub subpage: u8,
    pub alloc_len: u16,
}

pub(crate) fn mode_sense(
    lu: &LogicalUnit,
    types: &ModePages,
    req: ModeSenseRequest,
    out: &mut Vec<u8>,
) -> Result<(), Sense> {
    let pc = match req.pc {
        0 => PageControl::Current,
        1 => PageControl::Changeable,
        2 => PageControl::Default,
        // SPC-4 6.11.1: saved values are not supported.
        _ => return Err(Sense::illegal_request(Asc::SAVING_PARAMETERS_NOT_SUPPORTED)),
    };
    let config = lu.config();
    let all = all_pages(&config, types);
    let selected: Vec<u8> = if req.page_code == ALL_PAGES {
        // Subpage 0xff with page 0x3f asks for every subpage too; we have none beyond 0.
        if req.subpage != 0 && req.subpage != 0xff {
            return Err(Sense::invalid_cdb_field(3, Some(7)));
        }
        all
    } else {
        if req.subpage != 0 {
            return Err(Sense::invalid_cdb_field(3, Some(7)));
        }
        if !all.contains(&req.page_code) {
            return Err(Sense::invalid_cdb_field(2, Some(5)));
        }
        vec![req.page_code]
    };
    let values = if pc == PageControl::Default { lu.default_mode_params() } else { lu.mode_params() };

    // Header (SPC-4 7.5.5): mode data length, medium type, device-specific parameter, block
    // descriptor length.
    let header_len = if req.ten { 8 } else { 4 };
    out.resize(header_len, 0);
    out[if req.ten { 3 } else { 2 }] = (types.device_specific)(lu);

    let with_descriptor = types.block_descriptors && !req.dbd;
    let long = req.ten && req.llbaa;
    if with_descriptor {
        let blocks = if pc == PageControl::Changeable { 0 } else { lu.capacity_blocks() };
        let block_len = if pc == PageControl::Changeable { 0 } else { lu.block_size() };
        if long {
            // SPC-4 7.5.6.3 long LBA block descriptor.
            out.extend_from_slice(&blocks.to_be_bytes());
            out.extend_from_slice(&[0; 4]);
            out.extend_from_slice(&block_len.to_be_bytes());
            out[4] |= 0x01; // LONGLBA
        } else {
            // SBC-3 6.4.2 short LBA block descriptor; too many blocks reads as 0xffffffff.
            let blocks = u32::try_from(blocks).unwrap_or(u32::MAX);
            out.extend_from_slice(&blocks.to_be_bytes());
            out.push(0);
            out.extend_from_slice(&block_len.to_be_bytes()[1..]);
        }
        let bdl = (out.len() - header_len) as u16;
        if req.ten {
            out[6..8].copy_from_slice(&bdl.to_be_bytes());
        } else {
            out[3] = bdl as u8;
        }
    }
    for code in selected {
        put_page(lu, &config, types, code, values, pc, out);
    }
    if req.ten {
        let total = (out.len() - 2) as u16;
        out[0..2].copy_from_slice(&total.to_be_bytes());
    } else {
        out[0] = (out.len() - 1).min(255) as u8;
    }
    truncate(out, usize::from(req.alloc_len));
    Ok(())
}

/// A page MODE SELECT accepted: its code and its bytes (page code byte, length, parameters).
pub(crate) type AcceptedPage = (u8, Vec<u8>);

/// The pages of MODE SELECT's parameter list, each checked against what MODE SENSE reports and
/// the changeable mask (which do not depend on the current values of the changeable bits).
pub(crate) fn accepted_pages(
    lu: &LogicalUnit,
    types: &ModePages,
    ten: bool,
    param_len: usize,
    data_out: &[u8],
) -> Result<Vec<AcceptedPage>, Sense> {
    if param_len == 0 {
        return Ok(Vec::new());
    }
    let header_len = if ten { 8 } else { 4 };
    if data_out.len() < param_len || param_len < header_len {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR));
    }
    let data = &data_out[..param_len];
    let config = lu.config();
    let (bdl, long) = if ten {
        (usize::from(u16::from_be_bytes([data[6], data[7]])), data[4] & 0x01 != 0)
    } else {
        (usize::from(data[3]), false)
    };
    if data[if ten { 2 } else { 1 }] != 0 {
        // MEDIUM TYPE must be 0 (SBC-3 6.4.1).
        return Err(Sense::invalid_param_field(if ten { 2 } else { 1 }, Some(7)));
    }
    let mut off = header_len;
    if off + bdl > data.len() {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR));
    }
    if bdl > 0 {
        let unit = if long { 16 } else { 8 };
        if !types.block_descriptors || bdl % unit != 0 {
            return Err(Sense::invalid_param_field(if ten { 6 } else { 3 }, Some(7)));
        }
        // Only the current block length is accepted; the number of blocks is ignored (SBC-3 6.4.2
        // lets a device server that cannot change capacity ignore it).
        for d in data[off..off + bdl].chunks_exact(unit) {
            let block_len = if long {
                u32::from_be_bytes([d[12], d[13], d[14], d[15]])
            } else {
                u32::from_be_bytes([0, d[5], d[6], d[7]])
            };
            if block_len != lu.block_size() {
                let at = off + if long { 12 } else { 5 };
                return Err(Sense::invalid_param_field(at as u16, Some(7)));
            }
            off += unit;
        }
    }

    let current = lu.mode_params();
    let mut pages = Vec::new();
    let all = all_pages(&config, types);
    let (mut cur, mut mask) = (Vec::new(), Vec::new());
    while off < data.len() {
        if data.len() - off < 2 {
            return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR));
        }
        let code = data[off] & 0x3f;
        if data[off] & 0x40 != 0 {
            // SPF: no subpages here.
            return Err(Sense::invalid_param_field(off as u16, Some(6)));
        }
        let len = usize::from(data[off + 1]) + 2;
        if off + len > data.len() {
            return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR));
        }
        if !all.contains(&code) {
            return Err(Sense::invalid_param_field(off as u16, Some(5)));
        }
        // Compared with what MODE SENSE reports, so a page read and sent back unchanged is accepted.
        cur.clear();
        mask.clear();
        let cur_len = put_page(lu, &config, types, code, current, PageControl::Current, &mut cur);
        put_page(lu, &config, types, code, current, PageControl::Changeable, &mut mask);
        if len != cur_len {
            return Err(Sense::invalid_param_field(off as u16 + 1, Some(7)));
        }
        let new = &data[off..off + len];
        for i in 2..len {
            let stray = (new[i] ^ cur[i]) & !mask[i];
            if stray != 0 {
                return Err(Sense::invalid_param_field((off + i) as u16, Some(7 - stray.leading_zeros() as u8)));
            }
        }
        pages.push((code, new.to_vec()));
        off += len;
    }
    Ok(pages)
}

/// Take the changeable values of one accepted page into `values`.
pub(crate) fn apply_page(types: &ModePages, code: u8, page: &[u8], values: &mut ModeParams) {
    match code {
        CONTROL => {
            values.d_sense = page[2] & 0x04 != 0;
            values.swp = page[4] & 0x08 != 0;
        }
        INFORMATIONAL_EXCEPTIONS => {}
        _ => (types.apply)(code, page, values),
    }
}

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    #[test]
    fn mode_sense6_all_pages_current() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&[0x1a, 0, 0x3f, 0, 0xff, 0]);
        assert_good(&r);
        // 4 header + 8 descriptor + 12 + 20 + 12 + 12 pages = 68.
        assert_eq!(d.len(), 68);
        assert_eq!(&d[..4], [67, 0x00, 0x10, 0x08]);
        // 2048 blocks of 512 bytes.
        assert_eq!(&d[4..12], [0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x02, 0x00]);
        assert_eq!(&d[12..14], [0x01, 0x0a]);
        assert_eq!(&d[24..27], [0x08, 0x12, 0x04]);
        assert_eq!(&d[44..49], [0x0a, 0x0a, 0x00, 0x10, 0x00]);
        assert_eq!(&d[56..59], [0x1c, 0x0a, 0x08]);
    }

    #[test]
    fn administrator_mode_pages() {
        let t = TestLun::with_config(1 << 20, |c| {
            c.mode_pages.push(crate::ModePageSpec { page: 0x20, subpage: 0, data: vec![0xaa, 0xbb] });
            // A caching page whose WCE bit (byte 2, bit 2) still follows MODE SELECT.
            let mut caching = vec![0u8; 18];
            caching[0] = 0x10;
            c.mode_pages.push(crate::ModePageSpec { page: 0x08, subpage: 0, data: caching });
        });
        let (r, d) = t.run(&[0x1a, 0x08, 0x20, 0, 0xff, 0]);
        assert_good(&r);
        assert_eq!(d, [7, 0, 0x10, 0, 0x20, 2, 0xaa, 0xbb]);
        let (_, d) = t.run(&[0x1a, 0x08, 0x08, 0, 0xff, 0]);
        assert_eq!(&d[4..7], [0x08, 18, 0x14], "WCE on, the rest from the administrator");
        // Changeable: nothing in the administrator's own page.
        let (_, d) = t.run(&[0x1a, 0x08, 0x60, 0, 0xff, 0]);
        assert_eq!(d, [7, 0, 0x10, 0, 0x20, 2, 0, 0]);
        let (_, d) = t.run(&[0x1a, 0x08, 0x3f, 0, 0xff, 0]);
        assert_eq!(d[0] as usize + 1, d.len());
        assert_eq!(&d[d.len() - 4..], [0x20, 2, 0xaa, 0xbb], "in page code order");
        // Sent back as read: accepted; with a bit changed that is not changeable: refused.
        let mut page = vec![0, 0, 0x10, 0, 0x20, 2, 0xaa, 0xbb];
        page[0] = 0;
        assert_good(&t.run_out(&[0x15, 0x10, 0, 0, 8, 0], &page).0);
        page[7] = 0xbc;
        assert_sense(&t.run_out(&[0x15, 0x10, 0, 0, 8, 0], &page).0, 0x05, 0x26, 0x00);
        // The caching page as read, WCE cleared: the write cache goes off, the rest stays.
        let (_, d) = t.run(&[0x1a, 0x08, 0x08, 0, 0xff, 0]);
        let mut caching = d.clone();
        caching[0] = 0;
        caching[2] = 0;
        caching[6] &= !0x04;
        assert_good(&t.run_out(&[0x15, 0x10, 0, 0, caching.len() as u8, 0], &caching).0);
        let (_, d) = t.run(&[0x1a, 0x08, 0x08, 0, 0xff, 0]);
        assert_eq!(&d[4..7], [0x08, 18, 0x10]);
    }

    #[test]
    fn mode_sense_dbd_pc_and_truncation() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&[0x1a, 0x08, 0x48, 0, 0xff, 0]);
        assert_good(&r);
        assert_eq!(d, [23, 0, 0x10, 0, 0x08, 0x12, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let (r, _) = t.run(&[0x1a, 0x08, 0xc8, 0, 0xff, 0]);
        assert_sense(&r, 0x05, 0x39, 0x00);
        let (r, d) = t.run(&[0x1a, 0, 0x3f, 0, 4, 0]);
        assert_good(&r);
        assert_eq!(d, [67, 0, 0x10, 8]);
        let (r, _) = t.run(&[0x1a, 0, 0x02, 0, 0xff, 0]);
        assert_sense(&r, 0x05, 0x24, 0x00);
        let (r, _) = t.run(&[0x1a, 0, 0x08, 0x01, 0xff, 0]);
        assert_sense(&r, 0x05, 0x24, 0x00);
    }

    #[test]
    fn mode_sense10_long_descriptor() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&[0x5a, 0x10, 0x0a, 0, 0, 0, 0, 0, 0xff, 0]);
        assert_good(&r);
        assert_eq!(&d[..8], [0, 34, 0, 0x10, 0x01, 0, 0, 16]);
        assert_eq!(&d[8..24], [0, 0, 0, 0, 0, 0, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0x02, 0x00]);
        assert_eq!(&d[24..26], [0x0a, 0x0a]);
    }

    #[test]
    fn mode_select_changes_wce_and_tells_others() {
        let t = TestLun::disk(1 << 20);
        let other = t.target.add_nexus("other".into());
        t.clear_ua(&other);
        // Caching page with WCE cleared, no block descriptor.
        let mut param = vec![0, 0, 0, 0, 0x08, 0x12];
        param.resize(4 + 20, 0);
        let (r, _) = t.run_out(&[0x15, 0x10, 0, 0, 24, 0], &param);
        assert_good(&r);
        let (_, d) = t.run(&[0x1a, 0x08, 0x08, 0, 0xff, 0]);
        assert_eq!(d[6], 0x00);
        let (r, _) = t.run_on(&other, &[0x00, 0, 0, 0, 0, 0], &[]);
        assert_sense(&r, 0x06, 0x2a, 0x01);
    }

    #[test]
    fn mode_select_rejects_unchangeable_and_short_lists() {
        let t = TestLun::disk(1 << 20);
        let mut param = vec![0, 0, 0, 0, 0x08, 0x12, 0x05];
        param.resize(24, 0);
        // RCD (bit 0 of byte 2) is not changeable: byte 6 of the list.
        let (r, _) = t.run_out(&[0x15, 0x10, 0, 0, 24, 0], &param);
        assert_sense(&r, 0x05, 0x26, 0x00);
        assert_eq!(r.sense.as_ref().unwrap()[15..18], [0x88, 0x00, 0x06]);
        let (r, _) = t.run_out(&[0x15, 0x10, 0, 0, 24, 0], &param[..10]);
        assert_sense(&r, 0x05, 0x1a, 0x00);
        let (r, _) = t.run_out(&[0x15, 0x11, 0, 0, 24, 0], &param);
        assert_sense(&r, 0x05, 0x24, 0x00);
    }

    #[test]
    fn d_sense_switches_sense_format_and_swp_protects() {
        let t = TestLun::disk(1 << 20);
        let mut param = vec![0, 0, 0, 0, 0x0a, 0x0a, 0x04, 0x10, 0x08, 0, 0, 0, 0xff, 0xff];
        param.resize(16, 0);
        let (r, _) = t.run_out(&[0x15, 0x10, 0, 0, 16, 0], &param);
        assert_good(&r);
        let (r, _) = t.run_out(&[0x2a, 0, 0, 0, 0, 0, 0, 0, 1, 0], &[0u8; 512]);
        assert_eq!(r.sense.as_deref(), Some(&[0x72, 0x07, 0x27, 0x00, 0, 0, 0, 0][..]));
        let (_, d) = t.run(&[0x1a, 0x08, 0x0a, 0, 0xff, 0]);
        assert_eq!(d[2], 0x90);
    }

    #[test]
    fn changeable_and_default_values() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&[0x1a, 0, 0x7f, 0, 0xff, 0]);
        assert_good(&r);
        // Changeable: zero block descriptor, WCE, D_SENSE and SWP only.
        assert_eq!(&d[4..12], [0; 8]);
        assert_eq!(&d[12..24], [0x01, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&d[24..27], [0x08, 0x12, 0x04]);
        assert_eq!(&d[44..56], [0x0a, 0x0a, 0x04, 0, 0x08, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&d[56..68], [0x1c, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        // Default after a change still shows the configured WCE.
        let mut param = vec![0, 0, 0, 0, 0x08, 0x12];
        param.resize(24, 0);
        assert_good(&t.run_out(&[0x15, 0x10, 0, 0, 24, 0], &param).0);
        let (_, d) = t.run(&[0x1a, 0x08, 0x88, 0, 0xff, 0]);
        assert_eq!(d[6], 0x04);
        let (_, d) = t.run(&[0x1a, 0x08, 0x08, 0, 0xff, 0]);
        assert_eq!(d[6], 0x00);
    }

    #[test]
    fn mode_select10_with_block_descriptor() {
        let t = TestLun::disk(1 << 20);
        // Header (8), short block descriptor with 512-byte blocks, control page with D_SENSE.
        let mut param = vec![0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0x08, 0, 0, 0, 0x02, 0x00];
        param.extend_from_slice(&[0x0a, 0x0a, 0x04, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
        let len = param.len() as u8;
        assert_good(&t.run_out(&[0x55, 0x10, 0, 0, 0, 0, 0, 0, len, 0], &param).0);
        assert_eq!(t.lu.sense_format(), crate::SenseFormat::Descriptor);
        // A different block length is refused.
        param[14] = 0x10;
        let (r, _) = t.run_out(&[0x55, 0x10, 0, 0, 0, 0, 0, 0, len, 0], &param);
        assert_eq!(r.sense.as_deref().map(|s| (s[1], s[2], s[3])), Some((0x05, 0x26, 0x00)));
        // Unknown page.
        let param = [0, 0, 0, 0, 0x02, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let (r, _) = t.run_out(&[0x15, 0x10, 0, 0, 20, 0], &param);
        assert_eq!(r.sense.as_deref().map(|s| (s[1], s[2], s[3])), Some((0x05, 0x26, 0x00)));
    }

    #[test]
    fn controller_has_control_pages_and_no_descriptor() {
        let t = TestLun::controller();
        let (r, d) = t.run(&[0x1a, 0, 0x3f, 0, 0xff, 0]);
        assert_good(&r);
        assert_eq!(&d[..4], [27, 0, 0, 0]);
        assert_eq!(d[4], 0x0a);
        assert_eq!(d[16], 0x1c);
        assert_sense(&t.run(&[0x1a, 0, 0x08, 0, 0xff, 0]).0, 0x05, 0x24, 0x00);
    }
}
