//! The robot: MOVE MEDIUM (SMC-3 6.6), POSITION TO ELEMENT (6.8), INITIALIZE ELEMENT STATUS (6.3)
//! and INITIALIZE ELEMENT STATUS WITH RANGE (6.4), and the changer's PREVENT ALLOW MEDIUM REMOVAL
//! (6.13: while prevented, no cartridge leaves the library through a mail slot).
//!
//! A move checks everything that can refuse it before anything moves: the addresses, a full
//! destination, an empty source, a destination drive that is missing or already holds a tape;
//! then it unloads a source drive (which refuses while its own initiators prevent removal) and
//! loads a destination drive with the cartridge's file, and records the cartridge's new place
//! (SOURCE STORAGE ELEMENT ADDRESS is where it came from).

use super::library::{Cartridge, ElementType, Library};
use super::{changer, DESTINATION_FULL, INVALID_ELEMENT_ADDRESS, MECHANICAL_POSITIONING_ERROR, SOURCE_EMPTY};
use crate::cdb::{be16, Cdb};
use crate::lun::LogicalUnit;
use crate::opcodes::{io, now, Handler};
use crate::sense::{Sense, SenseKey};

fn invalid_element() -> Sense {
    Sense::illegal_request(INVALID_ELEMENT_ADDRESS)
}

fn robot_failed() -> Sense {
    Sense::new(SenseKey::HardwareError, MECHANICAL_POSITIONING_ERROR)
}

/// A MEDIUM TRANSPORT ADDRESS: 0 for the default transport, or a transport element's address.
fn check_transport(library: &Library, transport: u16) -> Result<(), Sense> {
    if transport == 0 || library.find(transport).is_some_and(|e| e.kind == ElementType::Transport) {
        Ok(())
    } else {
        Err(invalid_element())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MoveMedium {
    pub transport: u16,
    pub source: u16,
    pub destination: u16,
    pub invert: bool,
}

impl Cdb for MoveMedium {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(MoveMedium { transport: be16(c, 2), source: be16(c, 4), destination: be16(c, 6), invert: c[10] & 1 != 0 })
    }
}

async fn move_medium(lu: &LogicalUnit, c: MoveMedium) -> Result<(), Sense> {
    let changer = changer(lu)?;
    let _robot = changer.robot().await;
    let (source, destination, home) = {
        let library = changer.library();
        check_transport(&library, c.transport)?;
        let source = library.find(c.source).cloned().ok_or_else(invalid_element)?;
        let destination = library.find(c.destination).cloned().ok_or_else(invalid_element)?;
        if c.invert && !library.two_sided {
            return Err(Sense::invalid_cdb_field(10, Some(0)));
        }
        (source, destination, library.media_home.clone())
    };
    let cartridge = source.medium.clone().ok_or(Sense::illegal_request(SOURCE_EMPTY))?;
    // Moving a cartridge onto itself finds its destination full, as tgt and libraries answer.
    if destination.medium.is_some() {
        return Err(Sense::illegal_request(DESTINATION_FULL));
    }
    let file = home.map(|h| h.join(&cartridge.barcode));
    let into = match destination.kind {
        ElementType::DataTransfer => {
            // No drive bound, or not one that takes cartridges (not a tape drive, deleted): the
            // robot cannot put the cartridge anywhere.
            let drive = changer.drive(destination.drive).ok_or_else(robot_failed)?;
            if drive.medium().is_some() {
                return Err(Sense::illegal_request(DESTINATION_FULL));
            }
            Some((drive, file.clone().ok_or_else(robot_failed)?))
        }
        _ => None,
    };
    let from = match source.kind {
        ElementType::DataTransfer => changer.drive(source.drive).filter(|d| d.medium().is_some()),
        _ => None,
    };
    if let Some(drive) = &from {
        // Refused (with the drive's sense) while the drive's initiators prevent removal.
        drive.unload().await?;
    }
    if let Some((drive, path)) = into {
        if let Err(sense) = drive.load(&path) {
            tracing::warn!(path = %path.display(), ?sense, "the drive refused the cartridge");
            if let (Some(back), Some(file)) = (&from, &file) {
                // Back into the drive it came out of, so that a refused move changes nothing.
                let _ = back.load(file);
            }
            return Err(robot_failed());
        }
    }
    {
        let mut library = changer.library();
        if let Some(e) = library.find_mut(source.address) {
            e.medium = None;
        }
        if let Some(e) = library.find_mut(destination.address) {
            e.medium = Some(Cartridge { source: Some(source.address), imported: false, ..cartridge });
        }
    }
    changer.moved();
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PositionToElement {
    pub transport: u16,
    pub destination: u16,
    pub invert: bool,
}

impl Cdb for PositionToElement {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(PositionToElement { transport: be16(c, 2), destination: be16(c, 4), invert: c[8] & 1 != 0 })
    }
}

/// The picker goes in front of the element: nothing to do but check the addresses.
fn position_to_element(lu: &LogicalUnit, c: PositionToElement) -> Result<(), Sense> {
    let changer = changer(lu)?;
    let library = changer.library();
    check_transport(&library, c.transport)?;
    library.find(c.destination).ok_or_else(invalid_element)?;
    if c.invert && !library.two_sided {
        return Err(Sense::invalid_cdb_field(8, Some(0)));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InitializeWithRange {
    pub range: bool,
    pub start: u16,
}

impl Cdb for InitializeWithRange {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        // FAST (bit 1) asks not to scan for unknown cartridges: the inventory is always known.
        Ok(InitializeWithRange { range: c[1] & 0x01 != 0, start: be16(c, 2) })
    }
}

/// The inventory never needs taking: a range must start at an element, then there is nothing to do.
fn initialize_with_range(lu: &LogicalUnit, c: InitializeWithRange) -> Result<(), Sense> {
    let changer = changer(lu)?;
    if c.range && changer.library().find(c.start).is_none() {
        return Err(invalid_element());
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PreventAllow {
    pub prevent: bool,
}

impl Cdb for PreventAllow {
    fn decode(c: &[u8]) -> Result<Self, Sense> {
        Ok(PreventAllow { prevent: c[4] & 0x01 != 0 })
    }
}

pub(crate) const MOVE_MEDIUM: Handler = io!(MoveMedium, |req, c| move_medium(req.lu, c));
pub(crate) const POSITION_TO_ELEMENT: Handler = now!(PositionToElement, |req, c| position_to_element(req.lu, c));
pub(crate) const INITIALIZE_ELEMENT_STATUS: Handler =
    now!(crate::cdb::NoFields, |req, crate::cdb::NoFields| changer(req.lu).map(|_| ()));
pub(crate) const INITIALIZE_WITH_RANGE: Handler = now!(InitializeWithRange, |req, c| initialize_with_range(req.lu, c));
pub(crate) const PREVENT_ALLOW: Handler = now!(PreventAllow, |req, PreventAllow { prevent }| {
    changer(req.lu).map(|c| c.set_prevent(req.ctx.nexus.id, prevent))
});
