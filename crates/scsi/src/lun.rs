//! A logical unit: its device type, identity, parameters and backing store.
//! SKELETON.

use rtgt_backstore::Backstore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// SBC disk (peripheral device type 0x00).
    Disk,
    /// Storage array controller (0x0c): the automatic LUN 0.
    Controller,
}

impl DeviceType {
    /// The name tgt uses (`--device-type disk`, "Type: disk" / "Type: controller" in show).
    pub fn name(self) -> &'static str {
        match self {
            DeviceType::Disk => "disk",
            DeviceType::Controller => "controller",
        }
    }
}

/// What an administrator sets on a LUN (tgt's LUN parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunConfig {
    pub device_type: DeviceType,
    /// 512 or 4096.
    pub block_size: u32,
    pub vendor_id: String,
    pub product_id: String,
    pub product_rev: String,
    /// SCSI ID (device identification VPD); tgt's default is "IET     " + tid/lun based.
    pub scsi_id: String,
    /// Unit serial number (VPD 0x80).
    pub scsi_sn: String,
    pub removable: bool,
    pub readonly: bool,
    pub online: bool,
    pub thin_provisioning: bool,
    /// Descriptor-format sense (true) or fixed (false, the default).
    pub descriptor_sense: bool,
    /// Write cache enabled (WCE in the caching mode page).
    pub write_cache: bool,
}

/// What `show` reports about a LUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunInfo {
    pub config: LunConfig,
    /// Bytes.
    pub size: u64,
    /// "rdwr", "memory", "null", or "null" for the controller with no store.
    pub backing_store_type: String,
    /// The path or "None".
    pub backing_store_path: Option<String>,
    pub bsoflags: String,
}

#[derive(Debug)]
pub struct LogicalUnit {
    // ...
}

impl LogicalUnit {
    pub fn new(config: LunConfig, store: Option<Backstore>) -> Self {
        let _ = (config, store);
        todo!()
    }

    pub fn info(&self) -> LunInfo {
        todo!()
    }
}
