//! Why a command did not complete with GOOD status: sense data, or a reservation conflict. A leaf:
//! state types and handlers alike return it.

use crate::sense::Sense;

/// Why a command did not complete with GOOD status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    Sense(Sense),
    /// CHECK CONDITION with the data-in produced so far, which goes to the initiator with the
    /// sense: a tape read that met a filemark, the end of data or a block of another length
    /// transfers what it read (SSC-3 4.2.17), the sense saying how much is missing.
    SenseWithData(Sense),
    ReservationConflict,
}

impl From<Sense> for Failure {
    fn from(s: Sense) -> Self {
        Failure::Sense(s)
    }
}
