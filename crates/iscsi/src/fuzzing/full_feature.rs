//! A whole connection from fuzzed bytes: a fixed login, then whatever the initiator sends in the
//! full feature phase, through the same code a TCP connection runs (`server::serve_io`), over an
//! in-memory pipe. Whatever the bytes, the connection must end when its input does, take its session
//! with it, and give back every byte of write data it held; commands may not hang.

use crate::registry::Registry;
use crate::server::serve_io;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one input may keep the connection alive after its last byte: far above what any
/// command on a memory disk takes, so running into it is a hang, and a bug.
const DEADLINE: Duration = Duration::from_secs(20);

/// A Login Request PDU (no digests): `csg` to `nsg` with the transit bit, these keys.
fn login_pdu(csg: u8, nsg: u8, keys: &[(&str, &str)]) -> Vec<u8> {
    let mut text = Vec::new();
    for (k, v) in keys {
        text.extend_from_slice(format!("{k}={v}").as_bytes());
        text.push(0);
    }
    let mut pdu = vec![0u8; 48];
    pdu[0] = 0x40 | 0x03;
    pdu[1] = 0x80 | (csg << 2) | nsg;
    pdu[5..8].copy_from_slice(&(text.len() as u32).to_be_bytes()[1..]);
    pdu[8..14].copy_from_slice(&[0x80, 0, 0, 0xf0, 0x22, 0x01]);
    pdu[16..20].copy_from_slice(&0x4c00_0000u32.to_be_bytes());
    pdu[24..28].copy_from_slice(&1u32.to_be_bytes());
    pdu.extend_from_slice(&text);
    pdu.resize(pdu.len().next_multiple_of(4), 0);
    pdu
}

/// The login the run starts with: security stage, then operational stage to full feature. `mode`
/// picks ImmediateData (bit 0), InitialR2T (bit 1), header (bit 2) and data digests (bit 3).
fn login_bytes(target: &str, mode: u8) -> Vec<u8> {
    let yes_no = |bit: u8| if mode & bit != 0 { "Yes" } else { "No" };
    let digest = |bit: u8| if mode & bit != 0 { "CRC32C" } else { "None" };
    let security = [
        ("InitiatorName", "iqn.2024-01.org.rtgt:fuzzer"),
        ("TargetName", target),
        ("SessionType", "Normal"),
        ("AuthMethod", "None"),
    ];
    let operational = [
        ("HeaderDigest", digest(4)),
        ("DataDigest", digest(8)),
        ("ImmediateData", yes_no(1)),
        ("InitialR2T", yes_no(2)),
        ("MaxRecvDataSegmentLength", "65536"),
        ("MaxBurstLength", "262144"),
        ("FirstBurstLength", "65536"),
        ("ErrorRecoveryLevel", "0"),
    ];
    [login_pdu(0, 1, &security), login_pdu(1, 3, &operational)].concat()
}

/// Log in to `target` of `registry` and send `data` (after its first byte, which picks the login's
/// options) as the full feature byte stream, then end the input; returns what the target answered.
/// Panics if the connection outlives its input, if a session is left behind, or if write data
/// stays held.
pub fn full_feature(registry: &Arc<Registry>, target: &str, data: &[u8]) -> Vec<u8> {
    let Some((&mode, stream)) = data.split_first() else { return Vec::new() };
    let input = [login_bytes(target, mode), stream.to_vec()].concat();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let answers = runtime.block_on(async {
        let (client, server) = tokio::io::duplex(256 << 10);
        let (server_rd, server_wr) = tokio::io::split(server);
        let (mut client_rd, mut client_wr) = tokio::io::split(client);
        let feed = tokio::spawn(async move {
            let _ = client_wr.write_all(&input).await;
            let _ = client_wr.shutdown().await;
        });
        // Read every answer, so that the target never waits on a full pipe.
        let drain = tokio::spawn(async move {
            let mut answers = Vec::new();
            let _ = client_rd.read_to_end(&mut answers).await;
            answers
        });
        let addr = "127.0.0.1:3260".parse().expect("an address");
        let connection = serve_io(server_rd, server_wr, addr, addr, registry.clone(), Default::default());
        tokio::time::timeout(DEADLINE, connection).await.expect("the connection outlived its input");
        let _ = tokio::time::timeout(DEADLINE, feed).await.expect("the input was never all read");
        tokio::time::timeout(DEADLINE, drain).await.expect("the answers never ended").unwrap_or_default()
    });
    drop(runtime);
    for t in registry.targets() {
        assert!(t.sessions().is_empty(), "a session outlived its only connection");
    }
    assert_eq!(registry.session_count(), 0, "a session slot was not given back");
    assert_eq!(registry.write_data_held(), 0, "write data stays held after the connection ended");
    answers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::IscsiTarget;
    use crate::AclRule;
    use rtgt_backstore::{Backstore, MemoryStore};
    use rtgt_scsi::{LogicalUnit, LunConfig};

    const TARGET: &str = "iqn.2024-01.org.rtgt:session";

    fn registry() -> Arc<Registry> {
        let registry = Registry::new();
        let scsi = rtgt_scsi::Target::new(1, TARGET.into());
        let store = Backstore::Memory(MemoryStore::new(4 << 20));
        scsi.add_lun(1, Arc::new(LogicalUnit::new(LunConfig::disk(1, 1), Some(store)))).expect("LUN 1");
        let target = IscsiTarget::new(scsi);
        registry.add_target(target.clone()).expect("target");
        target.bind(AclRule::Any).expect("bind");
        registry
    }

    /// A SCSI Command PDU for LUN 1 (no digests) with this CDB and immediate data.
    fn command(itt: u32, cmd_sn: u32, cdb: &[u8], edtl: u32, write: bool, data: &[u8]) -> Vec<u8> {
        let mut pdu = vec![0u8; 48];
        pdu[0] = 0x01;
        pdu[1] = 0x80 | if write { 0x20 } else { 0x40 } | 0x01;
        pdu[5..8].copy_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        pdu[9] = 1;
        pdu[16..20].copy_from_slice(&itt.to_be_bytes());
        pdu[20..24].copy_from_slice(&edtl.to_be_bytes());
        pdu[24..28].copy_from_slice(&cmd_sn.to_be_bytes());
        pdu[32..32 + cdb.len()].copy_from_slice(cdb);
        pdu.extend_from_slice(data);
        pdu.resize(pdu.len().next_multiple_of(4), 0);
        pdu
    }

    #[test]
    fn commands_garbage_and_unfinished_writes_all_end_with_the_input() {
        let registry = registry();
        // ImmediateData=Yes, InitialR2T=Yes: a TEST UNIT READY that takes the power-on unit
        // attention, a WRITE with all its data, a READ, a WRITE left waiting for the Data-Out its R2T
        // asks for, and a command cut short.
        let tur = command(9, 1, &[0; 6], 0, false, &[]);
        let write = command(1, 2, &[0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0], 512, true, &[0x5a; 512]);
        let read = command(2, 3, &[0x28, 0, 0, 0, 0, 8, 0, 0, 1, 0], 512, false, &[]);
        let waiting = command(3, 4, &[0x2a, 0, 0, 0, 1, 0, 0, 0, 0x80, 0], 64 << 10, true, &[]);
        let cut = &command(4, 5, &[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], 512, false, &[])[..30];
        let mut input = vec![0b01];
        input.extend([tur, write, read, waiting, cut.to_vec()].concat());
        let answers = full_feature(&registry, TARGET, &input);
        // The login went through: the WRITE got GOOD and the READ its data back.
        let mut pdus = Vec::new();
        let mut rest = &answers[..];
        while rest.len() >= 48 {
            let len = u32::from_be_bytes([0, rest[5], rest[6], rest[7]]) as usize;
            let end = (48 + len.next_multiple_of(4)).min(rest.len());
            pdus.push((rest[0] & 0x3f, u32::from_be_bytes([rest[16], rest[17], rest[18], rest[19]]), &rest[..end]));
            rest = &rest[end..];
        }
        assert!(pdus.iter().any(|(op, itt, p)| *op == 0x21 && *itt == 1 && p[3] == 0), "{pdus:02x?}");
        assert!(pdus.iter().any(|(op, itt, p)| *op == 0x25 && *itt == 2 && p[48..] == [0x5a; 512]), "{pdus:02x?}");
        assert!(pdus.iter().any(|(op, itt, _)| *op == 0x31 && *itt == 3), "no R2T for the waiting write");
        // Garbage straight after the login, with every mode of the first byte.
        for mode in 0..16u8 {
            full_feature(&registry, TARGET, &[mode, 0xff, 0x00, 0x13, 0x37]);
        }
        full_feature(&registry, TARGET, &[]);
    }
}
