//! Users and roles as the domain sees them.

use crate::email::Email;
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub Uuid);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A role's name: 1–64 characters of `a-z`, `0-9`, `_`, `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct RoleName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role names are 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter")]
pub struct RoleNameError;

impl RoleName {
    pub const USER: &'static str = "user";
    pub const MODERATOR: &'static str = "moderator";
    pub const ADMIN: &'static str = "admin";

    pub fn parse(s: &str) -> Result<Self, RoleNameError> {
        let ok = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if ok { Ok(Self(s.to_string())) } else { Err(RoleNameError) }
    }

    /// A name that [`RoleName::parse`] accepted earlier and storage kept.
    pub fn from_stored(stored: String) -> Self {
        RoleName(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for RoleName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for RoleName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user to be created. The password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub name: Option<String>,
    pub password_hash: String,
    pub roles: Vec<RoleName>,
    pub created_at: OffsetDateTime,
}

/// A stored user. The password hash is not part of it: only the login path reads that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: Option<String>,
    pub roles: Vec<RoleName>,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
    /// When the password was last set (creation, change or reset).
    pub password_changed_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        for ok in ["admin", "user", "billing-admin", "tier_2", "a"] {
            assert!(RoleName::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Admin", "2fa", "-x", "a b", "é", &"a".repeat(65)] {
            assert!(RoleName::parse(bad).is_err(), "{bad}");
        }
    }
}
