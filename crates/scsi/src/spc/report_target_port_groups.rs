//! REPORT TARGET PORT GROUPS (SPC-4 6.36): every target port group of the unit with its access
//! state and ports, as the daemon's `PortGroups` reports them.

use super::truncate;
use crate::alua::PortGroups;
use crate::cdb::{be32, Cdb};
use crate::opcodes::{now, Handler, Request};
use crate::sense::Sense;

/// SUPPORTED STATES byte: T_SUP, O_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP. Every state is one a
/// gateway may report: another gateway lost (offline), this one without the cluster
/// (unavailable), standby, active/optimized, and the others for completeness of what the
/// initiator may meet during a change of owner.
const SUPPORTED_STATES: u8 = 0x80 | 0x40 | 0x08 | 0x04 | 0x02 | 0x01;

/// IMPLICIT TRANSITION TIME (extended header), seconds: how long an initiator should allow for
/// an ownership change (a gateway's lease expiring and the next taking over).
pub(crate) const IMPLICIT_TRANSITION_SECS: u8 = 30;

/// REPORT TARGET PORT GROUPS's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReportTargetPortGroups {
    /// PARAMETER DATA FORMAT 001b: the extended header.
    pub extended: bool,
    pub alloc_len: u32,
}

impl Cdb for ReportTargetPortGroups {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        let format = c[1] >> 5;
        if format > 1 {
            return Err(Sense::invalid_cdb_field(1, Some(7)));
        }
        Ok(ReportTargetPortGroups { extended: format == 1, alloc_len: be32(c, 6) })
    }
}

pub(crate) fn report(groups: &dyn PortGroups, extended: bool, alloc_len: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0; 4]);
    if extended {
        // FORMAT TYPE 1, IMPLICIT TRANSITION TIME, reserved.
        out.extend_from_slice(&[0x10, IMPLICIT_TRANSITION_SECS, 0, 0]);
    }
    let header = out.len();
    for group in groups.groups() {
        // At most 255 ports fit a descriptor's TARGET PORT COUNT; a gateway has one.
        let ports = &group.relative_ports[..group.relative_ports.len().min(255)];
        out.push(group.state.code());
        out.push(SUPPORTED_STATES);
        out.extend_from_slice(&group.id.to_be_bytes());
        // Reserved, STATUS CODE (no status available), vendor specific, TARGET PORT COUNT.
        out.extend_from_slice(&[0, 0, 0, ports.len() as u8]);
        for port in ports {
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&port.to_be_bytes());
        }
    }
    let len = u32::try_from(out.len() - header).unwrap_or(u32::MAX);
    out[0..4].copy_from_slice(&len.to_be_bytes());
    truncate(out, usize::try_from(alloc_len).unwrap_or(usize::MAX));
}

fn run(req: &mut Request<'_>, extended: bool, alloc_len: u32) -> Result<(), Sense> {
    // The row is offered only to units with port groups.
    if let Some(groups) = req.lu.port_groups() {
        report(groups.as_ref(), extended, alloc_len, req.data_in);
    }
    Ok(())
}

pub(crate) const REPORT_TARGET_PORT_GROUPS: Handler =
    now!(ReportTargetPortGroups, |req, ReportTargetPortGroups { extended, alloc_len }| run(req, extended, alloc_len));

#[cfg(test)]
#[path = "alua_tests.rs"]
mod tests;
