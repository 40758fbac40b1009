//! iSNS access control (tgt's `iSNSAccessControl=On`): the iSNS server's discovery domains decide
//! which initiators see a target in SendTargets and may log in to it (RFC 4171 2.2.2), on top of
//! the target's own access rules.
//!
//! The decision is made from memory, never by waiting on the server during a login: for every
//! target the client asks the server which initiators share a discovery domain with it (a
//! DevAttrQry sent as the target, 5.6.5.2) and keeps the answer. Answers are refreshed often and at
//! once on a State Change Notification. The cache fails closed: a target without a confirmed answer
//! (not asked yet, the server down, the connection lost, a refused query, an answer older than
//! `ANSWER_LIFETIME`) is visible to no initiator.

use super::pdu::{self, function, tag, Attribute, Message};
use parking_lot::RwLock;
use rtgt_iscsi::TargetVisibility;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How often the answers are asked again without an SCN: an SCN may be lost, and open-isns sends
/// none when a member leaves a discovery domain (only when one joins), so this bounds how long a
/// removed initiator keeps seeing a target.
pub const REFRESH: Duration = Duration::from_secs(5);
/// An answer older than this is not trusted (the client is stuck or cut off): fail closed.
pub const ANSWER_LIFETIME: Duration = Duration::from_secs(15);
/// RFC 7143 4.2.7.1: an iSCSI name is at most 223 bytes; a longer one from the server is ignored.
const MAX_NAME: usize = 223;
/// iSCSI Node Type bit for an initiator (RFC 4171 6.4.2).
pub const NODE_TYPE_INITIATOR: u32 = 2;

#[derive(Debug)]
struct Answer {
    /// Lower case: iSCSI names compare case-insensitively (RFC 3722).
    initiators: HashSet<String>,
    at: Instant,
}

/// The per-target answers, shared between the iSNS client (which fills them) and the iSCSI
/// registry (which asks them at every login and SendTargets).
#[derive(Debug, Default)]
pub struct AccessControl {
    /// iSNS on and iSNSAccessControl=On: only then do discovery domains decide.
    active: AtomicBool,
    answers: RwLock<HashMap<String, Answer>>,
}

impl AccessControl {
    pub fn set_active(&self, active: bool) {
        self.active.store(active, Ordering::Release);
        if !active {
            self.forget_all();
        }
    }

    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// The server's answer for `target`: the initiators that share a discovery domain with it.
    pub fn confirm(&self, target: &str, initiators: Vec<String>) {
        let initiators = initiators.into_iter().map(|n| n.to_ascii_lowercase()).collect();
        self.answers.write().insert(target.to_ascii_lowercase(), Answer { initiators, at: Instant::now() });
    }

    /// No trustworthy answer for `target` (its query was refused): nobody sees it.
    pub fn forget(&self, target: &str) {
        self.answers.write().remove(&target.to_ascii_lowercase());
    }

    /// The server cannot be asked: every target closes until it answers again.
    pub fn forget_all(&self) {
        self.answers.write().clear();
    }

    /// Drops the answers of targets no longer served.
    pub fn retain(&self, targets: &[String]) {
        let keep: HashSet<String> = targets.iter().map(|t| t.to_ascii_lowercase()).collect();
        self.answers.write().retain(|t, _| keep.contains(t));
    }
}

impl TargetVisibility for AccessControl {
    fn visible(&self, target: &str, initiator: &str) -> bool {
        if !self.is_active() {
            return true;
        }
        let answers = self.answers.read();
        answers
            .get(&target.to_ascii_lowercase())
            .is_some_and(|a| a.at.elapsed() < ANSWER_LIFETIME && a.initiators.contains(&initiator.to_ascii_lowercase()))
    }
}

/// DevAttrQry sent as `target`: the names of the initiators the server lets it see (the server
/// scopes a query to the discovery domains of its source, RFC 4171 5.6.5.2).
pub fn initiators_query(xid: u16, target: &str) -> Message {
    let key = [Attribute::u32(tag::ISCSI_NODE_TYPE, NODE_TYPE_INITIATOR)];
    let wanted = [Attribute::empty(tag::ISCSI_NAME), Attribute::empty(tag::ISCSI_NODE_TYPE)];
    Message::request(function::DEV_ATTR_QRY, 0, xid, target, &key, &wanted)
}

/// The initiators in a DevAttrQryRsp's attributes: after the delimiter (the message key comes
/// back before it), each iSCSI Name whose node type, if given, includes Initiator.
pub fn initiators_in(attributes: &[Attribute]) -> Vec<String> {
    let operating = match attributes.iter().position(|a| a.tag == tag::DELIMITER) {
        Some(at) => &attributes[at + 1..],
        None => attributes,
    };
    let mut found: Vec<(String, Option<u32>)> = Vec::new();
    for a in operating {
        match a.tag {
            tag::ISCSI_NAME => match a.as_string() {
                Some(name) if !name.is_empty() && name.len() <= MAX_NAME => found.push((name, None)),
                // A node we cannot name takes its node type with it.
                _ => found.push((String::new(), None)),
            },
            tag::ISCSI_NODE_TYPE => {
                if let Some(last) = found.last_mut() {
                    last.1 = a.as_u32();
                }
            }
            _ => {}
        }
    }
    found
        .into_iter()
        .filter(|(name, kind)| !name.is_empty() && kind.is_none_or(|k| k & NODE_TYPE_INITIATOR != 0))
        .map(|(name, _)| name)
        .collect()
}

/// SCNReg for `target` (5.6.5.5): objects added, removed or updated, initiators only. Discovery
/// domain membership changes come anyway: a server sends them to each member (unicast) whatever
/// the bitmap, and a non-control node may not ask for them (6.4.4).
pub fn scn_registration(xid: u16, target: &str) -> Message {
    let key = [Attribute::string(tag::ISCSI_NAME, target)];
    let bitmap = [Attribute::u32(tag::ISCSI_SCN_BITMAP, pdu::scn::OBJECT_CHANGES | pdu::scn::INITIATOR_AND_SELF)];
    Message::request(function::SCN_REG, 0, xid, target, &key, &bitmap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_closed_until_the_server_has_answered() {
        let ac = AccessControl::default();
        // Off: the discovery domains have no say.
        assert!(ac.visible("iqn.t:a", "iqn.i:1"));
        ac.set_active(true);
        assert!(!ac.visible("iqn.t:a", "iqn.i:1"), "no answer yet");
        ac.confirm("iqn.t:A", vec!["IQN.i:1".into()]);
        assert!(ac.visible("iqn.t:a", "iqn.i:1"));
        assert!(!ac.visible("iqn.t:a", "iqn.i:2"));
        assert!(!ac.visible("iqn.t:b", "iqn.i:1"));
        ac.forget_all();
        assert!(!ac.visible("iqn.t:a", "iqn.i:1"), "server lost");
        ac.confirm("iqn.t:a", vec!["iqn.i:1".into()]);
        ac.retain(&["iqn.t:other".into()]);
        assert!(!ac.visible("iqn.t:a", "iqn.i:1"), "target deleted");
        ac.confirm("iqn.t:a", vec!["iqn.i:1".into()]);
        ac.set_active(false);
        ac.set_active(true);
        assert!(!ac.visible("iqn.t:a", "iqn.i:1"), "answers from before are not reused");
    }

    #[test]
    fn answers_take_initiators_after_the_delimiter_only() {
        let attributes = vec![
            Attribute::u32(tag::ISCSI_NODE_TYPE, NODE_TYPE_INITIATOR),
            Attribute::string(tag::ISCSI_NAME, "iqn.key:before-delimiter"),
            Attribute::delimiter(),
            Attribute::string(tag::ISCSI_NAME, "iqn.i:1"),
            Attribute::u32(tag::ISCSI_NODE_TYPE, NODE_TYPE_INITIATOR),
            Attribute::string(tag::ISCSI_NAME, "iqn.t:target"),
            Attribute::u32(tag::ISCSI_NODE_TYPE, 1),
            Attribute::string(tag::ISCSI_NAME, &"x".repeat(300)),
            Attribute::u32(tag::ISCSI_NODE_TYPE, NODE_TYPE_INITIATOR),
            Attribute::string(tag::ISCSI_NAME, "iqn.i:2"),
        ];
        assert_eq!(initiators_in(&attributes), ["iqn.i:1", "iqn.i:2"]);
        assert!(initiators_in(&[]).is_empty());
    }

    #[test]
    fn the_query_is_sent_as_the_target_with_the_initiator_type_as_key() {
        let m = initiators_query(3, "iqn.t:a");
        let attributes = pdu::decode_attributes(&m.payload).unwrap();
        assert_eq!(m.function, 0x0002);
        assert_eq!(attributes[0].as_string().as_deref(), Some("iqn.t:a"));
        assert_eq!((attributes[1].tag, attributes[1].as_u32()), (33, Some(2)));
        assert_eq!(attributes[2].tag, 0);
        assert_eq!((attributes[3].tag, attributes[3].value.len()), (32, 0));
        let r = scn_registration(4, "iqn.t:a");
        let attributes = pdu::decode_attributes(&r.payload).unwrap();
        assert_eq!(r.function, 0x0005);
        // RFC 4171 6.4.4: bit 31 is the least significant; 27-29 object changes, 24 initiators only.
        assert_eq!((attributes[3].tag, attributes[3].as_u32()), (35, Some(0x9c)));
    }
}
