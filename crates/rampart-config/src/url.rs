//! `SecretUrl`: a connection URL that may carry a password, shown with the password redacted.

use rampart_domain::secret::{REDACTED, Secret};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Query parameters whose values are secrets in database and Redis URLs.
const SECRET_PARAMS: &[&str] = &["password", "sslpassword", "pass", "token", "secret"];

#[derive(Clone)]
pub struct SecretUrl(Secret<String>);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(Secret::new(url.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    pub fn scheme(&self) -> Option<&str> {
        self.expose().split_once("://").map(|(s, _)| s)
    }

    /// The URL with the userinfo password and secret query values replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        let url = self.expose();
        let Some((scheme, rest)) = url.split_once("://") else { return REDACTED.to_string() };
        let (authority_and_path, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let mut out = format!("{scheme}://");
        match authority_and_path.rsplit_once('@') {
            Some((userinfo, host)) => {
                match userinfo.split_once(':') {
                    Some((user, _password)) => out.push_str(&format!("{user}:{REDACTED}")),
                    None => out.push_str(userinfo),
                }
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority_and_path),
        }
        if let Some(q) = query {
            let redacted: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                        format!("{k}={REDACTED}")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            out.push('?');
            out.push_str(&redacted.join("&"));
        }
        out
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretUrl::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_and_secret_params_only() {
        let cases = [
            ("postgres://u:pw@h:5432/db", "postgres://u:[redacted]@h:5432/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db?sslmode=require&password=x", "postgres://h/db?sslmode=require&password=[redacted]"),
            ("redis://:tok@h:6379/0", "redis://:[redacted]@h:6379/0"),
            ("sqlite://./rampart-data/rampart.db", "sqlite://./rampart-data/rampart.db"),
            ("u:p@@weird", "[redacted]"),
            ("postgres://u:p@ss@h/db", "postgres://u:[redacted]@h/db"),
        ];
        for (input, want) in cases {
            let u = SecretUrl::new(input);
            assert_eq!(u.redacted(), want, "{input}");
            assert_eq!(format!("{u}"), want);
            assert_eq!(format!("{u:?}"), format!("{want:?}"));
        }
    }
}
