//! iSCSI against the real tgtd: the data path, bad and hostile clients, the limits the target
//! enforces, resources given back after many sessions, and libiscsi's clients.

// The shared support lives beside the test binaries (tests/common), not inside this folder.
#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod data_path;
mod hostile;
mod libiscsi_clients;
mod limits;
mod resource_cycles;
mod zero_copy;
