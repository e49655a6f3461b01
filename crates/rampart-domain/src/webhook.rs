//! Signed webhooks, as Standard Webhooks (<https://www.standardwebhooks.com/>) specifies them:
//! endpoint secrets (`whsec_…`), the `webhook-signature` header, the event filters an endpoint
//! subscribes with, the retry schedule, and the address rule of the SSRF guard. Pure: the
//! randomness and the time are arguments.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// What a secret's text starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of a generated secret (the spec asks for 24 to 64).
pub const SECRET_LEN: usize = 32;

/// An endpoint's signing secret. `Debug` hides it; its text is shown once, at creation and
/// at rotation.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(")?;
        f.write_str(crate::secret::REDACTED)?;
        f.write_str(")")
    }
}

impl WebhookSecret {
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = vec![0u8; SECRET_LEN];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// `whsec_` and the base64 of the key, as receivers' libraries take it.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = B64.decode(text.strip_prefix(SECRET_PREFIX)?).ok()?;
        (bytes.len() >= 24 && bytes.len() <= 64).then_some(Self(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key itself (to seal it for storage). Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The text form, `whsec_…`: for the one answer that shows it.
    pub fn reveal(&self) -> String {
        format!("{SECRET_PREFIX}{}", B64.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        #[allow(clippy::expect_used)] // HMAC takes a key of any length
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per secret in force, space-separated (during
/// a rotation's overlap both the new and the old secret sign, so a receiver holding either
/// accepts the delivery).
pub fn signature_header(secrets: &[&WebhookSecret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

/// One event filter of an endpoint: `*` (every event), `auth.*` (a category: `auth.` and
/// anything below it) or an exact action name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    /// Names starting with this (`""` for `*`, `"auth."` for `auth.*`).
    Prefix(String),
    Exact(String),
}

impl EventFilter {
    /// Parses one filter; `None` for anything but `*`, `name.*` or `name` with names made of
    /// `[a-z0-9_]` segments joined by dots.
    pub fn parse(text: &str) -> Option<EventFilter> {
        let segments_ok = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|p| {
                    !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                })
        };
        if text == "*" {
            return Some(EventFilter::Prefix(String::new()));
        }
        if let Some(stem) = text.strip_suffix(".*") {
            return segments_ok(stem).then(|| EventFilter::Prefix(format!("{stem}.")));
        }
        segments_ok(text).then(|| EventFilter::Exact(text.to_string()))
    }

    pub fn matches(&self, action: &str) -> bool {
        match self {
            EventFilter::Prefix(p) => action.starts_with(p.as_str()),
            EventFilter::Exact(a) => action == a,
        }
    }

    /// The text it was parsed from.
    pub fn text(&self) -> String {
        match self {
            EventFilter::Prefix(p) if p.is_empty() => "*".into(),
            EventFilter::Prefix(p) => format!("{p}*"),
            EventFilter::Exact(a) => a.clone(),
        }
    }

    /// `("prefix" | "exact", pattern)`: how the store keeps it (the fan-out matches in SQL).
    pub fn stored(&self) -> (&'static str, &str) {
        match self {
            EventFilter::Prefix(p) => ("prefix", p),
            EventFilter::Exact(a) => ("exact", a),
        }
    }

    pub fn from_stored(kind: &str, pattern: &str) -> Option<EventFilter> {
        match kind {
            "prefix" => Some(EventFilter::Prefix(pattern.to_string())),
            "exact" => Some(EventFilter::Exact(pattern.to_string())),
            _ => None,
        }
    }
}

/// The waits before each retry, after the first attempt fails: about 5 s, 5 min, 30 min, 2 h,
/// 5 h, 10 h, then daily for three days. Ten attempts in all over about four days.
pub const RETRY_SCHEDULE: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(24 * 3600),
    Duration::from_secs(24 * 3600),
    Duration::from_secs(24 * 3600),
];

/// The wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed, with ±20 %
/// jitter from `unit` (uniform in [0, 1)), so endpoints that failed together do not all come
/// back at the same second; `None` when the schedule is spent.
pub fn retry_delay(attempt: u32, unit: f64) -> Option<Duration> {
    let base = RETRY_SCHEDULE.get(usize::try_from(attempt.checked_sub(1)?).ok()?)?;
    let factor = 0.8 + 0.4 * unit.clamp(0.0, 1.0);
    Some(base.mul_f64(factor))
}

/// Why the SSRF guard refuses an address, or `None` for a public unicast one.
pub fn refused_address(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => {
            // An IPv4 address in IPv6 clothing is judged as the IPv4 one.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return refused_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address too.
            if s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return refused_v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8));
            }
            if s[0] == 0x2002 {
                return refused_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
            }
            refused_v6(v6)
        }
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if o == [169, 254, 169, 254] || o == [100, 100, 100, 200] {
        return Some("metadata");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_private() {
        return Some("private");
    }
    if ip.is_link_local() {
        return Some("link_local");
    }
    if ip.is_unspecified() || o[0] == 0 {
        return Some("unspecified");
    }
    if ip.is_broadcast() || ip.is_multicast() || o[0] >= 240 {
        return Some("not_unicast");
    }
    if o[0] == 100 && (o[1] & 0xc0) == 64 {
        return Some("shared"); // 100.64.0.0/10, carrier-grade NAT
    }
    if o[0] == 198 && (o[1] & 0xfe) == 18 {
        return Some("benchmarking"); // 198.18.0.0/15
    }
    if ip.is_documentation() || (o[0] == 192 && o[1] == 0 && o[2] == 0) {
        return Some("reserved");
    }
    None
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if s == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254] {
        return Some("metadata");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if (s[0] & 0xfe00) == 0xfc00 {
        return Some("private"); // fc00::/7, unique local
    }
    if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        return Some("link_local"); // fe80::/10, and the old site-local fec0::/10
    }
    if ip.is_multicast() {
        return Some("not_unicast");
    }
    if s[0] == 0x2001 && s[1] == 0xdb8 {
        return Some("reserved");
    }
    if s[0..6] == [0, 0, 0, 0, 0, 0] {
        return Some("reserved"); // IPv4-compatible (deprecated)
    }
    None
}

/// Whether the guard lets a connection to `ip` go: a public unicast address, or one inside a
/// network the operator listed (`webhooks.allow_networks`, for receivers on a private network).
pub fn address_allowed(ip: IpAddr, allow: &[ipnet::IpNet]) -> Result<(), &'static str> {
    if allow.iter().any(|n| n.contains(&ip)) {
        return Ok(());
    }
    match refused_address(ip) {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks specification (the same in every
    /// reference library).
    #[test]
    fn the_specifications_test_vector_signs_alike() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        // Another id, time or body signs differently.
        assert_ne!(secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJeK", 1614265330, br#"{"test": 2432232314}"#), sig);
        assert_ne!(secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, br#"{"test": 2432232314}"#), sig);
        assert_ne!(secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232315}"#), sig);
    }

    #[test]
    fn secrets_round_trip_and_hide() {
        let s = WebhookSecret::generate(&mut rand::rngs::OsRng);
        let text = s.reveal();
        assert!(text.starts_with("whsec_"));
        assert_eq!(WebhookSecret::parse(&text), Some(s.clone()));
        assert!(!format!("{s:?}").contains(&text[6..]));
        for bad in ["", "whsec_", "sec_AAAA", "whsec_!!!!", "whsec_AAAA"] {
            assert!(WebhookSecret::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_rotation_signs_with_both_secrets() {
        let (a, b) = (WebhookSecret::generate(&mut rand::rngs::OsRng), WebhookSecret::generate(&mut rand::rngs::OsRng));
        let h = signature_header(&[&a, &b], "msg_1", 1, b"{}");
        assert_eq!(h, format!("{} {}", a.sign("msg_1", 1, b"{}"), b.sign("msg_1", 1, b"{}")));
    }

    #[test]
    fn filters_parse_and_match() {
        let all = EventFilter::parse("*").unwrap();
        let auth = EventFilter::parse("auth.*").unwrap();
        let login = EventFilter::parse("auth.login").unwrap();
        assert!(all.matches("user.created") && all.matches("auth.login"));
        assert!(auth.matches("auth.login") && auth.matches("auth.refresh.reused") && !auth.matches("authz.denied"));
        assert!(login.matches("auth.login") && !login.matches("auth.login.x") && !login.matches("auth.logout"));
        for f in ["*", "auth.*", "auth.login", "api_key.created"] {
            let parsed = EventFilter::parse(f).unwrap();
            assert_eq!(parsed.text(), f);
            let (kind, pattern) = parsed.stored();
            assert_eq!(EventFilter::from_stored(kind, pattern), Some(parsed.clone()));
        }
        for bad in
            ["", "auth.", ".auth", "auth..login", "Auth.login", "auth.**", "auth*", "*.login", "auth login", "a-b"]
        {
            assert!(EventFilter::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn retries_follow_the_schedule_with_bounded_jitter_then_stop() {
        assert_eq!(retry_delay(1, 0.5), Some(Duration::from_secs(5)));
        assert_eq!(retry_delay(2, 0.5), Some(Duration::from_secs(300)));
        assert_eq!(retry_delay(1, 0.0), Some(Duration::from_secs(4)));
        assert_eq!(retry_delay(1, 1.0), Some(Duration::from_secs(6)));
        let mut last = Duration::ZERO;
        for attempt in 1..=9 {
            let d = retry_delay(attempt, 0.5).unwrap();
            assert!(d >= last, "never shorter than the one before");
            last = d;
        }
        assert_eq!(retry_delay(10, 0.5), None, "ten attempts in all");
        assert_eq!(retry_delay(0, 0.5), None);
    }

    #[test]
    fn the_guard_refuses_internal_addresses_and_lets_listed_networks_through() {
        for (ip, why) in [
            ("127.0.0.1", "loopback"),
            ("127.9.9.9", "loopback"),
            ("::1", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "metadata"),
            ("fd00:ec2::254", "metadata"),
            ("169.254.1.1", "link_local"),
            ("fe80::1", "link_local"),
            ("fc00::1", "private"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("100.64.0.1", "shared"),
            ("224.0.0.1", "not_unicast"),
            ("255.255.255.255", "not_unicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            ("64:ff9b::a00:1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("192.0.2.1", "reserved"),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refused_address(ip), Some(why), "{ip}");
            assert_eq!(address_allowed(ip, &[]), Err(why), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(refused_address(ip), None, "{ip}");
        }
        let allow: Vec<ipnet::IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert_eq!(address_allowed("127.0.0.1".parse().unwrap(), &allow), Ok(()));
        assert_eq!(address_allowed("10.0.0.1".parse().unwrap(), &allow), Err("private"));
    }
}
