//! Primary commands (SPC-4) common to every device type.

pub(crate) mod commands;
pub(crate) mod copy_outcome;
pub(crate) mod inquiry;
pub(crate) mod mode;
pub(crate) mod mode_cdb;
pub(crate) mod mode_select;
pub(crate) mod mode_state;
pub(crate) mod persistent_reservation;
pub(crate) mod report_luns;
pub(crate) mod report_target_port_groups;
pub(crate) mod request_sense;
pub(crate) mod reserve;
pub(crate) mod reserve_state;
pub(crate) mod rsoc;
pub(crate) mod set_target_port_groups;
pub(crate) mod vpd;
pub(crate) mod xcopy;

/// Cut parameter data to the CDB's ALLOCATION LENGTH (SPC-4 4.2.5.6): never an error, the
/// initiator asked for at most that many bytes.
pub(crate) fn truncate(data_in: &mut Vec<u8>, alloc_len: usize) {
    data_in.truncate(alloc_len);
}

/// Copy `text` into a fixed-width ASCII field, left-aligned and padded with spaces (SPC-4 4.4.1);
/// characters outside 0x20..0x7e become spaces.
pub(crate) fn put_ascii(out: &mut Vec<u8>, text: &str, width: usize) {
    let bytes = text.as_bytes();
    for i in 0..width {
        let b = bytes.get(i).copied().unwrap_or(b' ');
        out.push(if (0x20..=0x7e).contains(&b) { b } else { b' ' });
    }
}
