//! Why a command did not complete with GOOD status: sense data, or a reservation conflict. A leaf:
//! state types and handlers alike return it.

use crate::sense::Sense;

/// Why a command did not complete with GOOD status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    Sense(Sense),
    ReservationConflict,
}

impl From<Sense> for Failure {
    fn from(s: Sense) -> Self {
        Failure::Sense(s)
    }
}
