//! Task management from the guest: I_T NEXUS RESET reports nexus loss, and a LUN reset is
//! answered only once the write it aborted has ended.

use super::*;

/// I_T NEXUS RESET (SAM-5 7.6) performs the I_T nexus loss actions of SAM-5 6.3.4: the guest's
/// next command on each LUN reports I_T NEXUS LOSS OCCURRED (29h/07h), not a power-on.
#[test]
fn an_i_t_nexus_reset_reports_nexus_loss() {
    let f = fixture();
    let mut vmm = Vmm::connect(&f.socket);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));
    assert_eq!(vmm.tmf(4, LUN1), 0, "FUNCTION COMPLETE");
    let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(r.status, 0x02);
    assert_eq!(sense_triple(&r.sense), (0x06, 0x29, 0x07));
    assert_eq!(vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).status, 0);
    assert_eq!(f.target.nexuses().len(), 1, "the guest goes on as one nexus");
}

/// SAM-5 7.1: once a task management function is answered, the commands it aborted no longer
/// change the medium. The store stalls the WRITE as a device holding the request would (aborting
/// the command cannot recall it): the LOGICAL UNIT RESET is answered only once the write is out of
/// the store, so what the guest reads right after the answer stays.
#[test]
fn a_lun_reset_is_answered_only_once_the_aborted_write_has_ended() {
    let stall = Duration::from_millis(1500);
    let f = fixture_with_faults(&[&format!("write:stall={}ms:lba=30", stall.as_millis())]);
    let mut vmm = Vmm::connect(&f.socket);
    assert_eq!(sense_triple(&vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0).sense), (0x06, 0x29, 0x00));
    let (head, bufs) = vmm.submit(&[0x2a, 0, 0, 0, 0, 30, 0, 0, 1, 0], &[0x66; 512], 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(vmm.tmf(VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, LUN1), 0, "FUNCTION COMPLETE");
    // The aborted WRITE was answered RESET before the function.
    let (used, _) = vmm.wait_used(2);
    assert_eq!(used, u32::from(head));
    let (_, _, _, response, _) = ResponseHeader::parse(&vmm.read(bufs[0], RESPONSE_HEADER_LEN)).unwrap();
    assert_eq!(u32::from(response), virtio_bindings::virtio_scsi::VIRTIO_SCSI_S_RESET);
    let r = vmm.command(LUN1, &[0, 0, 0, 0, 0, 0], &[], 0);
    assert_eq!(sense_triple(&r.sense), (0x06, 0x29, 0x03), "BUS DEVICE RESET FUNCTION OCCURRED");
    let read = |vmm: &mut Vmm| {
        let r = vmm.command(LUN1, &[0x28, 0, 0, 0, 0, 30, 0, 0, 1, 0], &[], 512);
        assert_eq!((r.status, r.response), (0, 0));
        r.data
    };
    let first = read(&mut vmm);
    std::thread::sleep(stall + Duration::from_millis(500));
    let later = read(&mut vmm);
    assert!(
        later == first,
        "the aborted write changed the block after the answer ({:02x?} -> {:02x?})",
        &first[..4],
        &later[..4]
    );
}
