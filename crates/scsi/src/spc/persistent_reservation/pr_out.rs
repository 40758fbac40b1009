//! PERSISTENT RESERVE OUT (SPC-4 6.16): the CDB's scope and type, the parameter list, and the
//! service action applied to a copy of the state.

use super::state::{PrSnapshot, PrType, Register};
use super::transport_id;
use crate::cdb::be16;
use crate::failure::Failure;
use crate::sense::{Asc, Sense};

pub(crate) const REGISTER: u8 = 0x00;
pub(crate) const RESERVE: u8 = 0x01;
pub(crate) const RELEASE: u8 = 0x02;
pub(crate) const CLEAR: u8 = 0x03;
pub(crate) const PREEMPT: u8 = 0x04;
pub(crate) const PREEMPT_AND_ABORT: u8 = 0x05;
pub(crate) const REGISTER_AND_IGNORE_EXISTING_KEY: u8 = 0x06;
pub(crate) const REGISTER_AND_MOVE: u8 = 0x07;

/// The basic parameter list (SPC-4 6.16.3) is 24 bytes.
const BASIC_LEN: usize = 24;

/// A decoded PERSISTENT RESERVE OUT CDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProutCdb {
    pub service_action: u8,
    pub scope: u8,
    pub pr_type: u8,
    pub param_len: u32,
}

/// What a service action did beyond changing the state.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub notices: Vec<super::state::Notice>,
    /// Ports whose registrations PREEMPT AND ABORT removed.
    pub aborted: Vec<String>,
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(v)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn length_error() -> Failure {
    Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR).into()
}

/// The CDB's TYPE, required valid and LU_SCOPE for the service actions that use them.
fn scoped_type(cdb: &ProutCdb) -> Result<PrType, Failure> {
    if cdb.scope != 0 {
        return Err(Sense::invalid_cdb_field(2, Some(7)).into());
    }
    PrType::from_code(cdb.pr_type).ok_or_else(|| Sense::invalid_cdb_field(2, Some(3)).into())
}

/// Apply one PERSISTENT RESERVE OUT to `state` on behalf of initiator port `me`.
/// `aptpl_supported`: whether APTPL=1 can be honoured; `port`: the RELATIVE TARGET PORT
/// IDENTIFIER of the port the command came through (REGISTER AND MOVE may name only it).
pub(crate) fn reserve_out(
    state: &mut PrSnapshot,
    me: &str,
    cdb: &ProutCdb,
    data_out: &[u8],
    aptpl_supported: bool,
    port: u16,
) -> Result<Outcome, Failure> {
    let sa = cdb.service_action;
    // CDB fields first: they are wrong whatever the parameter list says.
    let pr_type = match sa {
        RESERVE | RELEASE => Some(scoped_type(cdb)?),
        // PREEMPT's type matters only when it takes the reservation; a bad scope always fails.
        PREEMPT | PREEMPT_AND_ABORT if cdb.scope != 0 => return Err(Sense::invalid_cdb_field(2, Some(7)).into()),
        PREEMPT | PREEMPT_AND_ABORT => PrType::from_code(cdb.pr_type),
        _ => None,
    };
    let param_len = usize::try_from(cdb.param_len).unwrap_or(usize::MAX);
    if param_len < BASIC_LEN || data_out.len() < param_len {
        return Err(length_error());
    }
    let list = &data_out[..param_len];
    let key = be64(list, 0);
    let sark = be64(list, 8);
    if sa == REGISTER_AND_MOVE {
        return register_and_move(state, me, list, key, sark, aptpl_supported, port);
    }
    let flags = list[20];
    let spec_i_pt = flags & 0x08 != 0;
    let all_tg_pt = flags & 0x04 != 0;
    let aptpl = flags & 0x01 != 0;
    if spec_i_pt && sa != REGISTER {
        return Err(Sense::invalid_param_field(20, Some(3)).into());
    }
    if !spec_i_pt && param_len != BASIC_LEN {
        return Err(length_error());
    }
    let registering = matches!(sa, REGISTER | REGISTER_AND_IGNORE_EXISTING_KEY);
    if registering && aptpl && !aptpl_supported {
        return Err(Sense::invalid_param_field(20, Some(0)).into());
    }
    let mut outcome = Outcome::default();
    match sa {
        REGISTER | REGISTER_AND_IGNORE_EXISTING_KEY => {
            let specified = if spec_i_pt { specified_ports(list)? } else { Vec::new() };
            let req = Register { key, sark, ignore_key: sa != REGISTER, aptpl, all_tg_pt, specified };
            outcome.notices = state.register(me, req)?;
        }
        RESERVE => state.reserve(me, key, scoped_type(cdb)?)?,
        RELEASE => outcome.notices = state.release(me, key, scoped_type(cdb)?)?,
        CLEAR => outcome.notices = state.clear(me, key)?,
        PREEMPT | PREEMPT_AND_ABORT => {
            let (notices, removed) = state.preempt(me, key, sark, pr_type)?;
            outcome.notices = notices;
            if sa == PREEMPT_AND_ABORT {
                outcome.aborted = removed;
            }
        }
        _ => return Err(Sense::invalid_cdb_field(1, Some(4)).into()),
    }
    Ok(outcome)
}

/// The TransportIDs after a SPEC_I_PT parameter list's header (SPC-4 6.16.3).
fn specified_ports(list: &[u8]) -> Result<Vec<String>, Failure> {
    if list.len() < BASIC_LEN + 4 {
        return Err(length_error());
    }
    let ids_len = usize::try_from(be32(list, BASIC_LEN)).unwrap_or(usize::MAX);
    let end = (BASIC_LEN + 4).checked_add(ids_len).ok_or_else(length_error)?;
    if end > list.len() {
        return Err(length_error());
    }
    let mut ports = Vec::new();
    let mut at = BASIC_LEN + 4;
    while at < end {
        let id = transport_id::parse(&list[..end], at)?;
        at += id.len;
        if !ports.iter().any(|p: &String| super::state::same_port(p, &id.port)) {
            ports.push(id.port);
        }
    }
    Ok(ports)
}

/// REGISTER AND MOVE's parameter list (SPC-4 6.16.4).
fn register_and_move(
    state: &mut PrSnapshot,
    me: &str,
    list: &[u8],
    key: u64,
    sark: u64,
    aptpl_supported: bool,
    port: u16,
) -> Result<Outcome, Failure> {
    let unreg = list[17] & 0x02 != 0;
    let aptpl = list[17] & 0x01 != 0;
    if aptpl && !aptpl_supported {
        return Err(Sense::invalid_param_field(17, Some(0)).into());
    }
    let port_id = be16(list, 18);
    let id_len = usize::try_from(be32(list, 20)).unwrap_or(usize::MAX);
    if BASIC_LEN.checked_add(id_len).is_none_or(|end| end > list.len()) || id_len < 4 {
        return Err(length_error());
    }
    let id = transport_id::parse(&list[..BASIC_LEN + id_len], BASIC_LEN)?;
    // Check the sender first: an unregistered or non-holding nexus gets RESERVATION CONFLICT
    // whatever the rest says.
    let mut scratch = state.clone();
    scratch.register_and_move(me, key, sark, &id.port, unreg, aptpl)?;
    if port_id != port {
        return Err(Sense::invalid_param_field(18, None).into());
    }
    *state = scratch;
    Ok(Outcome::default())
}
