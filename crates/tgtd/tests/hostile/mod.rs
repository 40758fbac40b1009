//! The hostile-client tool: raw iSCSI against the real tgtd. `wire` builds and checks PDUs,
//! `arena` runs the daemon with a well-behaved bystander session and watches its memory and
//! descriptors; the other modules hold the cases, one kind of attack each.

pub mod arena;
pub mod wire;

mod bounds;
mod digests;
mod framing;
mod login_text;
mod sequencing;
mod task_management;
mod vanishing;
mod xcopy;
