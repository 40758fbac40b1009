//! Text Requests in the full feature phase (RFC 7143 11.10-11.11), chiefly SendTargets (appendix
//! C): the targets this initiator may log in to, each with a TargetAddress per portal. A portal bound
//! to a wildcard address is reported as the address the initiator reached us on.
//!
//! Every request gets an answer: a Text Response, or a Reject PDU for a request that breaks the
//! protocol. One exchange at a time per connection, tracked by its Target Transfer Tag:
//! - a request with the C bit is gathered (up to `text::MAX_TEXT_LEN`), each part acknowledged by an
//!   empty non-final response whose TTT the initiator continues with (11.10.2, 11.11.4);
//! - an answer longer than the initiator's MaxRecvDataSegmentLength goes out in pieces (C bit set
//!   while the text continues), each asked for by a request carrying the TTT;
//! - an answer is final (F, reserved TTT) only to a request with F (11.11.1);
//! - a request with the reserved TTT starts a new exchange and ends the one in progress (11.10.4);
//!   a TTT of an exchange that is over, or with another ITT, is refused with a Reject (11.11.4).
//!
//! Keys: SendTargets is answered (All only in discovery sessions: appendix C says a normal
//! session MUST NOT support it; a value that is neither All, empty nor a target name is answered
//! Reject); the other keys of RFC 7143 are not renegotiated here (Reject); any other key is
//! NotUnderstood (6.2).

use super::pending_text::{PendingText, Phase};
use crate::full_feature::connection::{Conn, Flow, RejectReason};
use crate::login::TPGT;
use crate::pdu::{Bhs, Opcode, Pdu, RESERVED_TAG};
use crate::registry::Registry;
use crate::session::SessionType;
use crate::text;
use crate::writer::Stat;
use bytes::Bytes;
use std::net::{IpAddr, SocketAddr};

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

/// What a SendTargets value asks for (appendix C).
#[derive(Debug, PartialEq, Eq)]
enum Wanted<'a> {
    All,
    /// Empty: the session's own target (normal sessions).
    Own,
    Named(&'a str),
    /// Neither All, empty nor a target name: answered Reject.
    Invalid,
}

/// A well-formed iSCSI name (RFC 7143 4.2.7: the iqn., eui. and naa. formats), or the name of a
/// target this initiator may see (an administrator may name a target otherwise).
fn wanted<'a>(value: &'a str, registry: &Registry, initiator: &str, peer: IpAddr) -> Wanted<'a> {
    let well_formed = ["iqn.", "eui.", "naa."]
        .iter()
        .any(|p| value.len() > p.len() && value.get(..p.len()).is_some_and(|v| v.eq_ignore_ascii_case(p)));
    match value {
        "All" => Wanted::All,
        "" => Wanted::Own,
        name if well_formed => Wanted::Named(name),
        name if registry
            .targets()
            .iter()
            .any(|t| t.name().eq_ignore_ascii_case(name) && registry.admits(t, initiator, peer)) =>
        {
            Wanted::Named(name)
        }
        _ => Wanted::Invalid,
    }
}

/// The SendTargets answer (appendix C): in a discovery session All lists every target this
/// initiator may log in to and a name that one; in a normal session (`own` is its target) All MUST
/// NOT be supported (Reject), and empty or the session's own name list the session's target only.
/// None when the value is to be answered Reject.
pub(crate) fn send_targets(
    registry: &Registry,
    conn_local: SocketAddr,
    initiator: &str,
    peer: IpAddr,
    value: &str,
    own: Option<&str>,
) -> Option<Vec<u8>> {
    let wanted = wanted(value, registry, initiator, peer);
    match wanted {
        Wanted::Invalid => return None,
        Wanted::All if own.is_some() => return None,
        _ => {}
    }
    // In a normal session nothing but the session's own target is listed.
    let listed = |t: &str| {
        let in_scope = own.is_none_or(|o| o.eq_ignore_ascii_case(t));
        in_scope
            && match wanted {
                Wanted::All => true,
                Wanted::Own => own.is_some(),
                Wanted::Named(name) => name.eq_ignore_ascii_case(t),
                Wanted::Invalid => false,
            }
    };
    let mut out = Vec::new();
    let addrs = target_addresses(&registry.portals(), conn_local);
    for t in registry.targets() {
        if !listed(t.name()) || !registry.admits(&t, initiator, peer) {
            continue;
        }
        text::push(&mut out, "TargetName", t.name());
        for a in &addrs {
            text::push(&mut out, "TargetAddress", a);
        }
    }
    Some(out)
}

/// The answer to a whole Text Request's keys.
fn answer(conn: &Conn, pairs: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    let own = match conn.session.kind {
        SessionType::Normal => conn.session.target.as_ref().map(|t| t.scsi.name.clone()),
        SessionType::Discovery => None,
    };
    for (k, v) in pairs {
        if k == "SendTargets" {
            let initiator = &conn.session.initiator_name;
            match send_targets(&conn.registry, conn.local, initiator, conn.peer.ip(), v, own.as_deref()) {
                Some(list) => out.extend_from_slice(&list),
                None => text::push(&mut out, k, "Reject"),
            }
        } else if crate::login::negotiate::is_rfc7143_key(k) {
            // Operational and login keys are not renegotiated in the full feature phase.
            text::push(&mut out, k, "Reject");
        } else {
            text::push(&mut out, k, "NotUnderstood");
        }
    }
    out
}

const FINAL: u8 = 0x80;
const CONTINUE: u8 = 0x40;

pub(crate) fn on_text(conn: &mut Conn, pdu: Pdu) -> Flow {
    let b = &pdu.bhs;
    if !conn.session.window.lock().admit(b.cmd_sn(), b.immediate()) {
        return Flow::Continue;
    }
    let (itt, ttt) = (b.itt(), b.ttt());
    let (fin, more) = (b.flags() & FINAL != 0, b.flags() & CONTINUE != 0);
    if fin && more {
        // 11.10.2: a request whose text continues cannot be final.
        conn.reject(RejectReason::ProtocolError, b);
        return Flow::Continue;
    }
    let mut p = if ttt == RESERVED_TAG {
        // 11.10.4: a new request; the exchange in progress, if any, is over.
        conn.text = None;
        PendingText { itt, ttt: conn.new_ttt(), phase: Phase::Gathering(Vec::new()) }
    } else {
        match conn.text.take() {
            Some(p) if p.ttt == ttt && p.itt == itt => p,
            other => {
                // A TTT of an exchange that is over, or another ITT: refused (11.11.4); an
                // exchange in progress goes on.
                conn.text = other;
                conn.reject(RejectReason::InvalidPduField, b);
                return Flow::Continue;
            }
        }
    };
    match &mut p.phase {
        Phase::Gathering(gathered) => {
            if gathered.len() + pdu.data.len() > text::MAX_TEXT_LEN {
                conn.reject(RejectReason::ProtocolError, b);
                return Flow::Continue;
            }
            gathered.extend_from_slice(&pdu.data);
            if more {
                // Acknowledge the part; the initiator sends the next with this TTT.
                send_response(conn, b, itt, 0, p.ttt, Bytes::new());
                conn.text = Some(p);
                return Flow::Continue;
            }
            let pairs = match text::parse(gathered) {
                // A key twice in one request is a protocol error (6.2), and would let a short
                // request ask for the whole target list many times over.
                Ok(pairs) if !pairs.iter().enumerate().any(|(i, (k, _))| pairs[..i].iter().any(|(e, _)| e == k)) => {
                    pairs
                }
                _ => {
                    conn.reject(RejectReason::ProtocolError, b);
                    return Flow::Continue;
                }
            };
            p.phase = Phase::Answering { data: answer(conn, &pairs), sent: 0 };
        }
        Phase::Answering { .. } if more || !pdu.data.is_empty() => {
            // Nothing here negotiates over several rounds: a continuation asks for the rest of
            // the answer and carries no text.
            conn.reject(RejectReason::ProtocolError, b);
            return Flow::Continue;
        }
        Phase::Answering { .. } => {}
    }
    send_piece(conn, b, p, fin);
    Flow::Continue
}

/// The next piece of the answer: final only when it is the last and the request was final
/// (11.11.1); otherwise the exchange stays open under its TTT.
fn send_piece(conn: &mut Conn, req: &Bhs, mut p: PendingText, fin: bool) {
    let Phase::Answering { data, sent } = &mut p.phase else { return };
    let limit = conn.params.initiator_max_recv_data_segment_length.max(512) as usize;
    let n = limit.min(data.len() - *sent);
    let done = *sent + n == data.len();
    let last = done && fin;
    let flags = if last { FINAL } else { 0 } | if done { 0 } else { CONTINUE };
    let piece = Bytes::copy_from_slice(&data[*sent..*sent + n]);
    *sent += n;
    send_response(conn, req, p.itt, flags, if last { RESERVED_TAG } else { p.ttt }, piece);
    if !last {
        conn.text = Some(p);
    }
}

fn send_response(conn: &Conn, req: &Bhs, itt: u32, flags: u8, ttt: u32, data: Bytes) {
    let mut h = Bhs::new(Opcode::TextResponse);
    h.set_flags(flags);
    h.set_lun(req.lun());
    h.set_itt(itt);
    h.set_ttt(ttt);
    conn.send(h, data, Stat::Advance);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_targets_values() {
        let reg = Registry::new();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let w = |v| wanted(v, &reg, "iqn.2024-01.test:i", ip);
        assert_eq!(w("All"), Wanted::All);
        assert_eq!(w(""), Wanted::Own);
        assert_eq!(w("iqn.2024-01.test:t"), Wanted::Named("iqn.2024-01.test:t"));
        assert_eq!(w("EUI.0123456789abcdef"), Wanted::Named("EUI.0123456789abcdef"));
        for bad in ["Alle", "A", "all", "iqn.", "naa"] {
            assert_eq!(w(bad), Wanted::Invalid, "{bad}");
        }
        let local: SocketAddr = "127.0.0.1:3260".parse().unwrap();
        let list = |v, own| send_targets(&reg, local, "iqn.2024-01.test:i", ip, v, own);
        assert_eq!(list("All", Some("iqn.2024-01.test:t")), None);
        assert_eq!(list("All", None), Some(Vec::new()));
        assert_eq!(list("Alle", None), None);
    }

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
