//! `--dump`: the running configuration as targets.conf text that `--execute` turns back into the
//! same configuration. Every LUN gets an explicit `lun` line and every target its `controller_tid`,
//! so numbering cannot shift.

use super::conf::quote;
use super::spec::{mode_page_decimal, Account, Discovery, TargetSpec, WRITE_CACHE_OFF};
use rtgt_mgmt::LunParam;
use std::fmt::Write;

/// The placeholder path of a LUN whose store has no file (memory, null).
pub const NO_PATH: &str = "-";

pub fn dump(targets: &[TargetSpec], discovery: &Discovery) -> String {
    let mut out = String::from("default-driver iscsi\n");
    for p in &discovery.isns {
        let _ = writeln!(out, "{} {}", p.name, quote(&p.value));
    }
    for a in &discovery.incoming {
        let _ = writeln!(out, "incomingdiscoveryuser {} {}", quote(&a.user), quote(&a.password));
    }
    if let Some(a) = &discovery.outgoing {
        let _ = writeln!(out, "outgoingdiscoveryuser {} {}", quote(&a.user), quote(&a.password));
    }
    for t in targets {
        out.push('\n');
        out.push_str(&target(t));
    }
    out
}

fn user(out: &mut String, key: &str, a: &Account) {
    let _ = writeln!(out, "\t{key} {} {}", quote(&a.user), quote(&a.password));
}

fn target(t: &TargetSpec) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "<target {}>", quote(&t.name));
    if let Some(tid) = t.controller_tid {
        // The same tid when the dump is loaded (tgt's directive; its tgt-admin takes it too).
        let _ = writeln!(out, "\tcontroller_tid {tid}");
    }
    let write_cache_off = mode_page_decimal(WRITE_CACHE_OFF);
    for (lun, spec) in &t.luns {
        let _ = writeln!(out, "\t<backing-store {}>", quote(spec.backing_store.as_deref().unwrap_or(NO_PATH)));
        let _ = writeln!(out, "\t\tlun {lun}");
        if spec.device_type != rtgt_mgmt::DeviceType::Disk {
            // tgt's --device-type spelling for the types rtgt can name.
            let _ = writeln!(out, "\t\tdevice-type {}", spec.device_type.option_name());
        }
        if let Some(bstype) = spec.store.bstype() {
            let _ = writeln!(out, "\t\tbs-type {}", quote(bstype));
        }
        let bsopts = spec.store.bsopts();
        if !bsopts.is_empty() {
            let _ = writeln!(out, "\t\tbsopts {}", quote(&bsopts));
        }
        let bsoflags = spec.store.bsoflags();
        if !bsoflags.is_empty() {
            let _ = writeln!(out, "\t\tbsoflags {}", quote(&bsoflags));
        }
        if let Some(size) = spec.block_size {
            let _ = writeln!(out, "\t\tblock-size {size}");
        }
        for typed in &spec.params {
            if let LunParam::Changer(c) = typed {
                // A media changer's library, one change per line as tgt's examples write them.
                let _ = writeln!(out, "\t\tparams {}", quote(&c.text()));
                continue;
            }
            let p = typed.to_param();
            if p.name == "mode_page" && p.value == write_cache_off {
                // The directive that made it, not the page's bytes.
                out.push_str("\t\twrite-cache off\n");
            } else {
                let _ = writeln!(out, "\t\t{} {}", p.name, quote(&p.value));
            }
        }
        out.push_str("\t</backing-store>\n");
    }
    if t.acl.is_empty() {
        // Without any initiator line a target would load open to all (tgt's rule).
        out.push_str("\tinitiator-address NONE\n");
    }
    for rule in &t.acl {
        match rule {
            rtgt_mgmt::AclEntry::InitiatorName(name) => {
                let _ = writeln!(out, "\tinitiator-name {}", quote(name));
            }
            other => {
                let _ = writeln!(out, "\tinitiator-address {other}");
            }
        }
    }
    for a in &t.incoming {
        user(&mut out, "incominguser", a);
    }
    if let Some(a) = &t.outgoing {
        user(&mut out, "outgoinguser", a);
    }
    for (name, value) in &t.params {
        let _ = writeln!(out, "\t{name} {}", quote(value));
    }
    out.push_str("</target>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::conf::{parse_into, ConfFile};
    use super::super::spec::from_conf;
    use super::*;
    use std::path::Path;

    /// Text -> spec -> text -> spec: the dump of a parsed file parses to the same thing.
    #[test]
    fn dump_parses_back_to_the_same_specs() {
        let text = "incomingdiscoveryuser disc secretsecret\n\
                    <target iqn.2001-04.com.example:a>\n\
                    backing-store /srv/a.img\n\
                    <backing-store ->\n bs-type memory\n bsopts size=1048576\n lun 4\n vendor_id ACME\n readonly 1\n</backing-store>\n\
                    <backing-store /srv/debian.iso>\n device-type cd\n lun 2\n</backing-store>\n\
                    initiator-address 10.0.0.0/8\n initiator-name iqn.x:init\n\
                    incominguser alice alicesecret\n outgoinguser tgt tgtsecret\n\
                    MaxConnections 4\n nop_interval 5\n</target>\n";
        let mut conf = ConfFile::default();
        parse_into(text, Path::new("a.conf"), &mut conf, 0).unwrap();
        let (specs, discovery) = from_conf(&conf).unwrap();
        assert_eq!(specs[0].luns[&4].backing_store, None);
        let dumped = dump(&specs, &discovery);
        let mut again = ConfFile::default();
        parse_into(&dumped, Path::new("dump.conf"), &mut again, 0).unwrap();
        let (specs2, discovery2) = from_conf(&again).unwrap();
        assert_eq!(specs2, specs);
        assert_eq!(discovery2, discovery);
        assert_eq!(dump(&specs2, &discovery2), dumped);
        assert!(dumped.contains("\t<backing-store ->\n\t\tlun 4\n\t\tbs-type memory\n"), "{dumped}");
        // A cd/dvd LUN is written with the name targets.conf takes, not the one `show` prints.
        assert!(dumped.contains("device-type cd\n"), "{dumped}");
        assert_eq!(specs2[0].luns[&2].device_type, rtgt_mgmt::DeviceType::Cd);
    }

    /// Values the daemon takes that plain targets.conf words cannot carry (spaces, `#`, quotes,
    /// backslashes), and `write-cache off`, dump as text that loads back to the same specs.
    #[test]
    fn odd_values_and_write_cache_load_back() {
        use rtgt_mgmt::{AclEntry, LunSpec};
        let odd = |user: &str, password: &str| Account { user: user.into(), password: password.into() };
        let mut lun = LunSpec::disk(Some("/srv/a b#1.img".into()));
        lun.params = vec![LunParam::ModePage(mode_page_decimal(WRITE_CACHE_OFF)), LunParam::VendorId("A #B".into())];
        let spec = TargetSpec {
            name: "iqn.2001-04.com.example:odd".into(),
            controller_tid: Some(3),
            params: [("TargetAlias".to_string(), "my \"disk\"".to_string())].into_iter().collect(),
            acl: vec![AclEntry::InitiatorName("iqn.x with space".into())],
            incoming: vec![odd("bob smith", "pa ss\"#word\\"), odd("\"q", "")],
            outgoing: Some(odd("tab\tuser", "line\nbreak12")),
            luns: [(1, lun)].into_iter().collect(),
        };
        let isns = vec![rtgt_mgmt::Param::new("iSNSServerIP", "::1"), rtgt_mgmt::Param::new("iSNS", "On")];
        let discovery = Discovery { incoming: vec![odd("d u", "#secret")], outgoing: None, isns };
        let dumped = dump(std::slice::from_ref(&spec), &discovery);
        assert!(dumped.contains("\t\twrite-cache off\n"), "{dumped}");
        assert!(dumped.contains(">\n\tcontroller_tid 3\n"), "{dumped}");
        assert!(dumped.contains("\tincominguser \"bob smith\" \"pa ss\\\"#word\\\\\"\n"), "{dumped}");
        let mut again = ConfFile::default();
        parse_into(&dumped, Path::new("dump.conf"), &mut again, 0).unwrap();
        let (specs, discovery2) = from_conf(&again).unwrap();
        assert_eq!(specs, [spec]);
        assert_eq!(specs[0].controller_tid, Some(3));
        assert_eq!(discovery2, discovery);
    }
}
