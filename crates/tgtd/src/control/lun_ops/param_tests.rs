use super::*;
use rtgt_mgmt::Param;

fn apply(pairs: &[(&str, &str)]) -> Result<LunConfig, MgmtError> {
    let mut config = LunConfig::disk(1, 1);
    for (k, v) in pairs {
        let typed = LunParam::parse(&Param::new(*k, *v)).map_err(|e| invalid(e.to_string()))?;
        configure(&mut config, &typed)?;
    }
    Ok(config)
}

#[test]
fn tgt_lun_parameters() {
    let c = apply(&[
        ("thin_provisioning", "1"),
        ("removable", "1"),
        ("readonly", "1"),
        ("online", "0"),
        ("sense_format", "1"),
        ("vendor_id", "ACME"),
        ("product_id", "Disk"),
        ("product_rev", "9.1"),
        ("scsi_id", "ACME 0001"),
        ("scsi_sn", "SN42"),
        ("mode_page", "0x20:0:2:1:2"),
    ])
    .unwrap();
    assert!(c.thin_provisioning && c.removable && c.readonly && !c.online && c.descriptor_sense);
    assert_eq!((c.vendor_id.as_str(), c.product_id.as_str(), c.product_rev.as_str()), ("ACME", "Disk", "9.1"));
    assert_eq!((c.scsi_id.as_str(), c.scsi_sn.as_str()), ("ACME 0001", "SN42"));
    assert_eq!(c.mode_pages.len(), 1);
    assert_eq!(c.mode_pages[0].data, [1, 2]);
}

/// tgt-admin's `write-cache off` page turns a disk's write cache off; a caching page with WCE
/// set turns it on again.
#[test]
fn the_caching_page_sets_the_write_cache() {
    let off = "8:0:18:0x10:0:0xff:0xff:0:0:0xff:0xff:0xff:0xff:0x80:0x14:0:0:0:0:0:0";
    assert!(!apply(&[("mode_page", off)]).unwrap().write_cache);
    let on = off.replacen("0x10", "0x14", 1);
    assert!(apply(&[("mode_page", off), ("mode_page", &on)]).unwrap().write_cache);
    assert!(apply(&[("mode_page", "0x20:0:2:0:0")]).unwrap().write_cache);
}

#[test]
fn bad_parameters_are_refused() {
    assert!(apply(&[("thin_provisioning", "yes")]).is_err());
    assert!(apply(&[("vendor_id", "NINE CHARS")]).is_err());
    assert!(apply(&[("product_rev", "12345")]).is_err());
    assert!(apply(&[("mode_page", "8:0:3:1")]).is_err());
    assert!(apply(&[("frobnicate", "1")]).is_err());
}
