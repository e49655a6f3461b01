//! The `[ui]` section: the web pages' branding — the product name shown in titles and
//! headings, an optional logo file (read once, at load) and the accent colour.

use crate::settings::checked;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;

/// The largest logo file accepted: it is embedded in memory and served to every page.
pub const MAX_LOGO_BYTES: u64 = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Shown in page titles and the header (1 to 60 characters).
    pub product_name: String,
    /// An SVG, PNG or WebP file shown in the header instead of the default mark (at most
    /// 256 KiB). Read once at start-up.
    pub logo_file: Option<PathBuf>,
    /// Buttons, links and focus rings: `#rrggbb`. Text on it is black or white, whichever
    /// contrasts more; links in dark mode use a lightened shade with AA contrast.
    pub accent_color: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig { product_name: "Rampart".into(), logo_file: None, accent_color: "#2563eb".into() }
    }
}

/// The logo, read from `ui.logo_file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiLogo {
    pub bytes: Arc<[u8]>,
    /// `image/svg+xml`, `image/png` or `image/webp`, by the file's extension.
    pub content_type: &'static str,
    /// The extension served (`svg`, `png`, `webp`).
    pub extension: &'static str,
}

/// `[ui]`, ready to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSettings {
    pub product_name: String,
    pub logo: Option<UiLogo>,
    /// The accent colour as red, green, blue.
    pub accent: [u8; 3],
}

/// `#rrggbb` as three bytes.
fn parse_color(s: &str) -> Option<[u8; 3]> {
    let hex = s.strip_prefix('#').filter(|h| h.len() == 6 && h.chars().all(|c| c.is_ascii_hexdigit()))?;
    let byte = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
    Some([byte(0)?, byte(2)?, byte(4)?])
}

fn logo_type(path: &std::path::Path) -> Option<(&'static str, &'static str)> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "svg" => Some(("image/svg+xml", "svg")),
        "png" => Some(("image/png", "png")),
        "webp" => Some(("image/webp", "webp")),
        _ => None,
    }
}

impl UiConfig {
    fn read_logo(&self) -> Result<Option<UiLogo>, String> {
        let Some(path) = &self.logo_file else { return Ok(None) };
        let (content_type, extension) = logo_type(path)
            .ok_or_else(|| format!("ui.logo_file: must end in .svg, .png or .webp; got {}", path.display()))?;
        let meta = std::fs::metadata(path).map_err(|e| format!("ui.logo_file: cannot read {}: {e}", path.display()))?;
        if meta.len() > MAX_LOGO_BYTES {
            return Err(format!("ui.logo_file: at most {MAX_LOGO_BYTES} bytes; {} has {}", path.display(), meta.len()));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("ui.logo_file: cannot read {}: {e}", path.display()))?;
        Ok(Some(UiLogo { bytes: bytes.into(), content_type, extension }))
    }

    /// Broken rules, each naming its key (the logo file is read to check it).
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let name = self.product_name.trim();
        if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
            p.push(format!("ui.product_name: 1 to 60 characters, no control characters; got {:?}", self.product_name));
        }
        if parse_color(&self.accent_color).is_none() {
            p.push(format!("ui.accent_color: a colour as #rrggbb; got {:?}", self.accent_color));
        }
        if let Err(e) = self.read_logo() {
            p.push(e);
        }
        p
    }

    /// Checks the section, reads the logo and converts it.
    pub fn settings(&self) -> Result<UiSettings, Vec<String>> {
        checked(self.problems(), || UiSettings {
            product_name: self.product_name.trim().to_string(),
            logo: self.read_logo().ok().flatten(),
            accent: parse_color(&self.accent_color).unwrap_or([0x25, 0x63, 0xeb]),
        })
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error.
mod tests {
    use crate::Config;
    use crate::tests::load_err;
    use figment::Jail;
    use std::path::Path;

    #[test]
    fn defaults_and_a_branded_configuration() {
        Jail::expect_with(|jail| {
            let s = Config::load(None).unwrap().settings().unwrap();
            assert_eq!(s.ui.product_name, "Rampart");
            assert_eq!(s.ui.accent, [0x25, 0x63, 0xeb]);
            assert!(s.ui.logo.is_none());

            jail.create_file("logo.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>")?;
            jail.create_file(
                "rampart.toml",
                "[ui]\nproduct_name = \"Acme ID\"\nlogo_file = \"logo.svg\"\naccent_color = \"#0A7D3B\"\n",
            )?;
            let s = Config::load(Some(Path::new("rampart.toml"))).unwrap().settings().unwrap();
            assert_eq!(s.ui.product_name, "Acme ID");
            assert_eq!(s.ui.accent, [0x0a, 0x7d, 0x3b]);
            let logo = s.ui.logo.unwrap();
            assert_eq!(logo.content_type, "image/svg+xml");
            assert!(logo.bytes.starts_with(b"<svg"));
            Ok(())
        });
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        Jail::expect_with(|jail| {
            let e = load_err(jail, "[ui]\naccent_color = \"blue\"\n");
            assert!(e.contains("ui.accent_color: a colour as #rrggbb"), "{e}");
            let e = load_err(jail, "[ui]\nproduct_name = \"\"\n");
            assert!(e.contains("ui.product_name"), "{e}");
            let e = load_err(jail, "[ui]\nlogo_file = \"missing.png\"\n");
            assert!(e.contains("ui.logo_file: cannot read"), "{e}");
            let e = load_err(jail, "[ui]\nlogo_file = \"logo.gif\"\n");
            assert!(e.contains("ui.logo_file: must end in .svg, .png or .webp"), "{e}");
            let e = load_err(jail, "[ui]\ncolour = \"#000000\"\n");
            assert!(e.contains("colour"), "{e}");
            Ok(())
        });
    }
}
