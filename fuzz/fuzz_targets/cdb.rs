//! Arbitrary CDBs and data-out through `Target::execute`, the entry point the iSCSI and vhost
//! transports use, on a target with a controller at LUN 0 and a disk at LUN 1 backed by a 4 MiB
//! memory store that records every request made of it.
//!
//! Input: one configuration byte (bit 0 thin provisioning, bit 1 4096-byte blocks, bit 2 descriptor
//! sense, bit 3 read-only), then commands, each: a selector byte (bits 0-1 the LUN: 0, 1 or the
//! absent 5; bit 2 the second nexus), a CDB length byte (taken modulo 33), the CDB, a data-out
//! length (two bytes, big-endian) and the data-out bytes.
//!
//! Checked for every command: no panic, no wait (memory I/O completes at once, so a command that
//! waits is stuck on a lock a previous command leaked), every store request inside the store,
//! GOOD without sense and CHECK CONDITION with sense and no data.
#![no_main]

use rtgt_backstore::{Backstore, MemoryStore};
use rtgt_scsi::{LogicalUnit, LunConfig, ScsiStatus, Target};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

const STORE_SIZE: u64 = 4 << 20;

fn now<F: Future>(f: F) -> F::Output {
    match pin!(f).as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a command on a memory store waited"),
    }
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(config) = input.byte() else { return };
    let mut lun_config = LunConfig::disk(1, 1);
    lun_config.thin_provisioning = config & 1 != 0;
    lun_config.block_size = if config & 2 != 0 { 4096 } else { 512 };
    lun_config.descriptor_sense = config & 4 != 0;
    lun_config.readonly = config & 8 != 0;
    let target = Target::new(1, "iqn.2024-01.org.rtgt:fuzz".into());
    let unit =
        Arc::new(LogicalUnit::new(lun_config, Some(Backstore::Memory(MemoryStore::with_access_log(STORE_SIZE)))));
    target.add_lun(1, unit.clone()).expect("LUN 1");
    let nexuses =
        [target.add_nexus("iqn.2024-01.org.rtgt:a".into()), target.add_nexus("iqn.2024-01.org.rtgt:b".into())];
    let Some(Backstore::Memory(store)) = unit.store() else { unreachable!() };
    let mut data_in = Vec::new();
    while let Some(selector) = input.byte() {
        let lun = [0, 1, 5, 1][usize::from(selector & 3)];
        let nexus = &nexuses[usize::from(selector >> 2 & 1)];
        let cdb_len = input.byte().unwrap_or(0) % 33;
        let cdb = input.take(usize::from(cdb_len));
        let out_len = u16::from_be_bytes([input.byte().unwrap_or(0), input.byte().unwrap_or(0)]);
        let data_out = input.take(usize::from(out_len));
        data_in.clear();
        let result = now(target.execute(nexus, lun, cdb, data_out, &mut data_in));
        for access in store.take_accesses() {
            assert!(access.within(STORE_SIZE), "CDB {cdb:02x?} asked the store for {access:?}");
        }
        match result.status {
            ScsiStatus::Good => assert!(result.sense.is_none()),
            ScsiStatus::CheckCondition => {
                let sense = result.sense.as_deref().expect("CHECK CONDITION carries sense");
                assert!(matches!(sense.first().map(|b| b & 0x7f), Some(0x70 | 0x72)), "sense {sense:02x?}");
                assert!(data_in.is_empty());
            }
            _ => assert!(result.sense.is_none()),
        }
    }
    target.remove_lun(1).expect("remove LUN 1");
});
