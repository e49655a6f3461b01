//! `Email`: an e-mail address, parsed once (RFC 5321/5322 syntax) and normalised.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The longest address SMTP can carry (RFC 5321 §4.5.3.1.3, as corrected by erratum 1690).
pub const MAX_LEN: usize = 254;

/// A syntactically valid, normalised (trimmed, lower-cased) e-mail address.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("e-mail address is empty")]
    Empty,
    #[error("e-mail address is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("not a valid e-mail address")]
    Invalid,
}

impl EmailError {
    /// Stable machine code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            EmailError::Empty => "email_required",
            EmailError::TooLong => "email_too_long",
            EmailError::Invalid => "email_invalid",
        }
    }
}

impl Email {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        // Display-name forms ("Bob <bob@x>") are valid RFC 5322 but not an address to store.
        if trimmed.contains(['<', '>', ' ']) {
            return Err(EmailError::Invalid);
        }
        let parsed = email_address::EmailAddress::from_str(trimmed).map_err(|_| EmailError::Invalid)?;
        if parsed.domain().is_empty() || parsed.local_part().is_empty() {
            return Err(EmailError::Invalid);
        }
        Ok(Email(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An address that [`Email::parse`] produced earlier and storage kept: not checked again
    /// (the rules may have grown since; a stored account stays reachable).
    pub fn from_stored(stored: String) -> Self {
        Email(stored)
    }

    /// The part before the `@` (used by password rules: a password must not contain it).
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(self.0.as_str(), |(l, _)| l)
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Email {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Email {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        let e = Email::parse("  Alice.Smith+tag@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "alice.smith+tag@example.com");
        assert_eq!(e.local_part(), "alice.smith+tag");
        assert!(Email::parse("root@localhost").is_ok());
    }

    #[test]
    fn rejects_bad_input_with_stable_codes() {
        let cases = [
            ("", EmailError::Empty),
            ("   ", EmailError::Empty),
            ("no-at-sign", EmailError::Invalid),
            ("@example.com", EmailError::Invalid),
            ("alice@", EmailError::Invalid),
            ("a b@example.com", EmailError::Invalid),
            ("Bob <bob@example.com>", EmailError::Invalid),
            ("alice@@example.com", EmailError::Invalid),
        ];
        for (input, want) in cases {
            assert_eq!(Email::parse(input), Err(want.clone()), "input {input:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
        assert_eq!(EmailError::Invalid.code(), "email_invalid");
    }
}
