//! Hotplug events: dropped ones are reported as missed, and an event waits for a buffer that
//! holds it.

use super::*;

/// More LUN changes than the device keeps for a guest that posted no event buffer: the oldest are
/// dropped, and the guest must be told so (virtio 1.2 5.6.6.3: bit 31 of the event field,
/// VIRTIO_SCSI_T_EVENTS_MISSED; Linux then rescans the whole host). Without it a LUN added among
/// the dropped ones would never appear in the guest.
#[test]
fn dropped_events_are_reported_as_missed() {
    const MISSED: u32 = 0x8000_0000;
    let f = fixture();
    let mut vmm = Vmm::connect(&f.socket);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));
    for lun in 100..200 {
        f.device.notify(LunEvent::Added(lun));
    }
    std::thread::sleep(Duration::from_millis(20));
    let bufs = vmm.post(1, &[], &[16]);
    let (_, len) = vmm.wait_used(1);
    assert_eq!(len, 16);
    let event = vmm.read(bufs[0], 16);
    let kind = u32::from_le_bytes(event[0..4].try_into().unwrap());
    assert_eq!(kind & MISSED, MISSED, "the first event after a drop says events were missed: {event:?}");
    assert_eq!(kind & !MISSED, 1, "still a TRANSPORT_RESET");
    // Only that one carries the flag; the kept events follow in order.
    let first_lun = event[7];
    let bufs = vmm.post(1, &[], &[16]);
    vmm.wait_used(1);
    let event = vmm.read(bufs[0], 16);
    assert_eq!(&event[0..4], &1u32.to_le_bytes());
    assert_eq!(event[7], first_lun + 1);
}

/// An event buffer too small for a record (virtio 1.2 5.6.6.3: the driver should post buffers of
/// event_info_size) is returned untouched, and the event goes into the next buffer instead of
/// being lost in a truncated record.
#[test]
fn an_event_waits_for_a_buffer_that_holds_it() {
    let f = fixture();
    let mut vmm = Vmm::connect(&f.socket);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));
    f.device.notify(LunEvent::Added(2));
    std::thread::sleep(Duration::from_millis(20));
    let small = vmm.post(1, &[], &[8]);
    let (_, len) = vmm.wait_used(1);
    assert_eq!(len, 0, "nothing written into a buffer too small for an event");
    assert_eq!(vmm.read(small[0], 8), [0; 8]);
    let bufs = vmm.post(1, &[], &[16]);
    let (_, len) = vmm.wait_used(1);
    assert_eq!(len, 16);
    let event = vmm.read(bufs[0], 16);
    assert_eq!(&event[0..4], &1u32.to_le_bytes(), "VIRTIO_SCSI_T_TRANSPORT_RESET");
    assert_eq!(&event[4..12], &[1, 0, 0x40, 2, 0, 0, 0, 0]);
}
