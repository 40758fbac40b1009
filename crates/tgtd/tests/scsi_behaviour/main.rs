//! SCSI behaviour end to end: persistent reservations, durability across kill -9, injected
//! faults, backing files that change under I/O, and libiscsi's conformance suites and matrix.

// The shared support lives beside the test binaries (tests/common), not inside this folder.
#[path = "../common/mod.rs"]
mod common;
#[path = "../cu/mod.rs"]
mod cu;

mod aborted_io;
mod changer;
mod conformance_matrix;
mod conformance_suites;
mod durability;
mod faults;
mod live_backing;
mod optical;
mod persistent_reservations;
mod tape;
mod tape_busy;
mod vtl;
