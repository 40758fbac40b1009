//! What an administrator says about an RBD LUN: the image path `[pool/]image[@snapshot]` (tgt's
//! spelling; the pool defaults to `rbd`) and the `--bsopts` keys.
//!
//! tgt's bs_rbd knows `conf=`, `id=` and `cluster=`; rtgt adds the key (`key=` inline, base64 as
//! in a keyring, or `keyring=` a file), `namespace=`, `timeout=` (seconds, for the cluster
//! connection and every OSD and monitor operation), `cache=on|off` (librbd's cache),
//! `dispatch=inline|queued` (which thread librbd starts a request in, see `Dispatch`), and for
//! an image served by several gateways `gateway=NAME` with `tpg=N` (this gateway's name and
//! target port group, both unique among the image's gateways) and `portal=TEXT` (informational).

use super::gateway::GatewayOptions;
use crate::BackstoreError;
use std::fmt;

/// The pool used when the path names none (tgt and the rbd tool agree on it).
pub const DEFAULT_POOL: &str = "rbd";

/// Seconds before an operation against an unreachable cluster fails, when neither `timeout=` nor
/// the configuration file sets one. librbd's own default is to wait forever; an initiator's
/// command timeout is usually 30 s, so failing a little before that gives it an error to act on.
pub const DEFAULT_TIMEOUT_SECS: u32 = 20;

/// `[pool/]image[@snapshot]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePath {
    pub pool: String,
    pub image: String,
    pub snapshot: Option<String>,
}

impl ImagePath {
    pub fn parse(text: &str) -> Result<ImagePath, BackstoreError> {
        let bad = |why: &str| BackstoreError::BadOption(format!("rbd image '{text}': {why}"));
        let (rest, snapshot) = match text.split_once('@') {
            Some((_, "")) => return Err(bad("empty snapshot name")),
            Some((rest, snap)) => (rest, Some(snap.to_string())),
            None => (text, None),
        };
        let (pool, image) = match rest.split_once('/') {
            Some((pool, image)) => (pool, image),
            None => (DEFAULT_POOL, rest),
        };
        if pool.is_empty() {
            return Err(bad("empty pool name"));
        }
        if image.is_empty() || image.contains('/') {
            return Err(bad("expected [pool/]image[@snapshot]"));
        }
        if text.contains('\0') {
            return Err(bad("NUL in name"));
        }
        Ok(ImagePath { pool: pool.to_string(), image: image.to_string(), snapshot })
    }
}

impl std::fmt::Display for ImagePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.pool, self.image)?;
        if let Some(snap) = &self.snapshot {
            write!(f, "@{snap}")?;
        }
        Ok(())
    }
}

/// Where the cephx key comes from. Its `Debug` never shows an inline secret: options are
/// logged at debug level, and logs travel further than the key should.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// Whatever the configuration file says (usually a keyring beside it).
    FromConfig,
    /// The base64 secret itself.
    Inline(String),
    /// A keyring file.
    Keyring(String),
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::FromConfig => f.write_str("FromConfig"),
            Key::Inline(_) => f.write_str("Inline(********)"),
            Key::Keyring(path) => f.debug_tuple("Keyring").field(path).finish(),
        }
    }
}

/// The parsed `--bsopts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbdOptions {
    /// ceph.conf path; None means librados' default search (CEPH_CONF, /etc/ceph/ceph.conf, ...).
    pub conf: Option<String>,
    /// Client id without the `client.` prefix; None means librados' default (admin).
    pub id: Option<String>,
    /// Cluster name; None means "ceph".
    pub cluster: Option<String>,
    pub key: Key,
    pub namespace: Option<String>,
    /// Seconds; None means the configuration's value, or `DEFAULT_TIMEOUT_SECS` if it sets none.
    pub timeout: Option<u32>,
    /// Force librbd's cache on or off; None leaves it to the configuration.
    pub cache: Option<bool>,
    /// This gateway's membership when several serve the image (librbd's cache is then off).
    pub gateway: Option<GatewayOptions>,
    pub dispatch: Dispatch,
}

/// Which thread librbd starts a request in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dispatch {
    /// The submitting thread (`rbd_non_blocking_aio = false`): no hand-off to librbd's own thread,
    /// one wake-up less per command. The store keeps librados' throttles from ever blocking that
    /// thread (`in_flight`), and falls back to `Queued` where librbd's cache would block it
    /// (write-back and write-through caching wait for room in the submitting thread).
    #[default]
    Inline,
    /// librbd's own thread (its default): every request is handed over and that thread woken.
    Queued,
}

impl RbdOptions {
    /// Parse `key=value` pairs separated by ';' or ','. Values may contain '=' (base64 keys do).
    pub fn parse(text: &str) -> Result<RbdOptions, BackstoreError> {
        let mut o = RbdOptions {
            conf: None,
            id: None,
            cluster: None,
            key: Key::FromConfig,
            namespace: None,
            timeout: None,
            cache: None,
            gateway: None,
            dispatch: Dispatch::default(),
        };
        let (mut gw_name, mut tpg, mut portal) = (None, None, None);
        for opt in text.split([';', ',']).map(str::trim).filter(|o| !o.is_empty()) {
            let (name, value) =
                opt.split_once('=').ok_or_else(|| BackstoreError::BadOption(format!("'{opt}' is not key=value")))?;
            let value = value.trim();
            if value.is_empty() || value.contains('\0') {
                return Err(BackstoreError::BadOption(format!("rbd option {name} needs a value")));
            }
            match name.trim() {
                "conf" => o.conf = Some(value.into()),
                // tgt accepts both the bare id and the full name.
                "id" => o.id = Some(value.strip_prefix("client.").unwrap_or(value).into()),
                "cluster" => o.cluster = Some(value.into()),
                "key" => o.key = Key::Inline(value.into()),
                "keyring" | "keyfile" => o.key = Key::Keyring(value.into()),
                "namespace" => o.namespace = Some(value.into()),
                "timeout" => {
                    o.timeout =
                        Some(
                            value.parse().ok().filter(|&t| t > 0).ok_or_else(|| {
                                BackstoreError::BadOption(format!("timeout '{value}' is not seconds"))
                            })?,
                        )
                }
                "cache" => {
                    o.cache = Some(match value {
                        "on" | "1" | "true" | "yes" => true,
                        "off" | "0" | "false" | "no" => false,
                        _ => return Err(BackstoreError::BadOption(format!("cache '{value}' is not on or off"))),
                    })
                }
                "dispatch" => {
                    o.dispatch = match value {
                        "inline" => Dispatch::Inline,
                        "queued" => Dispatch::Queued,
                        _ => {
                            return Err(BackstoreError::BadOption(format!(
                                "dispatch '{value}' is not inline or queued"
                            )))
                        }
                    }
                }
                "gateway" => {
                    GatewayOptions::check_name(value)?;
                    gw_name = Some(value.to_string());
                }
                "tpg" => {
                    tpg = Some(value.parse::<u16>().ok().filter(|&t| t > 0).ok_or_else(|| {
                        BackstoreError::BadOption(format!("tpg '{value}' is not a target port group (1-65535)"))
                    })?)
                }
                "portal" => portal = Some(value.to_string()),
                other => return Err(BackstoreError::BadOption(format!("unknown rbd option '{other}'"))),
            }
        }
        o.gateway = match (gw_name, tpg) {
            (Some(name), Some(tpg)) => Some(GatewayOptions { name, tpg, portal: portal.unwrap_or_default() }),
            (None, None) if portal.is_none() => None,
            _ => return Err(BackstoreError::BadOption("gateway=, tpg= (and portal=) go together".into())),
        };
        if o.gateway.is_some() {
            // Several gateways write the image: none may acknowledge a write only its own cache
            // holds (the next owner would not see it).
            if o.cache == Some(true) {
                return Err(BackstoreError::BadOption("cache=on: a gateway of several keeps no write cache".into()));
            }
            o.cache = Some(false);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_paths() {
        let p = ImagePath::parse("test").unwrap();
        assert_eq!((p.pool.as_str(), p.image.as_str(), p.snapshot), ("rbd", "test", None));
        let p = ImagePath::parse("pool1/disk@snap1").unwrap();
        assert_eq!((p.pool.as_str(), p.image.as_str(), p.snapshot.as_deref()), ("pool1", "disk", Some("snap1")));
        assert_eq!(p.to_string(), "pool1/disk@snap1");
        for bad in ["", "/x", "p/", "p/a/b", "img@", "a\0b"] {
            assert!(ImagePath::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bsopts() {
        let o = RbdOptions::parse("conf=/etc/ceph/ceph.conf;id=client.admin,cluster=ceph;key=AQBx+w==").unwrap();
        assert_eq!(o.conf.as_deref(), Some("/etc/ceph/ceph.conf"));
        assert_eq!(o.id.as_deref(), Some("admin"));
        assert_eq!(o.cluster.as_deref(), Some("ceph"));
        assert_eq!(o.key, Key::Inline("AQBx+w==".into()));
        assert!(!format!("{o:?}").contains("AQBx"), "the inline key shows in {o:?}");
        let o = RbdOptions::parse("keyring=/k;timeout=5;cache=off").unwrap();
        assert_eq!((o.key, o.timeout, o.cache), (Key::Keyring("/k".into()), Some(5), Some(false)));
        assert_eq!(o.dispatch, Dispatch::Inline);
        assert_eq!(RbdOptions::parse("dispatch=queued").unwrap().dispatch, Dispatch::Queued);
        assert_eq!(RbdOptions::parse("dispatch=inline").unwrap().dispatch, Dispatch::Inline);
        assert_eq!(RbdOptions::parse("").unwrap().key, Key::FromConfig);
        for bad in ["colour=blue", "conf", "id=", "timeout=0", "timeout=x", "cache=maybe", "dispatch=later"] {
            assert!(RbdOptions::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(RbdOptions::parse("conf=/c").unwrap().gateway, None);
    }

    #[test]
    fn gateway_options_turn_the_cache_off() {
        let o = RbdOptions::parse("conf=/c;gateway=gw-a;tpg=2;portal=127.0.0.1:3260").unwrap();
        let g = o.gateway.unwrap();
        assert_eq!((g.name.as_str(), g.tpg, g.portal.as_str()), ("gw-a", 2, "127.0.0.1:3260"));
        assert_eq!(o.cache, Some(false));
        assert_eq!(RbdOptions::parse("gateway=b;tpg=7;cache=off").unwrap().gateway.unwrap().tpg, 7);
        for bad in ["gateway=a", "tpg=1", "portal=x", "gateway=a;tpg=0", "gateway=a;tpg=70000", "gateway=a b;tpg=1"] {
            assert!(RbdOptions::parse(bad).is_err(), "{bad:?}");
        }
        assert!(RbdOptions::parse("gateway=a;tpg=1;cache=on").is_err());
    }
}
