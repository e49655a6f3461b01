//! What a rule matches: host patterns, path patterns (exact, glob, `re:` regex) and methods,
//! each parsed once, plus which pattern surely covers another (for shadow warnings).

use super::path::{canonical_spelling, normalize_path};
use std::fmt;

/// The longest `re:` pattern accepted (characters after the prefix).
pub const MAX_REGEX_LEN: usize = 1024;
/// The compiled size limit of one `re:` pattern (bytes): patterns past it are refused.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// The lazy DFA's cache limit of one `re:` pattern (bytes).
const REGEX_DFA_LIMIT: usize = 1024 * 1024;

/// The methods a rule may name (upper case, as sent).
pub const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"];

/// A host pattern: an exact name (`api.example.com`, `[::1]`) or `*.example.com`, which matches
/// any name that ends in `.example.com`, at any depth (`a.example.com`, `a.b.example.com`), but
/// not `example.com` itself. Compared in lower case; the request's port and trailing dots are
/// ignored ([`normalize_host`](super::normalize_host)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// The suffix with its leading dot: `.example.com`.
    Subdomains(String),
}

fn valid_name(s: &str) -> bool {
    let label = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    s.len() <= 253 && s.split('.').all(label)
}

impl HostPattern {
    /// Parses `api.example.com`, `*.example.com` or a bracketed IPv6 address, in any case.
    pub fn parse(raw: &str) -> Result<HostPattern, String> {
        let s = raw.to_ascii_lowercase();
        if s.is_empty() || s == "*" {
            return Err(format!("{raw:?} is not a host; leave hosts empty to match any host"));
        }
        if s.ends_with('.') {
            return Err(format!("{raw:?}: write it without the trailing dot (requests are compared without it)"));
        }
        if let Some(v6) = s.strip_prefix('[') {
            let ok = v6.strip_suffix(']').is_some_and(|a| {
                !a.is_empty() && a.contains(':') && a.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            });
            return if ok {
                Ok(HostPattern::Exact(s))
            } else {
                Err(format!("{raw:?} is not a bracketed IPv6 address"))
            };
        }
        if s.contains(':') {
            return Err(format!("{raw:?}: no port (the request's port is ignored when matching)"));
        }
        if let Some(rest) = s.strip_prefix("*.") {
            return if valid_name(rest) {
                Ok(HostPattern::Subdomains(format!(".{rest}")))
            } else {
                Err(format!("{raw:?} is not a host pattern: *.example.com, with '*' only as the first label"))
            };
        }
        if valid_name(&s) {
            Ok(HostPattern::Exact(s))
        } else {
            Err(format!("{raw:?} is not a host name or *.example.com"))
        }
    }

    /// Whether a host (as [`normalize_host`](super::normalize_host) gives it) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }

    /// Whether every host `other` matches, this one matches too.
    pub fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (_, HostPattern::Exact(h)) => self.matches(h),
            (HostPattern::Subdomains(a), HostPattern::Subdomains(b)) => b.ends_with(a.as_str()),
            (HostPattern::Exact(_), HostPattern::Subdomains(_)) => false,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Subdomains(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// One segment of a glob.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches itself only.
    Literal(String),
    /// Holds `*`s, each matching any run of characters within one segment (`*` alone: any one
    /// segment; `*.png`: any segment ending in `.png`).
    Wild(String),
    /// `**`: any number of segments, none included.
    Deep,
}

#[derive(Debug, Clone)]
enum PathKind {
    /// The canonical path.
    Exact(String),
    Glob(Vec<Segment>),
    /// Anchored at both ends: the whole path must match.
    Regex(regex::Regex),
}

/// A path pattern, written three ways:
///
/// - exact, `/v1/health`: that path (and `/v1/health/`, as requests lose a trailing slash);
/// - a glob, with `*` for any characters within one segment (`/v1/*/items`, `/img/*.png`) and
///   `**` as a whole segment for any number of segments, none included (`/v1/orders/**`
///   matches `/v1/orders`, `/v1/orders/7` and `/v1/orders/7/lines`; `/**` matches every path);
/// - a regex after `re:` (`re:/v1/users/[0-9]+`), which must match the whole canonical path.
///
/// Exact paths and globs are written in canonical form (no `//`, `.`, `..` or trailing `/`)
/// and compared with the request's canonical path ([`normalize_path`]), so `%41`, `A` and
/// `%61`… spell what they spell in a request. A regex sees the canonical path too: unreserved
/// characters decoded, other bytes as upper-case `%XX`.
#[derive(Debug, Clone)]
pub struct PathPattern {
    source: String,
    kind: PathKind,
}

fn parse_glob_segment(seg: &str) -> Result<Segment, String> {
    if seg == "**" {
        Ok(Segment::Deep)
    } else if seg.contains("**") {
        Err(format!("'**' must be a whole segment; got {seg:?}"))
    } else if seg.contains('*') {
        Ok(Segment::Wild(seg.to_string()))
    } else {
        Ok(Segment::Literal(seg.to_string()))
    }
}

impl PathPattern {
    /// Parses an exact path, a glob or `re:<regex>` (see the type's docs); the error says why.
    pub fn parse(raw: &str) -> Result<PathPattern, String> {
        if let Some(re) = raw.strip_prefix("re:") {
            if re.len() > MAX_REGEX_LEN {
                return Err(format!("the regex is longer than {MAX_REGEX_LEN} characters"));
            }
            let build = |source: &str| {
                regex::RegexBuilder::new(source).size_limit(REGEX_SIZE_LIMIT).dfa_size_limit(REGEX_DFA_LIMIT).build()
            };
            let regex = build(&format!("^(?:{re})$")).map_err(|e| {
                // Say what is wrong with the regex as written, not with its anchored form.
                let e = build(re).err().unwrap_or(e);
                format!("not a valid regex {re:?}: {}", one_line(&e.to_string()))
            })?;
            return Ok(PathPattern { source: raw.to_string(), kind: PathKind::Regex(regex) });
        }
        if !raw.starts_with('/') {
            return Err(format!("{raw:?} must start with '/' (or be re:<regex>)"));
        }
        if raw.contains(['?', '#']) {
            return Err(format!("{raw:?}: a path pattern holds no query or fragment"));
        }
        if raw.contains(['{', '}']) {
            return Err(format!("{raw:?}: no {{name}} placeholders; '*' matches one segment, '**' any number"));
        }
        let spelled = canonical_spelling(raw).map_err(|e| format!("{raw:?}: {e}"))?;
        if spelled != "/" {
            for seg in spelled[1..].split('/') {
                if seg.is_empty() || seg == "." || seg == ".." {
                    let hint = normalize_path(raw).map(|p| format!("; write {p:?}")).unwrap_or_default();
                    return Err(format!("{raw:?} is not in canonical form (no '//', '.', '..' or trailing '/'){hint}"));
                }
            }
        }
        let kind = if spelled.contains('*') {
            let segments = spelled[1..]
                .split('/')
                .map(parse_glob_segment)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{raw:?}: {e}"))?;
            PathKind::Glob(segments)
        } else {
            PathKind::Exact(spelled)
        };
        Ok(PathPattern { source: raw.to_string(), kind })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether a canonical path ([`normalize_path`]) matches.
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            PathKind::Exact(p) => p == path,
            PathKind::Glob(segments) => {
                let parts: Vec<&str> = if path == "/" { Vec::new() } else { path[1..].split('/').collect() };
                glob_match(segments, &parts)
            }
            PathKind::Regex(re) => re.is_match(path),
        }
    }

    /// A glob of `**` segments only (`/**`): every path.
    fn matches_every_path(&self) -> bool {
        matches!(&self.kind, PathKind::Glob(s) if s.iter().all(|s| *s == Segment::Deep))
    }

    /// Whether every path `other` matches, this one surely matches too. `false` when that
    /// cannot be shown (a regex covers only an identical regex, or when this is `/**`).
    pub fn covers(&self, other: &PathPattern) -> bool {
        if self.matches_every_path() {
            return true;
        }
        match (&self.kind, &other.kind) {
            (_, PathKind::Exact(p)) => self.matches(p),
            (PathKind::Glob(a), PathKind::Glob(b)) => glob_covers(a, b),
            (PathKind::Regex(a), PathKind::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Wildcard matching where `star(p)` matches any run of items and `one(p, t)` exactly one item:
/// greedy, going back to the last star on a mismatch. Linear in practice, O(n·m) at worst.
fn wildcard<P, T>(pat: &[P], text: &[T], star: impl Fn(&P) -> bool, one: impl Fn(&P, &T) -> bool) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() && star(&pat[p]) {
            back = Some((p, t));
            p += 1;
        } else if p < pat.len() && one(&pat[p], &text[t]) {
            p += 1;
            t += 1;
        } else if let Some((bp, bt)) = back {
            p = bp + 1;
            t = bt + 1;
            back = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(star)
}

/// Whether one segment matches a segment pattern holding `*`s.
fn segment_match(pattern: &str, segment: &str) -> bool {
    wildcard(pattern.as_bytes(), segment.as_bytes(), |&b| b == b'*', |&a, &b| a == b)
}

fn glob_match(pattern: &[Segment], parts: &[&str]) -> bool {
    wildcard(
        pattern,
        parts,
        |s| *s == Segment::Deep,
        |s, part| match s {
            Segment::Literal(l) => l == part,
            Segment::Wild(w) => segment_match(w, part),
            Segment::Deep => true,
        },
    )
}

/// Whether every segment `b` matches, `a` matches too (`false` when unsure).
fn segment_covers(a: &Segment, b: &Segment) -> bool {
    match (a, b) {
        (Segment::Wild(w), _) if w == "*" => !matches!(b, Segment::Deep),
        (Segment::Literal(x), Segment::Literal(y)) => x == y,
        (Segment::Wild(w), Segment::Literal(l)) => segment_match(w, l),
        (Segment::Wild(x), Segment::Wild(y)) => x == y,
        _ => false,
    }
}

/// Whether every path glob `b` matches, glob `a` matches too. Sound, not complete: `true` only
/// when it holds. `cover[i][j]`: `a[i..]` covers `b[j..]`.
fn glob_covers(a: &[Segment], b: &[Segment]) -> bool {
    let (n, m) = (a.len(), b.len());
    let mut cover = vec![vec![false; m + 1]; n + 1];
    cover[n][m] = true;
    for i in (0..n).rev() {
        for j in (0..=m).rev() {
            cover[i][j] = if a[i] == Segment::Deep {
                // `**` matches nothing here, or swallows all that b's next segment matches.
                cover[i + 1][j] || (j < m && cover[i][j + 1])
            } else {
                j < m && segment_covers(&a[i], &b[j]) && cover[i + 1][j + 1]
            };
        }
    }
    cover[0][0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PathPattern {
        PathPattern::parse(s).unwrap()
    }

    fn h(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap()
    }

    #[test]
    fn host_patterns() {
        assert_eq!(h("API.Example.com"), HostPattern::Exact("api.example.com".into()));
        assert!(h("api.example.com").matches("api.example.com"));
        assert!(!h("api.example.com").matches("xapi.example.com"));
        let wild = h("*.example.com");
        assert!(wild.matches("a.example.com"));
        assert!(wild.matches("a.b.example.com"));
        assert!(!wild.matches("example.com"));
        assert!(!wild.matches("evilexample.com"));
        assert!(!wild.matches("example.com.evil.net"));
        assert!(h("[::1]").matches("[::1]"));
        for bad in [
            "",
            "*",
            "a.*.com",
            "*example.com",
            "**.example.com",
            "a..b",
            "a.example.com:8080",
            "a b",
            "a.com.",
            "[zz]",
            "[]",
            "é.com",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(wild.to_string(), "*.example.com");
    }

    #[test]
    fn host_coverage() {
        assert!(h("*.example.com").covers(&h("a.example.com")));
        assert!(h("*.example.com").covers(&h("*.a.example.com")));
        assert!(h("*.example.com").covers(&h("*.example.com")));
        assert!(!h("*.example.com").covers(&h("example.com")));
        assert!(!h("*.a.example.com").covers(&h("*.example.com")));
        assert!(!h("a.example.com").covers(&h("*.example.com")));
        assert!(h("a.example.com").covers(&h("a.example.com")));
    }

    #[test]
    fn exact_paths() {
        let x = p("/v1/health");
        assert!(x.matches("/v1/health"));
        assert!(!x.matches("/v1/health/x"));
        assert!(!x.matches("/v1/healthz"));
        assert!(!x.matches("/V1/health"), "paths are case-sensitive");
        assert!(p("/").matches("/") && !p("/").matches("/a"));
        assert!(p("/caf%c3%a9").matches("/caf%C3%A9"), "escapes are canonical in patterns too");
        assert!(p("/%61dmin").matches("/admin"));
    }

    #[test]
    fn globs() {
        let deep = p("/v1/orders/**");
        for ok in ["/v1/orders", "/v1/orders/7", "/v1/orders/7/lines"] {
            assert!(deep.matches(ok), "{ok}");
        }
        for no in ["/v1/order", "/v1/ordersx", "/v1", "/", "/v2/orders/7"] {
            assert!(!deep.matches(no), "{no}");
        }
        let one = p("/v1/*/items");
        assert!(one.matches("/v1/orders/items"));
        assert!(!one.matches("/v1/items"));
        assert!(!one.matches("/v1/a/b/items"));
        let ext = p("/img/*.png");
        assert!(ext.matches("/img/a.png") && ext.matches("/img/.png"));
        assert!(!ext.matches("/img/a.png/x") && !ext.matches("/img/a.jpg") && !ext.matches("/img/sub/a.png"));
        let all = p("/**");
        assert!(all.matches("/") && all.matches("/a/b/c"));
        let mid = p("/a/**/z");
        for ok in ["/a/z", "/a/b/z", "/a/b/c/z", "/a/z/z"] {
            assert!(mid.matches(ok), "{ok}");
        }
        assert!(!mid.matches("/a/b") && !mid.matches("/a/z/b"));
        let star = p("/*");
        assert!(star.matches("/a") && !star.matches("/") && !star.matches("/a/b"));
        assert!(p("/a*b*c").matches("/aXbYc") && p("/a*b*c").matches("/abc") && !p("/a*b*c").matches("/acb"));
    }

    #[test]
    fn regexes_match_the_whole_canonical_path() {
        let re = p("re:/v1/users/[0-9]+");
        assert!(re.matches("/v1/users/42"));
        assert!(!re.matches("/v1/users/42/keys"), "anchored at the end");
        assert!(!re.matches("/x/v1/users/42"), "anchored at the start");
        let alt = p("re:/a|/b");
        assert!(alt.matches("/a") && alt.matches("/b") && !alt.matches("/ab") && !alt.matches("/b/x"));
        assert!(p("re:/caf%C3%A9").matches("/caf%C3%A9"));
        let any_case = p("re:(?i)/admin(/.*)?");
        assert!(any_case.matches("/ADMIN") && any_case.matches("/Admin/x") && !any_case.matches("/administrator"));
    }

    #[test]
    fn bad_patterns_say_why() {
        for (bad, says) in [
            ("v1/x", "must start with '/'"),
            ("/v1/x?y=1", "no query"),
            ("/users/{id}", "placeholders"),
            ("/a//b", "canonical form"),
            ("/a/../b", "write \"/b\""),
            ("/a/./b", "canonical form"),
            ("/a/", "canonical form"),
            ("/a/**b", "whole segment"),
            ("/a/***", "whole segment"),
            ("/a%2Fb", "encoded '/'"),
            ("/a;b", "';'"),
            ("re:/a(", "not a valid regex"),
            ("re:/[", "not a valid regex"),
        ] {
            let err = PathPattern::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let long = format!("re:{}", "a".repeat(MAX_REGEX_LEN + 1));
        assert!(PathPattern::parse(&long).unwrap_err().contains("longer"));
        // Compiles past the size limit: refused, not a slow pattern.
        let huge = PathPattern::parse("re:/(\\w{100}){100}").unwrap_err();
        assert!(huge.contains("not a valid regex"), "{huge}");
    }

    #[test]
    fn coverage_is_certain_or_false() {
        let yes = [
            ("/**", "re:/anything.*"),
            ("/**", "/a/*"),
            ("/a/**", "/a"),
            ("/a/**", "/a/b"),
            ("/a/**", "/a/b/**"),
            ("/a/**", "/a/*/c"),
            ("/a/**", "/a/**"),
            ("/*/b", "/a/b"),
            ("/*/b", "/*/b"),
            ("/*/**", "/a/*/c/**"),
            ("/a/*", "/a/*.png"),
            ("/a/*.png", "/a/x.png"),
            ("/a/**/z", "/a/b/**/z"),
            ("/**/z", "/a/**/z"),
            ("re:/v[0-9]+/.*", "/v1/orders"),
            ("re:/a.*", "re:/a.*"),
        ];
        for (a, b) in yes {
            assert!(p(a).covers(&p(b)), "{a} covers {b}");
        }
        let no = [
            ("/a/**", "/b"),
            ("/a/**", "/**"),
            ("/a/*/**", "/a/**"),
            ("/a/*", "/a/**"),
            ("/a/*", "/a"),
            ("/a/*.png", "/a/*"),
            ("/a/*.png", "/a/*.jpg"),
            ("/a/b", "/a/*"),
            ("re:/a.*", "/a/**"),
            ("re:/a.*", "re:/ab.*"),
            ("/a/**", "re:/a/.*"),
            ("/a/**/z", "/a/**"),
            ("/a", "/a/b"),
        ];
        for (a, b) in no {
            assert!(!p(a).covers(&p(b)), "{a} does not surely cover {b}");
        }
    }
}
