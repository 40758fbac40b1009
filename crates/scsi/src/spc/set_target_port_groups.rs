//! SET TARGET PORT GROUPS (SPC-4 6.38, MAINTENANCE OUT service action 0Ah): explicit asymmetric
//! access. The parameter list names target port groups and the state asked for each; the daemon's
//! `PortGroups` makes the change (for gateways of one image: move the ownership) and the command
//! completes once it is made.

use crate::alua::{AccessState, TransferError};
use crate::cdb::{be32, Cdb, Decoded};
use crate::opcodes::{io, Handler, Request};
use crate::sense::{Asc, Sense, SenseKey};

/// SPC-4: SET TARGET PORT GROUPS COMMAND FAILED.
const STPG_FAILED: Asc = Asc(0x67, 0x0a);
/// The parameter list's header; each descriptor after it is 4 bytes.
const HEADER: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetTargetPortGroups {
    pub param_len: u32,
}

impl Cdb for SetTargetPortGroups {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(SetTargetPortGroups { param_len: be32(c, 6) })
    }

    fn decoded(&self) -> Decoded {
        Decoded::params(self.param_len)
    }
}

/// The group the list asks to make active: one of the model's (one owner, the rest standby).
/// Asking a group for standby is accepted when another becomes (or is) the active one; any
/// other state, two active groups, or a group the unit does not have is refused.
pub(crate) fn requested_owner(list: &[u8], known: &[u16]) -> Result<Option<u16>, Sense> {
    if list.len() < HEADER || !(list.len() - HEADER).is_multiple_of(4) {
        return Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR));
    }
    let mut active = None;
    for (i, d) in list[HEADER..].chunks(4).enumerate() {
        let at = (HEADER + i * 4) as u16;
        let group = u16::from_be_bytes([d[2], d[3]]);
        if !known.contains(&group) {
            return Err(Sense::invalid_param_field(at + 2, None));
        }
        match d[0] & 0x0f {
            // Active/optimized or active/non-optimized: the owner serves both ways.
            0x0 | 0x1 => {
                if active.is_some_and(|g| g != group) {
                    return Err(Sense::invalid_param_field(at, Some(3)));
                }
                active = Some(group);
            }
            0x2 => {}
            _ => return Err(Sense::invalid_param_field(at, Some(3))),
        }
    }
    Ok(active)
}

async fn run(req: &mut Request<'_>, param_len: u32) -> Result<(), Sense> {
    let Some(groups) = req.lu.port_groups().cloned() else { return Ok(()) };
    let len = usize::try_from(param_len).unwrap_or(usize::MAX);
    if len == 0 {
        return Ok(());
    }
    let list = req.data_out.get(..len).ok_or_else(|| Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR))?;
    let known: Vec<u16> = groups.groups().iter().map(|g| g.id).collect();
    let Some(owner) = requested_owner(list, &known)? else {
        // Standby for groups that stand by already, or for the owner with nobody named to take
        // over: only the first is a change the model can make (none).
        let owner = groups.groups().into_iter().find(|g| g.state.is_active()).map(|g| g.id);
        let standby_owner = list[HEADER..]
            .chunks(4)
            .any(|d| Some(u16::from_be_bytes([d[2], d[3]])) == owner && d[0] & 0x0f == AccessState::Standby.code());
        if standby_owner {
            return Err(Sense::invalid_param_field(HEADER as u16, Some(3)));
        }
        return Ok(());
    };
    match groups.transfer(owner).await {
        Ok(()) => Ok(()),
        Err(TransferError::Unsupported) => Err(Sense::illegal_request(Asc::INVALID_COMMAND_OPERATION_CODE)),
        Err(TransferError::Failed) => Err(Sense::new(SenseKey::HardwareError, STPG_FAILED)),
    }
}

pub(crate) const SET_TARGET_PORT_GROUPS: Handler =
    io!(SetTargetPortGroups, |req, SetTargetPortGroups { param_len }| run(req, param_len));

#[cfg(test)]
mod tests {
    use super::*;

    fn list(descriptors: &[(u8, u16)]) -> Vec<u8> {
        let mut l = vec![0; HEADER];
        for &(state, group) in descriptors {
            l.extend_from_slice(&[state, 0, (group >> 8) as u8, group as u8]);
        }
        l
    }

    #[test]
    fn one_active_group_at_most_among_known_ones() {
        let known = [1, 2, 3];
        assert_eq!(requested_owner(&list(&[(0, 2)]), &known), Ok(Some(2)));
        assert_eq!(requested_owner(&list(&[(1, 3), (2, 1)]), &known), Ok(Some(3)));
        assert_eq!(requested_owner(&list(&[(2, 1)]), &known), Ok(None));
        assert_eq!(requested_owner(&list(&[]), &known), Ok(None));
        // Two active groups, unsupported states, unknown groups, torn descriptors.
        assert_eq!(requested_owner(&list(&[(0, 1), (0, 2)]), &known), Err(Sense::invalid_param_field(8, Some(3))));
        assert_eq!(requested_owner(&list(&[(3, 1)]), &known), Err(Sense::invalid_param_field(4, Some(3))));
        assert_eq!(requested_owner(&list(&[(0xe, 1)]), &known), Err(Sense::invalid_param_field(4, Some(3))));
        assert_eq!(requested_owner(&list(&[(0, 9)]), &known), Err(Sense::invalid_param_field(6, None)));
        assert_eq!(
            requested_owner(&[0, 0, 0, 0, 0, 0], &known),
            Err(Sense::illegal_request(Asc::PARAMETER_LIST_LENGTH_ERROR))
        );
    }
}
