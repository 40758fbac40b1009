//! tgt-admin: applies tgt's /etc/tgt/targets.conf to a running tgtd through the same control
//! socket tgtadm uses. The file is parsed and checked completely, and the whole plan made, before
//! the first request is sent; if a request fails, what this run created is removed again.
//!
//! `conf` reads the file, `spec` checks it into target specs (and reads running targets into the
//! same form), `plan` compares the two into requests, `command` prints requests as tgtadm command
//! lines, `dump` writes specs back as a file, and `run` is the binary.

pub mod command;
pub mod compare;
pub mod conf;
pub mod dump;
mod isns_spec;
pub mod plan;
pub mod run;
pub mod spec;
