//! `Email`: an e-mail address, parsed once (RFC 5321/5322 syntax) and normalised, so that one
//! mailbox has one spelling and an address cannot pass for another in lists, e-mails and logs.
//!
//! The normal form (what is stored and compared):
//! - the whole address in Unicode normalisation form NFKC, so compatibility look-alikes become
//!   the characters they stand for (fullwidth `ａdmin＠example.test` is `admin@example.test`);
//! - the local part lower-cased (then NFKC again: lower-casing can undo it);
//! - the domain in its ASCII form (IDNA, UTS #46: lower case, punycode for a non-ASCII label:
//!   `bücher.example` is `xn--bcher-kva.example`), so no two spellings of a domain coexist and
//!   a look-alike domain shows as the `xn--` label it is.
//!
//! A new address ([`Email::parse`]) must also have a local part that passes UTS #39's checks:
//! every non-ASCII character allowed in identifiers (no invisible or format characters, no
//! symbols), one script (no Latin mixed with Cyrillic: `аdmin` with a Cyrillic `а` is refused),
//! and not made only of letters that pass for ASCII ones (an all-Cyrillic `аре` reads as `ape`).
//! A submitted address that names an existing account ([`EmailLookup`]) is normalised the same
//! way without those refusals, and also tried in the form stored before normalisation existed.

use serde::{Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use unicode_normalization::UnicodeNormalization;
use unicode_security::{GeneralSecurityProfile, MixedScript};

/// The longest address SMTP can carry (RFC 5321 §4.5.3.1.3, as corrected by erratum 1690), in
/// octets of the normal form.
pub const MAX_LEN: usize = 254;

/// Input longer than this (in bytes, before normalisation) is refused before any work: NFKC
/// composes at most a few characters into one, so such an input cannot have a normal form that
/// fits in [`MAX_LEN`].
const MAX_INPUT_BYTES: usize = 4 * MAX_LEN;

/// A syntactically valid, normalised e-mail address (see the module documentation).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("e-mail address is empty")]
    Empty,
    #[error("e-mail address is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("not a valid e-mail address")]
    Invalid,
    #[error("the domain of the e-mail address is not a valid domain name")]
    InvalidDomain,
    #[error(
        "the e-mail address contains a character not allowed in an address (invisible, a symbol or from a historic script)"
    )]
    DisallowedCharacter,
    #[error("the part before the @ mixes scripts (for example Latin and Cyrillic letters)")]
    MixedScript,
    #[error("the part before the @ is made only of letters that look like Latin ones")]
    Confusable,
}

impl EmailError {
    /// Stable machine code for API errors.
    pub fn code(&self) -> &'static str {
        match self {
            EmailError::Empty => "email_required",
            EmailError::TooLong => "email_too_long",
            EmailError::Invalid => "email_invalid",
            EmailError::InvalidDomain => "email_invalid_domain",
            EmailError::DisallowedCharacter => "email_disallowed_character",
            EmailError::MixedScript => "email_mixed_script",
            EmailError::Confusable => "email_confusable",
        }
    }
}

/// Whether mail to `address` can ever arrive: not when its domain is `invalid` or under it
/// (RFC 2606 reserves it; accounts created from an external identity without an address get
/// one there, and nothing is sent to it).
pub fn is_deliverable(address: &str) -> bool {
    let domain = address.rsplit_once('@').map_or("", |(_, d)| d).trim_end_matches('.').to_ascii_lowercase();
    !(domain == "invalid" || domain.ends_with(".invalid"))
}

impl Email {
    /// A new address (registration, an account created by an administrator or the CLI):
    /// syntax, normal form, and the UTS #39 checks of the local part.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let email = Self::normalise(input, true)?;
        check_local_part(email.local_part())?;
        Ok(email)
    }

    /// Syntax and normal form; with `new`, the local part's characters are checked before the
    /// syntax, so that an invisible one is named as such. See [`EmailLookup`] for the address
    /// of an existing account.
    fn normalise(input: &str, new: bool) -> Result<Self, EmailError> {
        if input.trim().is_empty() {
            return Err(EmailError::Empty);
        }
        if input.len() > MAX_INPUT_BYTES {
            return Err(EmailError::TooLong);
        }
        let nfkc: String = input.nfkc().collect();
        let trimmed = nfkc.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if new && let Some((local, _)) = trimmed.rsplit_once('@') {
            check_characters(local)?;
        }
        // Display-name forms ("Bob <bob@x>") are valid RFC 5322 but not an address to store.
        if trimmed.contains(['<', '>']) || trimmed.contains(char::is_whitespace) {
            return Err(EmailError::Invalid);
        }
        check_syntax(trimmed)?;
        let (local, domain) = trimmed.rsplit_once('@').ok_or(EmailError::Invalid)?;
        let local: String = local.to_lowercase().nfkc().collect();
        let domain = ascii_domain(domain)?;
        let email = format!("{local}@{domain}");
        if email.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        // The rebuilt address is checked again: lower case or IDNA must not have broken it.
        check_syntax(&email)?;
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// An address that [`Email::parse`] produced earlier and storage kept: not checked again
    /// (the rules may have grown since; a stored account stays reachable).
    pub fn from_stored(stored: String) -> Self {
        Email(stored)
    }

    /// The part before the `@` (used by password rules: a password must not contain it).
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(self.0.as_str(), |(l, _)| l)
    }

    /// The form an address was stored in before normalisation: trimmed and lower-cased, once
    /// the syntax was right.
    fn legacy(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.len() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        if trimmed.contains(['<', '>', ' ']) {
            return Err(EmailError::Invalid);
        }
        check_syntax(trimmed)?;
        Ok(Email(trimmed.to_lowercase()))
    }
}

fn check_syntax(address: &str) -> Result<(), EmailError> {
    let parsed = email_address::EmailAddress::from_str(address).map_err(|_| EmailError::Invalid)?;
    if parsed.domain().is_empty() || parsed.local_part().is_empty() {
        return Err(EmailError::Invalid);
    }
    Ok(())
}

/// The domain's ASCII form: an address literal (`[192.0.2.1]`, `[IPv6:…]`) lower-cased; a name
/// through IDNA (UTS #46 with the STD3 rules: letters, digits and hyphens), lower case and
/// punycode.
fn ascii_domain(domain: &str) -> Result<String, EmailError> {
    if domain.starts_with('[') {
        return Ok(domain.to_ascii_lowercase());
    }
    let ascii = idna::domain_to_ascii_cow(domain.as_bytes(), idna::AsciiDenyList::STD3)
        .map_err(|_| EmailError::InvalidDomain)?;
    if ascii.is_empty() || ascii.starts_with('.') || ascii.ends_with('.') || ascii.contains("..") {
        return Err(EmailError::InvalidDomain);
    }
    Ok(ascii.into_owned())
}

/// UTS #39 for a new local part (already in normal form). ASCII characters are governed by the
/// address syntax alone; the checks concern the others.
fn check_local_part(local: &str) -> Result<(), EmailError> {
    if local.is_ascii() {
        return Ok(());
    }
    check_characters(local)?;
    if !local.is_single_script() {
        return Err(EmailError::MixedScript);
    }
    // A whole-script look-alike: every letter has an ASCII prototype, so the address reads as
    // an ASCII one that is, or could later be, someone else's.
    if unicode_security::skeleton(local).all(|c| c.is_ascii()) {
        return Err(EmailError::Confusable);
    }
    Ok(())
}

/// UTS #39's General Security Profile for the non-ASCII characters of a local part: no
/// invisible or format characters (zero-width space, bidirectional overrides), no symbols or
/// emoji, no historic scripts.
fn check_characters(local: &str) -> Result<(), EmailError> {
    if local.chars().any(|c| !c.is_ascii() && !c.identifier_allowed()) {
        return Err(EmailError::DisallowedCharacter);
    }
    Ok(())
}

/// A submitted address that should name an existing account (login, a forgotten password, an
/// administrator's command): its normal form, without the refusals that only new addresses
/// get (an account stored before them stays reachable), and, when it differs, the form it
/// was stored in before normalisation existed (trimmed and lower-cased), tried second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailLookup {
    normal: Email,
    legacy: Option<Email>,
}

impl EmailLookup {
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let legacy = Email::legacy(input);
        let normal = match (Email::normalise(input, false), &legacy) {
            (Ok(normal), _) => normal,
            // Valid once, but no longer normalisable (a domain IDNA refuses): stored as it was.
            (Err(_), Ok(legacy)) => legacy.clone(),
            (Err(e), Err(_)) => return Err(e),
        };
        let legacy = legacy.ok().filter(|l| *l != normal);
        Ok(EmailLookup { normal, legacy })
    }

    /// The normal form: the one to look up first, and to key throttles by.
    pub fn normal(&self) -> &Email {
        &self.normal
    }

    /// The form stored before normalisation, when it differs from the normal form.
    pub fn legacy(&self) -> Option<&Email> {
        self.legacy.as_ref()
    }

    /// The string a login identifier is counted under (throttles): the normal form of a valid
    /// address, so that spellings of one address share one count; for anything else the
    /// trimmed, lower-cased input.
    pub fn identifier(input: &str) -> String {
        match EmailLookup::parse(input) {
            Ok(lookup) => lookup.normal.0,
            Err(_) => input.trim().to_lowercase(),
        }
    }
}

impl From<Email> for EmailLookup {
    fn from(normal: Email) -> Self {
        EmailLookup { normal, legacy: None }
    }
}

impl From<&Email> for EmailLookup {
    fn from(normal: &Email) -> Self {
        EmailLookup { normal: normal.clone(), legacy: None }
    }
}

impl AsRef<str> for Email {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Email {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Email {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        let e = Email::parse("  Alice.Smith+tag@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "alice.smith+tag@example.com");
        assert_eq!(e.local_part(), "alice.smith+tag");
        assert!(Email::parse("root@localhost").is_ok());
        assert_eq!(Email::parse("x@[192.0.2.1]").unwrap().as_str(), "x@[192.0.2.1]");
    }

    #[test]
    fn rejects_bad_input_with_stable_codes() {
        let cases = [
            ("", EmailError::Empty),
            ("   ", EmailError::Empty),
            ("\u{3000}", EmailError::Empty),
            ("no-at-sign", EmailError::Invalid),
            ("@example.com", EmailError::Invalid),
            ("alice@", EmailError::Invalid),
            ("a b@example.com", EmailError::Invalid),
            ("a\u{a0}b@example.com", EmailError::Invalid),
            ("Bob <bob@example.com>", EmailError::Invalid),
            ("Bob ＜bob@example.com＞", EmailError::Invalid),
            ("alice@@example.com", EmailError::Invalid),
        ];
        for (input, want) in cases {
            assert_eq!(Email::parse(input), Err(want.clone()), "input {input:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
        assert_eq!(Email::parse(&"ａ".repeat(5000)), Err(EmailError::TooLong));
        assert_eq!(EmailError::Invalid.code(), "email_invalid");
    }

    /// Compatibility forms (NFKC) and case: every spelling of one mailbox has one normal form.
    #[test]
    fn look_alike_spellings_share_one_normal_form() {
        let admin = Email::parse("admin@example.test").unwrap();
        for spelling in [
            "ａdmin@example.test",                // fullwidth a
            "ＡＤＭＩＮ@ＥＸＡＭＰＬＥ.ＴＥＳＴ", // fullwidth, upper case
            "admin＠example．test",               // fullwidth @ and full stop
            "ＡDMIN@Example.Test",
            "admin@EXAMPLE.test\u{3000}", // ideographic space, trimmed
            "\u{1d41a}dmin@example.test", // mathematical bold small a
        ] {
            assert_eq!(Email::parse(spelling).as_ref(), Ok(&admin), "{spelling:?}");
        }
        // Precomposed and decomposed é are one address.
        let composed = Email::parse("jos\u{e9}@example.test").unwrap();
        assert_eq!(Email::parse("jose\u{301}@example.test").unwrap(), composed);
        assert_eq!(Email::parse("JOS\u{c9}@example.test").unwrap(), composed);
        assert_eq!(composed.as_str(), "jos\u{e9}@example.test");
    }

    /// RFC 3492 / UTS #46: a domain is stored in its ASCII form, whichever way it was typed.
    #[test]
    fn domains_are_stored_in_their_ascii_form() {
        let want = "bob@xn--bcher-kva.example";
        for spelling in [
            "bob@bücher.example",
            "bob@BÜCHER.example",
            "bob@bu\u{308}cher.example",
            "bob@xn--bcher-kva.example",
            "bob@XN--BCHER-KVA.EXAMPLE",
        ] {
            assert_eq!(Email::parse(spelling).unwrap().as_str(), want, "{spelling:?}");
        }
        assert_eq!(Email::parse("ivan@пример.испытание").unwrap().as_str(), "ivan@xn--e1afmkfd.xn--80akhbyknj4f");
        assert_eq!(Email::parse("a@例え.テスト").unwrap().as_str(), "a@xn--r8jz45g.xn--zckzah");
        // A Cyrillic letter in a Latin domain is no longer hidden: it becomes a punycode label.
        let spoof = Email::parse("admin@exаmple.test").unwrap();
        assert!(spoof.as_str().starts_with("admin@xn--"), "{spoof}");
        assert_ne!(spoof, Email::parse("admin@example.test").unwrap());
        // Not domain names: an invalid punycode label, an underscore (STD3), an empty label.
        for bad in ["bob@xn--a.example", "bob@foo_bar.example", "bob@example..test"] {
            let err = Email::parse(bad).unwrap_err();
            assert!(matches!(err, EmailError::InvalidDomain | EmailError::Invalid), "{bad:?}: {err:?}");
        }
        assert_eq!(Email::parse("bob@xn--a.example"), Err(EmailError::InvalidDomain));
    }

    /// UTS #39 on a new local part: identifier characters, one script, not an ASCII look-alike.
    #[test]
    fn local_parts_that_could_impersonate_are_refused() {
        let refused = [
            ("\u{430}dmin@example.test", EmailError::MixedScript), // Cyrillic а, Latin dmin
            ("p\u{430}ypal@example.test", EmailError::MixedScript),
            ("\u{3bf}mega-omega@example.test", EmailError::MixedScript), // Greek ο with Latin
            ("иван+news@example.test", EmailError::MixedScript),         // the whole local part counts
            ("\u{430}\u{440}\u{435}@example.test", EmailError::Confusable), // Cyrillic "аре" reads "ape"
            ("\u{441}\u{43e}\u{440}\u{435}@example.test", EmailError::Confusable), // "соре" reads "cope"
            ("adm\u{131}n@example.test", EmailError::Confusable),        // dotless ı
            ("ad\u{200b}min@example.test", EmailError::DisallowedCharacter), // zero-width space
            ("admin\u{202e}@example.test", EmailError::DisallowedCharacter), // right-to-left override
            ("admin\u{1f512}@example.test", EmailError::DisallowedCharacter), // emoji
        ];
        for (input, want) in refused {
            assert_eq!(Email::parse(input), Err(want.clone()), "{input:?}");
            assert!(want.code().starts_with("email_"));
        }
        assert_eq!(EmailError::MixedScript.code(), "email_mixed_script");
        assert_eq!(EmailError::Confusable.code(), "email_confusable");
        // One script, not an ASCII look-alike: accepted, as are digits and punctuation with it.
        for ok in [
            "иван@example.test",
            "иван.петров+новости@example.test",
            "josé@example.test",
            "müller@example.test",
            "δοκιμή@example.test",
            "山田太郎@example.test",
            "やまだ.たろう@example.test", // Hiragana and Han together: Japanese
            "user-2024@example.test",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok:?}: {:?}", Email::parse(ok));
        }
    }

    #[test]
    fn lookups_normalise_without_refusing_and_remember_the_old_form() {
        // The normal form of a new address and of a lookup agree.
        let l = EmailLookup::parse("ＡDMIN@Example.Test").unwrap();
        assert_eq!(l.normal().as_str(), "admin@example.test");
        assert_eq!(l.legacy().map(Email::as_str), Some("ａdmin@example.test"));
        // ASCII: no second form to try.
        let l = EmailLookup::parse(" Ann@Example.com ").unwrap();
        assert_eq!(l.normal().as_str(), "ann@example.com");
        assert_eq!(l.legacy(), None);
        // A mixed-script address cannot be registered any more, but one stored earlier is found.
        let l = EmailLookup::parse("\u{430}dmin@example.test").unwrap();
        assert_eq!(l.normal().as_str(), "\u{430}dmin@example.test");
        assert_eq!(l.legacy(), None);
        // A Unicode domain stored as typed before: the old form is the second try.
        let l = EmailLookup::parse("bob@Bücher.example").unwrap();
        assert_eq!(l.normal().as_str(), "bob@xn--bcher-kva.example");
        assert_eq!(l.legacy().map(Email::as_str), Some("bob@bücher.example"));
        assert_eq!(EmailLookup::parse("not an address"), Err(EmailError::Invalid));
        assert_eq!(EmailLookup::from(Email::parse("a@b.example").unwrap()).legacy(), None);
    }

    #[test]
    fn identifiers_of_one_address_are_one() {
        let id = EmailLookup::identifier;
        assert_eq!(id(" Ann@Example.com "), "ann@example.com");
        assert_eq!(id("ａnn@example.com"), id("ann@example.com"));
        assert_eq!(id("ann@EXAMPLE.com"), id("ann@example.com"));
        assert_eq!(id("  Not An Address "), "not an address");
    }
}
