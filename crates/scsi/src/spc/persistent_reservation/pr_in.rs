//! PERSISTENT RESERVE IN (SPC-4 6.15): READ KEYS, READ RESERVATION, REPORT CAPABILITIES and READ
//! FULL STATUS, built from one snapshot of the state and cut to the allocation length.

use super::state::{PrSnapshot, PrType};
use super::transport_id;
use crate::sense::Sense;
use crate::spc::truncate;

pub(crate) const READ_KEYS: u8 = 0x00;
pub(crate) const READ_RESERVATION: u8 = 0x01;
pub(crate) const REPORT_CAPABILITIES: u8 = 0x02;
pub(crate) const READ_FULL_STATUS: u8 = 0x03;

/// What this unit can do, for REPORT CAPABILITIES.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capabilities {
    /// APTPL can be honoured (a persistence store is attached).
    pub ptpl_capable: bool,
    /// The RELATIVE TARGET PORT IDENTIFIER of the port registrations come through (the
    /// target's one port; a gateway's own when several serve the unit).
    pub relative_port: u16,
}

pub(crate) fn reserve_in(
    state: &PrSnapshot,
    caps: Capabilities,
    service_action: u8,
    alloc_len: u16,
    data_in: &mut Vec<u8>,
) -> Result<(), Sense> {
    data_in.extend_from_slice(&state.generation.to_be_bytes());
    match service_action {
        READ_KEYS => {
            let keys = &state.registrations;
            data_in.extend_from_slice(&len32(keys.len() * 8).to_be_bytes());
            for r in keys {
                data_in.extend_from_slice(&r.key.to_be_bytes());
            }
        }
        READ_RESERVATION => match &state.reservation {
            None => data_in.extend_from_slice(&0u32.to_be_bytes()),
            Some(r) => {
                data_in.extend_from_slice(&16u32.to_be_bytes());
                data_in.extend_from_slice(&state.reservation_key().to_be_bytes());
                // Obsolete (4), reserved (1), SCOPE 0h (LU_SCOPE) and TYPE, obsolete (2).
                data_in.extend_from_slice(&[0, 0, 0, 0, 0, r.pr_type.code(), 0, 0]);
            }
        },
        REPORT_CAPABILITIES => {
            data_in.clear();
            report_capabilities(state, caps, data_in);
        }
        READ_FULL_STATUS => {
            let start = data_in.len();
            data_in.extend_from_slice(&[0; 4]);
            for r in &state.registrations {
                let holder = state.is_holder(&r.initiator_port);
                data_in.extend_from_slice(&r.key.to_be_bytes());
                data_in.extend_from_slice(&[0; 4]);
                data_in.push(u8::from(r.all_tg_pt) << 1 | u8::from(holder));
                let scope_type = match &state.reservation {
                    Some(res) if holder => res.pr_type.code(),
                    _ => 0,
                };
                data_in.push(scope_type);
                data_in.extend_from_slice(&[0; 4]);
                data_in.extend_from_slice(&caps.relative_port.to_be_bytes());
                let mut id = Vec::new();
                transport_id::encode(&r.initiator_port, &mut id);
                data_in.extend_from_slice(&len32(id.len()).to_be_bytes());
                data_in.extend_from_slice(&id);
            }
            let additional = len32(data_in.len() - start - 4);
            data_in[start..start + 4].copy_from_slice(&additional.to_be_bytes());
        }
        // The opcode table only routes service actions 0..=3 here.
        _ => return Err(Sense::invalid_cdb_field(1, Some(4))),
    }
    truncate(data_in, usize::from(alloc_len));
    Ok(())
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// SPC-4 6.15.4.
fn report_capabilities(state: &PrSnapshot, caps: Capabilities, out: &mut Vec<u8>) {
    out.extend_from_slice(&8u16.to_be_bytes());
    // CRH (RESERVE/RELEASE follow SPC-4 5.12.3), SIP_C (SPEC_I_PT), ATP_C (ALL_TG_PT: a target has
    // one port, so all ports are that one), PTPL_C when state can be saved.
    out.push(0x10 | 0x08 | 0x04 | u8::from(caps.ptpl_capable));
    // TMV; ALLOW COMMANDS 010b: TEST UNIT READY passes Write Exclusive and Exclusive Access, and
    // MODE SENSE, READ ATTRIBUTE, READ BUFFER, RECEIVE DIAGNOSTIC RESULTS and the REPORT SUPPORTED
    // commands pass Write Exclusive (see `conflict`); PTPL_A.
    out.push(0x80 | 0x20 | u8::from(caps.ptpl_capable && state.aptpl));
    let mut mask = 0u16;
    for t in PrType::ALL {
        mask |= type_mask_bit(t);
    }
    out.extend_from_slice(&mask.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
}

/// The PERSISTENT RESERVATION TYPE MASK bit of a type (bytes 4-5 of REPORT CAPABILITIES).
fn type_mask_bit(t: PrType) -> u16 {
    match t {
        PrType::WriteExclusiveAllRegistrants => 0x8000,
        PrType::ExclusiveAccessRegistrantsOnly => 0x4000,
        PrType::WriteExclusiveRegistrantsOnly => 0x2000,
        PrType::ExclusiveAccess => 0x0800,
        PrType::WriteExclusive => 0x0200,
        PrType::ExclusiveAccessAllRegistrants => 0x0001,
    }
}
