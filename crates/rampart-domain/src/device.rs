//! Devices: a short, human description of a `User-Agent` header ("Chrome 120 on Windows 10"),
//! for session lists and new-device notices.
//!
//! A user agent is whatever the client says it is: the result describes, it never
//! authenticates. Parsing uses the `woothee` rule set; input is capped at
//! [`MAX_USER_AGENT_BYTES`] first so a huge header costs nothing.

use serde::{Deserialize, Serialize};

/// Longest user agent parsed; longer input is cut (on a character boundary) before parsing.
pub const MAX_USER_AGENT_BYTES: usize = 512;

/// What kind of device a user agent describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Desktop,
    Mobile,
    Tablet,
    Bot,
    Unknown,
}

/// A device as described by its user agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// Browser or client name, with its major version when known: "Chrome 120", "Firefox".
    pub browser: Option<String>,
    /// Operating system: "Windows 10", "macOS", "iOS", "Android", "Linux".
    pub os: Option<String>,
    pub kind: DeviceKind,
}

impl Device {
    /// The device nothing is known about (no or an unrecognised user agent).
    pub fn unknown() -> Self {
        Self { browser: None, os: None, kind: DeviceKind::Unknown }
    }
}

/// Describes the device behind a `User-Agent` header. `None`, empty or blank input gives
/// [`Device::unknown`]. Never fails: what is not recognised is `None`/`Unknown`.
pub fn parse_user_agent(ua: Option<&str>) -> Device {
    let Some(ua) = ua.map(|ua| truncate(ua.trim(), MAX_USER_AGENT_BYTES)).filter(|ua| !ua.is_empty()) else {
        return Device::unknown();
    };
    let Some(parsed) = woothee::parser::Parser::new().parse(ua) else {
        return Device::unknown();
    };
    let kind = match parsed.category {
        "pc" => DeviceKind::Desktop,
        "smartphone" | "mobilephone" => DeviceKind::Mobile,
        "crawler" => DeviceKind::Bot,
        _ => DeviceKind::Unknown,
    };
    let kind = if is_tablet(ua, parsed.os, kind) { DeviceKind::Tablet } else { kind };
    Device { browser: browser(parsed.name, parsed.version), os: os(parsed.os), kind }
}

/// At most `max` bytes of `s`, cut back to a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn known(value: &str) -> Option<&str> {
    let value = value.trim();
    (!value.is_empty() && value != woothee::woothee::VALUE_UNKNOWN).then_some(value)
}

/// "Chrome 120" from name "Chrome" and version "120.0.6099.109"; the bare name when the version
/// is unknown or not a number. For HTTP libraries woothee puts the library in the version
/// ("curl", "Java", "python"), which is then the name.
fn browser(name: &str, version: &str) -> Option<String> {
    let name = known(name)?;
    if name == "HTTP Library" {
        return Some(known(version).unwrap_or(name).to_owned());
    }
    let major = known(version).and_then(|v| v.split('.').next()).filter(|m| m.chars().all(|c| c.is_ascii_digit()));
    Some(match major {
        Some(major) if !major.is_empty() => format!("{name} {major}"),
        _ => name.to_owned(),
    })
}

/// woothee's OS names, with Apple's platforms under their current names.
fn os(name: &str) -> Option<String> {
    let name = known(name)?;
    Some(
        match name {
            "Mac OSX" | "Mac OS X" => "macOS",
            "iPhone" | "iPad" | "iPod" | "iOS" => "iOS",
            other => other,
        }
        .to_owned(),
    )
}

/// iPads, Android devices whose user agent lacks "Mobile" (Google's convention for tablets), and
/// agents that say "Tablet" outright. An iPad in desktop mode (iPadOS 13+ sends a Mac user agent)
/// cannot be told from a Mac and stays `Desktop`.
fn is_tablet(ua: &str, os: &str, kind: DeviceKind) -> bool {
    if matches!(kind, DeviceKind::Bot) {
        return false;
    }
    os == "iPad"
        || ua.contains("iPad")
        || (ua.contains("Android") && !ua.contains("Mobile"))
        || ua.contains("Tablet;")
        || ua.contains("; Tablet")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                                  Chrome/120.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 \
                                 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1";
    const SAFARI_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                               Version/16.6 Mobile/15E148 Safari/604.1";
    const SAFARI_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) \
                              Version/17.1 Safari/605.1.15";
    const FIREFOX_LINUX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
    const CHROME_ANDROID_PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                                        Chrome/120.0.6099.144 Mobile Safari/537.36";
    const CHROME_ANDROID_TABLET: &str = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) \
                                         Chrome/120.0.6099.144 Safari/537.36";
    const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    const CURL: &str = "curl/8.5.0";

    fn device(browser: Option<&str>, os: Option<&str>, kind: DeviceKind) -> Device {
        Device { browser: browser.map(str::to_owned), os: os.map(str::to_owned), kind }
    }

    #[test]
    fn chrome_on_windows() {
        assert_eq!(
            parse_user_agent(Some(CHROME_WINDOWS)),
            device(Some("Chrome 120"), Some("Windows 10"), DeviceKind::Desktop)
        );
    }

    #[test]
    fn safari_on_iphone() {
        assert_eq!(parse_user_agent(Some(SAFARI_IPHONE)), device(Some("Safari 17"), Some("iOS"), DeviceKind::Mobile));
    }

    #[test]
    fn safari_on_ipad_is_a_tablet() {
        assert_eq!(parse_user_agent(Some(SAFARI_IPAD)), device(Some("Safari 16"), Some("iOS"), DeviceKind::Tablet));
    }

    #[test]
    fn safari_on_mac() {
        assert_eq!(parse_user_agent(Some(SAFARI_MAC)), device(Some("Safari 17"), Some("macOS"), DeviceKind::Desktop));
    }

    #[test]
    fn firefox_on_linux() {
        assert_eq!(
            parse_user_agent(Some(FIREFOX_LINUX)),
            device(Some("Firefox 121"), Some("Linux"), DeviceKind::Desktop)
        );
    }

    #[test]
    fn android_phone_and_tablet() {
        assert_eq!(
            parse_user_agent(Some(CHROME_ANDROID_PHONE)),
            device(Some("Chrome 120"), Some("Android"), DeviceKind::Mobile)
        );
        assert_eq!(
            parse_user_agent(Some(CHROME_ANDROID_TABLET)),
            device(Some("Chrome 120"), Some("Android"), DeviceKind::Tablet)
        );
    }

    #[test]
    fn googlebot_is_a_bot() {
        let d = parse_user_agent(Some(GOOGLEBOT));
        assert_eq!(d.kind, DeviceKind::Bot);
        assert_eq!(d.browser.as_deref(), Some("Googlebot"));
    }

    #[test]
    fn curl_is_named_and_of_unknown_kind() {
        assert_eq!(parse_user_agent(Some(CURL)), device(Some("curl"), None, DeviceKind::Unknown));
    }

    #[test]
    fn edge_on_windows_and_firefox_tablet() {
        let edge = format!("{CHROME_WINDOWS} Edg/120.0.2210.91");
        assert_eq!(parse_user_agent(Some(&edge)), device(Some("Edge 120"), Some("Windows 10"), DeviceKind::Desktop));
        let firefox_tablet = "Mozilla/5.0 (Android 4.4; Tablet; rv:41.0) Gecko/41.0 Firefox/41.0";
        assert_eq!(
            parse_user_agent(Some(firefox_tablet)),
            device(Some("Firefox 41"), Some("Android"), DeviceKind::Tablet)
        );
    }

    #[test]
    fn missing_empty_and_garbage_are_unknown() {
        assert_eq!(parse_user_agent(None), Device::unknown());
        assert_eq!(parse_user_agent(Some("")), Device::unknown());
        assert_eq!(parse_user_agent(Some("   ")), Device::unknown());
        assert_eq!(parse_user_agent(Some("-")), Device::unknown());
        assert_eq!(parse_user_agent(Some("x")).kind, DeviceKind::Unknown);
    }

    #[test]
    fn long_input_is_cut_on_a_char_boundary() {
        // Multi-byte characters straddling the 512-byte cut must not panic.
        let long = format!("{CHROME_WINDOWS} {}", "é".repeat(10_000));
        assert_eq!(parse_user_agent(Some(&long)).kind, DeviceKind::Desktop);
        let odd = format!("a{}", "日".repeat(1_000));
        let _ = parse_user_agent(Some(&odd));
        assert_eq!(truncate(&odd, MAX_USER_AGENT_BYTES).len(), 511);
        assert_eq!(truncate("short", MAX_USER_AGENT_BYTES), "short");
        // A UA whose interesting part comes after the cut is not recognised from it.
        let padded = format!("{}{CHROME_WINDOWS}", " x".repeat(400));
        assert_eq!(parse_user_agent(Some(&padded)).browser, None);
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        for ua in ["\u{0}", "Mozilla/5.0 (", "Chrome/", "Windows ", "MSIE ;", "Android-", "🔒🔒🔒", "Firefox/..."]
        {
            let _ = parse_user_agent(Some(ua));
        }
    }

    #[test]
    fn kind_serializes_lowercase() {
        assert_eq!(serde_json::to_string(&DeviceKind::Tablet).unwrap(), "\"tablet\"");
        let d = device(Some("Firefox"), None, DeviceKind::Bot);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json, serde_json::json!({"browser": "Firefox", "os": null, "kind": "bot"}));
        assert_eq!(serde_json::from_value::<Device>(json).unwrap(), d);
    }

    #[test]
    fn browser_version_is_major_only() {
        assert_eq!(browser("Chrome", "120.0.6099.109").as_deref(), Some("Chrome 120"));
        assert_eq!(browser("Firefox", "UNKNOWN").as_deref(), Some("Firefox"));
        assert_eq!(browser("Firefox", "").as_deref(), Some("Firefox"));
        assert_eq!(browser("Sleipnir", "beta").as_deref(), Some("Sleipnir"));
        assert_eq!(browser("UNKNOWN", "1.0"), None);
        assert_eq!(browser("HTTP Library", "python").as_deref(), Some("python"));
        assert_eq!(browser("HTTP Library", "UNKNOWN").as_deref(), Some("HTTP Library"));
    }
}
