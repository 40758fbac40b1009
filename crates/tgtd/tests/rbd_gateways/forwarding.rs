//! A gateway that does not own the unit forwards media access to the owner: data written through
//! either path is read back through the other, the forwarded command runs for the originating
//! initiator port (a persistent reservation held through one gateway lets its holder write
//! through the other and conflicts everybody else's forwarded write, a RESERVE(6) forwarded
//! belongs to the nexus that sent it), and the owner's group is active/optimized, the other
//! active/non-optimized.

use super::{groups, prout, write10, TwoGateways, CONFLICT, GOOD, WRITE_EXCLUSIVE};
use super::{wait_for, ACTIVE, NON_OPTIMIZED};
use crate::common::initiator::Connection;
use crate::pattern;

const I1: &str = "iqn.2026-11.org.rtgt.test:fwd-one";
const I2: &str = "iqn.2026-11.org.rtgt.test:fwd-two";

/// READ(10) that must be GOOD the first time: unlike `super::read`, which retries past unit
/// attentions, nothing here changes the unit's state, so one would be a failure.
fn read(c: &mut Connection, lba: u32, blocks: u16) -> Vec<u8> {
    let out = c.read10(1, lba, blocks, 512).unwrap();
    assert_eq!(out.status, 0, "READ: {:x?}", out.sense);
    out.data_in
}

fn write(c: &mut Connection, lba: u32, data: &[u8]) -> u8 {
    write10(c, lba, data).status
}

#[test]
fn writes_through_either_gateway_read_back_through_the_other() {
    let gw = TwoGateways::start();
    let (mut ca, mut cb) = gw.sessions(I1, I1);
    wait_for(5, "a owns, b forwards", || groups(&mut ca) == [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    assert_eq!(groups(&mut cb), [(1, ACTIVE), (2, NON_OPTIMIZED)]);
    // b learns a's forwarding address with a's registry entry (a heartbeat at most).
    wait_for(5, "b forwards TEST UNIT READY", || cb.scsi(1, &[0; 6], &[], 0).unwrap().status == GOOD);
    // Through the non-owner, read through the owner; across an object boundary and larger than
    // one Data-Out PDU.
    let through_b = pattern(31, 256 * 1024);
    assert_eq!(write(&mut cb, 8190, &through_b), GOOD, "{}", gw.b.log());
    assert_eq!(read(&mut ca, 8190, 512), through_b);
    // And the other way.
    let through_a = pattern(32, 8192);
    assert_eq!(write(&mut ca, 40, &through_a), GOOD);
    assert_eq!(read(&mut cb, 40, 16), through_a);
    // Sense comes back as the owner made it: a read past the end, through b.
    let capacity = ca.scsi(1, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 8).unwrap().data_in;
    let last = u32::from_be_bytes(capacity[..4].try_into().unwrap());
    let past = cb.read10(1, last, 2, 512).unwrap();
    assert_eq!(past.sense_code(), (0x05, 0x21, 0x00), "LOGICAL BLOCK ADDRESS OUT OF RANGE");
    // SYNCHRONIZE CACHE(10) forwarded.
    assert_eq!(cb.scsi(1, &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], &[], 0).unwrap().status, GOOD);
    // Only the owner wrote the image: the registry shows no move and nobody fenced.
    let keys = super::registry_keys(&gw.conf, &gw.name);
    assert!(!keys.iter().any(|k| k.starts_with("fenced.") || k == "handoff"), "{keys:?}");
    assert_eq!(groups(&mut cb), [(1, ACTIVE), (2, NON_OPTIMIZED)], "forwarding never moves the ownership");
}

#[test]
fn forwarded_commands_run_for_the_initiator_port_that_sent_them() {
    let gw = TwoGateways::start();
    let (mut one, mut two) = gw.sessions(I1, I2);
    wait_for(5, "b forwards", || two.scsi(1, &[0; 6], &[], 0).unwrap().status == GOOD);
    let data = pattern(41, 4096);
    // Initiator 1 reserves through a (the owner): initiator 2's write, forwarded from b, conflicts.
    assert_eq!(prout(&mut one, 0, 0, 0, 0xa1, 0).0, GOOD);
    assert_eq!(prout(&mut one, 1, WRITE_EXCLUSIVE, 0xa1, 0, 0).0, GOOD);
    assert_eq!(write(&mut two, 16, &data), CONFLICT, "{}", gw.a.log());
    // Reads are allowed under WRITE EXCLUSIVE, forwarded or not.
    assert_eq!(two.read10(1, 16, 8, 512).unwrap().status, GOOD);
    assert_eq!(prout(&mut one, 2, WRITE_EXCLUSIVE, 0xa1, 0, 0).0, GOOD, "released");
    assert_eq!(write(&mut two, 16, &data), GOOD);
    // Initiator 2 reserves through b: its own writes, forwarded, go through (the owner runs them
    // for initiator 2, not for b); initiator 1's through the owner conflict.
    assert_eq!(prout(&mut two, 0, 0, 0, 0xb2, 0).0, GOOD);
    assert_eq!(prout(&mut two, 1, WRITE_EXCLUSIVE, 0xb2, 0, 0).0, GOOD);
    let more = pattern(42, 4096);
    assert_eq!(write(&mut two, 16, &more), GOOD, "the holder writes through the non-owner");
    assert_eq!(write(&mut one, 16, &data), CONFLICT);
    assert_eq!(read(&mut one, 16, 8), more);
    assert_eq!(prout(&mut two, 2, WRITE_EXCLUSIVE, 0xb2, 0, 0).0, GOOD);
    // Registrations make RESERVE(6) conflict (SPC-4 5.13.3): both unregister first.
    assert_eq!(prout(&mut one, 0, 0, 0xa1, 0, 0).0, GOOD);
    assert_eq!(prout(&mut two, 0, 0, 0xb2, 0, 0).0, GOOD);
    // RESERVE(6) forwarded from b is held by initiator 2's nexus on the owner: initiator 1's
    // write conflicts, initiator 2's does not, until RELEASE(6), forwarded too.
    assert_eq!(two.scsi(1, &[0x16, 0, 0, 0, 0, 0], &[], 0).unwrap().status, GOOD);
    assert_eq!(write(&mut one, 16, &data), CONFLICT);
    assert_eq!(write(&mut two, 16, &data), GOOD);
    assert_eq!(two.scsi(1, &[0x17, 0, 0, 0, 0, 0], &[], 0).unwrap().status, GOOD);
    assert_eq!(write(&mut one, 16, &more), GOOD);
}
