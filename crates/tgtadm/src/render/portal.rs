//! `--mode portal --op show`, as Debian's tgtadm 1.0.85 prints it.

use rtgt_mgmt::PortalView;
use std::fmt::Write;

/// `--mode portal --op show`: `address:port,tpgt`.
pub fn portals(list: &[PortalView]) -> String {
    let mut out = String::new();
    for portal in list {
        let _ = writeln!(out, "Portal: {},{}", portal.address, portal.tpgt);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_list_golden() {
        let list = [
            PortalView { address: "127.0.0.1:13262".parse().unwrap(), tpgt: 1 },
            PortalView { address: "127.0.0.1:13261".parse().unwrap(), tpgt: 1 },
        ];
        assert_eq!(portals(&list), "Portal: 127.0.0.1:13262,1\nPortal: 127.0.0.1:13261,1\n");
        let v6 = [PortalView { address: "[::1]:3260".parse().unwrap(), tpgt: 1 }];
        assert_eq!(portals(&v6), "Portal: [::1]:3260,1\n");
    }
}
