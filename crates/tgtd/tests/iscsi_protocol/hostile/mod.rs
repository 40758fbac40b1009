//! Hostile clients against the real tgtd: garbage, truncated and oversize PDUs, segments past
//! MaxRecvDataSegmentLength, bad AHS lengths, wrong digests, CmdSN outside the window, Data-Out
//! for unknown tags or past the range, unsolicited data past FirstBurstLength, duplicate ITTs,
//! hostile login text, logins that never finish, connections that vanish or never read, task
//! management of one session ending another's task, writes announcing more data than the
//! target should hold, large READs whose answers are never read, and connections that stop reading
//! their sockets while holding read data (the send timeout).
//! Each case checks the answer RFC 7143 asks of a target; after each, a second, well-behaved
//! session writes, reads back and compares, and at the end of each test the daemon's resident
//! memory has grown by less than 32 MiB and every hostile connection is gone from it.
//!
//! The hostile-client tool: raw iSCSI against the real tgtd. `wire` builds and checks PDUs,
//! `arena` runs the daemon with a well-behaved bystander session and watches its memory and
//! descriptors; the other modules hold the cases, one kind of attack each.

pub mod arena;
pub mod wire;

mod bounds;
mod digests;
mod framing;
mod login_text;
pub mod reads;
mod sequencing;
mod stalled;
mod task_management;
mod vanishing;
mod xcopy;
