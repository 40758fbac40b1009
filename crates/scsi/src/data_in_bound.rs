//! How much data-in a command can make the core hold, known from its CDB before it runs, so that
//! a transport can wait for room in its memory budget before the buffer is allocated and filled.
//!
//! Only the reads size their data-in from the CDB: READ(6/10/12/16) of a disk or a disc, READ CD,
//! and a tape's READ(6). READ CD transfers what its main channel selection asks for (MMC-6 6.17):
//! the disc's drive returns user data only, so a READ CD that does not select the user data
//! (nothing selected, or the sub-header, which a Mode 1 sector lacks) transfers nothing, and one it
//! refuses (another sector type, SYNC, headers, EDC/ECC, C2, sub-channel) transfers nothing either.
//! Every other command builds its data-in from the unit's own state (inquiry and mode pages,
//! reports, descriptors clamped to a fixed count) and cuts it to the allocation length, so what it
//! holds does not grow with what the CDB asks for: those count as 0 here. The bound ignores any
//! expected transfer length of the transport: the core reads what the CDB asks for and the
//! transport sends less (a residual overflow, SAM-5 5.4.3), so the buffer is the CDB's size
//! whatever the initiator expects.
//!
//! Commands larger than the MAXIMUM TRANSFER LENGTH are refused before any buffer is allocated,
//! so no bound exceeds `MAX_TRANSFER_BYTES`.

use crate::cdb::{be16, be24, be32, Cdb};
use crate::device_type::DeviceType;
use crate::lun::MAX_TRANSFER_BYTES;
use crate::mmc::read_cd::ReadCd;
use crate::target::Target;

/// The largest logical block of any unit type that reads blocks (a 4096-byte disk; a disc's is
/// 2048), for the bound given without looking the unit up.
const LARGEST_BLOCK: u64 = 4096;

/// What a read CDB asks for, before the unit says what a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Asked {
    /// Not a read: its data-in does not grow with the CDB.
    Nothing,
    /// READ(10/12/16): this many logical blocks.
    Blocks(u64),
    /// READ CD: the user data of this many sectors (0 when it transfers nothing: see the module
    /// comment).
    ReadCd(u64),
    /// Operation code 08h: a disk's READ(6) (byte 4, 0 meaning 256 blocks) or a tape's READ(6)
    /// (FIXED, and a 24-bit TRANSFER LENGTH in bytes or in blocks).
    Read6 { disk_blocks: u64, tape_fixed: bool, tape_length: u64 },
}

fn asked(cdb: &[u8]) -> Asked {
    match (cdb.first(), cdb.len()) {
        (Some(0x28), 10..) => Asked::Blocks(u64::from(be16(cdb, 7))),
        (Some(0xa8), 12..) => Asked::Blocks(u64::from(be32(cdb, 6))),
        (Some(0x88), 16..) => Asked::Blocks(u64::from(be32(cdb, 10))),
        (Some(0xbe), 12..) => Asked::ReadCd(match ReadCd::decode(cdb) {
            Ok(read_cd) if read_cd.user_data => u64::from(read_cd.range.blocks),
            _ => 0,
        }),
        (Some(0x08), 6..) => Asked::Read6 {
            disk_blocks: if cdb[4] == 0 { 256 } else { u64::from(cdb[4]) },
            tape_fixed: cdb[1] & 0x01 != 0,
            tape_length: u64::from(be24(cdb, 2)),
        },
        _ => Asked::Nothing,
    }
}

impl Target {
    /// The most data-in bytes the command `cdb` to unit `lun` can make the core hold at once
    /// (see the module comment); 0 for a command whose data-in the CDB does not size. A bound
    /// below `cheap_below` may be given without looking the unit up (then it assumes the largest
    /// block of any unit, an overestimate): the common small read costs no lookup.
    pub fn data_in_bound(&self, lun: u64, cdb: &[u8], cheap_below: u64) -> u64 {
        let cap = u64::from(MAX_TRANSFER_BYTES);
        let any_unit = match asked(cdb) {
            Asked::Nothing => return 0,
            Asked::Blocks(n) | Asked::ReadCd(n) => n.saturating_mul(LARGEST_BLOCK),
            // A fixed-mode tape READ(6) may ask for blocks of any length: only the unit knows.
            Asked::Read6 { tape_fixed: true, .. } => cap,
            Asked::Read6 { disk_blocks, tape_length, .. } => (disk_blocks * LARGEST_BLOCK).max(tape_length),
        };
        if any_unit < cheap_below {
            return any_unit;
        }
        let Some(unit) = self.lun(lun) else {
            // Answered from no unit at all: no data-in beyond a small report.
            return 0;
        };
        let block = u64::from(unit.block_size());
        let bytes = match (asked(cdb), unit.device_type()) {
            (Asked::Blocks(n), DeviceType::Disk | DeviceType::Cd) | (Asked::ReadCd(n), DeviceType::Cd) => {
                n.saturating_mul(block)
            }
            (Asked::Read6 { disk_blocks, .. }, DeviceType::Disk) => disk_blocks * block,
            (Asked::Read6 { tape_fixed: true, tape_length, .. }, DeviceType::Tape) => tape_length.saturating_mul(block),
            (Asked::Read6 { tape_length, .. }, DeviceType::Tape) => tape_length,
            // No such read in the unit's command set: refused without data-in.
            _ => 0,
        };
        bytes.min(cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LogicalUnit, LunConfig};
    use rtgt_backstore::{Backstore, MemoryStore};
    use std::sync::Arc;

    const KIB: u64 = 1024;

    fn read10(blocks: u16) -> [u8; 10] {
        let mut c = [0u8; 10];
        c[0] = 0x28;
        c[7..9].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    fn read16(blocks: u32) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = 0x88;
        c[10..14].copy_from_slice(&blocks.to_be_bytes());
        c
    }

    fn target_with_disk(block_size: u32) -> Arc<Target> {
        let t = Target::new(1, "t".into());
        let config = LunConfig { block_size, ..LunConfig::disk(1, 1) };
        let store = Backstore::Memory(MemoryStore::new(64 << 20));
        t.add_lun(1, Arc::new(LogicalUnit::new(config, Some(store)))).unwrap();
        t
    }

    #[test]
    fn reads_are_bounded_by_their_transfer_length_and_the_unit_block() {
        let t = target_with_disk(512);
        // 2048 blocks of 512 bytes: 1 MiB, exact once the unit is looked up.
        assert_eq!(t.data_in_bound(1, &read10(2048), 256 * KIB), 1024 * KIB);
        // A 4 KiB read is answered without the unit, assuming 4096-byte blocks.
        assert_eq!(t.data_in_bound(1, &read10(8), 256 * KIB), 32 * KIB);
        // Past the MAXIMUM TRANSFER LENGTH (refused before any buffer): the cap.
        assert_eq!(t.data_in_bound(1, &read16(u32::MAX), 256 * KIB), u64::from(MAX_TRANSFER_BYTES));
        let mut read6 = [0x08, 0, 0, 0, 0, 0];
        assert_eq!(t.data_in_bound(1, &read6, 0), 256 * 512, "READ(6) length 0 is 256 blocks");
        read6[4] = 16;
        assert_eq!(t.data_in_bound(1, &read6, 0), 16 * 512);
        let t4k = target_with_disk(4096);
        assert_eq!(t4k.data_in_bound(1, &read16(16384), 0), 64 << 20);
    }

    #[test]
    fn other_commands_and_missing_units_hold_no_sized_data_in() {
        let t = target_with_disk(512);
        // INQUIRY asking for 64 KiB, REPORT LUNS asking for 4 GiB, a WRITE(10).
        assert_eq!(t.data_in_bound(1, &[0x12, 0, 0, 0xff, 0xff, 0], 0), 0);
        assert_eq!(t.data_in_bound(1, &[0xa0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0], 0), 0);
        let mut write10 = read10(2048);
        write10[0] = 0x2a;
        assert_eq!(t.data_in_bound(1, &write10, 0), 0);
        assert_eq!(t.data_in_bound(9, &read10(2048), 256 * KIB), 0, "no such LUN");
        // A truncated CDB is no read.
        assert_eq!(t.data_in_bound(1, &[0x28, 0, 0], 0), 0);
    }

    /// READ CD of `blocks` sectors: expected sector type `kind`, main channel selection `main`.
    fn read_cd(kind: u8, blocks: u32, main: u8) -> [u8; 12] {
        let n = blocks.to_be_bytes();
        [0xbe, kind << 2, 0, 0, 0, 0, n[1], n[2], n[3], main, 0, 0]
    }

    #[test]
    fn read_cd_is_bounded_by_the_user_data_it_selects() {
        let t = Target::new(1, "t".into());
        let store = Backstore::Memory(MemoryStore::new(64 << 20));
        t.add_lun(1, Arc::new(LogicalUnit::new(LunConfig::cd(1, 1), Some(store)))).unwrap();
        // User data of a Mode 1 (or any-type) sector: 2048 bytes each, with or without the
        // sub-header (which a Mode 1 sector lacks).
        assert_eq!(t.data_in_bound(1, &read_cd(0, 16, 0x10), 0), 16 * 2048);
        assert_eq!(t.data_in_bound(1, &read_cd(2, 16, 0x50), 0), 16 * 2048);
        // Nothing selected, or the sub-header only: the drive seeks and transfers nothing.
        assert_eq!(t.data_in_bound(1, &read_cd(0, 0xff_ffff, 0), 0), 0);
        assert_eq!(t.data_in_bound(1, &read_cd(0, 4096, 0x40), 256 * KIB), 0);
        // Refused without data-in: SYNC and EDC/ECC asked for, a CD-DA sector type, sub-channel data.
        assert_eq!(t.data_in_bound(1, &read_cd(0, 16, 0x98), 0), 0);
        assert_eq!(t.data_in_bound(1, &read_cd(1, 16, 0x10), 0), 0);
        let mut sub_channel = read_cd(0, 16, 0x10);
        sub_channel[10] = 1;
        assert_eq!(t.data_in_bound(1, &sub_channel, 0), 0);
        // A disk has no READ CD.
        assert_eq!(target_with_disk(512).data_in_bound(1, &read_cd(0, 16, 0x10), 0), 0);
    }
}
