//! Saved LUNs from before LUN specs were typed. Such a file kept tgt's strings (`"bstype": "null"`,
//! `"bsopts": "size=1048576"`, `"bsoflags": "sync"`, `"params": [{"name": "readonly", "value":
//! "1"}]`); they are parsed here, once, when the file is read, into the typed spec the daemon
//! saves from then on. The next save writes the typed form, so this path only ever runs on a file
//! an older rtgt wrote.

use rtgt_mgmt::{DeviceType, LunParam, LunSpec, Param, StoreSpec};
use serde::{Deserialize, Deserializer};

/// A saved spec in either form: the old one is told apart by its `bsopts` and `bsoflags`, which
/// an old daemon always wrote and the typed form never has.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnySpec {
    Strings(StringSpec),
    Typed(LunSpec),
}

/// The old, untyped spec, field for field.
#[derive(Deserialize)]
struct StringSpec {
    device_type: DeviceType,
    #[serde(default)]
    backing_store: Option<String>,
    #[serde(default)]
    bstype: Option<String>,
    bsopts: String,
    bsoflags: String,
    #[serde(default)]
    block_size: Option<u32>,
    #[serde(default)]
    params: Vec<Param>,
}

impl StringSpec {
    fn typed(self) -> Result<LunSpec, String> {
        let store =
            StoreSpec::parse(self.bstype.as_deref(), &self.bsopts, &self.bsoflags).map_err(|e| e.to_string())?;
        let params = LunParam::parse_all(&self.params).map_err(|e| e.to_string())?;
        Ok(LunSpec {
            device_type: self.device_type,
            backing_store: self.backing_store,
            store,
            block_size: self.block_size,
            params,
        })
    }
}

/// `deserialize_with` for `SavedLun::spec`.
pub(crate) fn lun_spec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<LunSpec, D::Error> {
    match AnySpec::deserialize(deserializer)? {
        AnySpec::Typed(spec) => Ok(spec),
        AnySpec::Strings(old) => old.typed().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::RunningConfig;
    use rtgt_mgmt::{LunParam, StoreFlags, StoreKind};

    /// A configuration exactly as the daemon saved it before LUN specs were typed: a null store
    /// sized by `bsopts`, a file opened sync with parameters, and a vhost LUN.
    const OLD_FILE: &str = r#"{
        "version": 1,
        "targets": [{"tid": 1, "name": "iqn.x:t1", "luns": [
            {"lun": 1, "spec": {"device_type": "disk", "backing_store": null, "bstype": "null",
                "bsopts": "size=1048576", "bsoflags": "", "block_size": 4096, "params": []}},
            {"lun": 2, "spec": {"device_type": "disk", "backing_store": "/srv/d.img", "bstype": "rdwr",
                "bsopts": "", "bsoflags": "sync", "block_size": 512,
                "params": [{"name": "readonly", "value": "1"}, {"name": "vendor_id", "value": "ACME"}]}}
        ]}],
        "vhost": [{"tid": 7, "socket": "/run/vm.sock", "luns": [
            {"lun": 1, "spec": {"device_type": "disk", "backing_store": null, "bstype": "memory",
                "bsopts": "size=2M", "bsoflags": "", "block_size": null, "params": []}}
        ]}]
    }"#;

    #[test]
    fn an_old_string_file_loads_typed() {
        let config: RunningConfig = serde_json::from_str(OLD_FILE).unwrap();
        let luns = &config.targets[0].luns;
        let null = &luns[0].spec.store;
        assert_eq!((null.kind, null.size, null.flags), (Some(StoreKind::Null), Some(1 << 20), StoreFlags::default()));
        assert_eq!(luns[0].spec.block_size, Some(4096));
        let file = &luns[1].spec;
        assert_eq!(file.backing_store.as_deref(), Some("/srv/d.img"));
        assert_eq!((file.store.kind, file.store.size), (Some(StoreKind::Rdwr), None));
        assert_eq!(file.store.flags, StoreFlags { sync: true, direct: false });
        assert_eq!(file.params, [LunParam::Readonly(true), LunParam::VendorId("ACME".into())]);
        let vhost = &config.vhost[0].luns[0].spec.store;
        assert_eq!((vhost.kind, vhost.size), (Some(StoreKind::Memory), Some(2 << 20)));

        // Saved again, it is typed (no `size=` string left to parse), and reads back the same.
        let json = serde_json::to_string(&config).unwrap();
        assert!(!json.contains("bsopts") && !json.contains("size=1048576"), "{json}");
        assert_eq!(serde_json::from_str::<RunningConfig>(&json).unwrap(), config);
    }

    #[test]
    fn a_bad_old_value_names_its_option() {
        let bad = OLD_FILE.replace("size=2M", "size=2Q");
        let err = serde_json::from_str::<RunningConfig>(&bad).unwrap_err().to_string();
        assert!(err.contains("--bsopts: size must be"), "{err}");
    }
}
