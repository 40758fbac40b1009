//! What an administrator sets on a logical unit (tgt's LUN parameters), what `show` reports about
//! it, and what a change of them alters for initiators: plain values, kept apart from the unit's
//! live state in `lun.rs`.

use crate::device_type::DeviceType;

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
    /// Administrator's mode pages (`mode_page=`), reported by MODE SENSE.
    pub mode_pages: Vec<crate::ModePageSpec>,
}

impl LunConfig {
    /// A disk with tgt's defaults for LUN `lun` of target `tid`: vendor "IET", product
    /// "VIRTUAL-DISK", revision "0001", SCSI ID "IET     " + tid (4 hex digits) + lun (4 hex digits),
    /// serial "beaf" + tid + lun (decimal), 512-byte blocks, write cache on.
    pub fn disk(tid: u32, lun: u64) -> Self {
        LunConfig {
            device_type: DeviceType::Disk,
            block_size: 512,
            vendor_id: "IET".into(),
            product_id: "VIRTUAL-DISK".into(),
            product_rev: "0001".into(),
            scsi_id: format!("IET     {tid:04x}{lun:04x}"),
            scsi_sn: format!("beaf{tid}{lun}"),
            removable: false,
            readonly: false,
            online: true,
            thin_provisioning: false,
            descriptor_sense: false,
            write_cache: true,
            mode_pages: Vec::new(),
        }
    }

    /// The storage array controller tgt puts at LUN 0 (product "Controller", block size 1 as tgt
    /// shows it).
    pub fn controller(tid: u32, lun: u64) -> Self {
        LunConfig {
            device_type: DeviceType::Controller,
            block_size: 1,
            product_id: "Controller".into(),
            ..LunConfig::disk(tid, lun)
        }
    }

    /// A tape drive (`--device-type tape`): removable (RMB), product "VIRTUAL-TAPE", block size
    /// 1 as tgt shows it (the drive's block length is a mode parameter, variable at first).
    pub fn tape(tid: u32, lun: u64) -> Self {
        LunConfig {
            device_type: DeviceType::Tape,
            block_size: 1,
            product_id: "VIRTUAL-TAPE".into(),
            removable: true,
            ..LunConfig::disk(tid, lun)
        }
    }

    /// A CD/DVD drive (`--device-type cd`): 2048-byte blocks, removable (RMB), read-only, product
    /// "VIRTUAL-CDROM".
    pub fn cd(tid: u32, lun: u64) -> Self {
        LunConfig {
            device_type: DeviceType::Cd,
            block_size: crate::mmc::state::BLOCK_SIZE,
            product_id: "VIRTUAL-CDROM".into(),
            removable: true,
            readonly: true,
            write_cache: false,
            ..LunConfig::disk(tid, lun)
        }
    }
}

impl LunConfig {
    /// A media changer (`--device-type changer`): removable (RMB), product "VIRTUAL-CHANGER" as
    /// tgt names it, block size 1 as tgt shows it.
    pub fn changer(tid: u32, lun: u64) -> Self {
        LunConfig {
            device_type: DeviceType::Changer,
            block_size: 1,
            product_id: "VIRTUAL-CHANGER".into(),
            removable: true,
            write_cache: false,
            ..LunConfig::disk(tid, lun)
        }
    }
}

/// What `show` reports about a LUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LunInfo {
    /// The configuration with the current values of what commands can change (online, readonly,
    /// write_cache, descriptor_sense).
    pub config: LunConfig,
    /// Bytes.
    pub size: u64,
    /// "rdwr", "memory", "null", or "null" for the controller with no store.
    pub backing_store_type: String,
    /// The path or "None".
    pub backing_store_path: Option<String>,
    pub bsoflags: String,
    /// Some I_T nexus has PREVENT ALLOW MEDIUM REMOVAL in effect ("Prevent removal").
    pub prevent_removal: bool,
    /// Software write protect from the control mode page ("SWP").
    pub swp: bool,
    /// The backing store's fault-injection rules, in `fault=` syntax (a testing aid).
    pub faults: Vec<String>,
    /// A media changer's library as the changes that build it again (empty for other types).
    pub library: Vec<crate::smc::LibraryChange>,
}

/// What an administrator's change altered of the data initiators read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reconfigured {
    /// The standard INQUIRY data or a VPD page.
    pub inquiry_data: bool,
    /// A mode page's current or default values, or the WP bit of the mode parameter header.
    pub mode_parameters: bool,
}

impl Reconfigured {
    /// What differs between two configurations of one unit, as INQUIRY and MODE SENSE show them.
    /// The caller adds what the unit's live state shows (its current mode values, WP).
    pub(crate) fn between(before: &LunConfig, after: &LunConfig) -> Self {
        let inquiry_data = before.vendor_id != after.vendor_id
            || before.product_id != after.product_id
            || before.product_rev != after.product_rev
            || before.scsi_id != after.scsi_id
            || before.scsi_sn != after.scsi_sn
            || before.removable != after.removable
            // The Block Limits and Logical Block Provisioning VPD pages (SBC-4 6.6.4, 6.6.6).
            || before.thin_provisioning != after.thin_provisioning;
        // The configuration's write cache and sense format are MODE SENSE's default values.
        let mode_parameters = before.mode_pages != after.mode_pages
            || before.write_cache != after.write_cache
            || before.descriptor_sense != after.descriptor_sense;
        Reconfigured { inquiry_data, mode_parameters }
    }

    /// Nothing an initiator reads changed.
    pub fn is_empty(&self) -> bool {
        !self.inquiry_data && !self.mode_parameters
    }
}
