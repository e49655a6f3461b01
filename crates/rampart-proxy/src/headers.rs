//! Header rewriting, both ways: hop-by-hop headers (RFC 9110 §7.6.1) dropped, the
//! `X-Forwarded-*` set written, `Host` chosen, a client's `X-Rampart-*` headers stripped before
//! the caller's identity headers go in.

use crate::settings::ForwardedFor;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use std::collections::HashSet;
use std::net::IpAddr;

/// The prefix of the headers Rampart itself sends upstream; a client's copies never pass.
pub const RAMPART_PREFIX: &str = "x-rampart-";

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one connection, never to be forwarded (besides those `Connection`
/// names, and every `Proxy-*`).
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRAILER
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name.as_str() == "keep-alive"
        || name.as_str().starts_with("proxy-")
}

/// The header names listed in the `Connection` headers (lowercase; `close`, `upgrade` and
/// `keep-alive` among them, which are harmless to look up).
fn connection_tokens(headers: &HeaderMap) -> HashSet<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Whether the request asks to switch protocols (`Connection: upgrade` and an `Upgrade`);
/// returns the `Upgrade` value.
pub(crate) fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let upgrade = headers.get(header::UPGRADE)?;
    connection_tokens(headers).contains("upgrade").then(|| upgrade.clone())
}

/// What the proxy knows of the hop the request came in on.
#[derive(Debug, Clone)]
pub(crate) struct Hop<'a> {
    pub client_ip: IpAddr,
    pub proto: &'static str,
    /// The `Host` the client asked for (its header, else the request target's authority).
    pub host: Option<HeaderValue>,
    /// The upstream's own `host[:port]`.
    pub upstream_host: &'a HeaderValue,
    pub preserve_host: bool,
    pub forwarded_for: ForwardedFor,
    /// The protocol to switch to, when the request is an upgrade the proxy will carry.
    pub upgrade: Option<HeaderValue>,
}

/// Removes the hop-by-hop headers, those the `Connection` headers name, and those `also`
/// picks, in place. Most maps have none of them: one pass over the names finds that, and
/// nothing more is done (a header named in `Connection` needs `Connection` there, itself
/// hop-by-hop).
fn remove_hop_by_hop(headers: &mut HeaderMap, also: impl Fn(&HeaderName) -> bool) {
    if !headers.keys().any(|name| is_hop_by_hop(name) || also(name)) {
        return;
    }
    let named = connection_tokens(headers);
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| is_hop_by_hop(name) || named.contains(name.as_str()) || also(name))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// The headers to send upstream: the client's own, rewritten in place.
///
/// Most requests carry no header to drop, so one pass over the names decides whether any has
/// to go, and the forwarding headers replace whatever the client sent under their names.
/// Building a new map instead re-hashed every name the client sent, on every request.
pub(crate) fn request_headers(mut headers: HeaderMap, hop: &Hop<'_>, extra: &[(HeaderName, HeaderValue)]) -> HeaderMap {
    // The chain is read before anything is replaced.
    let chain = match hop.forwarded_for {
        ForwardedFor::Replace => None,
        ForwardedFor::Append => {
            let prior: Vec<&str> = headers
                .get_all(&X_FORWARDED_FOR)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .collect();
            (!prior.is_empty()).then(|| prior.join(", "))
        }
    };
    remove_hop_by_hop(&mut headers, |name| name.as_str().starts_with(RAMPART_PREFIX));
    headers.reserve(extra.len() + 5);

    let host = match (&hop.host, hop.preserve_host) {
        (Some(h), true) => h.clone(),
        _ => hop.upstream_host.clone(),
    };
    headers.insert(header::HOST, host);

    let client = ip_text(hop.client_ip);
    let xff = match chain {
        Some(chain) => format!("{chain}, {client}"),
        None => client,
    };
    match HeaderValue::from_str(&xff) {
        Ok(v) => headers.insert(X_FORWARDED_FOR.clone(), v),
        Err(_) => headers.remove(&X_FORWARDED_FOR),
    };
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(hop.proto));
    match &hop.host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host.clone()),
        None => headers.remove(&X_FORWARDED_HOST),
    };

    if let Some(protocol) = &hop.upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, protocol.clone());
    }

    for (name, value) in extra {
        headers.append(name.clone(), value.clone());
    }
    headers
}

/// `ip` as text: an IPv4 address written octet by octet (`Display` and its formatting
/// machinery cost about ten times as much, on every proxied request), IPv6 through `Display`.
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let mut text = String::with_capacity(15);
            let mut digits = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    text.push('.');
                }
                text.push_str(digits.format(octet));
            }
            text
        }
        IpAddr::V6(v6) => v6.to_string(),
    }
}

/// The upstream's answer headers with the hop-by-hop ones dropped (not a switch): the map
/// itself, as it usually has none.
pub(crate) fn passed_response_headers(mut upstream: HeaderMap) -> HeaderMap {
    remove_hop_by_hop(&mut upstream, |_| false);
    upstream
}

/// The upstream's answer headers, hop-by-hop ones dropped; a `101 Switching Protocols` keeps
/// `Upgrade` and says `Connection: upgrade`.
pub(crate) fn response_headers(upstream: &HeaderMap, switching: bool) -> HeaderMap {
    let mut out = passed_response_headers(upstream.clone());
    if let (true, Some(protocol)) = (switching, upstream.get(header::UPGRADE)) {
        out.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        out.insert(header::UPGRADE, protocol.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ip_text_writes_addresses_as_display_does() {
        for ip in ["0.0.0.0", "127.0.0.1", "10.20.30.40", "255.255.255.255", "192.168.0.9", "::1", "2001:db8::7"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        m
    }

    fn hop(upstream_host: &HeaderValue) -> Hop<'_> {
        Hop {
            client_ip: "203.0.113.7".parse().unwrap(),
            proto: "https",
            host: Some(HeaderValue::from_static("app.example.com")),
            upstream_host,
            preserve_host: false,
            forwarded_for: ForwardedFor::Append,
            upgrade: None,
        }
    }

    fn all(m: &HeaderMap, name: &str) -> Vec<String> {
        m.get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
    }

    #[test]
    fn hop_by_hop_and_connection_named_headers_are_dropped() {
        let inbound = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("connection", "close"),
            ("x-secret-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("accept", "text/html"),
            ("cookie", "a=1"),
        ]);
        let up = HeaderValue::from_static("127.0.0.1:8000");
        let out = request_headers(inbound.clone(), &hop(&up), &[]);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        for gone in [
            "connection",
            "x-secret-hop",
            "keep-alive",
            "proxy-authorization",
            "proxy-connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
        ] {
            assert!(!names.contains(&gone), "{gone} forwarded: {names:?}");
        }
        assert_eq!(all(&out, "accept"), ["text/html"]);
        assert_eq!(all(&out, "cookie"), ["a=1"]);
    }

    #[test]
    fn rampart_headers_from_the_client_never_pass_but_the_callers_do() {
        let inbound = map(&[
            ("X-Rampart-Jwt-Assertion", "forged"),
            ("x-rampart-user", "admin"),
            ("x-rampartish", "kept: not the prefix"),
        ]);
        let up = HeaderValue::from_static("127.0.0.1:8000");
        let extra = [(HeaderName::from_static("x-rampart-jwt-assertion"), HeaderValue::from_static("real"))];
        let out = request_headers(inbound.clone(), &hop(&up), &extra);
        assert_eq!(all(&out, "x-rampart-jwt-assertion"), ["real"]);
        assert!(out.get("x-rampart-user").is_none());
        assert_eq!(all(&out, "x-rampartish"), ["kept: not the prefix"]);
    }

    #[test]
    fn forwarded_headers_are_set_and_the_chain_appended() {
        let inbound = map(&[
            ("host", "app.example.com"),
            ("x-forwarded-for", "198.51.100.1"),
            ("x-forwarded-for", "198.51.100.2, 198.51.100.3"),
            ("x-forwarded-proto", "gopher"),
            ("x-forwarded-host", "evil.example"),
        ]);
        let up = HeaderValue::from_static("127.0.0.1:8000");
        let out = request_headers(inbound.clone(), &hop(&up), &[]);
        assert_eq!(all(&out, "x-forwarded-for"), ["198.51.100.1, 198.51.100.2, 198.51.100.3, 203.0.113.7"]);
        assert_eq!(all(&out, "x-forwarded-proto"), ["https"]);
        assert_eq!(all(&out, "x-forwarded-host"), ["app.example.com"]);
        assert_eq!(all(&out, "host"), ["127.0.0.1:8000"]);

        let mut h = hop(&up);
        h.forwarded_for = ForwardedFor::Replace;
        h.preserve_host = true;
        let out = request_headers(inbound.clone(), &h, &[]);
        assert_eq!(all(&out, "x-forwarded-for"), ["203.0.113.7"]);
        assert_eq!(all(&out, "host"), ["app.example.com"]);

        // Without a host of its own, the client's X-Forwarded-Host does not pass either.
        let mut h = hop(&up);
        h.host = None;
        let out = request_headers(inbound.clone(), &h, &[]);
        assert!(out.get("x-forwarded-host").is_none());
        assert_eq!(all(&out, "host"), ["127.0.0.1:8000"]);
        assert_eq!(all(&out, "x-forwarded-proto"), ["https"]);
    }

    #[test]
    fn an_upgrade_keeps_its_upgrade_headers() {
        let inbound = map(&[("connection", "Upgrade"), ("upgrade", "websocket"), ("sec-websocket-key", "k")]);
        assert_eq!(requested_upgrade(&inbound), Some(HeaderValue::from_static("websocket")));
        assert_eq!(requested_upgrade(&map(&[("upgrade", "websocket")])), None, "needs Connection: upgrade");
        let up = HeaderValue::from_static("127.0.0.1:8000");
        let mut h = hop(&up);
        h.upgrade = requested_upgrade(&inbound);
        let out = request_headers(inbound.clone(), &h, &[]);
        assert_eq!(all(&out, "connection"), ["upgrade"]);
        assert_eq!(all(&out, "upgrade"), ["websocket"]);
        assert_eq!(all(&out, "sec-websocket-key"), ["k"]);
    }

    #[test]
    fn response_hop_by_hop_headers_are_dropped_except_a_switch() {
        let upstream = map(&[
            ("connection", "upgrade, x-hop"),
            ("x-hop", "1"),
            ("upgrade", "websocket"),
            ("transfer-encoding", "chunked"),
            ("keep-alive", "timeout=5"),
            ("content-type", "text/plain"),
        ]);
        let out = response_headers(&upstream, false);
        assert_eq!(out.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["content-type"]);
        let out = passed_response_headers(upstream.clone());
        assert_eq!(out.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["content-type"]);
        for hop in ["keep-alive", "proxy-foo", "transfer-encoding"] {
            let out = passed_response_headers(map(&[(hop, "x"), ("content-type", "text/plain")]));
            assert_eq!(out.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["content-type"], "{hop}");
        }
        let clean = map(&[("content-type", "text/plain"), ("content-length", "2"), ("set-cookie", "a=1")]);
        assert_eq!(passed_response_headers(clean.clone()), clean);
        let out = response_headers(&upstream, true);
        assert_eq!(all(&out, "upgrade"), ["websocket"]);
        assert_eq!(all(&out, "connection"), ["upgrade"]);
        assert!(out.get("x-hop").is_none());
    }
}
