//! Logging: the `tracing` subscriber (JSON, or pretty on a terminal) and the per-request span
//! and log lines, with every credential redacted.
//!
//! Redaction is by name, applied before anything is formatted: header values of
//! `Authorization`, `Cookie`, `Set-Cookie`, `X-API-Key`, `X-CSRF-Token`, and the value of any
//! header or query parameter whose (percent-decoded, lower-cased) name contains one of
//! [`SECRET_WORDS`] or a pattern of `log.redact`. URLs inside headers (`Referer`, `Location`)
//! have their query redacted the same way and their fragment whole. Bodies are never logged.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Uri};
use axum::response::Response;
use rampart_config::{LogConfig, LogFormat};
use rampart_domain::secret::REDACTED;
use std::io::IsTerminal;
use std::time::Instant;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Header names whose values are always secret.
const SECRET_HEADERS: &[&str] =
    &["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-csrf-token"];

/// Words that mark a header or query parameter as secret wherever they appear in its name
/// (`X-Amz-Signature` has `sig`, `totp` has `otp`, `pwd` and `pass` cover their variants).
pub const SECRET_WORDS: &[&str] = &[
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pass",
    "pwd",
    "auth",
    "session",
    "sid",
    "code",
    "cookie",
    "otp",
    "jwt",
    "csrf",
    "sig",
    "credential",
    "bearer",
    "assertion",
];

/// The names whose values are redacted: the built-in words plus `log.redact`.
#[derive(Debug, Clone, Default)]
pub struct Redaction {
    extra: Vec<String>,
}

impl Redaction {
    pub fn new(extra: &[String]) -> Self {
        Self { extra: extra.iter().map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect() }
    }

    /// Whether a header or query parameter named `name` carries a secret. Names are
    /// percent-decoded first, so `%70assword` is `password`.
    pub fn is_secret_name(&self, name: &str) -> bool {
        let lower = percent_decode(name).to_ascii_lowercase();
        SECRET_HEADERS.contains(&lower.as_str())
            || SECRET_WORDS.iter().any(|w| lower.contains(w))
            || self.extra.iter().any(|w| lower.contains(w.as_str()))
    }
}

/// Headers whose values are URLs: their query strings and fragments are redacted like the
/// request's own (a password-reset link in a `Referer`, an OAuth `code` in a `Location`).
const URL_HEADERS: &[&str] = &["referer", "location", "content-location", "origin", "refresh"];

/// [`Redaction::is_secret_name`] with the built-in list only.
pub fn is_secret_name(name: &str) -> bool {
    Redaction::default().is_secret_name(name)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Redaction {
    /// A query string with secret values replaced by `[redacted]`.
    fn redact_query(&self, query: &str) -> String {
        query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if self.is_secret_name(k) => format!("{k}={REDACTED}"),
                _ => pair.to_string(),
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A URL with its secret query values and its whole fragment redacted.
    fn redact_url(&self, url: &str) -> String {
        let (url, fragment) = match url.split_once('#') {
            Some((u, _)) => (u, Some(REDACTED)),
            None => (url, None),
        };
        let mut out = match url.split_once('?') {
            Some((base, query)) => format!("{base}?{}", self.redact_query(query)),
            None => url.to_string(),
        };
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        out
    }

    /// `name: value` pairs with secret values replaced by `[redacted]`.
    pub fn redact_headers(&self, headers: &HeaderMap) -> String {
        headers
            .iter()
            .map(|(name, value)| {
                let raw = value.to_str().unwrap_or("[non-ascii]");
                let shown = if self.is_secret_name(name.as_str()) {
                    REDACTED.to_string()
                } else if URL_HEADERS.contains(&name.as_str()) {
                    self.redact_url(raw)
                } else {
                    raw.to_string()
                };
                format!("{name}: {shown}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The path and query with secret query values replaced by `[redacted]`.
    pub fn redact_uri(&self, uri: &Uri) -> String {
        match uri.query() {
            Some(query) => format!("{}?{}", uri.path(), self.redact_query(query)),
            None => uri.path().to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("log.level: {0}")]
    Filter(String),
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// Where process logs go: stdout for the service, stderr for CLI commands whose stdout is
/// their output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    Stdout,
    Stderr,
}

/// Installs the process-wide subscriber. Call once, at start-up.
pub fn init(config: &LogConfig, target: LogTarget) -> Result<(), TelemetryError> {
    let terminal = match target {
        LogTarget::Stdout => std::io::stdout().is_terminal(),
        LogTarget::Stderr => std::io::stderr().is_terminal(),
    };
    let json = match config.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !terminal,
    };
    let dispatch = match target {
        LogTarget::Stdout => dispatch(&config.level, json, std::io::stdout)?,
        LogTarget::Stderr => dispatch(&config.level, json, std::io::stderr)?,
    };
    tracing::dispatcher::set_global_default(dispatch).map_err(|_| TelemetryError::AlreadyInstalled)
}

/// A subscriber writing to `writer`: JSON lines carrying the fields of every enclosing span
/// (so each line of a request has its `request_id`), or human-readable text.
pub fn dispatch<W>(level: &str, json: bool, writer: W) -> Result<tracing::Dispatch, TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::builder().parse(level).map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    Ok(if json {
        tracing::Dispatch::new(
            builder.json().flatten_event(true).with_current_span(false).with_span_list(true).finish(),
        )
    } else {
        tracing::Dispatch::new(builder.with_target(true).finish())
    })
}

/// The request's span (method, redacted path, route, request id; layer 3 of `crate::stack`),
/// with the request's headers logged in it, redacted, at `debug`. With the level above `info`
/// the span is disabled and nothing here formats or allocates (field values are evaluated only
/// when the span is enabled).
pub(crate) fn request_span(redaction: &Redaction, req: &Request, request_id: &HeaderValue) -> tracing::Span {
    let span = tracing::info_span!(
        "request",
        request_id = %request_id.to_str().unwrap_or_default(),
        method = %req.method(),
        path = %redaction.redact_uri(req.uri()),
        route = %crate::http_metrics::route_label(req),
    );
    if !span.is_disabled() {
        span.in_scope(|| tracing::debug!(headers = %redaction.redact_headers(req.headers()), "request received"));
    }
    span
}

/// Runs `answer` in the request's span and logs its end with status and latency (the
/// response's headers, redacted, at `debug`). A disabled span costs nothing here.
pub(crate) async fn logged(
    redaction: &Redaction,
    span: tracing::Span,
    answer: impl std::future::Future<Output = Response>,
) -> Response {
    if span.is_disabled() {
        return answer.await;
    }
    async move {
        let started = Instant::now();
        let res = answer.await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let status = res.status().as_u16();
        tracing::debug!(headers = %redaction.redact_headers(res.headers()), "response headers");
        if res.status().is_server_error() {
            tracing::warn!(status, latency_ms, "request completed");
        } else {
            tracing::info!(status, latency_ms, "request completed");
        }
        res
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_carry_secrets() {
        for n in [
            "Authorization",
            "COOKIE",
            "set-cookie",
            "X-API-Key",
            "x-csrf-token",
            "x-auth-token",
            "refresh_token",
            "password",
            "new_password",
            "client_secret",
            "code",
            "api_key",
            // Named by the security review (issue 15, item 18).
            "pwd",
            "pass",
            "otp",
            "totp",
            "jwt",
            "csrf",
            "sid",
            "sig",
            "signature",
            "credential",
            "X-Amz-Signature",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in ["content-type", "user-agent", "x-request-id", "accept", "limit", "cursor", "q", "since", "format"] {
            assert!(!is_secret_name(n), "{n}");
        }
        let custom = Redaction::new(&["SSN".into()]);
        assert!(custom.is_secret_name("customer_ssn") && !is_secret_name("customer_ssn"));
    }

    #[test]
    fn redacts_headers_and_query_values() {
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Bearer abc.def.ghi"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        let r = Redaction::default();
        let s = r.redact_headers(&h);
        assert!(!s.contains("abc.def.ghi"));
        assert!(s.contains("authorization: [redacted]") && s.contains("content-type: application/json"));
        let uri: Uri = "/v1/auth/verify?token=s3cret&limit=5&api_key=rk_x".parse().unwrap();
        assert_eq!(r.redact_uri(&uri), "/v1/auth/verify?token=[redacted]&limit=5&api_key=[redacted]");
        assert_eq!(r.redact_uri(&"/healthz".parse().unwrap()), "/healthz");
        assert_eq!(
            r.redact_uri(&"/x?%70assword=a&%6Bey=b&q=c".parse().unwrap()),
            "/x?%70assword=[redacted]&%6Bey=[redacted]&q=c"
        );
        let mut h = HeaderMap::new();
        h.insert("referer", HeaderValue::from_static("https://a.example/reset?token=t0k&x=1#id_token=abc"));
        assert_eq!(r.redact_headers(&h), "referer: https://a.example/reset?token=[redacted]&x=1#[redacted]");
    }
}
