//! What tgtadm shows of a session and its connections: plain values, copied out of the live session.

use crate::params::SessionParams;
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub cid: u16,
    pub initiator_address: SocketAddr,
    pub target_address: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Target session identifying handle.
    pub tsih: u16,
    pub initiator_name: String,
    pub isid: [u8; 6],
    pub connections: Vec<ConnectionInfo>,
    /// The values negotiated by the leading login (digests and segment lengths as the leading
    /// connection has them).
    pub params: SessionParams,
    /// The CHAP user the initiator authenticated as; None without CHAP.
    pub chap_user: Option<String>,
}
