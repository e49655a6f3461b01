//! Request paths and hosts in one canonical form, so a rule judges the path the upstream serves.
//!
//! The gateway sees the path before the upstream does; if the two read a path differently, a
//! request can match a public rule here and reach a protected handler there. So a path is
//! brought to one form for each class of equivalent spellings, and spellings that servers
//! disagree on are refused rather than guessed (the choices of Spring Security's
//! `StrictHttpFirewall`, which refuses the same things):
//!
//! - The query and fragment are dropped (`?`, `#`).
//! - Percent escapes of characters that may stand bare in a path (letters, digits, `-._~`, the
//!   sub-delimiters `!$&'()*+,;=`, `:` and `@`) are decoded (`%2e` is `.`, `%41` is `A`); other
//!   bytes are written as upper-case escapes (`%c3%a9` and a raw `é` both become `%C3%A9`).
//! - Empty segments are dropped (`//admin` is `/admin`), `.` and `..` segments resolved
//!   (`/public/%2e%2e/admin` is `/admin`), and a trailing `/` dropped (`/admin/` is `/admin`).
//! - Refused ([`PathError`]): an encoded `/` or `\` (`/public/..%2Fadmin`), a raw `\`, an
//!   encoded `%` before two hex digits (double encoding), a malformed escape, a control
//!   character (raw or encoded), a `;` (Java servers drop `;…` from a segment, so `/admin;x`
//!   would reach `/admin`), `..` above the root, `//` together with `..` (servers that merge
//!   slashes and servers that do not resolve it differently), more than [`MAX_PATH_LEN`] bytes.
//!
//! Hosts are compared in lower case, without a port and without trailing dots.

use std::borrow::Cow;

/// The longest path the gateway judges; longer ones are refused.
pub const MAX_PATH_LEN: usize = 8192;

/// Why a request path is refused before any rule is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with '/'")]
    NotAbsolute,
    #[error("the path holds an encoded '/' or '\\' (%2F, %5C), which servers read differently")]
    EncodedSlash,
    #[error("the path holds a '\\', which some servers read as '/'")]
    Backslash,
    #[error("the path holds an encoded '%' followed by two hex digits (double encoding)")]
    DoubleEncoding,
    #[error("the path holds a malformed percent escape")]
    BadEscape,
    #[error("the path holds a control character")]
    ControlCharacter,
    #[error("the path holds a ';', which some servers cut a segment at")]
    Semicolon,
    #[error("the path climbs above the root with '..'")]
    AboveRoot,
    #[error("the path holds both '//' and '..', which servers resolve differently")]
    Ambiguous,
    #[error("the path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
}

impl PathError {
    /// A stable name for logs, metrics and the explain answer.
    pub fn code(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "not_absolute",
            PathError::EncodedSlash => "encoded_slash",
            PathError::Backslash => "backslash",
            PathError::DoubleEncoding => "double_encoding",
            PathError::BadEscape => "bad_escape",
            PathError::ControlCharacter => "control_character",
            PathError::Semicolon => "semicolon",
            PathError::AboveRoot => "above_root",
            PathError::Ambiguous => "ambiguous",
            PathError::TooLong => "too_long",
        }
    }
}

/// Bytes that may stand bare in a path segment (RFC 3986 `pchar` without `%`).
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_escaped(out: &mut String, b: u8) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0xf)]));
}

/// The path part of `raw` (up to `?` or `#`) with every byte in its canonical spelling (see the
/// module docs); segments are not touched yet.
pub(crate) fn canonical_spelling(raw: &str) -> Result<String, PathError> {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let bytes = &raw.as_bytes()[..end];
    if bytes.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong);
    }
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
            else {
                return Err(PathError::BadEscape);
            };
            let v = (hi << 4) | lo;
            i += 3;
            match v {
                b'/' | b'\\' => return Err(PathError::EncodedSlash),
                b'%' => out.push_str("%25"),
                v if v.is_ascii_control() => return Err(PathError::ControlCharacter),
                v if is_pchar(v) => out.push(char::from(v)),
                v => push_escaped(&mut out, v),
            }
            continue;
        }
        match b {
            b'\\' => return Err(PathError::Backslash),
            b if b.is_ascii_control() => return Err(PathError::ControlCharacter),
            b'/' => out.push('/'),
            b if is_pchar(b) => out.push(char::from(b)),
            b => push_escaped(&mut out, b),
        }
        i += 1;
    }
    if out.contains(';') {
        return Err(PathError::Semicolon);
    }
    // A literal '%' before two hex digits, however each was spelled (`%2541`, `%25%41%42`):
    // decoded once more by the upstream, it would be another byte.
    let double = out.match_indices("%25").any(|(at, _)| {
        let next = &out.as_bytes()[at + 3..];
        next.len() >= 2 && hex(next[0]).is_some() && hex(next[1]).is_some()
    });
    if double {
        return Err(PathError::DoubleEncoding);
    }
    Ok(out)
}

/// The canonical form of a request path (see the module docs): what rules are matched against.
/// `"/"` for the root; never a trailing `/` otherwise.
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    match already_canonical(raw) {
        Some(path) => Ok(Cow::Borrowed(path)),
        None => canonical_path(raw).map(Cow::Owned),
    }
}

/// The path part of `raw` when it is already in canonical form and every rule of
/// [`canonical_path`] would leave it as it is: unreserved characters and `/` only (nothing to
/// decode, escape or refuse), no empty segment, no segment starting with `.` (so no `.` or
/// `..`), no trailing `/` but the root's. The usual request takes this way; a test holds it to
/// [`canonical_path`]'s answer over every short string of the characters that matter.
fn already_canonical(raw: &str) -> Option<&str> {
    // One pass over the bytes (this runs on every gateway decision): the end of the path,
    // then each byte and the one before it (`//` and `/.` are pairs).
    let end = raw.bytes().position(|b| b == b'?' || b == b'#').unwrap_or(raw.len());
    let path = &raw[..end];
    let b = path.as_bytes();
    if b.first() != Some(&b'/') || b.len() > MAX_PATH_LEN || (b.len() > 1 && b.last() == Some(&b'/')) {
        return None;
    }
    let mut prev = 0u8;
    for &c in b {
        let plain = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'/');
        if !plain || (prev == b'/' && (c == b'/' || c == b'.')) {
            return None;
        }
        prev = c;
    }
    Some(path)
}

/// [`normalize_path`] for any path: spelled canonically, then its segments resolved.
fn canonical_path(raw: &str) -> Result<String, PathError> {
    let spelled = canonical_spelling(raw)?;
    // `spelled` starts with '/': the segments follow it.
    let parts: Vec<&str> = spelled[1..].split('/').collect();
    let last = parts.len() - 1;
    let inner_empty = parts.iter().enumerate().any(|(i, s)| s.is_empty() && i < last);
    let dots = parts.iter().any(|s| *s == "." || *s == "..");
    if inner_empty && dots {
        return Err(PathError::Ambiguous);
    }
    let mut out: Vec<&str> = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            "" | "." => {}
            ".." => {
                if out.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
            }
            s => out.push(s),
        }
    }
    let mut path = String::with_capacity(spelled.len());
    for s in &out {
        path.push('/');
        path.push_str(s);
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(path)
}

/// The host as rules compare it: lower case, the port and trailing dots removed
/// (`App.Example.COM.:8443` is `app.example.com`; `[::1]:8080` is `[::1]`).
pub fn normalize_host(raw: &str) -> Cow<'_, str> {
    let raw = raw.trim();
    let host = if raw.starts_with('[') {
        // An IPv6 literal: up to and including the closing bracket.
        raw.find(']').map_or(raw, |end| &raw[..=end])
    } else if raw.bytes().filter(|&b| b == b':').count() == 1 {
        raw.split_once(':').map_or(raw, |(h, _)| h)
    } else {
        raw
    };
    let host = host.trim_end_matches('.');
    // Most hosts are sent in lower case already: borrowed, not copied.
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_already_canonical_take_the_short_way_to_the_same_answer() {
        // Every string of up to five of these characters (the ones any rule of the general way
        // looks at, and plain ones), with and without a query.
        let alphabet = ['/', '.', 'a', 'Z', '9', '-', '_', '~', '%', '2', 'e', 'F', ';', '\\', ' ', 'é', '?', '#'];
        let mut short = 0;
        let mut stack = vec![String::new()];
        while let Some(s) = stack.pop() {
            let fast = already_canonical(&s);
            if fast.is_some() {
                short += 1;
            }
            assert_eq!(normalize_path(&s).map(Cow::into_owned), canonical_path(&s), "{s:?}");
            if let Some(p) = fast {
                assert_eq!(canonical_path(&s).as_deref(), Ok(p), "{s:?}");
            }
            if s.chars().count() < 5 {
                for c in alphabet {
                    let mut next = s.clone();
                    next.push(c);
                    stack.push(next);
                }
            }
        }
        assert!(short > 1_000, "the short way was taken {short} times");
        assert_eq!(already_canonical("/v1/orders/42?x=1"), Some("/v1/orders/42"));
        assert_eq!(already_canonical("/"), Some("/"));
        for long in ["/a/", "/a//b", "/a/./b", "/a/../b", "/.well-known", "/a%2e", "/a;b", "a"] {
            assert_eq!(already_canonical(long), None, "{long}");
        }
    }

    #[test]
    fn canonical_paths() {
        for (raw, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b"),
            ("/a/b?x=1", "/a/b"),
            ("/a/b#frag", "/a/b"),
            ("/a/b/?x=/../..", "/a/b"),
            ("//admin", "/admin"),
            ("///admin//x", "/admin/x"),
            ("/admin/../public", "/public"),
            ("/public/./x", "/public/x"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2E/admin", "/admin"),
            ("/public/.%2e/admin", "/admin"),
            ("/public/%2e/admin", "/public/admin"),
            ("/a/..", "/"),
            ("/%61dmin", "/admin"),
            ("/users/%40me", "/users/@me"),
            ("/caf%c3%a9", "/caf%C3%A9"),
            ("/café", "/caf%C3%A9"),
            ("/a%20b", "/a%20b"),
            ("/a b", "/a%20b"),
            ("/a%3fb", "/a%3Fb"),
            ("/a%23b", "/a%23b"),
            ("/100%25", "/100%25"),
            ("/100%25x", "/100%25x"),
            ("/a%7e", "/a~"),
            ("/files/*", "/files/*"),
            ("/a/%5B0%5D", "/a/%5B0%5D"),
            ("/a/[0]", "/a/%5B0%5D"),
        ] {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn ambiguous_and_hostile_paths_are_refused() {
        for (raw, err) in [
            ("", PathError::NotAbsolute),
            ("admin", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("http://x/admin", PathError::NotAbsolute),
            ("/public/..%2Fadmin", PathError::EncodedSlash),
            ("/public/..%2fadmin", PathError::EncodedSlash),
            ("/public%2F..%2F..%2Fadmin", PathError::EncodedSlash),
            ("/public/..%5Cadmin", PathError::EncodedSlash),
            ("/public\\..\\admin", PathError::Backslash),
            ("/public/%252e%252e/admin", PathError::DoubleEncoding),
            ("/public/%25%32%65%25%32%65/admin", PathError::DoubleEncoding),
            ("/public/%25%32e/admin", PathError::DoubleEncoding),
            ("/a%2", PathError::BadEscape),
            ("/a%zz", PathError::BadEscape),
            ("/a%", PathError::BadEscape),
            ("/a%00b", PathError::ControlCharacter),
            ("/a%0d%0aX: y", PathError::ControlCharacter),
            ("/a\tb", PathError::ControlCharacter),
            ("/a%7f", PathError::ControlCharacter),
            ("/admin;x", PathError::Semicolon),
            ("/public/..;/admin", PathError::Semicolon),
            ("/admin%3bx", PathError::Semicolon),
            ("/..", PathError::AboveRoot),
            ("/../admin", PathError::AboveRoot),
            ("/a/../../admin", PathError::AboveRoot),
            ("/%2e%2e/admin", PathError::AboveRoot),
            ("/public//../admin", PathError::Ambiguous),
            ("//public/../admin", PathError::Ambiguous),
        ] {
            assert_eq!(normalize_path(raw), Err(err), "{raw}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH_LEN));
        assert_eq!(normalize_path(&long), Err(PathError::TooLong));
        assert_eq!(normalize_path(&format!("/{}", "a".repeat(MAX_PATH_LEN - 1))).map(|p| p.len()), Ok(MAX_PATH_LEN));
    }

    /// Everything percent-decoded once, as an upstream that decodes the whole path sees it.
    fn decode_all(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (b'%', Some(h), Some(l)) => {
                    out.push((h << 4) | l);
                    i += 3;
                }
                (c, _, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The first segment of `path` after RFC 3986 dot-segment removal, as a server reading it
    /// one of several ways sees it: empty segments merged or kept, `;…` cut from segments.
    fn first_segment(path: &str, merge: bool, cut_params: bool) -> Option<String> {
        let mut out: Vec<&str> = Vec::new();
        for seg in path.strip_prefix('/')?.split('/') {
            let seg = if cut_params { seg.split(';').next().unwrap_or("") } else { seg };
            match seg {
                "." => {}
                ".." => {
                    out.pop();
                }
                "" if merge => {}
                s => out.push(s),
            }
        }
        out.first().map(|s| s.to_string())
    }

    /// How upstreams may read a raw path: decoded not at all, once or twice, `\` as `/` or not,
    /// slashes merged or not, `;` parameters cut or not. Whether any of them lands in `/admin`.
    fn some_upstream_reads_admin(raw: &str) -> bool {
        let raw = &raw[..raw.find(['?', '#']).unwrap_or(raw.len())];
        let (once, twice) = (decode_all(raw), decode_all(&decode_all(raw)));
        [raw.to_string(), once, twice].iter().any(|p| {
            [p.clone(), p.replace('\\', "/")].iter().any(|p| {
                [(false, false), (false, true), (true, false), (true, true)]
                    .iter()
                    .any(|&(merge, cut)| first_segment(p, merge, cut).as_deref() == Some("admin"))
            })
        })
    }

    #[test]
    fn random_hostile_paths_never_leave_admin_unseen() {
        use rand::{Rng, SeedableRng};
        const TOKENS: &[&str] = &[
            "/", "/", "/", "/", "admin", "public", "..", ".", "%2e", "%2E", "%2e%2e", ".%2e", "%2f", "%2F", "%5c",
            "\\", ";", ";x", "%3b", "%25", "%252e", "%32", "%65", "%61dmin", "adm%69n", "//", "?", "%3f", "#", "x",
            "%00", "%", "%2", "~", "%7e", "%41", "é", " ",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(16);
        let (mut accepted, mut under_admin) = (0, 0);
        for _ in 0..50_000 {
            let n = rng.gen_range(1..=10);
            let raw: String =
                std::iter::once("/").chain((0..n).map(|_| TOKENS[rng.gen_range(0..TOKENS.len())])).collect();
            let Ok(path) = normalize_path(&raw) else { continue };
            accepted += 1;
            assert_eq!(normalize_path(&path).as_deref(), Ok(&*path), "idempotent: {raw:?}");
            assert!(!path.contains("//") && (path == "/" || !path.ends_with('/')), "{raw:?} → {path:?}");
            assert!(path.split('/').all(|s| s != "." && s != ".."), "{raw:?} → {path:?}");
            let ours = path.split('/').nth(1) == Some("admin");
            under_admin += usize::from(ours);
            assert!(ours || !some_upstream_reads_admin(&raw), "{raw:?} → {path:?} could reach /admin upstream");
        }
        // The generator reaches both sides of the property.
        assert!(accepted > 5_000 && under_admin > 500, "{accepted} accepted, {under_admin} under /admin");
    }

    #[test]
    fn hosts_lose_case_port_and_trailing_dots() {
        for (raw, want) in [
            ("app.example.com", "app.example.com"),
            ("App.Example.COM", "app.example.com"),
            ("app.example.com:8443", "app.example.com"),
            ("app.example.com.", "app.example.com"),
            ("app.example.com..", "app.example.com"),
            ("APP.example.com.:443", "app.example.com"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("::1", "::1"),
            ("", ""),
        ] {
            assert_eq!(normalize_host(raw), want, "{raw}");
        }
    }
}
