//! Where a browser goes after signing in: the `rd` it came with when that is a path on this
//! origin or a URL whose host `gateway.allowed_redirect_hosts` lists, else the account page.
//! Anything a browser could read as another origin (`//evil`, `/\evil`, `https:evil`, control
//! characters a browser strips, encoded slashes) is refused rather than repaired.

use rampart_config::GatewaySettings;

/// Where to go when `rd` is missing or refused.
pub const DEFAULT_TARGET: &str = "/ui/account";

/// A vetted return target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A path (with query) on this origin, starting with a single `/`.
    Local(String),
    /// An absolute `http(s)` URL on an allowed host.
    External(String),
}

impl Target {
    pub fn as_str(&self) -> &str {
        match self {
            Target::Local(s) | Target::External(s) => s,
        }
    }
}

/// Percent-decodes `s` repeatedly (at most three times), for checking only.
fn decoded(s: &str) -> String {
    let mut cur = s.to_string();
    for _ in 0..3 {
        let next: String = percent_decode(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path on this origin: one leading `/`, then no second `/` or `\` at the start, no
/// backslash, whitespace or control character anywhere, even after decoding.
fn local_path(rd: &str) -> bool {
    let plain = decoded(rd);
    [rd, plain.as_str()].iter().all(|s| {
        s.starts_with('/')
            && !s.starts_with("//")
            && !s.contains('\\')
            && !s.chars().any(|c| c.is_control() || c.is_whitespace())
    })
}

/// Vets `rd`: `None` when it is missing, empty or refused.
pub fn vet(rd: Option<&str>, gateway: &GatewaySettings) -> Option<Target> {
    let rd = rd?;
    if rd.is_empty() || rd.len() > 2048 {
        return None;
    }
    if rd.starts_with('/') {
        return local_path(rd).then(|| Target::Local(rd.to_string()));
    }
    // An absolute URL: spelled out in full, nothing a browser would repair or reinterpret.
    let plain = decoded(rd);
    if rd.chars().chain(plain.chars()).any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return None;
    }
    let lower = rd.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"))?;
    if rest.starts_with('/') {
        return None;
    }
    let url = url::Url::parse(rd).ok()?;
    if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let host = url.host_str()?;
    gateway.redirect_allowed(host).then(|| Target::External(url.to_string()))
}

/// Where to send the browser now: the vetted `rd`, or the account page. An external target
/// goes through `/ui/continue` (a same-origin GET), because the CSP's `form-action 'self'`
/// blocks a form post's redirect to another origin.
pub fn after_sign_in(rd: Option<&str>, gateway: &GatewaySettings) -> String {
    match vet(rd, gateway) {
        Some(Target::Local(path)) => path,
        Some(Target::External(url)) => {
            let q: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
            format!("/ui/continue?rd={q}")
        }
        None => DEFAULT_TARGET.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(hosts: &[&str]) -> GatewaySettings {
        let toml = format!("[gateway]\nallowed_redirect_hosts = {hosts:?}\n");
        let config: rampart_config::Config = toml::from_str(&toml).unwrap();
        config.settings().unwrap().gateway
    }

    #[test]
    fn local_paths_are_kept() {
        let g = gateway(&[]);
        for ok in ["/ui/account", "/app?x=1&y=%2Fz", "/", "/a/b#frag", "/%41bc"] {
            assert_eq!(vet(Some(ok), &g), Some(Target::Local(ok.into())), "{ok}");
            assert_eq!(after_sign_in(Some(ok), &g), ok);
        }
    }

    #[test]
    fn every_other_origin_spelling_is_refused() {
        let g = gateway(&["app.example.com"]);
        for bad in [
            "//evil.example",
            "//evil.example/path",
            "///evil.example",
            "https:evil.example",
            "https:/evil.example",
            "https:\\\\evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "\\\\evil.example",
            "%2F%2Fevil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%5Cevil.example",
            "%252F%252Fevil.example",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "http://evil.example",
            "HTTPS://EVIL.EXAMPLE/",
            "https://app.example.com.evil.example/",
            "https://app.example.com@evil.example/",
            "https://evil.example@app.example.com/",
            "https://evil.example\\@app.example.com/",
            "/\t/evil.example",
            "/\n/evil.example",
            "/%09/evil.example",
            "\t//evil.example",
            " //evil.example",
            "evil.example",
            "ftp://app.example.com/",
            "",
        ] {
            assert_eq!(vet(Some(bad), &g), None, "{bad:?}");
            assert_eq!(after_sign_in(Some(bad), &g), DEFAULT_TARGET, "{bad:?}");
        }
        assert_eq!(after_sign_in(None, &g), DEFAULT_TARGET);
    }

    #[test]
    fn allowed_hosts_pass_through_the_same_origin_hop() {
        let g = gateway(&["app.example.com", "*.apps.example.com"]);
        assert_eq!(
            vet(Some("https://app.example.com/orders?id=7"), &g),
            Some(Target::External("https://app.example.com/orders?id=7".into()))
        );
        assert_eq!(
            vet(Some("HTTPS://App.Example.Com/x"), &g),
            Some(Target::External("https://app.example.com/x".into())),
            "case does not matter to the host check"
        );
        assert!(vet(Some("http://x.apps.example.com:8443/"), &g).is_some());
        assert_eq!(
            after_sign_in(Some("https://app.example.com/a?b=c"), &g),
            "/ui/continue?rd=https%3A%2F%2Fapp.example.com%2Fa%3Fb%3Dc"
        );
    }
}
