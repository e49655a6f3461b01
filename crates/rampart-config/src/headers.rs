//! The `[headers]` section: the security headers put on every response, and the CSP.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeadersConfig {
    /// `Strict-Transport-Security` max-age in seconds, sent when the request came over HTTPS
    /// (directly, or `X-Forwarded-Proto: https` from a trusted proxy). 0: never sent.
    pub hsts_max_age_secs: u64,
    pub hsts_include_subdomains: bool,
    /// `X-Content-Type-Options: nosniff`.
    pub content_type_options: bool,
    /// `X-Frame-Options` (`DENY` or `SAMEORIGIN`); empty: not sent. The CSP's
    /// `frame-ancestors` says the same to current browsers.
    pub frame_options: String,
    pub referrer_policy: String,
    pub permissions_policy: String,
    pub cross_origin_opener_policy: String,
    /// The `Content-Security-Policy`. Must contain at least `object-src 'none'` and
    /// `base-uri 'none'`. `report-uri /v1/csp-report` is appended (the report endpoint).
    pub csp: String,
    /// Send the CSP as `Content-Security-Policy-Report-Only` (reports, blocks nothing).
    pub csp_report_only: bool,
}

impl Default for HeadersConfig {
    fn default() -> Self {
        Self {
            hsts_max_age_secs: 31_536_000,
            hsts_include_subdomains: true,
            content_type_options: true,
            frame_options: "DENY".into(),
            referrer_policy: "no-referrer".into(),
            permissions_policy: "camera=(), microphone=(), geolocation=(), payment=()".into(),
            cross_origin_opener_policy: "same-origin".into(),
            csp: "default-src 'none'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
                .into(),
            csp_report_only: false,
        }
    }
}

impl HeadersConfig {
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let csp = self.csp.to_ascii_lowercase();
        for needed in ["object-src 'none'", "base-uri 'none'"] {
            if !csp.contains(needed) {
                p.push(format!("headers.csp: must contain {needed}; got {:?}", self.csp));
            }
        }
        if !self.frame_options.is_empty() && !matches!(self.frame_options.as_str(), "DENY" | "SAMEORIGIN") {
            p.push(format!("headers.frame_options: DENY, SAMEORIGIN or empty; got {:?}", self.frame_options));
        }
        for (key, v) in [
            ("headers.csp", &self.csp),
            ("headers.referrer_policy", &self.referrer_policy),
            ("headers.permissions_policy", &self.permissions_policy),
            ("headers.cross_origin_opener_policy", &self.cross_origin_opener_policy),
        ] {
            if v.chars().any(|c| c.is_control()) {
                p.push(format!("{key}: must not contain control characters"));
            }
        }
        p
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use crate::tests::load_err;
    use figment::Jail;

    #[test]
    fn a_csp_without_the_minimum_is_refused() {
        Jail::expect_with(|jail| {
            let msg = load_err(jail, "[headers]\ncsp = \"default-src 'self'\"\nframe_options = \"ALLOW\"\n");
            assert!(msg.contains("headers.csp: must contain object-src 'none'"), "{msg}");
            assert!(msg.contains("headers.csp: must contain base-uri 'none'"), "{msg}");
            assert!(msg.contains("headers.frame_options"), "{msg}");
            Ok(())
        });
    }
}
