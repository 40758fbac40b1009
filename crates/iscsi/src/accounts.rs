//! CHAP accounts (tgtadm --mode account): user names with their secrets, kept once in the registry,
//! and the bindings that name them — per target, the incoming accounts initiators authenticate with
//! and at most one outgoing account the target answers mutual CHAP with; the same pair for discovery
//! sessions. A binding holds only the user name, so a changed or deleted account takes effect at the
//! next login.

use std::collections::BTreeMap;

/// Longest user name or secret accepted. CHAP_N travels as one text value and secrets are hashed
/// whole, so the limit only keeps configuration sane.
pub const MAX_ACCOUNT_FIELD: usize = 255;

/// One account as configured. `Debug` masks the secret so that a stray `{:?}` cannot log it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountInfo {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for AccountInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountInfo").field("user", &self.user).field("password", &"********").finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("this account already exists")]
    Exists,
    #[error("can't find the account")]
    NotFound,
    #[error("invalid user name: 1 to {MAX_ACCOUNT_FIELD} bytes without control characters")]
    BadUser,
    #[error("invalid password: 1 to {MAX_ACCOUNT_FIELD} bytes without NUL")]
    BadPassword,
    #[error("this account is already bound")]
    AlreadyBound,
    #[error("this account is not bound")]
    NotBound,
    #[error("this target already has an outgoing account")]
    OutgoingExists,
}

/// The accounts bound to one target (or to discovery sessions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoundAccounts {
    /// Initiators authenticate as one of these; when any is bound, CHAP is required.
    pub incoming: Vec<String>,
    /// The target's own identity for mutual CHAP.
    pub outgoing: Option<String>,
}

impl BoundAccounts {
    /// Whether logins must authenticate with CHAP.
    pub fn requires_chap(&self) -> bool {
        !self.incoming.is_empty()
    }

    pub(crate) fn bind(&mut self, user: &str, outgoing: bool) -> Result<(), AccountError> {
        if outgoing {
            match &self.outgoing {
                Some(u) if u == user => Err(AccountError::AlreadyBound),
                Some(_) => Err(AccountError::OutgoingExists),
                None => {
                    self.outgoing = Some(user.to_string());
                    Ok(())
                }
            }
        } else if self.incoming.iter().any(|u| u == user) {
            Err(AccountError::AlreadyBound)
        } else {
            self.incoming.push(user.to_string());
            Ok(())
        }
    }

    pub(crate) fn unbind(&mut self, user: &str, outgoing: bool) -> Result<(), AccountError> {
        if outgoing {
            if self.outgoing.as_deref() != Some(user) {
                return Err(AccountError::NotBound);
            }
            self.outgoing = None;
            return Ok(());
        }
        let before = self.incoming.len();
        self.incoming.retain(|u| u != user);
        if self.incoming.len() == before {
            return Err(AccountError::NotBound);
        }
        Ok(())
    }

    /// Forget every binding of a deleted account.
    pub(crate) fn forget(&mut self, user: &str) {
        self.incoming.retain(|u| u != user);
        if self.outgoing.as_deref() == Some(user) {
            self.outgoing = None;
        }
    }
}

/// User name to secret.
#[derive(Default)]
pub(crate) struct AccountStore {
    by_user: BTreeMap<String, String>,
}

impl std::fmt::Debug for AccountStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_user.keys()).finish()
    }
}

fn valid_user(user: &str) -> bool {
    !user.is_empty() && user.len() <= MAX_ACCOUNT_FIELD && !user.chars().any(|c| c.is_control())
}

fn valid_password(password: &str) -> bool {
    !password.is_empty() && password.len() <= MAX_ACCOUNT_FIELD && !password.contains('\0')
}

impl AccountStore {
    pub fn add(&mut self, user: &str, password: &str) -> Result<(), AccountError> {
        if !valid_user(user) {
            return Err(AccountError::BadUser);
        }
        if !valid_password(password) {
            return Err(AccountError::BadPassword);
        }
        if self.by_user.contains_key(user) {
            return Err(AccountError::Exists);
        }
        self.by_user.insert(user.to_string(), password.to_string());
        Ok(())
    }

    pub fn remove(&mut self, user: &str) -> Result<(), AccountError> {
        self.by_user.remove(user).map(|_| ()).ok_or(AccountError::NotFound)
    }

    pub fn contains(&self, user: &str) -> bool {
        self.by_user.contains_key(user)
    }

    pub fn secret(&self, user: &str) -> Option<&str> {
        self.by_user.get(user).map(String::as_str)
    }

    pub fn list(&self) -> Vec<AccountInfo> {
        self.by_user.iter().map(|(u, p)| AccountInfo { user: u.clone(), password: p.clone() }).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_validates_and_refuses_duplicates() {
        let mut s = AccountStore::default();
        assert_eq!(s.add("", "x"), Err(AccountError::BadUser));
        assert_eq!(s.add("a\nb", "x"), Err(AccountError::BadUser));
        assert_eq!(s.add("alice", ""), Err(AccountError::BadPassword));
        assert_eq!(s.add("alice", "a\0b"), Err(AccountError::BadPassword));
        assert_eq!(s.add(&"u".repeat(256), "x"), Err(AccountError::BadUser));
        s.add("alice", "secret12345678").unwrap();
        assert_eq!(s.add("alice", "other"), Err(AccountError::Exists));
        assert_eq!(s.secret("alice"), Some("secret12345678"));
        assert_eq!(s.list().len(), 1);
        assert_eq!(s.remove("bob"), Err(AccountError::NotFound));
        s.remove("alice").unwrap();
        assert!(!s.contains("alice"));
    }

    #[test]
    fn debug_output_masks_secrets() {
        let a = AccountInfo { user: "alice".into(), password: "topsecret".into() };
        assert!(!format!("{a:?}").contains("topsecret"));
        let mut s = AccountStore::default();
        s.add("alice", "topsecret").unwrap();
        assert!(!format!("{s:?}").contains("topsecret"));
    }

    #[test]
    fn bindings() {
        let mut b = BoundAccounts::default();
        assert!(!b.requires_chap());
        b.bind("alice", false).unwrap();
        assert_eq!(b.bind("alice", false), Err(AccountError::AlreadyBound));
        b.bind("bob", false).unwrap();
        assert!(b.requires_chap());
        b.bind("tgt", true).unwrap();
        assert_eq!(b.bind("tgt", true), Err(AccountError::AlreadyBound));
        assert_eq!(b.bind("other", true), Err(AccountError::OutgoingExists));
        assert_eq!(b.unbind("alice", true), Err(AccountError::NotBound));
        b.unbind("alice", false).unwrap();
        assert_eq!(b.unbind("alice", false), Err(AccountError::NotBound));
        b.forget("tgt");
        b.forget("bob");
        assert_eq!(b, BoundAccounts::default());
    }
}
