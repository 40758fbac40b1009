//! tgt's text for accounts, portals, drivers and sessions, as Debian's tgtadm 1.0.85 prints them
//! (captured from a running tgtd; see the golden tests).

use rtgt_mgmt::{AccountEntry, LldView, NexusView, PortalView};
use std::fmt::Write;

/// `--mode account --op show`: names only, never a password.
pub fn accounts(list: &[AccountEntry]) -> String {
    let mut out = String::from("Account list:\n");
    for account in list {
        let _ = writeln!(out, "    {}", account.user);
    }
    out
}

/// `--mode portal --op show`: `address:port,tpgt`.
pub fn portals(list: &[PortalView]) -> String {
    let mut out = String::new();
    for portal in list {
        let _ = writeln!(out, "Portal: {},{}", portal.address, portal.tpgt);
    }
    out
}

/// `--mode lld --op show`: each driver, the targets it serves below it.
pub fn llds(list: &[LldView]) -> String {
    let mut out = String::from("LLDs:\n");
    for lld in list {
        let _ = writeln!(out, "    {}: {}", lld.name, lld.state);
        for target in &lld.targets {
            let _ = writeln!(out, "        Target {}: {}", target.tid, target.name);
        }
    }
    out
}

/// `--mode conn --op show`: each session's connections, as tgt prints them. rtgt's
/// `--mode session --op show` adds (`with_params`) what each session negotiated as `key=value` lines.
pub fn sessions(list: &[NexusView], with_params: bool) -> String {
    let mut out = String::new();
    for session in list {
        let _ = writeln!(out, "Session: {}", session.id);
        for conn in &session.connections {
            let _ = writeln!(out, "    Connection: {}", conn.cid);
            let _ = writeln!(out, "        Initiator: {}", session.initiator);
            let _ = writeln!(out, "        IP Address: {}", conn.initiator_address.ip());
        }
        if with_params {
            for p in &session.params {
                let _ = writeln!(out, "    {}={}", p.name, p.value);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtgt_mgmt::{ConnectionView, LldTarget};

    #[test]
    fn account_list_golden() {
        let list = [
            AccountEntry {
                user: "bob".into(),
                password: Some("never-printed".into()),
                discovery: true,
                discovery_outgoing: false,
            },
            AccountEntry { user: "alice".into(), password: None, discovery: false, discovery_outgoing: false },
        ];
        assert_eq!(accounts(&list), "Account list:\n    bob\n    alice\n");
        assert_eq!(accounts(&[]), "Account list:\n");
    }

    #[test]
    fn portal_list_golden() {
        let list = [
            PortalView { address: "127.0.0.1:13262".parse().unwrap(), tpgt: 1 },
            PortalView { address: "127.0.0.1:13261".parse().unwrap(), tpgt: 1 },
        ];
        assert_eq!(portals(&list), "Portal: 127.0.0.1:13262,1\nPortal: 127.0.0.1:13261,1\n");
        let v6 = [PortalView { address: "[::1]:3260".parse().unwrap(), tpgt: 1 }];
        assert_eq!(portals(&v6), "Portal: [::1]:3260,1\n");
    }

    #[test]
    fn lld_list_golden() {
        let list = [LldView {
            name: "iscsi".into(),
            state: "ready".into(),
            targets: vec![LldTarget { tid: 1, name: "iqn.2001-04.com.example:t1".into() }],
        }];
        assert_eq!(llds(&list), "LLDs:\n    iscsi: ready\n        Target 1: iqn.2001-04.com.example:t1\n");
    }

    #[test]
    fn connection_list_golden() {
        let list = [NexusView {
            id: 3,
            initiator: "iqn.2007-10.com.example:client".into(),
            alias: None,
            isid: "400001370000".into(),
            connections: vec![ConnectionView {
                cid: 0,
                initiator_address: "127.0.0.1:40000".parse().unwrap(),
                target_address: "127.0.0.1:13261".parse().unwrap(),
            }],
            params: vec![rtgt_mgmt::TargetParam { name: "HeaderDigest".into(), value: "None".into() }],
        }];
        let conns = "Session: 3\n    Connection: 0\n        Initiator: iqn.2007-10.com.example:client\n        IP Address: 127.0.0.1\n";
        assert_eq!(sessions(&list, false), conns);
        assert_eq!(sessions(&list, true), format!("{conns}    HeaderDigest=None\n"));
    }
}
