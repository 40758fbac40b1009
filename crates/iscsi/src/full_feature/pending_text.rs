//! The state of a Text exchange that spans several PDUs (RFC 7143 11.10-11.11: the C bit on
//! requests, continuation by TTT on answers). The connection holds it; `discovery` drives it.

/// The Text exchange in progress on a connection, continued by requests carrying `ttt`.
#[derive(Debug)]
pub(crate) struct PendingText {
    pub itt: u32,
    pub ttt: u32,
    pub phase: Phase,
}

#[derive(Debug)]
pub(crate) enum Phase {
    /// Request text arriving in parts (C bit), not yet answered.
    Gathering(Vec<u8>),
    /// The answer, of which `sent` bytes have gone out.
    Answering { data: Vec<u8>, sent: usize },
}
