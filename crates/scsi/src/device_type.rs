//! The device types as a unit knows them: which one it is and the fixed facts of each (names,
//! peripheral type, version descriptors, whether it has a medium). A leaf: what a type does (its
//! table, mode pages, state) is its `opcodes::DeviceOps`, found by `dispatch` above the tables.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// SBC disk (peripheral device type 0x00).
    Disk,
    /// Storage array controller (0x0c): the automatic LUN 0.
    Controller,
    /// MMC CD/DVD drive (0x05) serving a disc image read-only, with a tray (`mmc/`).
    Cd,
    /// SMC media changer (0x08): the robot of a tape library (`smc/`).
    Changer,
    /// SSC tape drive (0x01) on a tape image file in tgt's format (`ssc/`).
    Tape,
}

impl DeviceType {
    /// The name tgt uses (`--device-type disk`, "Type: disk" / "Type: controller" in show).
    pub fn name(self) -> &'static str {
        match self {
            DeviceType::Disk => "disk",
            DeviceType::Controller => "controller",
            DeviceType::Cd => "cd",
            DeviceType::Changer => "changer",
            DeviceType::Tape => "tape",
        }
    }

    /// SPC-4 6.6.2 PERIPHERAL DEVICE TYPE.
    pub fn peripheral_type(self) -> u8 {
        match self {
            DeviceType::Disk => 0x00,
            DeviceType::Controller => 0x0c,
            DeviceType::Cd => 0x05,
            DeviceType::Changer => 0x08,
            DeviceType::Tape => 0x01,
        }
    }

    /// SPC-4 7.5 version descriptors of the standard INQUIRY data: SAM-5, SPC-4 and the type's
    /// command set (no version claimed).
    pub(crate) fn version_descriptors(self) -> &'static [u16] {
        match self {
            // SBC-3.
            DeviceType::Disk => &[0x00a0, 0x0460, 0x04c0],
            // SCC-2.
            DeviceType::Controller => &[0x00a0, 0x0460, 0x01e0],
            // MMC-6.
            DeviceType::Cd => &[0x00a0, 0x0460, 0x04e0],
            // SMC-3.
            DeviceType::Changer => &[0x00a0, 0x0460, 0x0480],
            // SSC, as tgt claims it.
            DeviceType::Tape => &[0x00a0, 0x0460, 0x0200],
        }
    }

    /// Whether the shared path checks the unit's store for commands flagged MEDIUM (NOT READY when
    /// it is offline); the controller has none, and the CD/DVD and tape drives check their own
    /// medium (`mmc::admit`, `ssc::admit`), which changes under them.
    pub(crate) fn has_medium(self) -> bool {
        self == DeviceType::Disk
    }
}
