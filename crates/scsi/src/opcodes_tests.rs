//! The command tables of every device type: well formed, reachable through their index, each row
//! with a handler and usage data, and the types offering what they should and nothing more.

use super::*;
use crate::lun::DeviceType;
use crate::sense::SenseKey;

const NO_EXTRAS: Offer = Offer { thin: false, alua: false };
const THIN: Offer = Offer { thin: true, alua: false };

const TYPES: [DeviceType; 5] =
    [DeviceType::Disk, DeviceType::Controller, DeviceType::Cd, DeviceType::Changer, DeviceType::Tape];

#[test]
fn every_row_is_found_through_the_index() {
    for device in TYPES {
        for e in crate::dispatch::ops(device).commands.rows() {
            let mut cdb = e.usage.to_vec();
            cdb[1] = e.service_action.unwrap_or(0);
            match crate::dispatch::ops(device).commands.lookup(&cdb, Offer::ALL) {
                Lookup::Found(found) => assert!(std::ptr::eq(found, e), "{}", e.name),
                _ => panic!("{} not found", e.name),
            }
        }
    }
}

#[test]
fn tables_are_sorted_and_every_row_has_usage_data_and_a_handler() {
    for device in TYPES {
        let rows = crate::dispatch::ops(device).commands.rows();
        for pair in rows.windows(2) {
            let a = (pair[0].opcode, pair[0].service_action);
            let b = (pair[1].opcode, pair[1].service_action);
            assert!(a < b, "{}: {} before {}", device.name(), pair[0].name, pair[1].name);
        }
        for e in rows {
            assert!(!e.name.is_empty());
            assert_eq!(e.usage[0], e.opcode, "{}", e.name);
            assert!(matches!(e.usage.len(), 6 | 10 | 12 | 16), "{}", e.name);
            if let Some(sa) = e.service_action {
                assert_eq!(e.usage[1] & 0x1f, sa, "{}", e.name);
            }
        }
    }
}

/// Every row's handler runs on a CDB its row's decoder accepts without failing on its own decoding
/// (both come from one typed fields struct, so they agree by construction) or panicking.
#[test]
fn every_row_runs_its_own_handler() {
    use crate::test_util::{block_on, TestLun};
    let disk = TestLun::thin(1 << 20);
    let controller = TestLun::controller();
    for (t, device) in [(&disk, DeviceType::Disk), (&controller, DeviceType::Controller)] {
        for e in crate::dispatch::ops(device).commands.rows() {
            // Zero fields but the service action; or with 16 in every used field from byte 6 on,
            // so that commands refusing an allocation length below 16 (REPORT LUNS) decode too.
            let zeros = {
                let mut cdb = vec![0u8; e.usage.len()];
                cdb[0] = e.opcode;
                cdb[1] = e.service_action.unwrap_or(0);
                cdb
            };
            let mut sixteens = zeros.clone();
            let last = sixteens.len() - 1;
            for (byte, usage) in sixteens.iter_mut().zip(e.usage).take(last).skip(6) {
                *byte = 0x10 & usage;
            }
            let command = [zeros, sixteens]
                .into_iter()
                .find(|cdb| e.decode(cdb).is_ok())
                .unwrap_or_else(|| panic!("{}: no test CDB decodes", e.name));
            let mut data_in = Vec::new();
            let ctx = crate::target::Ctx { target: &t.target, nexus: &t.nexus, lun: t.lun };
            let mut req = Request {
                lu: &t.lu,
                ops: crate::dispatch::ops(t.lu.device_type()),
                ctx: &ctx,
                cdb: &command,
                data_out: &[],
                data_in: &mut data_in,
                pipe: None,
            };
            let result = match e.run {
                Run::Now(handler) => handler(&mut req),
                Run::Io(handler) => block_on(handler(&mut req)),
            };
            if let Err(crate::failure::Failure::Sense(sense)) = result {
                assert_ne!(sense.key, SenseKey::HardwareError, "{}", e.name);
            }
        }
    }
}

#[test]
fn controller_offers_only_the_shared_commands_and_the_disk_offers_them_too() {
    let disk = crate::dispatch::ops(DeviceType::Disk).commands.rows();
    let controller = crate::dispatch::ops(DeviceType::Controller).commands.rows();
    let key = |e: &OpcodeEntry| (e.opcode, e.service_action);
    for e in controller {
        // The same row (decoder and handler), not a second copy that could drift.
        let twin = disk.iter().find(|d| key(d) == key(e)).unwrap_or_else(|| panic!("disk lacks {}", e.name));
        assert_eq!((twin.name, twin.usage, twin.flags), (e.name, e.usage, e.flags));
    }
    // Nothing that needs blocks, a medium to reserve or copy is offered at LUN 0.
    for opcode in [0x08, 0x28, 0x2a, 0x16, 0x17, 0x1b, 0x1e, 0x25, 0x42, 0x48, 0x5e, 0x5f, 0x83, 0x84, 0x88, 0x9e] {
        assert!(!controller.iter().any(|e| e.opcode == opcode), "controller offers {opcode:#04x}");
        assert!(disk.iter().any(|e| e.opcode == opcode), "disk lacks {opcode:#04x}");
    }
    assert_eq!(controller.len(), 10);
}

#[test]
fn reserved_bit_is_pointed_at() {
    let Lookup::Found(e) = crate::dispatch::ops(DeviceType::Disk).commands.lookup(&[0x28], NO_EXTRAS) else { panic!() };
    // RDPROTECT = 1 (bit 5 of byte 1).
    let err = e.decode(&[0x28, 0x20, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap_err();
    assert_eq!(err, Sense::invalid_cdb_field(1, Some(5)));
    // Reserved byte 6 bits 7..5 of READ(10).
    let err = e.decode(&[0x28, 0, 0, 0, 0, 0, 0x80, 0, 1, 0]).unwrap_err();
    assert_eq!(err, Sense::invalid_cdb_field(6, Some(7)));
    // NACA.
    assert!(e.decode(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0x04]).is_err());
    // Vendor-specific control bits are ignored.
    assert!(e.decode(&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0]).is_ok());
}

#[test]
fn short_cdb_is_an_error_not_a_panic() {
    for device in TYPES {
        for e in crate::dispatch::ops(device).commands.rows() {
            for n in 1..e.usage.len() {
                assert!(e.decode(&e.usage[..n]).is_err(), "{} len {n}", e.name);
            }
        }
    }
}

#[test]
fn device_and_provisioning_filter() {
    let disk = crate::dispatch::ops(DeviceType::Disk).commands;
    let controller = crate::dispatch::ops(DeviceType::Controller).commands;
    assert!(matches!(controller.lookup(&[0x28], NO_EXTRAS), Lookup::UnknownOpcode));
    assert!(matches!(disk.lookup(&[0x42], NO_EXTRAS), Lookup::UnknownOpcode));
    assert!(matches!(disk.lookup(&[0x42], THIN), Lookup::Found(_)));
    assert!(matches!(disk.lookup(&[0x9e, 0x10], NO_EXTRAS), Lookup::Found(_)));
    assert!(matches!(disk.lookup(&[0x9e, 0x11], NO_EXTRAS), Lookup::UnknownServiceAction));
    assert!(matches!(disk.lookup(&[0x9e, 0x12], NO_EXTRAS), Lookup::UnknownServiceAction));
    assert!(matches!(disk.lookup(&[], NO_EXTRAS), Lookup::UnknownOpcode));
}
