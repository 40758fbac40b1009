use super::super::conf::parse_into;
use super::*;
use std::path::Path;

fn specs(text: &str) -> Result<Vec<TargetSpec>, ConfError> {
    let mut conf = ConfFile::default();
    parse_into(text, Path::new("t.conf"), &mut conf, 0)?;
    from_conf(&conf).map(|(t, _)| t).map_err(|mut e| e.remove(0))
}

/// targets.conf's store directives are checked once read, with the line of the store; the
/// defaults of the target and the store's own directives combine first.
#[test]
fn bad_store_directives_name_the_option_and_the_line() {
    let t = &specs("<target t>\n bs-type null\n <backing-store ->\n  bsopts size=1M\n  bsoflags sync\n </backing-store>\n</target>\n")
        .unwrap()[0];
    let store = &t.luns[&1].store;
    assert_eq!((store.kind, store.size, store.flags.sync), (Some(StoreKind::Null), Some(1 << 20), true));
    let err = specs("<target t>\n <backing-store /a>\n  bsopts colour=blue\n </backing-store>\n</target>\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("t.conf:2") && err.contains("--bsopts: unknown option 'colour'"), "{err}");
    let err = specs("<target t>\n bsoflags dsync\n backing-store /a\n</target>\n").unwrap_err().to_string();
    assert!(err.contains("--bsoflags: unknown flag 'dsync'"), "{err}");
}

/// As tgt's tgt-admin numbers LUNs without `lun`: backing-stores by path, then direct-stores
/// by path, each taking the lowest number no store names and none before it took.
#[test]
fn automatic_luns_are_numbered_as_tgt_admin_does() {
    let t = &specs(
        "<target t>\n direct-store /d/a\n backing-store /b/z\n <backing-store /b/m>\n </backing-store>\n \
         <backing-store /b/c>\n  lun 1\n </backing-store>\n direct-store /a/first\n</target>\n",
    )
    .unwrap()[0];
    let paths: Vec<(u64, &str)> = t.luns.iter().map(|(n, l)| (*n, l.backing_store.as_deref().unwrap())).collect();
    assert_eq!(paths, [(1, "/b/c"), (2, "/b/m"), (3, "/b/z"), (4, "/a/first"), (5, "/d/a")]);
}

/// `controller_tid` is the target's tid; targets come in name order; two targets asking for
/// one tid, or tid 0, are mistakes named with their line.
#[test]
fn controller_tid_and_name_order() {
    let t = specs("<target z>\n controller_tid 7\n</target>\n<target a>\n</target>\n").unwrap();
    assert_eq!(
        t.iter().map(|t| (t.name.as_str(), t.controller_tid)).collect::<Vec<_>>(),
        [("a", None), ("z", Some(7))]
    );
    let err = specs("<target z>\n controller_tid 7\n</target>\n<target a>\n controller_tid 7\n</target>\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("t.conf:1") && err.contains("controller_tid 7 is also a's"), "{err}");
    for bad in ["0", "x", "-1"] {
        let err = specs(&format!("<target a>\n controller_tid {bad}\n</target>\n")).unwrap_err().to_string();
        assert!(
            err.contains("t.conf:2") && err.contains(&format!("controller_tid '{bad}' is not a tid from 1")),
            "{err}"
        );
    }
}

/// As tgt's tgt-admin: a target that names no initiator is open to all; one that names any
/// (by address or by name) only to those.
#[test]
fn a_target_naming_no_initiator_is_open_to_all() {
    let acl =
        |extra: &str| specs(&format!("<target t>\n{extra} backing-store /a\n</target>\n")).unwrap()[0].acl.clone();
    assert_eq!(acl(""), [AclEntry::All]);
    assert_eq!(acl(" incominguser bob secret12345\n"), [AclEntry::All]);
    assert_eq!(acl(" initiator-name iqn.x\n"), [AclEntry::InitiatorName("iqn.x".into())]);
    assert_eq!(acl(" initiator-address 10.0.0.1\n"), [AclEntry::parse_address("10.0.0.1").unwrap()]);
    // How --dump writes a target that admits nobody.
    assert_eq!(acl(" initiator-address NONE\n"), []);
}

#[test]
fn luns_numbered_and_defaults_inherited() {
    let t = &specs(
        "<target t>\n vendor_id ACME\n backing-store /a\n <backing-store /b>\n  lun 1\n  vendor_id OTHER\n \
         </backing-store>\n backing-store /c\n MaxConnections 1\n InitialR2T No\n</target>\n",
    )
    .unwrap()[0];
    let luns: Vec<(u64, Option<&str>)> = t.luns.iter().map(|(n, s)| (*n, s.backing_store.as_deref())).collect();
    assert_eq!(luns, vec![(1, Some("/b")), (2, Some("/a")), (3, Some("/c"))]);
    assert_eq!(t.luns[&1].params, vec![LunParam::VendorId("OTHER".into())]);
    assert_eq!(t.luns[&2].params, vec![LunParam::VendorId("ACME".into())]);
    // A default value is no configuration.
    assert_eq!(t.params.len(), 1);
    assert_eq!(t.params["InitialR2T"], "No");
}

#[test]
fn write_cache_off_is_the_caching_page_in_decimal() {
    let t = &specs("<target t>\n write-cache off\n backing-store /a\n</target>\n").unwrap()[0];
    assert_eq!(
        t.luns[&1].params,
        vec![LunParam::ModePage("8:0:18:16:0:255:255:0:0:255:255:255:255:128:20:0:0:0:0:0:0".into())]
    );
    assert_eq!(mode_page_decimal("0x1c:0:10:frob"), "0x1c:0:10:frob");
}

#[test]
fn bad_values_name_the_line() {
    let e = specs("<target t>\n initiator-address 10.0.0.0/40\n</target>\n").unwrap_err();
    assert_eq!(e.origin.line, 2);
    let e = specs("<target t>\n<backing-store /a>\nlun x\n</backing-store>\n</target>\n").unwrap_err();
    assert_eq!(e.to_string(), "t.conf:3: 'x' is not a LUN number");
    let e = specs("<target t>\nincominguser alice\n</target>\n").unwrap_err();
    assert!(e.message.contains("user and a password"));
    let e = specs("<target t>\nbacking-store /a\n<backing-store /b>\nlun 1\n</backing-store>\n</target>\n");
    // /a takes 2 because 1 is explicitly taken: no clash.
    assert!(e.is_ok());
    let e = specs("<target t>\n<backing-store /a>\nlun 3\n</backing-store>\n<backing-store /b>\nlun 3\n</backing-store>\n</target>\n")
        .unwrap_err();
    assert!(e.message.contains("used twice"));
    assert!(specs("<target t>\n</target>\n<target T>\n</target>\n").unwrap_err().message.contains("twice"));
}

/// Found by the targets_conf fuzz target: `params` took any name (and an empty value), which the
/// daemon refuses only when the plan runs, and which `--dump` wrote as a directive the parser
/// then rejected.
#[test]
fn params_names_and_values_are_checked() {
    let conf = |p: &str| {
        format!(
            "<target t>
<backing-store ->
params {p}
</backing-store>
</target>
"
        )
    };
    let e = specs(&conf("thin_provisioning=1,tihn_provisioning=1")).unwrap_err();
    assert_eq!(e.to_string(), "t.conf:3: unknown logical unit parameter 'tihn_provisioning' in params");
    let e = specs(&conf("vendor_id=")).unwrap_err();
    assert_eq!(e.to_string(), "t.conf:3: 'vendor_id' in params needs a value");
    let t = &specs(&conf("thin_provisioning=1, vendor_id = ACME")).unwrap()[0];
    assert_eq!(t.luns[&1].params, vec![LunParam::ThinProvisioning(true), LunParam::VendorId("ACME".into())]);
}

/// Every target block's mistake is named, not just the first; a bad parameter value is one.
#[test]
fn every_block_is_checked_and_parameter_values_too() {
    let mut conf = ConfFile::default();
    let text = "<target a>\n MaxRecvDataSegmentLength lots\n</target>\n<target b>\n InitialR2T maybe\n</target>\n\
                <target c>\n HeaderDigest CRC32C,None\n MaxConnections 4\n</target>\n<target A>\n</target>\n";
    parse_into(text, Path::new("t.conf"), &mut conf, 0).unwrap();
    let errors: Vec<String> = from_conf(&conf).unwrap_err().iter().map(|e| e.to_string()).collect();
    assert_eq!(
        errors,
        [
            "t.conf:2: MaxRecvDataSegmentLength 'lots' is not a number from 512 to 16777215",
            "t.conf:5: InitialR2T 'maybe' is not Yes or No",
            "t.conf:11: target A is defined twice",
        ]
    );
}
