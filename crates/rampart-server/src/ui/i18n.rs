//! The pages' text: one catalogue per language (`ui/locales/<lang>.toml`, sections of
//! `key = "text"`), so a translation is one file. English is shipped and is the fallback for a
//! key another catalogue lacks. `{name}` in a text is filled by [`Catalog::fill`].

use std::collections::HashMap;

const ENGLISH: &str = include_str!("../../ui/locales/en.toml");

/// One language's texts, by `section.key`.
#[derive(Debug)]
pub struct Catalog {
    pub lang: &'static str,
    texts: HashMap<String, String>,
}

impl Catalog {
    /// Parses a catalogue file: top-level tables of strings.
    pub fn parse(lang: &'static str, source: &str) -> Result<Catalog, String> {
        let table: toml::Table = toml::from_str(source).map_err(|e| format!("catalogue {lang}: {e}"))?;
        let mut texts = HashMap::new();
        for (section, entries) in table {
            let toml::Value::Table(entries) = entries else {
                return Err(format!("catalogue {lang}: [{section}] must be a table"));
            };
            for (key, text) in entries {
                let toml::Value::String(text) = text else {
                    return Err(format!("catalogue {lang}: {section}.{key} must be a string"));
                };
                texts.insert(format!("{section}.{key}"), text);
            }
        }
        Ok(Catalog { lang, texts })
    }

    /// The English catalogue compiled into the binary.
    pub fn english() -> Catalog {
        // Checked by a unit test; an empty catalogue shows keys rather than failing a request.
        Catalog::parse("en", ENGLISH).unwrap_or(Catalog { lang: "en", texts: HashMap::new() })
    }

    /// The text of `key`, or the key itself when the catalogue lacks it.
    pub fn get<'a>(&'a self, key: &'a str) -> &'a str {
        self.texts.get(key).map_or(key, String::as_str)
    }

    /// Whether the catalogue has `key`.
    pub fn has(&self, key: &str) -> bool {
        self.texts.contains_key(key)
    }

    /// The text of `key` with `{name}` replaced by `value`.
    pub fn fill(&self, key: &str, name: &str, value: &str) -> String {
        self.get(key).replace(&format!("{{{name}}}"), value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_parses_and_every_key_the_templates_and_code_use_exists() {
        let en = Catalog::parse("en", ENGLISH).unwrap();
        let sections: std::collections::HashSet<&str> = en.texts.keys().filter_map(|k| k.split('.').next()).collect();
        let mut missing = Vec::new();
        let mut seen = 0;
        let dirs = [
            concat!(env!("CARGO_MANIFEST_DIR"), "/ui/templates"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/ui"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/ui/pages"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/ui/templates/admin"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/src/ui/admin"),
        ];
        for dir in dirs {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // Every string literal `"section.key"` of a catalogue section is a key.
                for (i, literal) in text.split('"').enumerate() {
                    let Some((section, rest)) = literal.split_once('.') else { continue };
                    let word = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c == '_');
                    if i % 2 == 1 && sections.contains(section) && word(rest) && rest != "html" {
                        seen += 1;
                        if !en.has(literal) {
                            missing.push(format!("{}: {literal}", path.display()));
                        }
                    }
                }
            }
        }
        assert!(seen > 100, "the scan found only {seen} keys");
        assert!(missing.is_empty(), "keys missing from en.toml:\n{}", missing.join("\n"));
        assert_eq!(en.fill("login.title", "x", "y"), en.get("login.title"));
    }
}
