//! REPORT SUPPORTED OPERATION CODES (SPC-4 6.35), answered from the unit's device type's command
//! table: the rows it dispatches through are the rows it reports.

use super::truncate;
use crate::cdb::{be16, be32, Cdb};
use crate::lun::LogicalUnit;
use crate::opcodes::{now, Handler, Offer, OpcodeEntry, OpcodeTable};
use crate::sense::Sense;

/// SPC-4 6.35.4 command timeouts descriptor: we give no timeouts (0 = not specified).
const TIMEOUTS: [u8; 12] = [0x00, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// REPORT SUPPORTED OPERATION CODES's fields (SPC-4 6.35).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RsocRequest {
    pub rctd: bool,
    pub options: u8,
    pub opcode: u8,
    pub service_action: u16,
    pub alloc_len: u32,
}

pub(crate) fn report_supported_opcodes(
    lu: &LogicalUnit,
    table: &OpcodeTable,
    req: RsocRequest,
    out: &mut Vec<u8>,
) -> Result<(), Sense> {
    let offer = Offer::of(lu);
    let offered = || table.rows().iter().filter(|e| e.offered(offer));
    match req.options {
        0 => all_commands(offered(), req.rctd, out),
        _ => {
            let with_sa = table.has_service_actions(req.opcode);
            // SPC-4 6.35.1: option 1 names an opcode without service actions, option 2 one with.
            if (req.options == 1 && with_sa) || (req.options == 2 && !with_sa) {
                return Err(Sense::invalid_cdb_field(2, Some(2)));
            }
            let found = offered().find(|e| {
                e.opcode == req.opcode && !matches!(e.service_action, Some(sa) if u16::from(sa) != req.service_action)
            });
            one_command(found, req.rctd, out);
        }
    }
    truncate(out, usize::try_from(req.alloc_len).unwrap_or(usize::MAX));
    Ok(())
}

/// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-4 6.37): what the iSCSI transport carries to
/// `Target`: ABORT TASK, ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET and TARGET RESET.
pub(crate) fn report_supported_tmf(repd: bool, alloc_len: u32, out: &mut Vec<u8>) {
    // ATS, ATSS, CTSS, LURS, TRS.
    out.extend_from_slice(&[0xda, 0, 0, 0]);
    if repd {
        // Extended parameter data: ADDITIONAL DATA LENGTH 0x0c, no timeouts reported.
        out[3] = 0x0c;
        out.resize(16, 0);
    }
    truncate(out, usize::try_from(alloc_len).unwrap_or(usize::MAX));
}

/// SPC-4 6.35.2 all_commands parameter data.
fn all_commands<'a>(entries: impl Iterator<Item = &'a OpcodeEntry>, rctd: bool, out: &mut Vec<u8>) {
    out.resize(4, 0);
    for e in entries {
        let sa = e.service_action.map_or(0u16, u16::from);
        let mut flags = if e.service_action.is_some() { 0x01 } else { 0 }; // SERVACTV
        if rctd {
            flags |= 0x02; // CTDP
        }
        out.extend_from_slice(&[e.opcode, 0]);
        out.extend_from_slice(&sa.to_be_bytes());
        out.extend_from_slice(&[0, flags]);
        out.extend_from_slice(&(e.usage.len() as u16).to_be_bytes());
        if rctd {
            out.extend_from_slice(&TIMEOUTS);
        }
    }
    let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
    out[0..4].copy_from_slice(&len.to_be_bytes());
}

/// SPC-4 6.35.3 one_command parameter data.
fn one_command(entry: Option<&OpcodeEntry>, rctd: bool, out: &mut Vec<u8>) {
    match entry {
        None => out.extend_from_slice(&[0, 0x01, 0, 0]), // SUPPORT 001b: not supported
        Some(e) => {
            let ctdp = if rctd { 0x80 } else { 0 };
            out.extend_from_slice(&[0, ctdp | 0x03]); // SUPPORT 011b: supported as the standard says
            out.extend_from_slice(&(e.usage.len() as u16).to_be_bytes());
            out.extend_from_slice(e.usage);
            if rctd {
                out.extend_from_slice(&TIMEOUTS);
            }
        }
    }
}

impl Cdb for RsocRequest {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let options = c[2] & 0x07;
        if options > 3 {
            return Err(Sense::invalid_cdb_field(2, Some(2)));
        }
        Ok(RsocRequest {
            rctd: c[2] & 0x80 != 0,
            options,
            opcode: c[3],
            service_action: be16(c, 4),
            alloc_len: be32(c, 6),
        })
    }
}

/// REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS's fields (SPC-4 6.37).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReportTmf {
    pub repd: bool,
    pub alloc_len: u32,
}

impl Cdb for ReportTmf {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(ReportTmf { repd: c[2] & 0x80 != 0, alloc_len: be32(c, 6) })
    }
}

pub(crate) const REPORT_SUPPORTED_OPCODES: Handler =
    now!(RsocRequest, |req, request| report_supported_opcodes(req.lu, req.ops.commands, request, req.data_in));
pub(crate) const REPORT_SUPPORTED_TMF: Handler = now!(ReportTmf, |req, ReportTmf { repd, alloc_len }| {
    report_supported_tmf(repd, alloc_len, req.data_in);
    Ok::<(), Sense>(())
});

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    #[test]
    fn report_supported_task_management_functions() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&[0xa3, 0x0d, 0, 0, 0, 0, 0, 0, 0, 0xff, 0, 0]);
        assert_good(&r);
        // ATS, ATSS, CTSS, LURS, TRS.
        assert_eq!(d, [0xda, 0, 0, 0]);
        let (_, d) = t.run(&[0xa3, 0x0d, 0x80, 0, 0, 0, 0, 0, 0, 0xff, 0, 0]);
        assert_eq!(d.len(), 16);
        assert_eq!(d[3], 0x0c);
        let (_, d) = t.run(&[0xa3, 0x0d, 0x80, 0, 0, 0, 0, 0, 0, 2, 0, 0]);
        assert_eq!(d.len(), 2);
        assert_sense(&t.run(&[0xa3, 0x0d, 0x40, 0, 0, 0, 0, 0, 0, 4, 0, 0]).0, 0x05, 0x24, 0x00);
    }

    fn rsoc(options: u8, opcode: u8, sa: u16) -> [u8; 12] {
        let [hi, lo] = sa.to_be_bytes();
        [0xa3, 0x0c, options, opcode, hi, lo, 0, 0, 0x10, 0, 0, 0]
    }

    #[test]
    fn one_command_read10() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&rsoc(1, 0x28, 0));
        assert_good(&r);
        assert_eq!(d, [0, 0x03, 0, 10, 0x28, 0x1a, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x00]);
        let (_, d) = t.run(&rsoc(2, 0x9e, 0x10));
        assert_eq!(&d[..6], [0, 0x03, 0, 16, 0x9e, 0x10]);
        let (_, d) = t.run(&rsoc(1, 0x42, 0));
        assert_eq!(d, [0, 0x01, 0, 0]);
        let (r, _) = t.run(&rsoc(1, 0x9e, 0));
        assert_sense(&r, 0x05, 0x24, 0x00);
        let (r, _) = t.run(&rsoc(2, 0x28, 0));
        assert_sense(&r, 0x05, 0x24, 0x00);
    }

    #[test]
    fn all_commands_lists_the_table() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&rsoc(0, 0, 0));
        assert_good(&r);
        let len = u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize;
        assert_eq!(len + 4, d.len());
        assert_eq!(len % 8, 0);
        assert_eq!(&d[4..12], [0x00, 0, 0, 0, 0, 0, 0, 6]);
        assert!(d[4..].chunks(8).any(|c| c == [0x9e, 0, 0, 0x10, 0, 0x01, 0, 16]));
        assert!(!d[4..].chunks(8).any(|c| c[0] == 0x42));
        let mut cdb = rsoc(0, 0, 0);
        cdb[2] = 0x80;
        let (_, d) = t.run(&cdb);
        assert_eq!(&d[4..24], [0x00, 0, 0, 0, 0, 0x02, 0, 6, 0x00, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
