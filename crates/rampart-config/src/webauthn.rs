//! The `[webauthn]` section: the relying party that WebAuthn authenticators and passkeys are
//! bound to.

use crate::settings::checked;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebAuthnConfig {
    /// The relying-party id: the domain credentials are scoped to (the origin's host or a
    /// registrable suffix of it). Changing it orphans every registered credential.
    pub rp_id: String,
    /// The name authenticators show for the relying party.
    pub rp_name: String,
    /// The web origin the browser reports (`https://host[:port]`), checked in every ceremony.
    pub origin: String,
    /// Passwordless (passkey) sign-ins begun and not finished, at most, across all clients:
    /// `POST /v1/auth/passkey/start` needs no account, so each stores a row until it expires
    /// (5 minutes). Past this, new ones answer 503 `overloaded`.
    pub max_pending_passkeys: u64,
}

impl Default for WebAuthnConfig {
    fn default() -> Self {
        WebAuthnConfig {
            rp_id: "localhost".into(),
            rp_name: "Rampart".into(),
            origin: "http://localhost:8080".into(),
            max_pending_passkeys: 10_000,
        }
    }
}

impl WebAuthnConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let rp_id = self.rp_id.trim();
        if rp_id.is_empty() || rp_id != self.rp_id || rp_id.contains(['/', ':', ' ']) {
            problems
                .push(format!("webauthn.rp_id: must be a bare domain such as \"example.com\"; got {:?}", self.rp_id));
        }
        if self.max_pending_passkeys == 0 {
            problems.push("webauthn.max_pending_passkeys: must be at least 1".into());
        }
        if self.rp_name.trim().is_empty() {
            problems.push("webauthn.rp_name: must not be empty".into());
        }
        match url::Url::parse(&self.origin) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.path() == "/" && u.query().is_none() => {
                let host = u.host_str().unwrap_or_default();
                if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
                    problems.push(format!(
                        "webauthn.origin: its host {host:?} must be webauthn.rp_id {rp_id:?} or a subdomain of it"
                    ));
                }
                if u.scheme() == "http" && host != "localhost" {
                    problems.push(format!(
                        "webauthn.origin: must be https (http only for localhost); got {:?}",
                        self.origin
                    ));
                }
            }
            _ => problems.push(format!(
                "webauthn.origin: must be an http(s) origin without a path, such as \"https://example.com\"; got {:?}",
                self.origin
            )),
        }
        problems
    }

    /// Checks the section; it is used as it is.
    pub fn settings(&self) -> Result<WebAuthnConfig, Vec<String>> {
        checked(self.problems(), || self.clone())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error.
mod tests {
    use super::*;
    use crate::Config;
    use crate::tests::load_err;
    use figment::Jail;
    use std::path::Path;

    #[test]
    fn defaults_suit_local_development_and_a_site_loads() {
        Jail::expect_with(|jail| {
            assert_eq!(Config::load(None).unwrap().webauthn, WebAuthnConfig::default());
            jail.create_file(
                "rampart.toml",
                "[webauthn]\nrp_id = \"example.com\"\nrp_name = \"Acme\"\norigin = \"https://login.example.com\"\n",
            )?;
            let c = Config::load(Some(Path::new("rampart.toml"))).unwrap();
            assert_eq!(c.webauthn.rp_id, "example.com");
            assert_eq!(c.webauthn.origin, "https://login.example.com");
            Ok(())
        });
    }

    #[test]
    fn broken_keys_are_named() {
        Jail::expect_with(|jail| {
            let e = load_err(jail, "[webauthn]\nrp_id = \"example.com\"\norigin = \"https://evil.test\"\n");
            assert!(e.contains("webauthn.origin"), "{e}");
            let e = load_err(jail, "[webauthn]\nrp_id = \"example.com\"\norigin = \"http://example.com\"\n");
            assert!(e.contains("webauthn.origin: must be https"), "{e}");
            let e = load_err(jail, "[webauthn]\nrp_id = \"https://example.com\"\nrp_name = \"\"\n");
            assert!(e.contains("webauthn.rp_id"), "{e}");
            assert!(e.contains("webauthn.rp_name"), "{e}");
            let e = load_err(jail, "[webauthn]\nrp = \"example.com\"\n");
            assert!(e.contains("rp"), "{e}");
            Ok(())
        });
    }
}
