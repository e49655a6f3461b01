//! The pages' static files, compiled into the binary and served under names that carry a
//! hash of their content (`/ui/assets/style.3f9a…css`), so they can be cached for a year: a
//! changed file is a new name. The stylesheet starts with the accent colour's custom
//! properties (`[ui] accent_color`), and the configured logo is served the same way.

use super::theme;
use axum::body::Bytes;
use rampart_config::UiSettings;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

const STYLE: &str = include_str!("../../ui/assets/style.css");
const SCRIPT: &str = include_str!("../../ui/assets/app.js");
const HTMX: &[u8] = include_bytes!("../../ui/assets/htmx-2.0.7.min.js");
const ICON: &[u8] = include_bytes!("../../ui/assets/icon.svg");

/// Where the assets are served.
pub const PREFIX: &str = "/ui/assets/";

/// One file and its media type.
#[derive(Debug, Clone)]
pub struct Asset {
    pub bytes: Bytes,
    pub content_type: &'static str,
}

/// Every asset by its hashed name, and the URL of each one the pages link.
#[derive(Debug)]
pub struct Assets {
    by_name: HashMap<String, Asset>,
    pub style: String,
    pub script: String,
    pub htmx: String,
    pub icon: String,
    pub logo: Option<String>,
}

impl Assets {
    pub fn new(ui: &UiSettings) -> Assets {
        let mut by_name = HashMap::new();
        let mut add = |stem: &str, ext: &str, bytes: Bytes, content_type: &'static str| {
            let hash = hex::encode(&Sha256::digest(&bytes)[..6]);
            let name = format!("{stem}.{hash}.{ext}");
            by_name.insert(name.clone(), Asset { bytes, content_type });
            format!("{PREFIX}{name}")
        };
        let css = format!("{}{STYLE}", theme::custom_properties(ui.accent));
        let style = add("style", "css", Bytes::from(css), "text/css; charset=utf-8");
        let script = add("app", "js", Bytes::from_static(SCRIPT.as_bytes()), "text/javascript; charset=utf-8");
        let htmx = add("htmx", "js", Bytes::from_static(HTMX), "text/javascript; charset=utf-8");
        let icon = add("icon", "svg", Bytes::from_static(ICON), "image/svg+xml");
        let logo = ui.logo.as_ref().map(|l| add("logo", l.extension, Bytes::from(l.bytes.to_vec()), l.content_type));
        Assets { by_name, style, script, htmx, icon, logo }
    }

    /// The asset served under `name` (the part after [`PREFIX`]).
    pub fn get(&self, name: &str) -> Option<&Asset> {
        self.by_name.get(name)
    }

    /// The site icon, also answered at `/favicon.ico`.
    pub fn icon(&self) -> Asset {
        Asset { bytes: Bytes::from_static(ICON), content_type: "image/svg+xml" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash_and_the_accent_is_in_the_stylesheet() {
        let mut ui = rampart_config::Config::default().settings().unwrap().ui;
        let a = Assets::new(&ui);
        let name = a.style.strip_prefix(PREFIX).unwrap();
        assert!(name.starts_with("style.") && name.ends_with(".css"), "{name}");
        let css = std::str::from_utf8(&a.get(name).unwrap().bytes).unwrap().to_string();
        assert!(css.starts_with(":root{--accent:#2563eb"), "{css}");
        assert!(a.get(a.htmx.strip_prefix(PREFIX).unwrap()).is_some());
        assert!(a.get("style.css").is_none());
        ui.accent = [0, 0x80, 0];
        let b = Assets::new(&ui);
        assert_ne!(a.style, b.style, "another accent is another file name");
        assert_eq!(a.script, b.script);
    }
}
