//! Which backing store a LUN lives on, typed: tgt's `--bstype`, `--bsopts` and `--bsoflags`
//! checked once, by [`StoreSpec::parse`], where they are read (tgtadm, tgt-admin; the daemon for an
//! old saved file), and refused there with a message naming the option. The daemon, the wire and
//! the saved configuration then carry typed values only; [`StoreSpec::bstype`], [`StoreSpec::bsopts`]
//! and [`StoreSpec::bsoflags`] write tgt's spelling back for tgt-admin and the audit log.
//!
//! What only the daemon can judge stays the daemon's: whether this build has an engine (rbd is a
//! cargo feature), a `fault=` rule's grammar (the backing store's testing aid), and an RBD image's
//! connection options (librbd's grammar), which are carried as the text given.

use crate::request::masked_bsopts;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The storage engines, as `--bstype` names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// A file or block device through pread/pwrite (tgt's default).
    #[default]
    Rdwr,
    /// A file or block device through io_uring.
    Aio,
    Memory,
    Null,
    /// A Ceph RBD image (the daemon needs the `rbd` feature).
    Rbd,
    /// A tape image in tgt's format (tgt's store for `--device-type tape`).
    Ssc,
}

impl StoreKind {
    /// The name `show` and tgt-admin print.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Rdwr => "rdwr",
            StoreKind::Aio => "aio",
            StoreKind::Memory => "memory",
            StoreKind::Null => "null",
            StoreKind::Rbd => "rbd",
            StoreKind::Ssc => "ssc",
        }
    }
}

impl FromStr for StoreKind {
    type Err = StoreSpecError;
    /// tgt's names, and rtgt's aliases (file, io_uring, mem).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rdwr" | "file" => Ok(StoreKind::Rdwr),
            "aio" | "io_uring" => Ok(StoreKind::Aio),
            "memory" | "mem" => Ok(StoreKind::Memory),
            "null" => Ok(StoreKind::Null),
            "rbd" => Ok(StoreKind::Rbd),
            "ssc" => Ok(StoreKind::Ssc),
            other => Err(StoreSpecError::UnknownKind(other.to_string())),
        }
    }
}

/// `--bsoflags`: how a file is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreFlags {
    /// O_SYNC: every write is durable when it completes.
    #[serde(default)]
    pub sync: bool,
    /// O_DIRECT: no page cache.
    #[serde(default)]
    pub direct: bool,
}

impl StoreFlags {
    /// `sync`, `direct`, `sync:direct` (':' or ',' between flags).
    pub fn parse(text: &str) -> Result<Self, StoreSpecError> {
        let mut flags = StoreFlags::default();
        for flag in text.split([':', ',']).map(str::trim).filter(|f| !f.is_empty()) {
            match flag {
                "sync" => flags.sync = true,
                "direct" => flags.direct = true,
                other => return Err(StoreSpecError::UnknownFlag(other.to_string())),
            }
        }
        Ok(flags)
    }

    /// tgt's spelling: "", "sync", "direct" or "sync:direct".
    pub fn text(self) -> String {
        let names = [(self.sync, "sync"), (self.direct, "direct")];
        names.iter().filter(|(on, _)| *on).map(|(_, name)| *name).collect::<Vec<_>>().join(":")
    }

    pub fn is_empty(self) -> bool {
        !self.sync && !self.direct
    }
}

/// Everything `--bstype`, `--bsopts` and `--bsoflags` say, checked. `Debug` masks an inline RBD
/// key, so that logging a request never writes one.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSpec {
    /// `--bstype`; None means the device type's default (rdwr for disks), as tgt-admin leaves it.
    #[serde(default)]
    pub kind: Option<StoreKind>,
    /// `--bsopts size=`: the capacity of a store without a file (memory, null), in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub flags: StoreFlags,
    /// `--bsopts fault=RULE` (repeatable): fault injection, a testing aid. The rules' grammar is the
    /// backing store's; the daemon checks them, and never saves them.
    #[serde(default)]
    pub faults: Vec<String>,
    /// An RBD image's connection options (`conf=`, `id=`, `key=`, ...), as given: librbd's grammar,
    /// checked by the rbd store.
    #[serde(default)]
    pub rbd_options: String,
}

/// Why `--bstype`, `--bsopts` or `--bsoflags` was refused; every message names the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreSpecError {
    #[error("--bstype: unknown backing store type '{0}'")]
    UnknownKind(String),
    #[error("--bsopts: '{0}' is not key=value")]
    NotKeyValue(String),
    #[error("--bsopts: unknown option '{0}'")]
    UnknownOption(String),
    #[error("--bsopts: size must be a number of bytes with an optional k, M, G or T suffix, not '{0}'")]
    BadSize(String),
    #[error("--bsoflags: unknown flag '{0}' (sync, direct)")]
    UnknownFlag(String),
}

impl StoreSpec {
    /// A store of `kind` with nothing else said.
    pub fn of(kind: StoreKind) -> Self {
        StoreSpec { kind: Some(kind), ..StoreSpec::default() }
    }

    /// Check tgt's three options at once (`bsopts` is read in the light of the engine: an RBD
    /// image takes connection options, the others `size=`).
    pub fn parse(bstype: Option<&str>, bsopts: &str, bsoflags: &str) -> Result<Self, StoreSpecError> {
        let kind = bstype.map(str::parse::<StoreKind>).transpose()?;
        let mut spec = StoreSpec { kind, flags: StoreFlags::parse(bsoflags)?, ..StoreSpec::default() };
        let mut rbd = Vec::new();
        for opt in bsopts.split([';', ',']).map(str::trim).filter(|o| !o.is_empty()) {
            if let Some(rule) = opt.strip_prefix("fault=") {
                spec.faults.push(rule.to_string());
            } else if kind == Some(StoreKind::Rbd) {
                rbd.push(opt);
            } else {
                let (key, value) = opt.split_once('=').ok_or_else(|| StoreSpecError::NotKeyValue(opt.to_string()))?;
                match key {
                    "size" => spec.size = Some(parse_size(value)?),
                    other => return Err(StoreSpecError::UnknownOption(other.to_string())),
                }
            }
        }
        spec.rbd_options = rbd.join(";");
        Ok(spec)
    }

    /// The engine, the device type's default (rdwr) when none was named.
    pub fn kind_or_default(&self) -> StoreKind {
        self.kind.unwrap_or_default()
    }

    /// tgt's `--bstype`, if one was named.
    pub fn bstype(&self) -> Option<&'static str> {
        self.kind.map(StoreKind::name)
    }

    /// tgt's `--bsopts` spelling of these options (`size=`, the RBD options, then `fault=` rules).
    pub fn bsopts(&self) -> String {
        let mut opts = Vec::new();
        if let Some(size) = self.size {
            opts.push(format!("size={size}"));
        }
        if !self.rbd_options.is_empty() {
            opts.push(self.rbd_options.clone());
        }
        opts.extend(self.faults.iter().map(|rule| format!("fault={rule}")));
        opts.join(";")
    }

    /// tgt's `--bsoflags` spelling.
    pub fn bsoflags(&self) -> String {
        self.flags.text()
    }
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreSpec")
            .field("kind", &self.kind)
            .field("size", &self.size)
            .field("flags", &self.flags)
            .field("faults", &self.faults)
            .field("rbd_options", &masked_bsopts(&self.rbd_options))
            .finish()
    }
}

/// Parse `1G`, `512M`, `4096`, `64k` (binary multiples), as `--bsopts size=` takes it.
pub fn parse_size(text: &str) -> Result<u64, StoreSpecError> {
    let bad = || StoreSpecError::BadSize(text.to_string());
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => return Err(bad()),
            };
            (&t[..i], shift)
        }
        _ => (t, 0),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(bstype: Option<&str>, bsopts: &str, bsoflags: &str) -> String {
        StoreSpec::parse(bstype, bsopts, bsoflags).unwrap_err().to_string()
    }

    #[test]
    fn every_option_is_typed_and_written_back() {
        let spec = StoreSpec::parse(Some("mem"), "size=1G; fault=read:eio:lba=2", "sync:direct").unwrap();
        assert_eq!(spec.kind, Some(StoreKind::Memory));
        assert_eq!(spec.size, Some(1 << 30));
        assert_eq!(spec.flags, StoreFlags { sync: true, direct: true });
        assert_eq!(spec.faults, ["read:eio:lba=2"]);
        assert_eq!(
            (spec.bstype(), spec.bsopts(), spec.bsoflags()),
            (Some("memory"), "size=1073741824;fault=read:eio:lba=2".into(), "sync:direct".into())
        );
        let round = StoreSpec::parse(spec.bstype(), &spec.bsopts(), &spec.bsoflags()).unwrap();
        assert_eq!(round, spec);

        let plain = StoreSpec::parse(None, "", "").unwrap();
        assert_eq!(
            (plain.kind_or_default(), plain.bstype(), plain.bsopts(), plain.bsoflags()),
            (StoreKind::Rdwr, None, String::new(), String::new())
        );
        assert_eq!(StoreSpec::parse(None, "", "direct,").unwrap().flags, StoreFlags { sync: false, direct: true });
        for (name, kind) in [
            ("rdwr", StoreKind::Rdwr),
            ("file", StoreKind::Rdwr),
            ("aio", StoreKind::Aio),
            ("io_uring", StoreKind::Aio),
            ("null", StoreKind::Null),
            ("rbd", StoreKind::Rbd),
        ] {
            assert_eq!(name.parse::<StoreKind>().unwrap(), kind);
        }
    }

    #[test]
    fn rbd_connection_options_pass_through_and_stay_out_of_logs() {
        let spec =
            StoreSpec::parse(Some("rbd"), "conf=/etc/ceph/ceph.conf;id=admin,key=AQSECRET==;fault=write:eio", "")
                .unwrap();
        assert_eq!(spec.rbd_options, "conf=/etc/ceph/ceph.conf;id=admin;key=AQSECRET==");
        assert_eq!((spec.size, spec.faults.len()), (None, 1));
        let text = format!("{spec:?}");
        assert!(!text.contains("AQSECRET") && text.contains("id=admin"), "{text}");
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_option() {
        assert_eq!(refusal(Some("frob"), "", ""), "--bstype: unknown backing store type 'frob'");
        assert_eq!(refusal(Some("memory"), "colour=blue", ""), "--bsopts: unknown option 'colour'");
        assert_eq!(refusal(None, "size", ""), "--bsopts: 'size' is not key=value");
        assert!(refusal(Some("null"), "size=1X", "").starts_with("--bsopts: size must be a number of bytes"));
        assert!(refusal(Some("null"), "size=99999999999T", "").contains("'99999999999T'"));
        assert!(refusal(Some("null"), "size=", "").starts_with("--bsopts: size must be"));
        assert_eq!(refusal(None, "", "dsync"), "--bsoflags: unknown flag 'dsync' (sync, direct)");
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64k").unwrap(), 65536);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert!(parse_size("1X").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
