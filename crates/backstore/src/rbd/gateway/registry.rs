//! The gateway registry as stored: one RADOS object per image (`rtgt.gateways.<image id>`, in the
//! image's pool and namespace) whose omap holds
//! - `gw.<name>`: a gateway serving the image: `tpg=<group>;portal=<text>;addr=<client>;expires=<ms>`
//!   (its lease: Unix time in milliseconds, renewed every heartbeat), and `;fwd=<host:port>/<token>`
//!   once it listens for commands the other gateways forward to it while it owns the unit;
//! - `owner`: the one gateway that serves I/O: `name=<name>;addr=<client>;epoch=<n>`, changed only
//!   by a compare-and-swap on the object's version;
//! - `fenced.<client>`: `<name>`: a client blocklisted when its gateway lost ownership, removed
//!   (and unblocklisted) once that gateway is back with a new client;
//! - `handoff`: `<name>`: ownership asked for on purpose (SET TARGET PORT GROUPS, tgtadm) for
//!   gateway `<name>`; the owner flushes, steps down and names it owner, removing this key.
//!
//! This file parses, encodes and decides; it does no I/O, so every rule is tested here.

use std::collections::BTreeMap;

pub(crate) const GATEWAY_PREFIX: &str = "gw.";
pub(crate) const OWNER_KEY: &str = "owner";
pub(crate) const FENCED_PREFIX: &str = "fenced.";
pub(crate) const HANDOFF_KEY: &str = "handoff";

/// One gateway's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub name: String,
    pub tpg: u16,
    pub portal: String,
    /// Its RADOS client address: what fencing blocklists.
    pub addr: String,
    /// Lease end, Unix milliseconds.
    pub expires: u64,
    /// Where it takes forwarded commands, `host:port/token` (empty: nowhere).
    pub forward: String,
}

/// Who owns the logical unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub name: String,
    pub addr: String,
    /// Counts ownership changes.
    pub epoch: u64,
}

/// The registry as read at one version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Registry {
    pub entries: BTreeMap<String, Entry>,
    pub owner: Option<Owner>,
    /// Blocklisted client address -> the gateway it belonged to.
    pub fenced: BTreeMap<String, String>,
    /// The gateway ownership was asked for.
    pub handoff: Option<String>,
    pub version: u64,
}

fn fields(value: &str) -> BTreeMap<&str, &str> {
    value.split(';').filter_map(|f| f.split_once('=')).collect()
}

impl Entry {
    pub(crate) fn key(&self) -> String {
        format!("{GATEWAY_PREFIX}{}", self.name)
    }

    pub(crate) fn value(&self) -> String {
        let mut value = format!("tpg={};portal={};addr={};expires={}", self.tpg, self.portal, self.addr, self.expires);
        if !self.forward.is_empty() {
            value.push_str(";fwd=");
            value.push_str(&self.forward);
        }
        value
    }

    fn parse(name: &str, value: &str) -> Option<Entry> {
        let f = fields(value);
        Some(Entry {
            name: name.to_string(),
            tpg: f.get("tpg")?.parse().ok().filter(|&t| t != 0)?,
            portal: f.get("portal").unwrap_or(&"").to_string(),
            addr: f.get("addr")?.to_string(),
            expires: f.get("expires")?.parse().ok()?,
            forward: f.get("fwd").unwrap_or(&"").to_string(),
        })
    }

    pub(crate) fn alive(&self, now_ms: u64) -> bool {
        self.expires > now_ms
    }
}

impl Owner {
    pub(crate) fn value(&self) -> String {
        format!("name={};addr={};epoch={}", self.name, self.addr, self.epoch)
    }

    fn parse(value: &str) -> Option<Owner> {
        let f = fields(value);
        Some(Owner {
            name: f.get("name")?.to_string(),
            addr: f.get("addr")?.to_string(),
            epoch: f.get("epoch")?.parse().ok()?,
        })
    }
}

/// What a gateway should do after reading the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decision {
    /// It owns the unit: serve I/O.
    Serve,
    /// Another live gateway owns it, or another is next in line: stand by.
    StandBy,
    /// Nobody live owns it and this gateway is next in line: fence the old owner's client (if
    /// any), then swap the owner for itself at this version.
    TakeOver { fence: Option<Owner> },
    /// It owns the unit and ownership was asked for another live gateway: stop serving, flush,
    /// and name that gateway owner (no fencing: nothing is left in flight).
    HandOff { to: Entry },
    /// It owns the unit and the handoff asked for names itself or a gateway gone: drop the request.
    DropHandOff,
}

impl Registry {
    /// Parse an omap; keys and values that are not ours are ignored, not fatal (a registry
    /// written by a newer version keeps working).
    pub(crate) fn parse(map: &BTreeMap<String, String>, version: u64) -> Registry {
        let mut r = Registry { version, ..Registry::default() };
        for (key, value) in map {
            if let Some(name) = key.strip_prefix(GATEWAY_PREFIX) {
                if let Some(e) = Entry::parse(name, value) {
                    r.entries.insert(name.to_string(), e);
                }
            } else if let Some(addr) = key.strip_prefix(FENCED_PREFIX) {
                r.fenced.insert(addr.to_string(), value.clone());
            } else if key == OWNER_KEY {
                r.owner = Owner::parse(value);
            } else if key == HANDOFF_KEY {
                r.handoff = Some(value.clone());
            }
        }
        r
    }

    /// The owner still holds a live lease with the very client it took ownership with (a
    /// gateway restarted under the same name has a new client: its old one is dead and must be
    /// fenced before anyone serves again).
    pub(crate) fn owner_alive(&self, now_ms: u64) -> bool {
        self.owner
            .as_ref()
            .is_some_and(|o| self.entries.get(&o.name).is_some_and(|e| e.addr == o.addr && e.alive(now_ms)))
    }

    /// The live gateway next in line for ownership: the lowest target port group. Every
    /// gateway computes the same one from the same registry, so only one tries; the version
    /// check settles any race anyway.
    pub(crate) fn successor(&self, now_ms: u64) -> Option<&Entry> {
        self.entries.values().filter(|e| e.alive(now_ms)).min_by_key(|e| (e.tpg, e.name.as_str()))
    }

    pub(crate) fn decide(&self, me: &str, my_addr: &str, now_ms: u64) -> Decision {
        if let Some(o) = &self.owner {
            if o.name == me && o.addr == my_addr {
                return match &self.handoff {
                    None => Decision::Serve,
                    Some(to) => match self.entries.get(to) {
                        Some(e) if e.name != me && e.alive(now_ms) => Decision::HandOff { to: e.clone() },
                        _ => Decision::DropHandOff,
                    },
                };
            }
        }
        if self.owner_alive(now_ms) {
            return Decision::StandBy;
        }
        match self.successor(now_ms) {
            Some(next) if next.name == me && next.addr == my_addr => Decision::TakeOver { fence: self.owner.clone() },
            _ => Decision::StandBy,
        }
    }

    /// The owner record after `me` takes over.
    pub(crate) fn next_owner(&self, me: &str, my_addr: &str) -> Owner {
        let epoch = self.owner.as_ref().map_or(0, |o| o.epoch) + 1;
        Owner { name: me.to_string(), addr: my_addr.to_string(), epoch }
    }

    /// The owner record naming `to` after a handoff.
    pub(crate) fn handed_to(&self, to: &Entry) -> Owner {
        let epoch = self.owner.as_ref().map_or(0, |o| o.epoch) + 1;
        Owner { name: to.name.clone(), addr: to.addr.clone(), epoch }
    }

    /// Blocklist entries of `me`'s earlier clients, to lift now that it is back with another.
    pub(crate) fn my_old_fences(&self, me: &str, my_addr: &str) -> Vec<String> {
        self.fenced
            .iter()
            .filter(|(addr, name)| name.as_str() == me && addr.as_str() != my_addr)
            .map(|(a, _)| a.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, tpg: u16, addr: &str, expires: u64) -> (String, String) {
        let e = Entry {
            name: name.into(),
            tpg,
            portal: "127.0.0.1:3260".into(),
            addr: addr.into(),
            expires,
            forward: String::new(),
        };
        (e.key(), e.value())
    }

    fn registry(items: &[(String, String)]) -> Registry {
        Registry::parse(&items.iter().cloned().collect(), 7)
    }

    fn owner(name: &str, addr: &str, epoch: u64) -> (String, String) {
        (OWNER_KEY.into(), Owner { name: name.into(), addr: addr.into(), epoch }.value())
    }

    #[test]
    fn entries_round_trip_and_strangers_are_ignored() {
        let r = registry(&[
            entry("a", 1, "127.0.0.1:0/1", 5000),
            owner("a", "127.0.0.1:0/1", 3),
            ("fenced.127.0.0.1:0/9".into(), "b".into()),
            ("gw.bad".into(), "tpg=0;addr=x;expires=1".into()),
            ("other".into(), "x".into()),
        ]);
        assert_eq!(r.version, 7);
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.entries["a"].tpg, 1);
        assert_eq!(r.entries["a"].portal, "127.0.0.1:3260");
        assert_eq!(r.owner.as_ref().unwrap().epoch, 3);
        assert_eq!(r.fenced["127.0.0.1:0/9"], "b");
    }

    #[test]
    fn the_first_gateway_takes_an_unowned_unit_without_fencing() {
        let r = registry(&[entry("a", 1, "A", 5000)]);
        assert_eq!(r.decide("a", "A", 1000), Decision::TakeOver { fence: None });
        assert_eq!(r.next_owner("a", "A").epoch, 1);
    }

    #[test]
    fn a_live_owner_keeps_the_unit_whatever_the_order() {
        // b owns although a has the lower group: ownership moves only on failure.
        let r = registry(&[entry("a", 1, "A", 5000), entry("b", 2, "B", 5000), owner("b", "B", 4)]);
        assert_eq!(r.decide("a", "A", 1000), Decision::StandBy);
        assert_eq!(r.decide("b", "B", 1000), Decision::Serve);
    }

    #[test]
    fn an_expired_owner_is_fenced_by_the_next_in_line_only() {
        let r = registry(&[
            entry("a", 1, "A", 900),
            entry("b", 3, "B", 5000),
            entry("c", 2, "C", 5000),
            owner("a", "A", 4),
        ]);
        let fence = Some(Owner { name: "a".into(), addr: "A".into(), epoch: 4 });
        assert_eq!(r.decide("c", "C", 1000), Decision::TakeOver { fence });
        assert_eq!(r.decide("b", "B", 1000), Decision::StandBy);
        assert_eq!(r.next_owner("c", "C").epoch, 5);
    }

    #[test]
    fn an_owner_restarted_with_a_new_client_is_fenced_too() {
        // a's entry is live again, but from another client: the owner's client is dead.
        let r = registry(&[entry("a", 1, "A2", 5000), entry("b", 2, "B", 5000), owner("a", "A1", 4)]);
        assert!(!r.owner_alive(1000));
        let fence = Some(Owner { name: "a".into(), addr: "A1".into(), epoch: 4 });
        assert_eq!(r.decide("a", "A2", 1000), Decision::TakeOver { fence });
        assert_eq!(r.decide("b", "B", 1000), Decision::StandBy);
    }

    #[test]
    fn the_owner_hands_off_to_a_live_gateway_only() {
        let mut r = registry(&[
            entry("a", 1, "A", 5000),
            entry("b", 2, "B", 5000),
            entry("c", 3, "C", 900),
            owner("a", "A", 4),
            (HANDOFF_KEY.into(), "b".into()),
        ]);
        let Decision::HandOff { to } = r.decide("a", "A", 1000) else { panic!("{:?}", r.decide("a", "A", 1000)) };
        assert_eq!(to.name, "b");
        assert_eq!(r.handed_to(&to), Owner { name: "b".into(), addr: "B".into(), epoch: 5 });
        // Only the owner acts on it; b waits to be named.
        assert_eq!(r.decide("b", "B", 1000), Decision::StandBy);
        // A request for a lost gateway, for the owner itself or for nobody known is dropped.
        for to in ["c", "a", "zz"] {
            r.handoff = Some(to.into());
            assert_eq!(r.decide("a", "A", 1000), Decision::DropHandOff, "{to}");
        }
    }

    #[test]
    fn a_gateway_back_with_a_new_client_lifts_only_its_old_fences() {
        let r = registry(&[
            ("fenced.A1".into(), "a".into()),
            ("fenced.A2".into(), "a".into()),
            ("fenced.B1".into(), "b".into()),
        ]);
        assert_eq!(r.my_old_fences("a", "A2"), vec!["A1".to_string()]);
        assert!(r.my_old_fences("c", "C").is_empty());
    }
}
