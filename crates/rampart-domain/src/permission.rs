//! Permissions: `resource:action` strings granted by roles, with `*` wildcards
//! (`*` grants everything, `users:*` every action on users).

use std::fmt;

/// A permission as roles grant it and API keys carry it (a key's *scope*): `resource:action`,
/// `resource:*` or `*`, each part 1–64 of `a-z 0-9 _ - .`. Built by [`Permission::parse`];
/// past it, code trusts the shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Permission(String);

/// An API key's scope: a permission the key may use within its owner's.
pub type Scope = Permission;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not resource:action, resource:* or *")]
pub struct PermissionError(pub String);

impl Permission {
    pub fn parse(s: &str) -> Result<Self, PermissionError> {
        if crate::apikey::is_valid_scope(s) {
            Ok(Permission(s.to_string()))
        } else {
            Err(PermissionError(s.to_string()))
        }
    }

    /// A permission that [`Permission::parse`] accepted earlier and storage kept.
    pub fn from_stored(stored: String) -> Self {
        Permission(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A concrete `resource:action` (no wildcard): what a check asks for.
    pub fn is_concrete(&self) -> bool {
        !self.0.ends_with('*')
    }
}

impl AsRef<str> for Permission {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for Permission {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether any of `granted` allows `needed` (a concrete `resource:action`).
pub fn allows<S: AsRef<str>>(granted: &[S], needed: &str) -> bool {
    granted.iter().any(|g| {
        let g = g.as_ref();
        // `users:*` grants `users:…`; `transit:encrypt:*` grants `transit:encrypt:…`.
        g == "*"
            || g == needed
            || g.strip_suffix('*').is_some_and(|stem| stem.ends_with(':') && needed.starts_with(stem))
    })
}

#[cfg(test)]
mod tests {
    use super::{Permission, allows};

    #[test]
    fn permissions_parse_their_documented_shapes_only() {
        for ok in ["*", "users:read", "users:*", "audit.log:export", "transit:encrypt:orders", "transit:encrypt:*"] {
            assert_eq!(Permission::parse(ok).unwrap().as_str(), ok);
        }
        for bad in ["", "users", ":read", "users:", "Users:read", "a:b:c:d", "a:*:c", "a b:c", "*:read", "a:b:"] {
            assert!(Permission::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Permission::parse("users:read").unwrap().is_concrete());
        assert!(!Permission::parse("users:*").unwrap().is_concrete());
    }

    #[test]
    fn wildcards_and_exact_matches() {
        assert!(allows(&["*"], "users:write"));
        assert!(allows(&["users:*"], "users:write"));
        assert!(allows(&["users:write"], "users:write"));
        assert!(!allows(&["users:read"], "users:write"));
        assert!(!allows(&["users:*"], "usersx:write"));
        assert!(!allows(&["user:*"], "users:write"));
        assert!(!allows::<&str>(&[], "users:read"));
        assert!(!allows(&["users"], "users:read"));
        // A third segment names one thing.
        assert!(allows(&["transit:*"], "transit:encrypt:orders"));
        assert!(allows(&["transit:encrypt:*"], "transit:encrypt:orders"));
        assert!(allows(&["transit:encrypt:orders"], "transit:encrypt:orders"));
        assert!(!allows(&["transit:encrypt:orders"], "transit:encrypt:orders2"));
        assert!(!allows(&["transit:encrypt:*"], "transit:decrypt:orders"));
        assert!(!allows(&["transit:encrypt"], "transit:encrypt:orders"));
    }
}
