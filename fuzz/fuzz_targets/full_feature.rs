//! A whole connection: a fixed login to a target with a 4 MiB memory disk, then the input as the
//! initiator's full feature byte stream; see rtgt_iscsi::fuzzing::full_feature.
#![no_main]

use rtgt_backstore::{Backstore, MemoryStore};
use rtgt_iscsi::{AclRule, IscsiTarget, Registry};
use rtgt_scsi::{LogicalUnit, LunConfig};
use std::sync::{Arc, OnceLock};

const TARGET: &str = "iqn.2024-01.org.rtgt:fuzz-session";

fn registry() -> &'static Arc<Registry> {
    static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Registry::new();
        let scsi = rtgt_scsi::Target::new(1, TARGET.into());
        let mut config = LunConfig::disk(1, 1);
        config.thin_provisioning = true;
        let store = Backstore::Memory(MemoryStore::new(4 << 20));
        scsi.add_lun(1, Arc::new(LogicalUnit::new(config, Some(store)))).expect("LUN 1");
        let target = IscsiTarget::new(scsi);
        registry.add_target(target.clone()).expect("target");
        target.bind(AclRule::Any).expect("bind");
        registry
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rtgt_iscsi::fuzzing::full_feature(registry(), TARGET, data);
});
