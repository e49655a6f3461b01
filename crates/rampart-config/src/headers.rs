//! The `[headers]` section: the security headers put on every response, and the CSP.

use crate::settings::checked;
use serde::{Deserialize, Serialize};

/// Where browsers send CSP violation reports; appended to the CSP as `report-uri`.
pub const CSP_REPORT_PATH: &str = "/v1/csp-report";

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

/// `[headers]`, ready to use: the header values, rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadersSettings {
    /// Put on every response, in order: `(lowercase name, value)`; headers configured empty
    /// are left out. The CSP (with `report-uri` [`CSP_REPORT_PATH`]) is among them, under
    /// `content-security-policy` or `content-security-policy-report-only`.
    pub fixed: Vec<(&'static str, String)>,
    /// The `Strict-Transport-Security` value (`max-age=…[; includeSubDomains]`), for responses
    /// to HTTPS requests; `None` when `hsts_max_age_secs = 0`.
    pub hsts: Option<String>,
}

impl HeadersConfig {
    /// Broken rules, each naming its key.
    pub fn problems(&self) -> Vec<String> {
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

    /// Checks the section and renders the headers.
    pub fn settings(&self) -> Result<HeadersSettings, Vec<String>> {
        checked(self.problems(), || {
            let csp_name =
                if self.csp_report_only { "content-security-policy-report-only" } else { "content-security-policy" };
            let csp = format!("{}; report-uri {CSP_REPORT_PATH}", self.csp.trim().trim_end_matches(';'));
            let fixed = [
                ("x-content-type-options", if self.content_type_options { "nosniff".into() } else { String::new() }),
                ("x-frame-options", self.frame_options.clone()),
                ("referrer-policy", self.referrer_policy.clone()),
                ("permissions-policy", self.permissions_policy.clone()),
                ("cross-origin-opener-policy", self.cross_origin_opener_policy.clone()),
                (csp_name, csp),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .collect();
            let hsts = (self.hsts_max_age_secs > 0).then(|| {
                let sub = if self.hsts_include_subdomains { "; includeSubDomains" } else { "" };
                format!("max-age={}{sub}", self.hsts_max_age_secs)
            });
            HeadersSettings { fixed, hsts }
        })
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
