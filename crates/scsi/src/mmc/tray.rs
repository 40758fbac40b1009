//! The drive's mechanism: START STOP UNIT (MMC-6 6.39: LoEj opens or closes the tray), PREVENT
//! ALLOW MEDIUM REMOVAL (6.15, per nexus), GET EVENT STATUS NOTIFICATION (6.7, polled only: the
//! operational change, media and device busy classes, as GET CONFIGURATION's Morphing and Core
//! features claim), MECHANISM STATUS (6.12), and SET CD SPEED (6.37) and SET STREAMING (6.38),
//! accepted and without effect: an image has no spindle.

use super::state::CdState;
use super::MEDIUM_MAY_HAVE_CHANGED;
use crate::cdb::{be16, Cdb, Decoded, NoFields};
use crate::lun::LogicalUnit;
use crate::opcodes::{now, Handler};
use crate::sense::{Asc, Sense, SenseKey};
use crate::spc::truncate;
use crate::target::Ctx;

fn cd(lu: &LogicalUnit) -> Result<&CdState, Sense> {
    lu.cd().ok_or(Sense::new(SenseKey::HardwareError, Asc::INTERNAL_TARGET_FAILURE))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StartStop {
    pub power_condition: u8,
    pub loej: bool,
    pub start: bool,
}

impl Cdb for StartStop {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(StartStop { power_condition: c[4] >> 4, loej: c[4] & 0x02 != 0, start: c[4] & 0x01 != 0 })
    }
}

/// LoEj with Start 0 ejects (opens the tray), with Start 1 loads (closes it); both refused while
/// any nexus prevents removal (MMC-6 6.39.2.1). A load that makes a disc readable gives the other
/// nexuses NOT READY TO READY CHANGE; the sender knows.
fn start_stop_unit(lu: &LogicalUnit, ctx: &Ctx<'_>, c: StartStop) -> Result<(), Sense> {
    // A power condition makes LoEj and Start ignored; there are no power states to enter.
    if c.power_condition != 0 || !c.loej {
        return Ok(());
    }
    let cd = cd(lu)?;
    if cd.removal_prevented() {
        return Err(Sense::illegal_request(Asc::MEDIUM_REMOVAL_PREVENTED));
    }
    if cd.set_tray_open(!c.start) {
        ctx.target.unit_attention_others(ctx.nexus, ctx.lun, MEDIUM_MAY_HAVE_CHANGED);
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PreventAllow {
    /// Bit 0 PREVENT; bit 1, PERSISTENT PREVENT, is taken as a plain prevent (nothing here
    /// distinguishes them but a power cycle, which a target does not have).
    pub prevent: bool,
}

impl Cdb for PreventAllow {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(PreventAllow { prevent: c[4] & 0x03 != 0 })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GetEventStatus {
    pub classes: u8,
    pub alloc_len: u16,
}

/// The notification classes the drive reports (MMC-6 6.7.2.2), by number: operational change
/// (Morphing's OCEvent), media, device busy (Core's DBE).
const OPERATIONAL_CHANGE_CLASS: u8 = 1;
const MEDIA_CLASS: u8 = 4;
const DEVICE_BUSY_CLASS: u8 = 6;
/// SUPPORTED EVENT CLASSES: a bit per class number.
const SUPPORTED_CLASSES: u8 = 1 << OPERATIONAL_CHANGE_CLASS | 1 << MEDIA_CLASS | 1 << DEVICE_BUSY_CLASS;

impl Cdb for GetEventStatus {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        // Asynchronous notification is not supported: POLLED must be set (MMC-6 6.7.2.1).
        if c[1] & 0x01 == 0 {
            return Err(Sense::invalid_cdb_field(1, Some(0)));
        }
        Ok(GetEventStatus { classes: c[4], alloc_len: be16(c, 7) })
    }
}

/// One class per answer: of the supported classes asked for, the highest priority (lowest
/// numbered) one with an event pending, else the highest priority one, with its "no change"
/// event; none of them asked for, the header alone with NEA. Only the media class ever has an
/// event (reported once): an image drive's operation never changes and it is never busy, its
/// commands ending as they are processed.
fn get_event_status(lu: &LogicalUnit, c: GetEventStatus, out: &mut Vec<u8>) -> Result<(), Sense> {
    let cd = cd(lu)?;
    let asked = c.classes & SUPPORTED_CLASSES;
    let class = if asked & 1 << MEDIA_CLASS != 0 && cd.event_pending() {
        MEDIA_CLASS
    } else {
        // `asked` has only bits 1 to 6; 8 when it is empty.
        asked.trailing_zeros() as u8
    };
    let descriptor = match class {
        MEDIA_CLASS => {
            let (event, present, open) = cd.take_event();
            [event as u8, u8::from(present) << 1 | u8::from(open), 0, 0]
        }
        // Operational change: OPERATIONAL EVENT NoChg, OPERATIONAL STATUS available (not
        // persistently prevented), OPERATIONAL CHANGE NoChg. Device busy: DEVICE BUSY EVENT
        // NoEvent, DEVICE BUSY STATUS not busy, TIME 0.
        OPERATIONAL_CHANGE_CLASS | DEVICE_BUSY_CLASS => [0; 4],
        _ => {
            out.extend_from_slice(&[0, 2, 0x80, SUPPORTED_CLASSES]);
            truncate(out, usize::from(c.alloc_len));
            return Ok(());
        }
    };
    out.extend_from_slice(&[0, 6, class, SUPPORTED_CLASSES]);
    out.extend_from_slice(&descriptor);
    truncate(out, usize::from(c.alloc_len));
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AllocLen16At8(pub u16);

impl Cdb for AllocLen16At8 {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(AllocLen16At8(be16(c, 8)))
    }
}

/// The header alone: no changer, no slot tables; DOOR OPEN follows the tray.
fn mechanism_status(lu: &LogicalUnit, alloc_len: u16, out: &mut Vec<u8>) -> Result<(), Sense> {
    let open = cd(lu)?.tray_open();
    out.extend_from_slice(&[0, if open { 0x10 } else { 0 }, 0, 0, 0, 0, 0, 0]);
    truncate(out, usize::from(alloc_len));
    Ok(())
}

/// SET STREAMING's parameter list, read and ignored (its length is the CDB's 16-bit field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SetStreaming {
    pub param_len: u16,
}

impl Cdb for SetStreaming {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(SetStreaming { param_len: be16(c, 9) })
    }

    fn decoded(&self) -> Decoded {
        Decoded::params(u32::from(self.param_len))
    }
}

pub(crate) const START_STOP_UNIT: Handler = now!(StartStop, |req, c| start_stop_unit(req.lu, req.ctx, c));
pub(crate) const PREVENT_ALLOW: Handler = now!(PreventAllow, |req, PreventAllow { prevent }| {
    cd(req.lu).map(|cd| cd.set_prevent(req.ctx.nexus.id, prevent))
});
pub(crate) const GET_EVENT_STATUS: Handler = now!(GetEventStatus, |req, c| get_event_status(req.lu, c, req.data_in));
pub(crate) const MECHANISM_STATUS: Handler =
    now!(AllocLen16At8, |req, AllocLen16At8(len)| mechanism_status(req.lu, len, req.data_in));
pub(crate) const SET_CD_SPEED: Handler = now!(NoFields, |_, NoFields| Ok::<(), Sense>(()));
pub(crate) const SET_STREAMING: Handler = now!(SetStreaming, |_, SetStreaming { .. }| Ok::<(), Sense>(()));
