//! A cd/dvd LUN on a vhost-user-scsi target: the guest (an in-process VMM speaking virtio-scsi)
//! sees a removable CD-ROM (type 05h) reading the image, and the operator's disc changes with
//! tgtadm reach it as they reach an iSCSI initiator: UNIT ATTENTION, NOT READY TO READY CHANGE and
//! a media event when a disc goes in, NOT READY, MEDIUM NOT PRESENT once the tray is emptied,
//! refused while the guest prevents removal unless forced. The drive is deleted like any LUN.

use crate::common;
use crate::guest_vmm::{Reply, Vmm};

use common::Tgtd;

const BLOCK: usize = 2048;
const TUR: [u8; 6] = [0; 6];
/// GET EVENT STATUS NOTIFICATION, polled, media class.
const GESN: [u8; 10] = [0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8, 0];

/// Bytes that do not repeat (xorshift), so a block from the wrong place cannot read as right.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn vhost_lun(tgtd: &Tgtd, op: &str, extra: &[&str]) -> std::process::Output {
    let args = ["--lld", "vhost", "--mode", "logicalunit", "--op", op, "--tid", "4", "--lun", "1"];
    tgtd.tgtadm(&[&args[..], extra].concat())
}

fn media(tgtd: &Tgtd, value: &str) -> std::process::Output {
    vhost_lun(tgtd, "update", &["--params", &format!("media={value}")])
}

/// TEST UNIT READY until no unit attention is left; the first other answer.
fn settle(vmm: &mut Vmm) -> Reply {
    for _ in 0..8 {
        let reply = vmm.command(1, &TUR, 0);
        if reply.sense_code().0 != 0x06 {
            return reply;
        }
    }
    panic!("unit attentions never end");
}

/// READ CAPACITY and every block with READ(10): the guest reads `image`, zero-padded to a block.
fn assert_reads(vmm: &mut Vmm, image: &[u8]) {
    let blocks = image.len().div_ceil(BLOCK);
    let cap = vmm.command(1, &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8);
    assert_eq!(cap.status, 0, "READ CAPACITY: {:02x?}", cap.sense);
    assert_eq!(cap.data, [&((blocks - 1) as u32).to_be_bytes()[..], &(BLOCK as u32).to_be_bytes()].concat());
    let n = blocks as u16;
    let read = vmm.command(1, &[0x28, 0, 0, 0, 0, 0, 0, (n >> 8) as u8, n as u8, 0], blocks * BLOCK);
    assert_eq!(read.status, 0, "READ(10): {:02x?}", read.sense);
    let mut want = image.to_vec();
    want.resize(blocks * BLOCK, 0);
    assert!(read.data == want, "the guest reads other bytes than the image's");
}

#[test]
fn a_vhost_guest_sees_a_cd_rom_and_its_disc_changes() {
    let sockets = tempfile::tempdir().unwrap();
    let socket = sockets.path().join("vm-cd.sock");
    let tgtd = Tgtd::start_with(&["--vhost-user-scsi", &format!("controller={},tid=4", socket.display())]);
    let first = noise(9 * BLOCK + 300, 0xcd01);
    let second = noise(4 * BLOCK, 0xcd02);
    let (first_path, second_path) = (tgtd.dir.path().join("first.iso"), tgtd.dir.path().join("second.iso"));
    std::fs::write(&first_path, &first).unwrap();
    std::fs::write(&second_path, &second).unwrap();
    let made = vhost_lun(&tgtd, "new", &["--device-type", "cd", "--backing-store", first_path.to_str().unwrap()]);
    assert!(made.status.success(), "{}", common::text(&made));

    let mut vmm = Vmm::connect(&socket);
    let inquiry = vmm.command(1, &[0x12, 0, 0, 0, 36, 0], 36);
    assert_eq!(inquiry.status, 0);
    assert_eq!((inquiry.data[0], inquiry.data[1]), (0x05, 0x80), "a removable CD/DVD drive");
    assert_eq!(settle(&mut vmm).status, 0);
    assert_reads(&mut vmm, &first);
    let config = vmm.command(1, &[0x46, 0x02, 0, 0, 0, 0, 0, 0, 8, 0], 8);
    assert_eq!(&config.data[6..8], [0x00, 0x08], "current profile: CD-ROM");
    // Nothing happened to the media yet.
    assert_eq!(vmm.command(1, &GESN, 8).data, [0, 6, 4, 0x52, 0, 0x02, 0, 0]);

    // Another disc: UNIT ATTENTION, NOT READY TO READY CHANGE; a new-media event; its blocks.
    assert!(media(&tgtd, second_path.to_str().unwrap()).status.success());
    let ua = vmm.command(1, &TUR, 0);
    assert_eq!((ua.status, ua.sense_code()), (0x02, (0x06, 0x28, 0x00)));
    assert_eq!(vmm.command(1, &GESN, 8).data, [0, 6, 4, 0x52, 2, 0x02, 0, 0]);
    assert_eq!(settle(&mut vmm).status, 0);
    assert_reads(&mut vmm, &second);

    // The guest locks the tray: the operator's change is refused, then forced.
    assert_eq!(vmm.command(1, &[0x1e, 0, 0, 0, 1, 0], 0).status, 0);
    let refused = media(&tgtd, "none");
    assert!(!refused.status.success() && common::text(&refused).contains("force=1"), "{}", common::text(&refused));
    assert_eq!(vmm.command(1, &GESN, 8).data[4], 1, "an eject request event");
    assert_eq!(settle(&mut vmm).status, 0, "the disc is still in");
    assert!(media(&tgtd, "none,force=1").status.success());
    let empty = settle(&mut vmm);
    assert_eq!((empty.status, empty.sense_code()), (0x02, (0x02, 0x3a, 0x01)), "tray closed, empty");
    assert_eq!(vmm.command(1, &GESN, 8).data, [0, 6, 4, 0x52, 3, 0, 0, 0], "media removal");
    // The guest still holds its lock: its own eject is refused until it lets go.
    let eject = [0x1b, 0, 0, 0, 0x02, 0];
    assert_eq!(vmm.command(1, &eject, 0).sense_code(), (0x05, 0x53, 0x02));
    assert_eq!(vmm.command(1, &[0x1e, 0, 0, 0, 0, 0], 0).status, 0);
    assert_eq!(vmm.command(1, &eject, 0).status, 0);
    assert_eq!(vmm.command(1, &TUR, 0).sense_code(), (0x02, 0x3a, 0x02), "tray open");

    // A drive, empty or not, is deleted like any LUN.
    let deleted = vhost_lun(&tgtd, "delete", &[]);
    assert!(deleted.status.success(), "{}", common::text(&deleted));
    let show = tgtd.tgtadm_ok(&["--lld", "vhost", "--mode", "target", "--op", "show"]);
    assert!(!show.contains("LUN: 1"), "{show}");
    drop(vmm);
}
