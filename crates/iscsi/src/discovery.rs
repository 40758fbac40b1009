//! Text Requests in the full feature phase (RFC 7143 11.10-11.11), chiefly SendTargets (appendix
//! C): the targets this initiator may log in to, each with a TargetAddress per portal. A portal bound
//! to a wildcard address is reported as the address the initiator reached us on. Answers longer than
//! the initiator's MaxRecvDataSegmentLength go out in pieces, each continued by an empty request.

use crate::connection::{Conn, Flow, RejectReason};
use crate::login::TPGT;
use crate::pdu::{Bhs, Opcode, Pdu, RESERVED_TAG};
use crate::registry::Registry;
use crate::session::SessionType;
use crate::text;
use crate::writer::Stat;
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};

/// The rest of a long Text Response.
#[derive(Debug)]
pub(crate) struct PendingText {
    itt: u32,
    ttt: u32,
    data: Vec<u8>,
    sent: usize,
}

fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// `ip:port,tpgt` for every portal, wildcards resolved to `local` (IPv6 in brackets).
pub(crate) fn target_addresses(portals: &[SocketAddr], local: SocketAddr) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in portals {
        let ip = if p.ip().is_unspecified() { unmapped(local.ip()) } else { unmapped(p.ip()) };
        let a = match ip {
            IpAddr::V4(v4) => format!("{v4}:{},{TPGT}", p.port()),
            IpAddr::V6(v6) => format!("[{v6}]:{},{TPGT}", p.port()),
        };
        if !out.contains(&a) {
            out.push(a);
        }
    }
    out
}

/// The SendTargets answer (appendix C.1): "All" lists every permitted target (discovery sessions),
/// a name lists that one, empty means the session's own target (normal sessions).
pub(crate) fn send_targets(
    registry: &Registry,
    conn_local: SocketAddr,
    initiator: &str,
    peer: IpAddr,
    value: &str,
    own: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let addrs = target_addresses(&registry.portals(), conn_local);
    for t in registry.targets() {
        let wanted = match value {
            "All" => own.is_none(),
            "" => own.is_some_and(|n| n.eq_ignore_ascii_case(t.name())),
            name => t.name().eq_ignore_ascii_case(name),
        };
        if !wanted || !t.allows(initiator, peer) {
            continue;
        }
        text::push(&mut out, "TargetName", t.name());
        for a in &addrs {
            text::push(&mut out, "TargetAddress", a);
        }
    }
    out
}

pub(crate) fn on_text(conn: &mut Conn, pdu: Pdu) -> Flow {
    let b = &pdu.bhs;
    if !conn.session.window.lock().admit(b.cmd_sn(), b.immediate()) {
        return Flow::Continue;
    }
    let (itt, ttt) = (b.itt(), b.ttt());
    if ttt != RESERVED_TAG {
        // A continuation of our long answer.
        match conn.text.take() {
            Some(p) if p.ttt == ttt && p.itt == itt => send_piece(conn, b, p),
            _ => conn.reject(RejectReason::InvalidPduField, b),
        }
        return Flow::Continue;
    }
    conn.text = None;
    if b.flags() & 0x40 != 0 {
        // A request continued over several PDUs is not supported (it has no use here).
        conn.reject(RejectReason::CommandNotSupported, b);
        return Flow::Continue;
    }
    let pairs = match text::parse(&pdu.data) {
        Ok(p) => p,
        Err(_) => {
            conn.reject(RejectReason::ProtocolError, b);
            return Flow::Continue;
        }
    };
    let mut out = Vec::new();
    let own = conn.session.target.as_ref().map(|t| t.name().to_string());
    for (k, v) in &pairs {
        if k == "SendTargets" {
            if conn.session.kind == SessionType::Discovery || v != "All" {
                let list = send_targets(
                    &conn.registry,
                    conn.local,
                    &conn.session.initiator_name,
                    conn.peer.ip(),
                    v,
                    own.as_deref(),
                );
                out.extend_from_slice(&list);
            } else {
                text::push(&mut out, k, "Reject");
            }
        } else if k.starts_with("X-") || k.starts_with("X#") {
            text::push(&mut out, k, "NotUnderstood");
        } else {
            // Operational keys are not renegotiated in the full feature phase.
            text::push(&mut out, k, "Reject");
        }
    }
    let p = PendingText { itt, ttt: conn.new_ttt(), data: out, sent: 0 };
    send_piece(conn, b, p);
    Flow::Continue
}

fn send_piece(conn: &mut Conn, req: &Bhs, mut p: PendingText) {
    let limit = conn.params.initiator_max_recv_data_segment_length.max(512) as usize;
    let n = limit.min(p.data.len() - p.sent);
    let last = p.sent + n == p.data.len();
    let mut h = Bhs::new(Opcode::TextResponse);
    h.set_flags(if last { 0x80 } else { 0x40 });
    h.set_lun(req.lun());
    h.set_itt(p.itt);
    h.set_ttt(if last { RESERVED_TAG } else { p.ttt });
    let data = Bytes::copy_from_slice(&p.data[p.sent..p.sent + n]);
    conn.send(h, data, Stat::Advance);
    p.sent += n;
    if !last {
        conn.text = Some(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_resolve_to_the_local_address() {
        let portals: Vec<SocketAddr> =
            vec!["0.0.0.0:3260".parse().unwrap(), "[::]:3260".parse().unwrap(), "10.0.0.1:3261".parse().unwrap()];
        let local: SocketAddr = "192.168.1.5:3260".parse().unwrap();
        assert_eq!(target_addresses(&portals, local), vec!["192.168.1.5:3260,1", "10.0.0.1:3261,1"]);
        let local6: SocketAddr = "[fd00::5]:3260".parse().unwrap();
        assert_eq!(target_addresses(&portals[..2], local6), vec!["[fd00::5]:3260,1"]);
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:3260".parse().unwrap();
        assert_eq!(target_addresses(&portals[1..2], mapped), vec!["127.0.0.1:3260,1"]);
    }
}
