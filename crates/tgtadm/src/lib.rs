//! rtgt's tgt-compatible management tools as a library, so that the two binaries (`tgtadm`,
//! `tgt-admin`) and the fuzz targets share one copy of each module.
//!
//! - `cli`: tgtadm's command line to a typed request, one file per mode;
//! - `render`: the daemon's replies in tgt's text layouts, one file per mode's output;
//! - `client`: one request, one response over the control socket;
//! - `help`: tgtadm's `--help` text;
//! - `run`: tgtadm itself;
//! - `admin`: tgt-admin (targets.conf parser, specs, plan, dump, command lines, run);
//! - `tgtimg`: tgtimg (tape, DVD+R and disk image files).

pub mod admin;
pub mod cli;
pub mod client;
pub mod help;
pub mod render;
pub mod run;
pub mod tgtimg;
