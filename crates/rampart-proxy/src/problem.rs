//! The proxy's own answers, when it does not forward the upstream's: RFC 9457
//! `application/problem+json` in the shape of the rest of Rampart (`rampart_wire::Problem`),
//! each refusal with its status, stable code and title in one table.

use crate::body::ProxyBody;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use rampart_wire::Problem;
use std::time::Duration;

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Why the proxy answered itself instead of forwarding an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The upstream's concurrency limit is reached (503 `overloaded`, `Retry-After: 1`).
    Overloaded,
    /// The upstream's circuit breaker is open (503 `upstream_unavailable`, `Retry-After`).
    Ejected {
        /// Until the breaker lets a probe through.
        retry_after: Duration,
    },
    /// The upstream could not be reached or broke off (502 `upstream_unavailable`).
    Unreachable,
    /// Connecting, the first byte of the answer, or the next chunk of the request body going
    /// up took too long (504 `upstream_timeout`).
    Timeout {
        /// Which wait ran out: `connect`, `first byte` or `idle`.
        phase: &'static str,
    },
    /// The client stopped sending its request body (503 `request_timeout`, as the server's
    /// own request timeout).
    ClientStalled,
    /// The request could not be forwarded as it is (502 `upstream_unavailable`); only a request
    /// target the upstream's base URL cannot be joined with.
    BadTarget,
}

impl Refusal {
    /// Status, stable code and title: the one table of the proxy's own answers.
    pub fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Refusal::Overloaded => (S::SERVICE_UNAVAILABLE, "overloaded", "Overloaded"),
            Refusal::Ejected { .. } => (S::SERVICE_UNAVAILABLE, "upstream_unavailable", "Upstream unavailable"),
            Refusal::Unreachable | Refusal::BadTarget => {
                (S::BAD_GATEWAY, "upstream_unavailable", "Upstream unavailable")
            }
            Refusal::Timeout { .. } => (S::GATEWAY_TIMEOUT, "upstream_timeout", "Upstream timed out"),
            Refusal::ClientStalled => (S::SERVICE_UNAVAILABLE, "request_timeout", "Request timed out"),
        }
    }

    /// What the client is told; nothing about the upstream's address or the error's cause.
    pub fn detail(&self) -> String {
        match self {
            Refusal::Overloaded => "The upstream has too many requests in flight; retry shortly.".into(),
            Refusal::Ejected { retry_after } => format!(
                "The upstream failed repeatedly and is taken out of service for now; retry in {} s.",
                retry_after.as_secs().max(1)
            ),
            Refusal::Unreachable => "The upstream could not be reached or did not answer.".into(),
            Refusal::Timeout { phase } => format!("The upstream did not answer in time ({phase})."),
            Refusal::ClientStalled => "The request body stopped arriving.".into(),
            Refusal::BadTarget => "The request target cannot be forwarded to the upstream.".into(),
        }
    }

    /// The problem document.
    pub fn to_problem(&self) -> Problem {
        let (status, code, title) = self.parts();
        Problem {
            type_: format!("urn:rampart:problem:{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail: self.detail(),
            code: code.into(),
            request_id: None,
            errors: Vec::new(),
            change_token: None,
        }
    }

    /// The whole answer: status, `Content-Type: application/problem+json`, `Retry-After` where
    /// the client should come back, and the document.
    pub fn into_response(self) -> Response<ProxyBody> {
        let (status, _, _) = self.parts();
        let body = serde_json::to_vec(&self.to_problem()).unwrap_or_else(|_| b"{}".to_vec());
        let retry_after = match &self {
            Refusal::Overloaded | Refusal::ClientStalled => Some(1),
            Refusal::Ejected { retry_after } => Some(retry_after.as_secs().max(1)),
            Refusal::Unreachable | Refusal::Timeout { .. } | Refusal::BadTarget => None,
        };
        let mut res = Response::new(ProxyBody::full(body));
        *res.status_mut() = status;
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_snake_case_and_types_match() {
        for r in [
            Refusal::Overloaded,
            Refusal::Ejected { retry_after: Duration::from_secs(3) },
            Refusal::Unreachable,
            Refusal::Timeout { phase: "connect" },
            Refusal::ClientStalled,
            Refusal::BadTarget,
        ] {
            let p = r.to_problem();
            assert_eq!(p.type_, format!("urn:rampart:problem:{}", p.code));
            assert!(p.code.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(r.parts().0.is_server_error());
            let res = r.into_response();
            assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        }
    }

    #[test]
    fn ejected_says_when_to_come_back() {
        let res = Refusal::Ejected { retry_after: Duration::from_secs(17) }.into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "17");
        let res = Refusal::Overloaded.into_response();
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
    }
}
