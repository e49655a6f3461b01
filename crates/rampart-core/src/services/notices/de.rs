use super::Catalogue;

pub(super) const CATALOGUE: Catalogue = Catalogue {
    lang: "de",
    hello: "Hallo,",
    when: "Wann",
    from_where: "Von",
    device: "Gerät",
    unknown: "unbekannt",
    if_you: "Wenn Sie das waren, ist nichts weiter zu tun.",
    if_not_you: "Wenn nicht, ändern Sie jetzt Ihr Passwort, prüfen Sie Ihre Sitzungen, zweiten Faktoren und API-Schlüssel und melden Sie sich überall sonst ab.",
    review: "Sicherheit Ihres Kontos prüfen",
    footer: "Sie erhalten diese E-Mail, weil sie die Sicherheit Ihres Kontos betrifft. Hinweise zu Änderungen können Sie in den Einstellungen Ihres Kontos abschalten; solche zu Passwort, zweiten Faktoren, Sperren und Änderungen durch Administratoren kommen immer.",
    new_sign_in: (
        "Neue Anmeldung bei Ihrem Konto",
        "Bei Ihrem Konto wurde sich von einem neuen Gerät oder Netz aus angemeldet.",
    ),
    password_changed: ("Ihr Passwort wurde geändert", "Das Passwort Ihres Kontos wurde geändert."),
    password_reset: (
        "Ihr Passwort wurde zurückgesetzt",
        "Das Passwort Ihres Kontos wurde über einen an diese Adresse gesandten Link zurückgesetzt. Alle anderen Sitzungen wurden abgemeldet.",
    ),
    factor_added: (
        "Ein zweiter Faktor wurde hinzugefügt",
        "Eine Authenticator-App (TOTP) wurde Ihrem Konto als zweiter Faktor hinzugefügt.",
    ),
    factor_removed: ("Ein zweiter Faktor wurde entfernt", "Ein zweiter Faktor wurde von Ihrem Konto entfernt."),
    backup_codes_regenerated: (
        "Neue Backup-Codes wurden erzeugt",
        "Für Ihr Konto wurden neue Backup-Codes erzeugt; die alten gelten nicht mehr.",
    ),
    backup_codes_low: (
        "Nur noch wenige Backup-Codes",
        "Ein Backup-Code wurde verwendet, höchstens zwei sind übrig. Erzeugen Sie neue, bevor sie ausgehen.",
    ),
    passkey_added: (
        "Ein Passkey wurde hinzugefügt",
        "Ein Sicherheitsschlüssel oder Passkey wurde Ihrem Konto hinzugefügt.",
    ),
    api_key_created: ("Ein API-Schlüssel wurde erstellt", "Für Ihr Konto wurde ein neuer API-Schlüssel erstellt."),
    account_locked: (
        "Ihr Konto wurde gesperrt",
        "Anmeldungen bei Ihrem Konto wurden nach zu vielen falschen Passwörtern eine Zeit lang gesperrt.",
    ),
    roles_changed: (
        "Ihre Rollen wurden geändert",
        "Ein Administrator hat die Rollen und damit die Berechtigungen Ihres Kontos geändert.",
    ),
    account_disabled: (
        "Ihr Konto wurde deaktiviert",
        "Ein Administrator hat Ihr Konto deaktiviert: Es kann sich nicht mehr anmelden.",
    ),
};
