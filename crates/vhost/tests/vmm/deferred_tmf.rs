//! A task management function whose answer waits for the command it aborted (the store holds the
//! WRITE) is lost with its device, as the command is: once the VMM stopped the control queue or went
//! away, nothing more is written into the guest's memory or its ring. Stopping the queue
//! (GET_VRING_BASE, which QEMU sends for every queue when the guest resets the device or the VM
//! stops) waits for the answer, so the index it reports covers it.

use super::*;

const STALL: Duration = Duration::from_millis(1500);
const TMF_QUEUE: usize = 0;

/// A guest whose WRITE to LBA 30 stalls in the store, and a LOGICAL UNIT RESET posted behind it
/// (not yet answered): (fixture, vmm, the function's response buffer).
fn tmf_waiting_for_a_write() -> (Fixture, Vmm, u64) {
    let f = fixture_with_faults(&[&format!("write:stall={}ms:lba=30", STALL.as_millis())]);
    let mut vmm = Vmm::connect(&f.socket);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));
    vmm.submit(&[0x2a, 0, 0, 0, 0, 30, 0, 0, 1, 0], &[0x66; 512], 0);
    std::thread::sleep(Duration::from_millis(300));
    let request = ControlRequest::encode_tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, LUN1, 0);
    let bufs = vmm.post(TMF_QUEUE, &[&request], &[1]);
    // The aborted WRITE is answered at once; the function waits for it to leave the store.
    vmm.wait_used(2);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(used_index(&vmm.mem, &vmm.rings[TMF_QUEUE]), 0, "the function waits for the write");
    (f, vmm, bufs[0])
}

fn used_index(mem: &GuestMemoryMmap, ring: &Ring) -> u16 {
    fence(Ordering::SeqCst);
    mem.read_obj(GuestAddress(ring.used() + 2)).unwrap()
}

#[test]
fn a_stopped_control_queue_is_never_answered_after_its_index_is_read() {
    let (_f, vmm, response) = tmf_waiting_for_a_write();
    // The guest resets the device: QEMU stops every queue, control queue first.
    let stopped = vmm.frontend.get_vring_base(TMF_QUEUE).unwrap();
    assert_eq!(stopped, 1, "the function was taken from the ring");
    assert_eq!(used_index(&vmm.mem, &vmm.rings[TMF_QUEUE]), 1, "answered before the queue stopped");
    assert_eq!(vmm.read(response, 1)[0], 0, "FUNCTION COMPLETE");
    for q in 1..QUEUES {
        vmm.frontend.get_vring_base(q).unwrap();
    }
    // The queue starts again from the index it reported (a VM stop and resume); the response
    // buffer is the guest's again.
    vmm.mem.write_slice(&[0xff], GuestAddress(response)).unwrap();
    let ring = &vmm.rings[TMF_QUEUE];
    vmm.frontend.set_vring_base(TMF_QUEUE, stopped as u16).unwrap();
    vmm.frontend.set_vring_call(TMF_QUEUE, &ring.call).unwrap();
    vmm.frontend.set_vring_kick(TMF_QUEUE, &ring.kick).unwrap();
    std::thread::sleep(STALL + Duration::from_millis(500));
    assert_eq!(used_index(&vmm.mem, &vmm.rings[TMF_QUEUE]), 1, "a used entry appeared after the queue stopped");
    assert_eq!(vmm.read(response, 1)[0], 0xff, "the response buffer was written after the queue stopped");
}

#[test]
fn a_function_lost_with_its_vmm_is_never_answered() {
    let (f, vmm, response) = tmf_waiting_for_a_write();
    let Vmm { mem, frontend, rings, .. } = vmm;
    // The VMM goes away; its guest memory stays (a restarted QEMU would map it again).
    drop(frontend);
    let deadline = Instant::now() + Duration::from_secs(10);
    while f.device.connected() {
        assert!(Instant::now() < deadline, "the connection did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(STALL + Duration::from_millis(500));
    assert_eq!(used_index(&mem, &rings[TMF_QUEUE]), 0, "answered after the VMM went away");
    let mut byte = [0xffu8];
    mem.read_slice(&mut byte, GuestAddress(response)).unwrap();
    assert_eq!(byte[0], 0, "the response buffer was written after the VMM went away");
}
