//! What `tgt-admin --update` compares of a LUN: its configuration, not the state it reached
//! running (the tape in a drive, where a changer's tapes are), so that `--update` with an
//! unchanged file leaves a running tape library alone.

use rtgt_mgmt::{DeviceType, LunParam, LunSpec, Param, StoreKind};

/// What of a LUN `--update` compares, leaving out what runs on its own once the LUN is made: the
/// tape in a tape drive (a changer's robot or LOAD UNLOAD change it, as a disc is changed), where
/// a changer's tapes are (the robot moves them; the file's tapes are where they started), the
/// pages a changer describes from its layout (1Dh, 1Eh: tgt's examples give placeholders the
/// daemon drops), and the defaults a tape or changer LUN shows (its store type, its block size).
/// So a library whose tapes moved is not made again, which would lose where they are.
pub fn configured_part(spec: &LunSpec) -> LunSpec {
    let mut spec = spec.clone();
    match spec.device_type {
        DeviceType::Tape => {
            spec.backing_store = None;
            spec.block_size = None;
            if spec.store.kind == Some(StoreKind::Ssc) {
                spec.store.kind = None;
            }
        }
        DeviceType::Changer => {
            use rtgt_mgmt::ChangerParam as C;
            spec.params.retain(|p| match p {
                LunParam::Changer(C::Insert { .. } | C::Clear { .. }) => false,
                LunParam::ModePage(page) => !matches!(mode_page_code(page), Some(0x1d | 0x1e)),
                _ => true,
            });
            // The library these lines make: a later binding of an element, media directory or
            // sides setting replaces an earlier one, and the order of the rest does not matter.
            let mut library: Vec<String> = Vec::new();
            for p in spec.params.iter().rev() {
                let LunParam::Changer(c) = p else { continue };
                let replaced = |seen: &String| match c {
                    C::Drive { address, .. } => seen.starts_with(&format!("element_type=4,address={address},tid=")),
                    C::MediaHome(_) => seen.starts_with("media_home="),
                    C::Sides(_) => seen.starts_with("element_type=1,sides="),
                    _ => false,
                };
                if !library.iter().any(replaced) {
                    library.push(c.text());
                }
            }
            library.sort();
            spec.params.retain(|p| !matches!(p, LunParam::Changer(_)));
            spec.params.extend(library.iter().filter_map(|t| {
                let (name, value) = t.split_once('=')?;
                rtgt_mgmt::ChangerParam::from_param(&Param::new(name, value)).ok().map(LunParam::Changer)
            }));
        }
        _ => {}
    }
    // Values a file may spell out that the running LUN shows as defaults (not at all).
    spec.params.retain(|p| {
        !matches!(p, LunParam::ProductRev(v) if v == "0001")
            && !matches!(p, LunParam::Online(true) | LunParam::Readonly(false) | LunParam::Removable(false))
            && !matches!(p, LunParam::ThinProvisioning(false))
    });
    spec.params.sort_by_key(|p| p.to_param().name);
    spec
}

/// The page code of a `mode_page` value (decimal or 0x hex, as tgt takes it).
fn mode_page_code(value: &str) -> Option<u8> {
    let first = value.split(':').next()?.trim();
    match first.strip_prefix("0x").or_else(|| first.strip_prefix("0X")) {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => first.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::conf::{parse_into, ConfFile};
    use std::path::Path;

    fn specs(text: &str) -> Vec<crate::admin::spec::TargetSpec> {
        let mut conf = ConfFile::default();
        parse_into(text, Path::new("t.conf"), &mut conf, 0).unwrap();
        crate::admin::spec::from_conf(&conf).unwrap().0
    }

    /// `--update` compares a library's configuration, not where its tapes went nor which tape
    /// a drive holds; a changed layout is still a difference.
    #[test]
    fn update_compares_what_configures_a_library_not_its_tapes() {
        let lun = |text: &str| {
            let t = specs(&format!("<target t>\n{text}</target>\n"));
            configured_part(&t[0].luns[&1])
        };
        let changer = |extra: &str| {
            lun(&format!(
                " <backing-store /smc>\n  device-type changer\n  product_rev \"0001\"\n                   mode_page \"0x1d:0:0x12:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0:0\"\n                   params element_type=2,start_address=1000,quantity=10,media_home=/tapes\n                   params element_type=4,start_address=500,quantity=1\n{extra} </backing-store>\n"
            ))
        };
        let plain = changer("");
        assert_eq!(
            changer(
                "  params element_type=4,address=500,tid=1,lun=2\n  params element_type=4,address=500,tid=1,lun=1\n"
            ),
            changer("  params element_type=4,address=500,tid=1,lun=1\n")
        );
        assert_eq!(changer("  params element_type=2,address=1000,barcode=A1\n"), plain);
        assert_eq!(changer("  params element_type=4,address=500,barcode=A1,source=1000\n"), plain);
        assert_ne!(changer("  params element_type=3,start_address=10,quantity=2\n"), plain);
        let tape = |path: &str| lun(&format!(" <backing-store {path}>\n  device-type tape\n </backing-store>\n"));
        assert_eq!(tape("/tapes/notape1"), tape("/tapes/A1"));
        assert_ne!(tape("/tapes/A1"), lun(" backing-store /tapes/A1\n"));
    }
}
