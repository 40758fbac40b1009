//! The audit trail of management: one info line per change applied and one per request refused,
//! each naming who asked (the peer's uid and pid, from SO_PEERCRED) and what, as
//! `management: uid=0 pid=123 target new tid=1 name=iqn...`. Read-only requests (show) are not
//! audited at info. A secret never reaches the line: account passwords are left out and an rbd
//! `key=` in bsopts is masked. Names come from the client: control characters are escaped, so a
//! name cannot forge a second log line.

use super::access::Peer;
use rtgt_mgmt::request::masked_bsopts;
use rtgt_mgmt::{
    AccountOp, ConnectionOp, Lld, LldOp, LunOp, Op, Param, PortalOp, Request, SessionOp, SystemOp, TargetOp,
};
use std::fmt::Write;

/// "uid=0 pid=123" (pid "?" when the kernel did not report one).
pub(crate) fn who(peer: &Peer) -> String {
    match peer.pid {
        Some(pid) => format!("uid={} pid={pid}", peer.uid),
        None => format!("uid={} pid=?", peer.uid),
    }
}

/// Whether the request only reads (not audited at info when it succeeds). `account show` with
/// secrets is audited: it discloses every CHAP password.
pub(crate) fn is_read_only(op: &Op) -> bool {
    match op {
        Op::Target(op) => matches!(op, TargetOp::Show { .. }),
        Op::LogicalUnit(op) => matches!(op, LunOp::Show { .. } | LunOp::Stats { .. }),
        Op::System(op) => matches!(op, SystemOp::Show),
        Op::Account(op) => matches!(op, AccountOp::Show { secrets: false }),
        Op::Portal(op) => matches!(op, PortalOp::Show),
        Op::Lld(op) => matches!(op, LldOp::Show),
        Op::Session(op) => matches!(op, SessionOp::Show { .. }),
        Op::Connection(op) => matches!(op, ConnectionOp::Show { .. }),
    }
}

/// The request as the audit line shows it: mode, op, then its arguments; never a secret.
pub(crate) fn render(request: &Request) -> String {
    let mut out = String::new();
    if request.lld != Lld::Iscsi {
        let _ = write!(out, "lld={} ", request.lld.name());
    }
    match &request.op {
        Op::Target(op) => match op {
            TargetOp::New { tid, name } => {
                let _ = write!(out, "target new tid={tid} name={}", clean(name));
            }
            TargetOp::Delete { tid, force } => {
                let _ = write!(out, "target delete tid={tid}{}", if *force { " force" } else { "" });
            }
            TargetOp::Show { tid } => {
                out.push_str("target show");
                if let Some(tid) = tid {
                    let _ = write!(out, " tid={tid}");
                }
            }
            TargetOp::Bind { tid, rules } | TargetOp::Unbind { tid, rules } => {
                let verb = if matches!(op, TargetOp::Bind { .. }) { "bind" } else { "unbind" };
                let rules: Vec<String> = rules.iter().map(|r| clean(&r.to_string())).collect();
                let _ = write!(out, "target {verb} tid={tid} acl={}", rules.join(","));
            }
            TargetOp::Update { tid, params } => {
                let _ = write!(out, "target update tid={tid} {}", params_text(params));
            }
        },
        Op::LogicalUnit(op) => match op {
            LunOp::New { tid, lun, spec } => {
                let _ = write!(out, "logicalunit new tid={tid} lun={lun} type={:?}", spec.device_type);
                if let Some(path) = &spec.backing_store {
                    let _ = write!(out, " backing-store={}", clean(path));
                }
                if let Some(bstype) = spec.store.bstype() {
                    let _ = write!(out, " bstype={bstype}");
                }
                let (bsopts, bsoflags) = (spec.store.bsopts(), spec.store.bsoflags());
                if !bsopts.is_empty() {
                    let _ = write!(out, " bsopts={}", clean(&masked_bsopts(&bsopts)));
                }
                if !bsoflags.is_empty() {
                    let _ = write!(out, " bsoflags={bsoflags}");
                }
                if let Some(size) = spec.block_size {
                    let _ = write!(out, " blocksize={size}");
                }
                if !spec.params.is_empty() {
                    let params: Vec<Param> = spec.params.iter().map(rtgt_mgmt::LunParam::to_param).collect();
                    let _ = write!(out, " {}", params_text(&params));
                }
            }
            LunOp::Delete { tid, lun } => {
                let _ = write!(out, "logicalunit delete tid={tid} lun={lun}");
            }
            LunOp::Update { tid, lun, changes } => {
                let params: Vec<Param> = changes.iter().map(rtgt_mgmt::LunChange::to_param).collect();
                let _ = write!(out, "logicalunit update tid={tid} lun={lun} {}", params_text(&params));
            }
            LunOp::Show { tid, lun } => {
                let _ = write!(out, "logicalunit show tid={tid} lun={lun}");
            }
            LunOp::Stats { tid, lun } => {
                let _ = write!(out, "logicalunit stats tid={tid}");
                if let Some(lun) = lun {
                    let _ = write!(out, " lun={lun}");
                }
            }
        },
        Op::System(op) => match op {
            SystemOp::Show => out.push_str("system show"),
            SystemOp::Delete { force } => {
                let _ = write!(out, "system delete{}", if *force { " force" } else { "" });
            }
            SystemOp::Update { params } => {
                let _ = write!(out, "system update {}", params_text(params));
            }
        },
        Op::Account(op) => match op {
            // The password is what this request is about, and exactly what the line must not hold.
            AccountOp::New { user, password: _ } => {
                let _ = write!(out, "account new user={}", clean(user));
            }
            AccountOp::Delete { user } => {
                let _ = write!(out, "account delete user={}", clean(user));
            }
            AccountOp::Bind { tid, user, outgoing } | AccountOp::Unbind { tid, user, outgoing } => {
                let verb = if matches!(op, AccountOp::Bind { .. }) { "bind" } else { "unbind" };
                let _ = write!(out, "account {verb} tid={tid} user={}", clean(user));
                if *outgoing {
                    out.push_str(" outgoing");
                }
            }
            AccountOp::Show { secrets } => {
                out.push_str(if *secrets { "account show with passwords" } else { "account show" });
            }
        },
        Op::Portal(op) => match op {
            PortalOp::New { address } => {
                let _ = write!(out, "portal new address={address}");
            }
            PortalOp::Delete { address } => {
                let _ = write!(out, "portal delete address={address}");
            }
            PortalOp::Show => out.push_str("portal show"),
        },
        Op::Lld(op) => out.push_str(match op {
            LldOp::Start => "lld start",
            LldOp::Stop => "lld stop",
            LldOp::Show => "lld show",
        }),
        Op::Session(op) => match op {
            SessionOp::Show { tid, .. } => {
                let _ = write!(out, "session show tid={tid}");
            }
            SessionOp::Delete { tid, sid } => {
                let _ = write!(out, "session delete tid={tid} sid={sid}");
            }
        },
        Op::Connection(op) => match op {
            ConnectionOp::Show { tid, .. } => {
                let _ = write!(out, "conn show tid={tid}");
            }
            ConnectionOp::Delete { tid, sid, cid } => {
                let _ = write!(out, "conn delete tid={tid} sid={sid} cid={cid}");
            }
        },
    }
    out
}

/// `name=value,...`; a value whose name suggests a secret is masked (no target, LUN or system
/// parameter is one today, but a line must not start leaking when one is added).
fn params_text(params: &[Param]) -> String {
    let items: Vec<String> = params
        .iter()
        .map(|p| {
            let name = p.name.to_ascii_lowercase();
            let secret = ["password", "secret", "key"].iter().any(|word| name.contains(word));
            let value = if secret { "********".to_string() } else { clean(&p.value) };
            format!("{}={value}", clean(&p.name))
        })
        .collect();
    items.join(",")
}

/// A client-supplied string fit for one log line: control characters escaped.
fn clean(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars().map(|c| if c.is_control() { c.escape_debug().to_string() } else { c.to_string() }).collect()
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtgt_mgmt::{AclEntry, LunSpec};

    #[test]
    fn passwords_never_appear() {
        let op = Op::Account(AccountOp::New { user: "alice".into(), password: "SECRETPASSWORD1".into() });
        let text = render(&Request::iscsi(op));
        assert_eq!(text, "account new user=alice");
        let mut spec = LunSpec::disk(Some("pool/img".into()));
        spec.store = rtgt_mgmt::StoreSpec::parse(Some("rbd"), "conf=/c;key=AQSECRET==", "").unwrap();
        let text = render(&Request::iscsi(Op::LogicalUnit(LunOp::New { tid: 1, lun: 2, spec })));
        assert!(!text.contains("AQSECRET"), "{text}");
        assert!(text.starts_with("logicalunit new tid=1 lun=2"), "{text}");
        let params = vec![Param::new("chap_password", "hunter2")];
        let text = render(&Request::iscsi(Op::Target(TargetOp::Update { tid: 1, params })));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn changes_name_the_target_and_what_changed() {
        let op = Op::Target(TargetOp::New { tid: 3, name: "iqn.2026-12.org.example:a".into() });
        assert_eq!(render(&Request::iscsi(op)), "target new tid=3 name=iqn.2026-12.org.example:a");
        let op = Op::Target(TargetOp::Bind { tid: 3, rules: vec![AclEntry::All] });
        assert_eq!(render(&Request::iscsi(op)), "target bind tid=3 acl=ALL");
        let op = Op::Account(AccountOp::Bind { tid: 3, user: "u".into(), outgoing: true });
        assert_eq!(render(&Request::iscsi(op)), "account bind tid=3 user=u outgoing");
        let op = Op::Target(TargetOp::Delete { tid: 3, force: true });
        assert_eq!(render(&Request { lld: Lld::Vhost, op }), "lld=vhost target delete tid=3 force");
    }

    #[test]
    fn a_name_cannot_forge_a_log_line() {
        let op = Op::Target(TargetOp::New { tid: 1, name: "x\nmanagement: uid=0 forged".into() });
        let text = render(&Request::iscsi(op));
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("\\n"), "{text}");
    }

    #[test]
    fn shows_are_read_only_but_disclosing_passwords_is_not() {
        assert!(is_read_only(&Op::Target(TargetOp::Show { tid: None })));
        assert!(is_read_only(&Op::Account(AccountOp::Show { secrets: false })));
        assert!(!is_read_only(&Op::Account(AccountOp::Show { secrets: true })));
        assert!(!is_read_only(&Op::Lld(LldOp::Stop)));
        assert!(!is_read_only(&Op::Target(TargetOp::Delete { tid: 1, force: false })));
    }

    #[test]
    fn who_names_uid_and_pid() {
        assert_eq!(who(&Peer { uid: 0, gid: 0, pid: Some(123) }), "uid=0 pid=123");
        assert_eq!(who(&Peer { uid: 1000, gid: 0, pid: None }), "uid=1000 pid=?");
    }
}
