//! `--mode account --op show`, as Debian's tgtadm 1.0.85 prints it.

use rtgt_mgmt::AccountEntry;
use std::fmt::Write;

/// `--mode account --op show`: names only, never a password.
pub fn accounts(list: &[AccountEntry]) -> String {
    let mut out = String::from("Account list:\n");
    for account in list {
        let _ = writeln!(out, "    {}", account.user);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_list_golden() {
        let list = [
            AccountEntry {
                user: "bob".into(),
                password: Some("never-printed".into()),
                discovery: true,
                discovery_outgoing: false,
            },
            AccountEntry { user: "alice".into(), password: None, discovery: false, discovery_outgoing: false },
        ];
        assert_eq!(accounts(&list), "Account list:\n    bob\n    alice\n");
        assert_eq!(accounts(&[]), "Account list:\n");
    }
}
