//! REPORT LUNS (SPC-4 6.33): the LUN inventory of the target, in LUN order.

use super::truncate;
use crate::cdb::{be32, Cdb};
use crate::lun_address::encode_lun;
use crate::opcodes::{now, Handler, Request};
use crate::sense::Sense;

/// REPORT LUNS on a unit of the target: the target's inventory.
pub(crate) fn run(req: &mut Request<'_>, select_report: u8, alloc_len: u32) -> Result<(), Sense> {
    let luns = req.ctx.target.luns();
    report_luns(luns.iter().map(|(n, _)| *n), select_report, alloc_len, req.data_in);
    Ok(())
}

/// `luns` are the target's LUN numbers, ascending. SELECT REPORT 0 and 2 list every LUN; 1 lists the
/// well-known LUNs, of which we have none.
pub(crate) fn report_luns(luns: impl Iterator<Item = u64>, select_report: u8, alloc_len: u32, out: &mut Vec<u8>) {
    out.resize(8, 0);
    if select_report != 1 {
        for lun in luns {
            out.extend_from_slice(&encode_lun(lun));
        }
    }
    let list_len = u32::try_from(out.len() - 8).unwrap_or(u32::MAX);
    out[0..4].copy_from_slice(&list_len.to_be_bytes());
    truncate(out, usize::try_from(alloc_len).unwrap_or(usize::MAX));
}

/// REPORT LUNS's fields (SPC-4 6.33).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReportLuns {
    pub select_report: u8,
    pub alloc_len: u32,
}

impl Cdb for ReportLuns {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let select_report = c[2];
        if select_report > 2 {
            return Err(Sense::invalid_cdb_field(2, Some(7)));
        }
        let alloc_len = be32(c, 6);
        // The allocation length shall be at least 16; less is an error (SPC-4 6.33).
        if alloc_len < 16 {
            return Err(Sense::invalid_cdb_field(6, Some(7)));
        }
        Ok(ReportLuns { select_report, alloc_len })
    }
}

pub(crate) const REPORT_LUNS: Handler =
    now!(ReportLuns, |req, ReportLuns { select_report, alloc_len }| run(req, select_report, alloc_len));

#[cfg(test)]
mod tests {
    use crate::test_util::*;

    const CDB: [u8; 12] = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0];

    #[test]
    fn lists_controller_and_disk() {
        let t = TestLun::disk(1 << 20);
        let (r, d) = t.run(&CDB);
        assert_good(&r);
        assert_eq!(d, [0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn select_report_and_allocation_length() {
        let t = TestLun::disk(1 << 20);
        let mut cdb = CDB;
        cdb[2] = 1;
        let (r, d) = t.run(&cdb);
        assert_good(&r);
        assert_eq!(d, [0; 8]);
        cdb[2] = 2;
        let (_, d) = t.run(&cdb);
        assert_eq!(d.len(), 24);
        cdb[2] = 3;
        let (r, _) = t.run(&cdb);
        assert_sense(&r, 0x05, 0x24, 0x00);
        // Allocation length below 16 is invalid; 16 truncates to the first LUN.
        let mut cdb = CDB;
        cdb[9] = 15;
        cdb[8] = 0;
        let (r, _) = t.run(&cdb);
        assert_sense(&r, 0x05, 0x24, 0x00);
        cdb[9] = 16;
        let (r, d) = t.run(&cdb);
        assert_good(&r);
        assert_eq!(d, [0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn works_on_a_missing_lun_without_ua() {
        let t = TestLun::disk(1 << 20);
        let fresh = t.target.add_nexus("fresh".into());
        let mut d = Vec::new();
        let r = block_on(t.target.execute(&fresh, 7, &CDB, &[], &mut d));
        assert_good(&r);
        assert_eq!(d.len(), 24);
    }
}
