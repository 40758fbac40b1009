//! Managing tgtd: tgtadm (and its tgt-compatible text), tgt-admin and targets.conf, who may use the
//! control socket, and the CHAP accounts and ACLs set through them.

// The shared support lives beside the test binaries (tests/common), not inside this folder.
#[path = "../common/mod.rs"]
mod common;

mod chap_acl;
mod control_access;
mod isns;
mod isns_access;
mod lun_update;
mod management;
mod tgt_admin;
mod tgtadm_compat;
