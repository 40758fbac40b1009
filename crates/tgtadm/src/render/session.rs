//! `--mode conn --op show` as Debian's tgtadm 1.0.85 prints it (captured from a running tgtd),
//! and rtgt's `--mode session --op show`.

use rtgt_mgmt::NexusView;
use std::fmt::Write;

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
    use rtgt_mgmt::ConnectionView;

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
