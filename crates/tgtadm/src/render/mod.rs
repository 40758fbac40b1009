//! tgt's text for the daemon's typed replies: the `show` layouts scripts already parse, byte for byte
//! as Debian's tgtadm 1.0.85 prints them (see the golden tests). One file per mode's output.

pub mod account;
pub mod lld;
pub mod logicalunit;
pub mod lun_stats;
pub mod portal;
pub mod session;
pub mod system;
pub mod target;
pub mod target_params;

use rtgt_mgmt::Reply;

/// The text tgtadm prints for `reply` (empty for `Done`).
pub fn render(reply: &Reply) -> String {
    match reply {
        Reply::Done => String::new(),
        Reply::TargetList(targets) => targets.iter().map(target::target).collect(),
        Reply::Lun(view) => logicalunit::lun(view, 0),
        Reply::System(view) => system::system(view),
        Reply::AccountList(list) => account::accounts(list),
        Reply::PortalList(list) => portal::portals(list),
        Reply::LldList(list) => lld::llds(list),
        Reply::Sessions(list) => session::sessions(list, false),
        Reply::LunStats(list) => list.iter().map(lun_stats::lun_stats).collect(),
    }
}

#[cfg(test)]
mod tests;
