//! The wording of security notices: one catalogue per language (`en.rs`, `de.rs`), each a
//! [`Catalogue`] value, so a language missing a sentence does not compile. The layout is in
//! `mail/templates/notice.{txt,html}`.

use rampart_domain::notice::NoticeKind;

mod de;
mod en;

/// Every sentence of a notice in one language.
#[derive(Debug)]
pub struct Catalogue {
    pub lang: &'static str,
    pub hello: &'static str,
    pub when: &'static str,
    pub from_where: &'static str,
    pub device: &'static str,
    pub unknown: &'static str,
    pub if_you: &'static str,
    pub if_not_you: &'static str,
    pub review: &'static str,
    pub footer: &'static str,
    /// (subject, headline) of each kind.
    pub new_sign_in: (&'static str, &'static str),
    pub password_changed: (&'static str, &'static str),
    pub password_reset: (&'static str, &'static str),
    pub factor_added: (&'static str, &'static str),
    pub factor_removed: (&'static str, &'static str),
    pub backup_codes_regenerated: (&'static str, &'static str),
    pub backup_codes_low: (&'static str, &'static str),
    pub passkey_added: (&'static str, &'static str),
    pub api_key_created: (&'static str, &'static str),
    pub account_locked: (&'static str, &'static str),
    pub roles_changed: (&'static str, &'static str),
    pub account_disabled: (&'static str, &'static str),
}

impl Catalogue {
    /// The catalogue of `lang` (English when there is none: the configuration refuses others).
    pub fn of(lang: &str) -> &'static Catalogue {
        match lang {
            "de" => &de::CATALOGUE,
            _ => &en::CATALOGUE,
        }
    }

    /// The subject and headline of a notice of `kind`.
    pub fn texts(&self, kind: NoticeKind) -> (&'static str, &'static str) {
        match kind {
            NoticeKind::NewSignIn => self.new_sign_in,
            NoticeKind::PasswordChanged => self.password_changed,
            NoticeKind::PasswordReset => self.password_reset,
            NoticeKind::FactorAdded => self.factor_added,
            NoticeKind::FactorRemoved => self.factor_removed,
            NoticeKind::BackupCodesRegenerated => self.backup_codes_regenerated,
            NoticeKind::BackupCodesLow => self.backup_codes_low,
            NoticeKind::PasskeyAdded => self.passkey_added,
            NoticeKind::ApiKeyCreated => self.api_key_created,
            NoticeKind::AccountLocked => self.account_locked,
            NoticeKind::RolesChanged => self.roles_changed,
            NoticeKind::AccountDisabled => self.account_disabled,
        }
    }
}
