//! tgt's logical unit parameters (`--params name=value,...` of `--mode logicalunit`) as one typed
//! enum. A name/value pair is checked once, by [`LunParam::parse`], and refused there with a message
//! naming the parameter; the daemon then works on typed values only, and writes them back as pairs
//! ([`LunParam::to_param`]) for tgt's command line and the saved configuration.

use crate::changer::{ChangerParam, ChangerParamError};
use crate::Param;
use serde::{Deserialize, Serialize};

/// One LUN parameter, its value checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LunParam {
    ThinProvisioning(bool),
    Removable(bool),
    Readonly(bool),
    Online(bool),
    /// tgt's `sense_format`: 0 fixed, 1 descriptor.
    DescriptorSense(bool),
    /// INQUIRY identity fields, printable ASCII of at most their field's width.
    VendorId(String),
    ProductId(String),
    ProductRev(String),
    ScsiId(String),
    ScsiSn(String),
    /// `page:subpage:length:byte:...` (tgt's text); its bytes are checked by the SCSI core, which
    /// knows the pages.
    ModePage(String),
    /// One change to a media changer's library (`element_type=...` or `media_home=`); a list of
    /// pairs is grouped by `parse_all`, and the pair of one group carries it whole.
    Changer(ChangerParam),
}

/// Why a LUN parameter was refused; every message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LunParamError {
    #[error("unknown logical unit parameter '{0}'")]
    Unknown(String),
    #[error("{name} must be 0 or 1, not '{value}'")]
    NotAFlag { name: &'static str, value: String },
    #[error("{name} must be at most {max} printable ASCII characters")]
    BadIdentity { name: &'static str, max: usize },
    #[error("alua_owner must be a target port group (1-65535), not '{0}'")]
    BadGroup(String),
    #[error("only capacity=reload (re-read the backing store's size) is supported")]
    CapacityNotReload,
    #[error(transparent)]
    Changer(#[from] ChangerParamError),
}

impl LunParamError {
    /// The refusal's code, as tgt would answer: a capacity change other than a reload is an
    /// operation rtgt does not do, the rest are mistakes.
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            LunParamError::CapacityNotReload => crate::ErrorCode::Unsupported,
            _ => crate::ErrorCode::InvalidRequest,
        }
    }
}

/// One change `--op update --params` asks of a LUN: a parameter set, or the capacity re-read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LunChange {
    Set(LunParam),
    /// `capacity=reload` (also spelled `reload_size=1`): re-read the backing store's size (online
    /// resize); every nexus is told CAPACITY DATA HAS CHANGED.
    ReloadCapacity,
    /// `media=PATH` or `media=none`: put another disc image in a cd/dvd LUN, or empty its tray;
    /// refused while an initiator prevents medium removal, unless forced.
    Media(Option<String>),
    /// `force=1` beside `media=`: change the disc even while an initiator prevents its removal (an
    /// operator pulling the disc out of a locked drive). `force=0` is the default.
    ForceMedia(bool),
    /// `alua_owner=GROUP`: an RBD LUN served by several gateways moves its ownership to the
    /// gateway of target port group GROUP (a clean handoff, as SET TARGET PORT GROUPS does).
    AluaOwner(u16),
}

impl LunChange {
    /// Check one `name=value` pair of `--op update`.
    pub fn parse(p: &Param) -> Result<Self, LunParamError> {
        match (p.name.as_str(), p.value.as_str()) {
            ("capacity", "reload") | ("reload_size", "1") => Ok(LunChange::ReloadCapacity),
            ("capacity", _) => Err(LunParamError::CapacityNotReload),
            ("media", "none") => Ok(LunChange::Media(None)),
            ("media", path) => Ok(LunChange::Media(Some(path.to_string()))),
            ("force", "0") => Ok(LunChange::ForceMedia(false)),
            ("force", "1") => Ok(LunChange::ForceMedia(true)),
            ("force", value) => Err(LunParamError::NotAFlag { name: "force", value: value.to_string() }),
            ("alua_owner", group) => match group.parse::<u16>() {
                Ok(g) if g != 0 => Ok(LunChange::AluaOwner(g)),
                _ => Err(LunParamError::BadGroup(group.to_string())),
            },
            _ => LunParam::parse(p).map(LunChange::Set),
        }
    }

    /// Check every pair (a changer's groups together, see `LunParam::parse_all`); the first
    /// mistake refuses them all.
    pub fn parse_all(params: &[Param]) -> Result<Vec<Self>, LunParamError> {
        let (groups, others) = ChangerParam::split(params);
        let mut out = others.into_iter().map(Self::parse).collect::<Result<Vec<_>, _>>()?;
        out.extend(changer_groups(groups)?.into_iter().map(|c| LunChange::Set(LunParam::Changer(c))));
        Ok(out)
    }

    /// The pair tgt's command line spells this change as.
    pub fn to_param(&self) -> Param {
        match self {
            LunChange::Set(p) => p.to_param(),
            LunChange::ReloadCapacity => Param::new("capacity", "reload"),
            LunChange::Media(path) => Param::new("media", path.as_deref().unwrap_or("none")),
            LunChange::ForceMedia(on) => Param::new("force", if *on { "1" } else { "0" }),
            LunChange::AluaOwner(group) => Param::new("alua_owner", group.to_string()),
        }
    }
}

impl LunParam {
    /// Check one `name=value` pair (names as tgt spells them).
    pub fn parse(p: &Param) -> Result<Self, LunParamError> {
        let flag = |name: &'static str| match p.value.as_str() {
            "0" => Ok(false),
            "1" => Ok(true),
            _ => Err(LunParamError::NotAFlag { name, value: p.value.clone() }),
        };
        let ident = |name: &'static str, max: usize| {
            if p.value.len() > max || !p.value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                return Err(LunParamError::BadIdentity { name, max });
            }
            Ok(p.value.clone())
        };
        Ok(match p.name.as_str() {
            "thin_provisioning" => LunParam::ThinProvisioning(flag("thin_provisioning")?),
            "removable" => LunParam::Removable(flag("removable")?),
            "readonly" => LunParam::Readonly(flag("readonly")?),
            "online" => LunParam::Online(flag("online")?),
            "sense_format" => LunParam::DescriptorSense(flag("sense_format")?),
            // SPC-4 6.6.2: the INQUIRY standard data's field widths.
            "vendor_id" => LunParam::VendorId(ident("vendor_id", 8)?),
            "product_id" => LunParam::ProductId(ident("product_id", 16)?),
            "product_rev" => LunParam::ProductRev(ident("product_rev", 4)?),
            "scsi_id" => LunParam::ScsiId(ident("scsi_id", 24)?),
            "scsi_sn" => LunParam::ScsiSn(ident("scsi_sn", 36)?),
            "mode_page" => LunParam::ModePage(p.value.clone()),
            // A group carried whole in one pair (see `ChangerParam::to_param`).
            "element_type" | "media_home" => LunParam::Changer(ChangerParam::from_param(p)?),
            name if crate::changer::CHANGER_KEYS.contains(&name) => {
                return Err(ChangerParamError::NoElementType(name.to_string()).into())
            }
            other => return Err(LunParamError::Unknown(other.to_string())),
        })
    }

    /// Check every pair; the first mistake refuses them all. A changer's pairs are grouped (each
    /// `element_type=` after a group's first starts the next) and come after the others, in order.
    pub fn parse_all(params: &[Param]) -> Result<Vec<Self>, LunParamError> {
        let (groups, others) = ChangerParam::split(params);
        let mut out = others.into_iter().map(Self::parse).collect::<Result<Vec<_>, _>>()?;
        out.extend(changer_groups(groups)?.into_iter().map(LunParam::Changer));
        Ok(out)
    }

    /// The pair tgt's command line (and the saved configuration) spells this parameter as.
    pub fn to_param(&self) -> Param {
        let flag = |b: bool| if b { "1" } else { "0" };
        match self {
            LunParam::ThinProvisioning(b) => Param::new("thin_provisioning", flag(*b)),
            LunParam::Removable(b) => Param::new("removable", flag(*b)),
            LunParam::Readonly(b) => Param::new("readonly", flag(*b)),
            LunParam::Online(b) => Param::new("online", flag(*b)),
            LunParam::DescriptorSense(b) => Param::new("sense_format", flag(*b)),
            LunParam::VendorId(s) => Param::new("vendor_id", s.clone()),
            LunParam::ProductId(s) => Param::new("product_id", s.clone()),
            LunParam::ProductRev(s) => Param::new("product_rev", s.clone()),
            LunParam::ScsiId(s) => Param::new("scsi_id", s.clone()),
            LunParam::ScsiSn(s) => Param::new("scsi_sn", s.clone()),
            LunParam::ModePage(s) => Param::new("mode_page", s.clone()),
            LunParam::Changer(c) => c.to_param(),
        }
    }
}

/// A changer's groups, in order; a group that is one pair carrying a whole group (as
/// `ChangerParam::to_param` makes it) is read as such.
fn changer_groups(groups: Vec<Vec<&Param>>) -> Result<Vec<ChangerParam>, LunParamError> {
    let mut out = Vec::new();
    for group in groups {
        match group.as_slice() {
            [single] => out.push(ChangerParam::from_param(single)?),
            _ => out.extend(ChangerParam::parse_group(&group)?),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, value: &str) -> Result<LunParam, String> {
        LunParam::parse(&Param::new(name, value)).map_err(|e| e.to_string())
    }

    #[test]
    fn every_parameter_round_trips() {
        for (name, value) in [
            ("thin_provisioning", "1"),
            ("removable", "0"),
            ("readonly", "1"),
            ("online", "0"),
            ("sense_format", "1"),
            ("vendor_id", "ACME"),
            ("product_id", "Disk"),
            ("product_rev", "9.1"),
            ("scsi_id", "ACME 0001"),
            ("scsi_sn", "SN42"),
            ("mode_page", "8:0:18:4"),
        ] {
            let typed = parse(name, value).unwrap();
            assert_eq!(typed.to_param(), Param::new(name, value));
        }
        assert_eq!(parse("sense_format", "1").unwrap(), LunParam::DescriptorSense(true));
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_parameter() {
        assert_eq!(parse("thin_provisioning", "yes").unwrap_err(), "thin_provisioning must be 0 or 1, not 'yes'");
        assert_eq!(
            parse("vendor_id", "NINE CHARS").unwrap_err(),
            "vendor_id must be at most 8 printable ASCII characters"
        );
        assert!(parse("product_rev", "12345").unwrap_err().starts_with("product_rev must be at most 4"));
        assert!(parse("scsi_sn", "tab\there").unwrap_err().starts_with("scsi_sn must be"));
        assert_eq!(parse("frobnicate", "1").unwrap_err(), "unknown logical unit parameter 'frobnicate'");
        let pairs = [Param::new("readonly", "1"), Param::new("online", "2")];
        assert!(LunParam::parse_all(&pairs).unwrap_err().to_string().starts_with("online must be 0 or 1"));
    }

    #[test]
    fn update_changes_are_typed() {
        let change = |name: &str, value: &str| LunChange::parse(&Param::new(name, value));
        assert_eq!(change("capacity", "reload"), Ok(LunChange::ReloadCapacity));
        assert_eq!(change("reload_size", "1"), Ok(LunChange::ReloadCapacity));
        assert_eq!(change("media", "none"), Ok(LunChange::Media(None)));
        assert_eq!(change("media", "/srv/b.iso"), Ok(LunChange::Media(Some("/srv/b.iso".into()))));
        assert_eq!(LunChange::Media(None).to_param(), Param::new("media", "none"));
        assert_eq!(change("force", "1"), Ok(LunChange::ForceMedia(true)));
        assert_eq!(LunChange::ForceMedia(true).to_param(), Param::new("force", "1"));
        assert_eq!(change("alua_owner", "2"), Ok(LunChange::AluaOwner(2)));
        assert_eq!(LunChange::AluaOwner(2).to_param(), Param::new("alua_owner", "2"));
        for bad in ["0", "65536", "x", ""] {
            assert_eq!(change("alua_owner", bad), Err(LunParamError::BadGroup(bad.into())));
        }
        assert_eq!(change("force", "yes").unwrap_err().to_string(), "force must be 0 or 1, not 'yes'");
        assert_eq!(change("readonly", "1"), Ok(LunChange::Set(LunParam::Readonly(true))));
        let grow = change("capacity", "2G").unwrap_err();
        assert_eq!(
            (grow.code(), grow.to_string().as_str()),
            (crate::ErrorCode::Unsupported, "only capacity=reload (re-read the backing store's size) is supported")
        );
        let bad = change("online", "yes").unwrap_err();
        assert_eq!(bad.code(), crate::ErrorCode::InvalidRequest);
        assert_eq!(LunChange::ReloadCapacity.to_param(), Param::new("capacity", "reload"));
    }

    #[test]
    fn changer_groups_in_a_list() {
        let pairs: Vec<Param> =
            "vendor_id=HP,element_type=1,start_address=1,quantity=1,media_home=/t,element_type=4,address=2,tid=1,lun=1"
                .split(',')
                .map(|i| i.split_once('=').map(|(n, v)| Param::new(n, v)).unwrap())
                .collect();
        let typed = LunParam::parse_all(&pairs).unwrap();
        assert_eq!(
            typed,
            [
                LunParam::VendorId("HP".into()),
                LunParam::Changer(ChangerParam::MediaHome("/t".into())),
                LunParam::Changer(ChangerParam::Layout { element_type: 1, start: 1, quantity: 1 }),
                LunParam::Changer(ChangerParam::Drive { address: 2, tid: 1, lun: 1 }),
            ]
        );
        // As pairs (sorted by name, as tgt-admin keeps them) and back.
        let mut back: Vec<Param> = typed.iter().map(LunParam::to_param).collect();
        back.sort_by(|a, b| a.name.cmp(&b.name));
        let again = LunParam::parse_all(&back).unwrap();
        assert_eq!(again.len(), 4);
        assert!(typed.iter().all(|t| again.contains(t)));
        assert_eq!(LunChange::parse_all(&pairs[1..5]).unwrap().len(), 2);
        assert_eq!(parse("barcode", "A").unwrap_err(), "'barcode' needs element_type= in the same group");
    }
}
