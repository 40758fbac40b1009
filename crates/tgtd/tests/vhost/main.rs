//! vhost-user-scsi targets: managed with tgtadm, attached by a VMM, and used by a real Linux guest.

// The shared support lives beside the test binaries (tests/common), not inside this folder.
#[path = "../common/mod.rs"]
mod common;

mod guest_vmm;
mod vhost_cd;
mod vhost_guest;
mod vhost_management;
mod vhost_metrics;
