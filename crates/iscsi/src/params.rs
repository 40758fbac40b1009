//! Session and connection parameters (RFC 7143 section 13) as negotiated at login, and the target's
//! configured values (tgtadm --mode target --op update --name K --value V).
//! SKELETON.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    None,
    Crc32c,
}

/// The operational values in force for one connection/session after login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    pub header_digest: Digest,
    pub data_digest: Digest,
    /// The most data this target accepts in one PDU (what we declared).
    pub our_max_recv_data_segment_length: u32,
    /// The most data the initiator accepts in one PDU (what it declared): limits our Data-In size.
    pub initiator_max_recv_data_segment_length: u32,
    pub max_burst_length: u32,
    pub first_burst_length: u32,
    pub initial_r2t: bool,
    pub immediate_data: bool,
    pub max_outstanding_r2t: u32,
    pub data_pdu_in_order: bool,
    pub data_sequence_in_order: bool,
    pub default_time2wait: u32,
    pub default_time2retain: u32,
    pub error_recovery_level: u32,
    pub max_connections: u32,
}

impl Default for SessionParams {
    /// RFC 7143 defaults.
    fn default() -> Self {
        SessionParams {
            header_digest: Digest::None,
            data_digest: Digest::None,
            our_max_recv_data_segment_length: 8192,
            initiator_max_recv_data_segment_length: 8192,
            max_burst_length: 262144,
            first_burst_length: 65536,
            initial_r2t: true,
            immediate_data: true,
            max_outstanding_r2t: 1,
            data_pdu_in_order: true,
            data_sequence_in_order: true,
            default_time2wait: 2,
            default_time2retain: 20,
            error_recovery_level: 0,
            max_connections: 1,
        }
    }
}
