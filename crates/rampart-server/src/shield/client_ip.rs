//! The client's address: the TCP peer, unless the peer is a trusted proxy
//! (`server.trusted_proxies`), in which case the one header that proxy writes
//! (`server.client_ip_header`: `X-Forwarded-For` by default, `Forwarded` (RFC 7239) or
//! `X-Real-IP`) is read from the right, hop by hop, while the hops are trusted; the first
//! untrusted hop is the client. The other headers are ignored even from a trusted proxy:
//! proxies append to their own header and pass a client's copies of the others through
//! untouched, so reading them would let the client choose its address. From an untrusted peer
//! every forwarding header is ignored; a malformed one from a trusted peer is a 400. The result, [`ClientIp`], is THE address of the
//! request everywhere: events, the login throttle, rate limits, IP rules.

use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use rampart_config::ClientIpHeader;
use std::net::{IpAddr, SocketAddr};

/// The resolved client address (IPv4-mapped IPv6 shown as IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// Whether the request reached Rampart (or its trusted proxy) over HTTPS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Https(pub bool);

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Resolves the client of a request from `peer` and the forwarding headers.
/// `Err` names the malformed header.
pub fn resolve(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    header: ClientIpHeader,
) -> Result<(IpAddr, Option<bool>), &'static str> {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Ok((peer, None));
    }
    let listed = |name: &str| -> Vec<&str> {
        headers.get_all(name).iter().flat_map(|v| v.to_str().unwrap_or("\u{0}").split(',')).map(str::trim).collect()
    };
    let (hops, name): (Vec<&str>, _) = match header {
        ClientIpHeader::XForwardedFor => (listed("x-forwarded-for"), "X-Forwarded-For"),
        ClientIpHeader::Forwarded => (forwarded_for(headers), "Forwarded"),
        ClientIpHeader::XRealIp => (listed("x-real-ip"), "X-Real-IP"),
    };
    if header == ClientIpHeader::XRealIp && hops.len() > 1 {
        return Err(name);
    }
    let proto = match header {
        ClientIpHeader::Forwarded => forwarded_proto(headers),
        ClientIpHeader::XForwardedFor | ClientIpHeader::XRealIp => headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .map(|p| p.trim().eq_ignore_ascii_case("https")),
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        let ip = parse_node(hop).ok_or(name)?;
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Ok((client, proto))
}

/// The `for=` values of every `Forwarded` element, in order (a missing `for=` is kept as an
/// empty, hence malformed, hop).
fn forwarded_for(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("\u{0}").split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .map_or("", |(_, v)| v.trim())
        })
        .collect()
}

fn forwarded_proto(headers: &HeaderMap) -> Option<bool> {
    let v = headers.get("forwarded")?.to_str().ok()?;
    let last = v.rsplit(',').next()?;
    last.split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("proto"))
        .map(|(_, v)| v.trim().trim_matches('"').eq_ignore_ascii_case("https"))
}

/// `192.0.2.1`, `"[2001:db8::1]:443"`, `2001:db8::1`, `192.0.2.1:80`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (ip, tail) = rest.split_once(']')?;
        if !(tail.is_empty() || tail.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok())) {
            return None;
        }
        return ip.parse::<std::net::Ipv6Addr>().ok().map(|ip| canonical(IpAddr::V6(ip)));
    }
    node.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// Puts [`ClientIp`] (and [`Https`] when known) into the request; 400 for a malformed
/// forwarding header from a trusted proxy.
/// The connection's peer address resolved through the trusted proxies, once per request: the
/// security headers read `https` from it, [`apply`] puts the address into the request.
pub(crate) type Resolved = Option<Result<(IpAddr, Option<bool>), &'static str>>;

pub(crate) fn resolve_request(req: &Request, trusted: &[IpNet], header: ClientIpHeader) -> Resolved {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
    Some(resolve(peer, req.headers(), trusted, header))
}

/// Layer 8: the resolved address (and scheme, when the proxy said) into the request's
/// extensions; the refusal (400), which answers instead, when a trusted proxy sent a header that
/// does not parse.
pub(crate) fn apply(resolved: Resolved, req: &mut Request) -> Option<Response> {
    match resolved {
        None => None,
        Some(Ok((ip, https))) => {
            req.extensions_mut().insert(ClientIp(ip));
            if let Some(https) = https {
                req.extensions_mut().insert(Https(https));
            }
            None
        }
        Some(Err(name)) => {
            Some(ApiError::InvalidRequest(format!("malformed {name} header from a trusted proxy")).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored() {
        let spoof = h(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(
            resolve(ip("203.0.113.9"), &spoof, &[], ClientIpHeader::XForwardedFor).unwrap().0,
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve(ip("203.0.113.9"), &spoof, &nets(&["10.0.0.0/8"]), ClientIpHeader::XForwardedFor).unwrap().0,
            ip("203.0.113.9")
        );
        // Even garbage is no error from an untrusted peer: it is simply not read.
        assert!(
            resolve(ip("203.0.113.9"), &h(&[("x-forwarded-for", "garbage")]), &[], ClientIpHeader::XForwardedFor)
                .is_ok()
        );
    }

    #[test]
    fn read_right_to_left_through_trusted_hops_only() {
        let trusted = nets(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        // The client wrote "1.1.1.1" itself; the proxies appended the real hops.
        let xff = h(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.0.0.2")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &xff, &trusted, ClientIpHeader::XForwardedFor).unwrap().0,
            ip("198.51.100.7")
        );
        // Several header lines are one list.
        let split = h(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &split, &trusted, ClientIpHeader::XForwardedFor).unwrap().0,
            ip("198.51.100.7")
        );
        let fwd = h(&[("forwarded", "for=1.1.1.1, for=\"[2001:db8::17]:4711\";proto=https, for=10.0.0.3")]);
        let (client, https) = resolve(ip("10.0.0.1"), &fwd, &trusted, ClientIpHeader::Forwarded).unwrap();
        assert_eq!(client, ip("2001:db8::17"));
        assert_eq!(https, None, "proto is read from the last element (the nearest proxy's), absent here");
        let fwd = h(&[("forwarded", "for=198.51.100.7;proto=https")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &fwd, &trusted, ClientIpHeader::Forwarded).unwrap(),
            (ip("198.51.100.7"), Some(true))
        );
        // Every hop trusted: the leftmost is the client.
        assert_eq!(
            resolve(ip("10.0.0.1"), &h(&[("x-forwarded-for", "10.9.9.9")]), &trusted, ClientIpHeader::XForwardedFor)
                .unwrap()
                .0,
            ip("10.9.9.9")
        );
        // No header from a trusted peer: the peer.
        assert_eq!(
            resolve(ip("10.0.0.1"), &HeaderMap::new(), &trusted, ClientIpHeader::XForwardedFor).unwrap().0,
            ip("10.0.0.1")
        );
        // IPv4-mapped peers count as IPv4.
        assert_eq!(
            resolve(ip("::ffff:10.0.0.1"), &xff, &trusted, ClientIpHeader::XForwardedFor).unwrap().0,
            ip("198.51.100.7")
        );
    }

    /// Issue 15, item 1: behind a proxy that appends to `X-Forwarded-For`, a client's own
    /// `Forwarded` (or `X-Real-IP`) passed through untouched chose its address. Only the
    /// configured header is read.
    #[test]
    fn only_the_configured_header_is_read_from_a_trusted_proxy() {
        let trusted = nets(&["10.0.0.0/8"]);
        let spoofed =
            h(&[("forwarded", "for=10.9.9.9"), ("x-real-ip", "10.9.9.8"), ("x-forwarded-for", "198.51.100.7")]);
        let client = |which| resolve(ip("10.0.0.1"), &spoofed, &trusted, which).unwrap().0;
        assert_eq!(client(ClientIpHeader::XForwardedFor), ip("198.51.100.7"));
        assert_eq!(client(ClientIpHeader::Forwarded), ip("10.9.9.9"));
        assert_eq!(client(ClientIpHeader::XRealIp), ip("10.9.9.8"));
        let real = h(&[("x-real-ip", "203.0.113.5"), ("x-forwarded-for", "10.9.9.9")]);
        assert_eq!(resolve(ip("10.0.0.1"), &real, &trusted, ClientIpHeader::XRealIp).unwrap().0, ip("203.0.113.5"));
    }

    #[test]
    fn malformed_from_a_trusted_peer_is_an_error() {
        let trusted = nets(&["10.0.0.0/8"]);
        for (k, v, which) in [
            ("x-forwarded-for", "198.51.100.7, not-an-ip", ClientIpHeader::XForwardedFor),
            ("x-forwarded-for", "", ClientIpHeader::XForwardedFor),
            ("forwarded", "by=10.0.0.1", ClientIpHeader::Forwarded),
            ("forwarded", "for=unknown", ClientIpHeader::Forwarded),
            ("forwarded", "for=\"[2001:db8::1\"", ClientIpHeader::Forwarded),
            ("x-real-ip", "198.51.100.7, 198.51.100.8", ClientIpHeader::XRealIp),
            ("x-real-ip", "nope", ClientIpHeader::XRealIp),
        ] {
            assert!(resolve(ip("10.0.0.1"), &h(&[(k, v)]), &trusted, which).is_err(), "{k}: {v}");
        }
        // Junk left of the client (written by the client itself) is never read.
        let xff = h(&[("x-forwarded-for", "junk, 198.51.100.7")]);
        assert_eq!(
            resolve(ip("10.0.0.1"), &xff, &trusted, ClientIpHeader::XForwardedFor).unwrap().0,
            ip("198.51.100.7")
        );
    }
}
