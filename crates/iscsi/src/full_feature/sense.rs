//! The sense data the iSCSI layer answers with itself, for commands that end before a logical unit
//! sees them (a refused write, a bad or missing Data-Out). Built with the SCSI core's `Sense`; always
//! fixed format (SPC-4 4.5.3), since no logical unit's CONTROL mode page (D_SENSE) has a say yet.

use rtgt_scsi::{Asc, Sense, SenseFormat, SenseKey};

/// WRITE ERROR - UNEXPECTED UNSOLICITED DATA (SPC-4; RFC 7143 11.4.7.2).
const UNEXPECTED_UNSOLICITED_DATA: Asc = Asc(0x0c, 0x0c);
/// DATA PHASE ERROR (SPC-4).
const DATA_PHASE_ERROR: Asc = Asc(0x4b, 0x00);
/// DATA OFFSET ERROR (SPC-4).
const DATA_OFFSET_ERROR: Asc = Asc(0x4b, 0x05);
/// INITIATOR RESPONSE TIMEOUT (SPC-4).
const INITIATOR_RESPONSE_TIMEOUT: Asc = Asc(0x4b, 0x06);

fn fixed(sense: Sense) -> Vec<u8> {
    sense.encode(SenseFormat::Fixed)
}

/// ILLEGAL REQUEST, INVALID FIELD IN CDB: bidirectional commands, writes past the largest transfer.
pub(crate) fn invalid_field_in_cdb() -> Vec<u8> {
    fixed(Sense::illegal_request(Asc::INVALID_FIELD_IN_CDB))
}

/// ABORTED COMMAND, UNEXPECTED UNSOLICITED DATA: immediate or unsolicited data not negotiated, or
/// more of it than FirstBurstLength (RFC 7143 11.4.7.2).
pub(crate) fn unexpected_unsolicited_data() -> Vec<u8> {
    fixed(Sense::new(SenseKey::AbortedCommand, UNEXPECTED_UNSOLICITED_DATA))
}

/// ABORTED COMMAND, DATA PHASE ERROR: a Data-Out that does not fit what the write expects.
pub(crate) fn data_phase_error() -> Vec<u8> {
    fixed(Sense::new(SenseKey::AbortedCommand, DATA_PHASE_ERROR))
}

/// ABORTED COMMAND, DATA OFFSET ERROR: a Data-Out that does not continue where the data ends.
pub(crate) fn data_offset_error() -> Vec<u8> {
    fixed(Sense::new(SenseKey::AbortedCommand, DATA_OFFSET_ERROR))
}

/// ABORTED COMMAND, INITIATOR RESPONSE TIMEOUT: a write whose Data-Out did not come within the
/// Data-Out timeout.
pub(crate) fn initiator_response_timeout() -> Vec<u8> {
    fixed(Sense::new(SenseKey::AbortedCommand, INITIATOR_RESPONSE_TIMEOUT))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 18 bytes of fixed-format sense with this key and ASC/ASCQ and nothing else (SPC-4 4.5.3).
    fn literal(key: u8, asc: u8, ascq: u8) -> Vec<u8> {
        vec![0x70, 0, key, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0]
    }

    #[test]
    fn fixed_format_bytes() {
        assert_eq!(invalid_field_in_cdb(), literal(0x05, 0x24, 0x00));
        assert_eq!(unexpected_unsolicited_data(), literal(0x0b, 0x0c, 0x0c));
        assert_eq!(data_phase_error(), literal(0x0b, 0x4b, 0x00));
        assert_eq!(data_offset_error(), literal(0x0b, 0x4b, 0x05));
        assert_eq!(initiator_response_timeout(), literal(0x0b, 0x4b, 0x06));
    }
}
