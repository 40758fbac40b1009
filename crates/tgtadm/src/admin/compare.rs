//! What `tgt-admin --update` compares of a LUN: its configuration, not the state it reached
//! running (the tape in a drive, where a changer's tapes are), so that `--update` with an
//! unchanged file leaves a running tape library alone; and whether a LUN that differs can be
//! changed in place (`logicalunit --op update --params`) or must be made again.

use super::spec::{shown_default, SCALAR_LUN_PARAMS};
use rtgt_mgmt::{DeviceType, LunParam, LunSpec, Param, StoreKind};

/// What of a LUN `--update` compares, leaving out what runs on its own once the LUN is made: the
/// tape in a tape drive (a changer's robot or LOAD UNLOAD change it, as a disc is changed), where
/// a changer's tapes are (the robot moves them; the file's tapes are where they started), the
/// pages a changer describes from its layout (1Dh, 1Eh: tgt's examples give placeholders the
/// daemon drops), and the defaults a tape, cd/dvd or changer LUN shows (its store type and size,
/// its block size). So a library whose tapes moved is not made again, which would lose where
/// they are.
pub fn configured_part(spec: &LunSpec) -> LunSpec {
    let mut spec = spec.clone();
    match spec.device_type {
        DeviceType::Tape => {
            spec.backing_store = None;
            spec.block_size = None;
            // An empty drive's null store shows a size of 0; a tape's is its image's.
            spec.store.size = None;
            if spec.store.kind == Some(StoreKind::Ssc) {
                spec.store.kind = None;
            }
        }
        // A drive's blocks are always 2048 bytes (a file may say so, the running drive shows it);
        // its empty tray shows a null store of size 0.
        DeviceType::Cd => {
            if spec.block_size == Some(2048) {
                spec.block_size = None;
            }
            spec.store.size = None;
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

/// What `--update` does about a LUN the file and the daemon both have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LunDiff {
    Same,
    /// One `logicalunit --op update` with these parameters (only the changed ones): the unit, its
    /// data, its reservations and its initiators' sessions stay.
    InPlace(Vec<LunParam>),
    /// Delete and new: what the LUN is made of changed (backing store, bstype, bsopts, bsoflags,
    /// block size, device type), or a change the daemon cannot make to a live unit.
    Recreate,
}

/// How LUN `lun` of target `tid`, running as `have`, becomes the file's `want`.
///
/// A parameter the file no longer gives goes back to the value a LUN made from the file would
/// have (tgt's tgt-admin re-creates the whole target, so it gets the defaults too): a disk's,
/// or the defaults of the LUN's type (a cd/dvd drive's product, removable bit and read-only).
/// Kept to re-creation: a changed media changer library (its layout is made with the LUN), an
/// administrator's mode page the file drops (the daemon can replace a page, not remove one:
/// `write-cache on` after `off` is such a case), and readonly on an RBD store (an image or
/// snapshot may be read-only by itself). A cd/dvd drive is read-only whatever the file says.
pub fn lun_diff(tid: u32, lun: u64, have: &LunSpec, want: &LunSpec) -> LunDiff {
    let (h, w) = (configured_part(have), configured_part(want));
    if h == w {
        return LunDiff::Same;
    }
    let made_of = |s: &LunSpec| LunSpec { params: Vec::new(), ..s.clone() };
    if made_of(&h) != made_of(&w) || want.device_type == DeviceType::Controller {
        return LunDiff::Recreate;
    }
    let library =
        |s: &LunSpec| s.params.iter().filter(|p| matches!(p, LunParam::Changer(_))).cloned().collect::<Vec<_>>();
    if library(&h) != library(&w) {
        return LunDiff::Recreate;
    }
    let rbd = want.store.kind == Some(StoreKind::Rbd);
    // The value each side has: a running spec leaves out what equals a disk's default, the file's
    // leaves out what equals the default of the LUN it makes.
    let value = |spec: &LunSpec, name: &str| spec.params.iter().map(LunParam::to_param).find(|p| p.name == name);
    let mut changes = Vec::new();
    for name in SCALAR_LUN_PARAMS {
        if (want.device_type, *name) == (DeviceType::Cd, "readonly") {
            continue;
        }
        let running = value(have, name).map(|p| p.value).unwrap_or_else(|| shown_default(name, tid, lun));
        let wanted = value(want, name).map(|p| p.value).unwrap_or_else(|| match *name {
            "thin_provisioning" if rbd => "1".into(),
            _ => type_default(want.device_type, name, tid, lun),
        });
        if running == wanted {
            continue;
        }
        if rbd && *name == "readonly" {
            return LunDiff::Recreate;
        }
        match LunParam::parse(&Param::new(*name, wanted)) {
            Ok(p) => changes.push(p),
            // Both sides were checked when read; anything else is left to a new LUN to refuse.
            Err(_) => return LunDiff::Recreate,
        }
    }
    let pages = |spec: &LunSpec| -> Vec<String> {
        spec.params
            .iter()
            .filter_map(|p| match p {
                LunParam::ModePage(text) => Some(super::spec::mode_page_decimal(text)),
                _ => None,
            })
            .collect()
    };
    let (have_pages, want_pages) = (pages(have), pages(want));
    let key = |page: &String| page.split(':').take(2).map(str::to_string).collect::<Vec<_>>();
    if have_pages.iter().any(|h| !want_pages.iter().any(|w| key(w) == key(h))) {
        return LunDiff::Recreate;
    }
    changes.extend(want_pages.into_iter().filter(|w| !have_pages.contains(w)).map(LunParam::ModePage));
    if changes.is_empty() {
        LunDiff::Same
    } else {
        LunDiff::InPlace(changes)
    }
}

/// The value a LUN of type `device` made without parameter `name` has (what `--op new` gives it):
/// a disk's default, but for what the daemon gives each other type (`LunConfig::cd`, `tape`,
/// `changer`): its product, the removable bit, and a cd/dvd drive's read-only.
fn type_default(device: DeviceType, name: &str, tid: u32, lun: u64) -> String {
    match (device, name) {
        (DeviceType::Cd, "product_id") => "VIRTUAL-CDROM".into(),
        (DeviceType::Tape, "product_id") => "VIRTUAL-TAPE".into(),
        (DeviceType::Changer, "product_id") => "VIRTUAL-CHANGER".into(),
        (DeviceType::Cd | DeviceType::Tape | DeviceType::Changer, "removable") => "1".into(),
        (DeviceType::Cd, "readonly") => "1".into(),
        _ => shown_default(name, tid, lun),
    }
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
    /// A running LUN's spec leaves out what equals a disk's defaults, the file's what equals the
    /// defaults of the LUN it makes: a tape drive's product and removable bit, an RBD image's thin
    /// provisioning are no change. What the LUN is made of is re-created.
    #[test]
    fn in_place_or_made_again() {
        let tape = |params| LunSpec { device_type: DeviceType::Tape, params, ..LunSpec::disk(Some("/t".into())) };
        let shown = vec![LunParam::ProductId("VIRTUAL-TAPE".into()), LunParam::Removable(true)];
        assert_eq!(lun_diff(1, 2, &tape(shown.clone()), &tape(vec![])), LunDiff::Same);
        assert_eq!(
            lun_diff(1, 2, &tape(shown), &tape(vec![LunParam::Removable(false)])),
            LunDiff::InPlace(vec![LunParam::Removable(false)])
        );
        let rbd = |params| LunSpec {
            store: rtgt_mgmt::StoreSpec::of(StoreKind::Rbd),
            params,
            ..LunSpec::disk(Some("pool/img".into()))
        };
        assert_eq!(lun_diff(1, 1, &rbd(vec![LunParam::ThinProvisioning(true)]), &rbd(vec![])), LunDiff::Same);
        assert_eq!(lun_diff(1, 1, &rbd(vec![]), &rbd(vec![LunParam::Readonly(true)])), LunDiff::Recreate);
        let disk = LunSpec::disk(Some("/d".into()));
        let big = LunSpec { block_size: Some(4096), ..disk.clone() };
        assert_eq!(lun_diff(1, 1, &disk, &big), LunDiff::Recreate);
        // The tid and LUN make the default identifiers.
        let sn = LunSpec { params: vec![LunParam::ScsiSn("beaf37".into())], ..disk.clone() };
        assert_eq!(lun_diff(3, 7, &disk, &sn), LunDiff::Same);
        assert_eq!(lun_diff(3, 7, &sn, &disk), LunDiff::Same);
        assert_eq!(lun_diff(3, 8, &sn, &disk), LunDiff::InPlace(vec![LunParam::ScsiSn("beaf38".into())]));
    }

    /// A cd/dvd drive or a media changer made from the file shows its type's defaults (product,
    /// removable, a drive's read-only and 2048-byte blocks, an empty drive's null store): no
    /// change. A changed identity is made in place; a drive stays read-only whatever the file
    /// says; a changed library is a new changer.
    #[test]
    fn cd_and_changer_defaults_are_no_change() {
        let shown = |device, product: &str, extra: Vec<LunParam>| {
            let mut params = vec![LunParam::ProductId(product.into()), LunParam::Removable(true)];
            params.extend(extra);
            LunSpec { device_type: device, params, ..LunSpec::disk(Some("/f".into())) }
        };
        let file = |device, params| LunSpec { device_type: device, params, ..LunSpec::disk(Some("/f".into())) };
        let cd = LunSpec {
            block_size: Some(2048),
            ..shown(DeviceType::Cd, "VIRTUAL-CDROM", vec![LunParam::Readonly(true)])
        };
        assert_eq!(lun_diff(1, 1, &cd, &file(DeviceType::Cd, vec![])), LunDiff::Same);
        assert_eq!(lun_diff(1, 1, &cd, &file(DeviceType::Cd, vec![LunParam::Readonly(false)])), LunDiff::Same);
        assert_eq!(
            lun_diff(1, 1, &cd, &file(DeviceType::Cd, vec![LunParam::VendorId("X".into())])),
            LunDiff::InPlace(vec![LunParam::VendorId("X".into())])
        );
        let empty_tray = |s: &LunSpec| LunSpec {
            backing_store: None,
            store: rtgt_mgmt::StoreSpec { size: Some(0), ..rtgt_mgmt::StoreSpec::of(StoreKind::Null) },
            ..s.clone()
        };
        assert_eq!(lun_diff(1, 1, &empty_tray(&cd), &empty_tray(&file(DeviceType::Cd, vec![]))), LunDiff::Same);
        assert_eq!(lun_diff(1, 1, &empty_tray(&cd), &file(DeviceType::Cd, vec![])), LunDiff::Recreate);

        let home = |dir: &str| {
            rtgt_mgmt::ChangerParam::from_param(&Param::new("media_home", dir)).map(LunParam::Changer).unwrap()
        };
        let changer = shown(DeviceType::Changer, "VIRTUAL-CHANGER", vec![home("/tapes")]);
        assert_eq!(lun_diff(1, 3, &changer, &file(DeviceType::Changer, vec![home("/tapes")])), LunDiff::Same);
        assert_eq!(
            lun_diff(
                1,
                3,
                &changer,
                &file(DeviceType::Changer, vec![home("/tapes"), LunParam::VendorId("STK".into())])
            ),
            LunDiff::InPlace(vec![LunParam::VendorId("STK".into())])
        );
        assert_eq!(lun_diff(1, 3, &changer, &file(DeviceType::Changer, vec![home("/other")])), LunDiff::Recreate);
    }
}
