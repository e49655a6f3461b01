//! The accent colour's derived shades: text on it (black or white, whichever contrasts
//! more) and link colours that keep WCAG AA contrast (4.5:1) on the light and dark page
//! backgrounds. Computed once at start-up into the stylesheet's custom properties.

/// The light background links sit on with the least contrast (`--surface` in `style.css`;
/// `--bg` and `--panel` are white).
const LIGHT_BG: [u8; 3] = [0xf6, 0xf7, 0xf9];
/// The dark background links sit on with the least contrast (the dark `--panel`; `--bg` is
/// darker).
const DARK_BG: [u8; 3] = [0x1a, 0x1e, 0x27];
/// WCAG AA for normal text, with a little room for rounding.
const AA: f64 = 4.6;

fn channel(c: u8) -> f64 {
    let c = f64::from(c) / 255.0;
    if c <= 0.039_28 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
}

/// WCAG relative luminance.
fn luminance(c: [u8; 3]) -> f64 {
    0.2126 * channel(c[0]) + 0.7152 * channel(c[1]) + 0.0722 * channel(c[2])
}

/// WCAG contrast ratio of two colours.
pub fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// `c` moved toward `to` by `t` (0..=1).
fn mix(c: [u8; 3], to: [u8; 3], t: f64) -> [u8; 3] {
    let m = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round().clamp(0.0, 255.0) as u8;
    [m(c[0], to[0]), m(c[1], to[1]), m(c[2], to[2])]
}

/// The first shade of `c` toward `to` with AA contrast on `bg`.
fn readable_on(c: [u8; 3], bg: [u8; 3], to: [u8; 3]) -> [u8; 3] {
    (0..=20).map(|i| mix(c, to, f64::from(i) / 20.0)).find(|s| contrast(*s, bg) >= AA).unwrap_or(to)
}

pub fn hex(c: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// The stylesheet's first lines: the custom properties derived from the accent.
pub fn custom_properties(accent: [u8; 3]) -> String {
    let white = [0xff, 0xff, 0xff];
    let black = [0, 0, 0];
    let on_accent = if contrast(white, accent) >= contrast(black, accent) { white } else { black };
    let link_light = readable_on(accent, LIGHT_BG, black);
    let link_dark = readable_on(accent, DARK_BG, white);
    format!(
        ":root{{--accent:{};--on-accent:{};--link-light:{};--link-dark:{}}}\n",
        hex(accent),
        hex(on_accent),
        hex(link_light),
        hex(link_dark)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_aa_contrast_whatever_the_accent() {
        for accent in [[0x25, 0x63, 0xeb], [0xff, 0xee, 0x00], [0x0a, 0x7d, 0x3b], [0, 0, 0], [0xff, 0xff, 0xff]] {
            let css = custom_properties(accent);
            assert!(contrast(readable_on(accent, LIGHT_BG, [0, 0, 0]), LIGHT_BG) >= AA, "{css}");
            assert!(contrast(readable_on(accent, DARK_BG, [255, 255, 255]), DARK_BG) >= AA, "{css}");
        }
        assert!(custom_properties([0x25, 0x63, 0xeb]).contains("--on-accent:#ffffff"));
        assert!(custom_properties([0xff, 0xee, 0x00]).contains("--on-accent:#000000"));
        assert!((contrast([0, 0, 0], [255, 255, 255]) - 21.0).abs() < 0.01);
    }
}
