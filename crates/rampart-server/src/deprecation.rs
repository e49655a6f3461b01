//! What is on its way out of the API, and how a caller learns it: a request that uses a
//! deprecated endpoint, parameter or shape is answered as before, plus
//! `Deprecation: @<unix time>` (RFC 9745: deprecated since then), `Sunset: <HTTP-date>`
//! (RFC 8594: may stop working after then) and `Link: <…>; rel="deprecation"` (what to use
//! instead), and is counted in `rampart_deprecated_uses_total{what}` so an operator can see who
//! still relies on it before the sunset. The OpenAPI document marks the same things
//! `deprecated: true` (whole operations, parameters) or says so in their description.
//!
//! Every deprecation is one entry of [`TABLE`]; the README's "Deprecations" section lists them.

use axum::http::{HeaderMap, HeaderValue};
use rampart_core::metrics::Metrics;

/// One deprecated thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deprecated {
    /// A stable name: the metric's `what` label.
    pub what: &'static str,
    /// Unix time it was deprecated (the release that announced it).
    pub since_unix: i64,
    /// The HTTP-date after which it may stop working.
    pub sunset: &'static str,
    /// Where its replacement is described (a path of this service's documentation).
    pub link: &'static str,
    /// What to do instead, for the documentation.
    pub instead: &'static str,
}

/// 2026-12-07T00:00:00Z, the release of API conformance (issue 25).
const CONFORMANCE_RELEASE: i64 = 1_796_601_600;
/// Six months later.
const CONFORMANCE_SUNSET: &str = "Wed, 30 Jun 2027 23:59:59 GMT";

/// `GET /v1/admin/audit?limit=` above 500: lists take at most 500 items per page.
pub const AUDIT_LIMIT_OVER_500: Deprecated = Deprecated {
    what: "audit_limit_over_500",
    since_unix: CONFORMANCE_RELEASE,
    sunset: CONFORMANCE_SUNSET,
    link: "/openapi.json#/paths/~1v1~1admin~1audit",
    instead: "ask for at most 500 events per page and follow next_cursor",
};

/// `DELETE /v1/me/mfa/webauthn/{id}` with a JSON body: many clients and proxies drop DELETE
/// bodies.
pub const WEBAUTHN_DELETE_BODY: Deprecated = Deprecated {
    what: "webauthn_delete_with_body",
    since_unix: CONFORMANCE_RELEASE,
    sunset: CONFORMANCE_SUNSET,
    link: "/openapi.json#/paths/~1v1~1me~1mfa~1webauthn~1{id}~1remove",
    instead: "POST /v1/me/mfa/webauthn/{id}/remove with the same body, or DELETE without a body within the re-authentication window",
};

/// Every deprecation in force.
pub const TABLE: &[Deprecated] = &[AUDIT_LIMIT_OVER_500, WEBAUTHN_DELETE_BODY];

impl Deprecated {
    /// Adds the three headers to an answer and counts the use.
    pub fn mark(&self, headers: &mut HeaderMap, metrics: &Metrics) {
        metrics.observe_deprecated_use(self.what);
        for (name, value) in self.headers() {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.append(name, v);
            }
        }
    }

    /// The headers' names and values.
    pub fn headers(&self) -> [(&'static str, String); 3] {
        [
            ("deprecation", format!("@{}", self.since_unix)),
            ("sunset", self.sunset.to_string()),
            ("link", format!("<{}>; rel=\"deprecation\"", self.link)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc2822;

    #[test]
    fn each_sunset_is_an_http_date_after_its_deprecation() {
        for d in TABLE {
            // An HTTP-date (IMF-fixdate) is the RFC 2822 form in GMT.
            let sunset = OffsetDateTime::parse(&d.sunset.replace("GMT", "+0000"), &Rfc2822)
                .unwrap_or_else(|e| panic!("{}: sunset {:?}: {e}", d.what, d.sunset));
            assert!(sunset.unix_timestamp() > d.since_unix, "{}", d.what);
            assert!(d.sunset.ends_with(" GMT"), "{}", d.what);
        }
    }

    #[test]
    fn names_are_unique_and_headers_are_rfc_shaped() {
        let mut names: Vec<_> = TABLE.iter().map(|d| d.what).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
        let [(n1, v1), (n2, _), (n3, v3)] = AUDIT_LIMIT_OVER_500.headers();
        assert_eq!((n1, n2, n3), ("deprecation", "sunset", "link"));
        // RFC 9745: a Structured Field Date, `@` and the seconds.
        assert_eq!(v1, "@1796601600");
        assert!(v3.starts_with("</openapi.json") && v3.ends_with("; rel=\"deprecation\""));
        let mut h = HeaderMap::new();
        AUDIT_LIMIT_OVER_500.mark(&mut h, &Metrics::new("sqlite"));
        assert_eq!(h.len(), 3);
    }
}
