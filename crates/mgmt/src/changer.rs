//! tgt's media changer parameters (`--params element_type=...` of a `--device-type changer` LUN,
//! and `params` lines of targets.conf), typed. One `element_type=` group is one change to the
//! library: lay out a range of elements, put a cartridge in an element or take it out, bind a
//! drive element to a tape LUN, say cartridges have two sides; `media_home=` (alone or in any
//! group) names the directory of the cartridges' files. A `--params` list may hold several groups:
//! each `element_type=` after the first starts the next.

use crate::Param;
use serde::{Deserialize, Serialize};

/// The names a changer group is made of.
pub const CHANGER_KEYS: &[&str] = &[
    "element_type",
    "start_address",
    "quantity",
    "media_home",
    "address",
    "barcode",
    "volume_tag",
    "sides",
    "tid",
    "lun",
    "clear_slot",
    "source",
];

/// One change to a media changer's library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangerParam {
    /// `media_home=DIR`: where the cartridges' files are (absolute).
    MediaHome(String),
    /// `element_type=T,start_address=A,quantity=Q`.
    Layout { element_type: u8, start: u16, quantity: u16 },
    /// `element_type=T,address=A,barcode=B[,volume_tag=V][,sides=N][,source=S]`: the cartridge
    /// whose file is DIR/B into element A (tgt puts them in slots and mail slots; rtgt in any
    /// element, a drive's included, which is how a dump shows a loaded drive). `source` (rtgt's)
    /// keeps where it was moved from.
    Insert { element_type: u8, address: u16, barcode: String, volume_tag: Option<String>, source: Option<u16> },
    /// `element_type=T,address=A,clear_slot=1`: take the cartridge out.
    Clear { element_type: u8, address: u16 },
    /// `element_type=4,address=A,tid=T,lun=L`: element A is the drive at LUN L of target T.
    Drive { address: u16, tid: u32, lun: u64 },
    /// `element_type=1[,address=A],sides=N`: cartridges have N sides (2: MOVE MEDIUM may INVERT).
    Sides(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangerParamError {
    #[error(
        "element_type must be 1 (medium transport), 2 (storage), 3 (import/export) or 4 (data transfer), not '{0}'"
    )]
    ElementType(String),
    #[error("{name} must be a number from {min} to {max}, not '{value}'")]
    Number { name: &'static str, value: String, min: u64, max: u64 },
    #[error("'{0}' is given twice in one element_type group")]
    Twice(String),
    #[error("'{0}' needs element_type= in the same group")]
    NoElementType(String),
    #[error("media_home must be an absolute directory path, not '{0}'")]
    MediaHome(String),
    #[error("barcode '{0}' must be 1 to 32 printable characters without spaces or '/', and not '.' or '..'")]
    Barcode(String),
    #[error("element_type={0} needs start_address= and quantity= (a range of elements) or address= with barcode=, clear_slot=1, tid= and lun=, or sides=")]
    Incomplete(u8),
    #[error("{0}")]
    Conflict(&'static str),
}

fn number(pairs: &[&Param], name: &'static str, min: u64, max: u64) -> Result<Option<u64>, ChangerParamError> {
    let Some(p) = pairs.iter().find(|p| p.name == name) else { return Ok(None) };
    match p.value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ChangerParamError::Number { name, value: p.value.clone(), min, max }),
    }
}

fn text<'a>(pairs: &[&'a Param], name: &str) -> Option<&'a str> {
    pairs.iter().find(|p| p.name == name).map(|p| p.value.as_str())
}

/// A barcode names a file in the media directory: it must stay inside it and fit a volume tag.
pub fn valid_barcode(barcode: &str) -> bool {
    (1..=32).contains(&barcode.len())
        && barcode.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
        && barcode != "."
        && barcode != ".."
}

impl ChangerParam {
    /// One group's pairs (any order, each name once) into its changes: `media_home` first if
    /// given, then the group's own.
    pub fn parse_group(pairs: &[&Param]) -> Result<Vec<ChangerParam>, ChangerParamError> {
        for (i, p) in pairs.iter().enumerate() {
            if pairs[..i].iter().any(|q| q.name == p.name) {
                return Err(ChangerParamError::Twice(p.name.clone()));
            }
        }
        let mut out = Vec::new();
        if let Some(dir) = text(pairs, "media_home") {
            if !dir.starts_with('/') {
                return Err(ChangerParamError::MediaHome(dir.to_string()));
            }
            out.push(ChangerParam::MediaHome(dir.to_string()));
        }
        let Some(kind) = text(pairs, "element_type") else {
            return match pairs.iter().find(|p| p.name != "media_home") {
                Some(p) => Err(ChangerParamError::NoElementType(p.name.clone())),
                None => Ok(out),
            };
        };
        let element_type = match kind {
            "1" | "2" | "3" | "4" => kind.as_bytes()[0] - b'0',
            other => return Err(ChangerParamError::ElementType(other.to_string())),
        };
        let has = |name: &str| pairs.iter().any(|p| p.name == name);
        let start = number(pairs, "start_address", 1, 65535)?;
        let address = number(pairs, "address", 1, 65535)?.map(|n| n as u16);
        let sides = number(pairs, "sides", 1, 2)?.map(|n| n as u8);
        let op = if let Some(start) = start {
            if address.is_some() || has("barcode") || has("tid") || has("clear_slot") {
                return Err(ChangerParamError::Conflict("start_address lays out a range: address=, barcode=, tid= and clear_slot= go in a group of their own"));
            }
            let quantity = number(pairs, "quantity", 1, 65535)?.ok_or(ChangerParamError::Incomplete(element_type))?;
            ChangerParam::Layout { element_type, start: start as u16, quantity: quantity as u16 }
        } else if let Some(barcode) = text(pairs, "barcode") {
            let address = address.ok_or(ChangerParamError::Incomplete(element_type))?;
            if !valid_barcode(barcode) {
                return Err(ChangerParamError::Barcode(barcode.to_string()));
            }
            let volume_tag = text(pairs, "volume_tag").map(str::to_string);
            if volume_tag.as_deref().is_some_and(|v| !valid_barcode(v)) {
                return Err(ChangerParamError::Barcode(volume_tag.unwrap_or_default()));
            }
            let source = number(pairs, "source", 1, 65535)?.map(|n| n as u16);
            ChangerParam::Insert { element_type, address, barcode: barcode.to_string(), volume_tag, source }
        } else if has("clear_slot") {
            number(pairs, "clear_slot", 1, 1)?;
            ChangerParam::Clear { element_type, address: address.ok_or(ChangerParamError::Incomplete(element_type))? }
        } else if has("tid") || has("lun") {
            if element_type != 4 {
                return Err(ChangerParamError::Conflict("tid= and lun= bind a drive: element_type=4"));
            }
            let address = address.ok_or(ChangerParamError::Incomplete(element_type))?;
            let tid = number(pairs, "tid", 1, u64::from(u32::MAX))?.ok_or(ChangerParamError::Incomplete(4))?;
            let lun = number(pairs, "lun", 0, 0x3fff)?.unwrap_or(0);
            ChangerParam::Drive { address, tid: tid as u32, lun }
        } else if let Some(sides) = sides {
            if element_type != 1 {
                return Err(ChangerParamError::Conflict("sides= alone sets the picker's: element_type=1"));
            }
            ChangerParam::Sides(sides)
        } else {
            return Err(ChangerParamError::Incomplete(element_type));
        };
        out.push(op);
        Ok(out)
    }

    /// Split a `--params` list into its changer groups (in order) and the other pairs: a group
    /// gathers changer names until an `element_type` comes that the group already has.
    pub fn split(params: &[Param]) -> (Vec<Vec<&Param>>, Vec<&Param>) {
        let (mut groups, mut others): (Vec<Vec<&Param>>, Vec<&Param>) = (Vec::new(), Vec::new());
        let mut current: Vec<&Param> = Vec::new();
        for p in params {
            if !CHANGER_KEYS.contains(&p.name.as_str()) {
                others.push(p);
                continue;
            }
            if p.name == "element_type" && p.value.contains(',') {
                // A whole group carried in one pair (`to_param`): a group of its own.
                if !current.is_empty() {
                    groups.push(std::mem::take(&mut current));
                }
                groups.push(vec![p]);
                continue;
            }
            if p.name == "element_type" && current.iter().any(|q| q.name == "element_type") {
                groups.push(std::mem::take(&mut current));
            }
            current.push(p);
        }
        if !current.is_empty() {
            groups.push(current);
        }
        (groups, others)
    }

    /// The group as tgt's text: `element_type=2,address=1000,barcode=A00001`.
    pub fn text(&self) -> String {
        let p = self.to_param();
        format!("{}={}", p.name, p.value)
    }

    /// The group as one pair whose name is its first (`element_type`, or `media_home`) and whose
    /// value is the rest of the text, so that `name=value` is tgt's text and every place that
    /// carries pairs carries a group whole.
    pub fn to_param(&self) -> Param {
        let value = match self {
            ChangerParam::MediaHome(dir) => return Param::new("media_home", dir.clone()),
            ChangerParam::Layout { element_type, start, quantity } => {
                format!("{element_type},start_address={start},quantity={quantity}")
            }
            ChangerParam::Insert { element_type, address, barcode, volume_tag, source } => {
                let mut v = format!("{element_type},address={address},barcode={barcode}");
                if let Some(tag) = volume_tag {
                    v.push_str(&format!(",volume_tag={tag}"));
                }
                if let Some(source) = source {
                    v.push_str(&format!(",source={source}"));
                }
                v
            }
            ChangerParam::Clear { element_type, address } => format!("{element_type},address={address},clear_slot=1"),
            ChangerParam::Drive { address, tid, lun } => format!("4,address={address},tid={tid},lun={lun}"),
            ChangerParam::Sides(n) => format!("1,sides={n}"),
        };
        Param::new("element_type", value)
    }

    /// A pair as `to_param` makes it (or a bare `media_home`), back into its change.
    pub fn from_param(p: &Param) -> Result<ChangerParam, ChangerParamError> {
        let text = format!("{}={}", p.name, p.value);
        let pairs: Vec<Param> = text
            .split(',')
            .map(|item| match item.split_once('=') {
                Some((n, v)) => Param::new(n.trim(), v.trim()),
                None => Param::new(item.trim(), ""),
            })
            .collect();
        let refs: Vec<&Param> = pairs.iter().collect();
        let mut parsed = Self::parse_group(&refs)?;
        match parsed.len() {
            1 => Ok(parsed.remove(0)),
            _ => Err(ChangerParamError::Conflict("media_home goes in a parameter of its own here")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(text: &str) -> Result<Vec<ChangerParam>, String> {
        let pairs: Vec<Param> =
            text.split(',').map(|i| i.split_once('=').map(|(n, v)| Param::new(n, v)).unwrap()).collect();
        let (groups, others) = ChangerParam::split(&pairs);
        assert!(others.is_empty());
        let mut out = Vec::new();
        for g in groups {
            out.extend(ChangerParam::parse_group(&g).map_err(|e| e.to_string())?);
        }
        Ok(out)
    }

    #[test]
    fn tgt_example_lines() {
        assert_eq!(
            group("element_type=2,start_address=1000,quantity=216,media_home=/root/tapes").unwrap(),
            [
                ChangerParam::MediaHome("/root/tapes".into()),
                ChangerParam::Layout { element_type: 2, start: 1000, quantity: 216 }
            ]
        );
        assert_eq!(
            group("element_type=4,address=500,tid=1,lun=3").unwrap(),
            [ChangerParam::Drive { address: 500, tid: 1, lun: 3 }]
        );
        assert_eq!(
            group("element_type=2,address=1000,barcode=A0000001,sides=1").unwrap(),
            [ChangerParam::Insert {
                element_type: 2,
                address: 1000,
                barcode: "A0000001".into(),
                volume_tag: None,
                source: None
            }]
        );
        // Any order; several groups in one list.
        assert_eq!(
            group("address=1001,element_type=3,clear_slot=1,element_type=1,sides=2").unwrap(),
            [ChangerParam::Clear { element_type: 3, address: 1001 }, ChangerParam::Sides(2)]
        );
    }

    #[test]
    fn every_change_round_trips_through_its_pair() {
        for p in [
            ChangerParam::MediaHome("/srv/tapes".into()),
            ChangerParam::Layout { element_type: 3, start: 10, quantity: 20 },
            ChangerParam::Insert {
                element_type: 4,
                address: 500,
                barcode: "B".into(),
                volume_tag: Some("VT".into()),
                source: Some(1000),
            },
            ChangerParam::Clear { element_type: 2, address: 1000 },
            ChangerParam::Drive { address: 2, tid: 7, lun: 1 },
            ChangerParam::Sides(2),
        ] {
            assert_eq!(ChangerParam::from_param(&p.to_param()), Ok(p.clone()));
            assert_eq!(group(&p.text()).unwrap(), [p]);
        }
    }

    #[test]
    fn mistakes_are_named() {
        let err = |text| group(text).unwrap_err();
        assert!(err("element_type=5,start_address=1,quantity=1").starts_with("element_type must be 1"));
        assert_eq!(err("element_type=2,start_address=1000"), group("element_type=2").unwrap_err());
        assert!(err("element_type=2").starts_with("element_type=2 needs start_address="));
        assert_eq!(
            err("element_type=2,start_address=0,quantity=1"),
            "start_address must be a number from 1 to 65535, not '0'"
        );
        assert_eq!(
            err("element_type=2,start_address=1,quantity=70000"),
            "quantity must be a number from 1 to 65535, not '70000'"
        );
        assert!(err("element_type=2,address=1000,barcode=../x").starts_with("barcode '../x'"));
        assert!(err("element_type=2,address=1000,barcode=a/b").starts_with("barcode 'a/b'"));
        assert_eq!(err("address=1000,barcode=A"), "'address' needs element_type= in the same group");
        assert!(err("element_type=2,address=1000,tid=1,lun=1").contains("element_type=4"));
        assert!(err("element_type=4,address=500,tid=0").starts_with("tid must be"));
        assert_eq!(
            err("element_type=2,address=1,address=2,barcode=A"),
            "'address' is given twice in one element_type group"
        );
        assert!(err("media_home=tapes").starts_with("media_home must be an absolute"));
        assert!(err("element_type=2,start_address=1,quantity=1,address=5").starts_with("start_address lays out"));
    }
}
