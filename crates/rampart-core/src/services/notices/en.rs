use super::Catalogue;

pub(super) const CATALOGUE: Catalogue = Catalogue {
    lang: "en",
    hello: "Hello,",
    when: "When",
    from_where: "From",
    device: "Device",
    unknown: "unknown",
    if_you: "If this was you, there is nothing more to do.",
    if_not_you: "If it was not you, change your password now, then review your sessions, second factors and API keys, and sign out everywhere else.",
    review: "Review your account's security",
    footer: "You get this e-mail because it concerns the security of your account. Notices about changes you can turn off in your account's settings; those about your password, second factors, lockouts and an administrator's changes always go.",
    new_sign_in: ("New sign-in to your account", "Your account was signed in to from a new device or network."),
    password_changed: ("Your password was changed", "The password of your account was changed."),
    password_reset: (
        "Your password was reset",
        "The password of your account was reset with a link sent to this address. Every other session was signed out.",
    ),
    factor_added: (
        "A second factor was added",
        "An authenticator app (TOTP) was added to your account as a second factor.",
    ),
    factor_removed: ("A second factor was removed", "A second factor was removed from your account."),
    backup_codes_regenerated: (
        "New backup codes were made",
        "New backup codes were generated for your account; the old ones no longer work.",
    ),
    backup_codes_low: (
        "Few backup codes are left",
        "A backup code was used, and two or fewer are left. Generate new ones before you run out.",
    ),
    passkey_added: ("A passkey was added", "A security key or passkey was added to your account."),
    api_key_created: ("An API key was created", "A new API key was created for your account."),
    account_locked: (
        "Your account was locked",
        "Sign-ins to your account were locked for a while after too many wrong passwords.",
    ),
    roles_changed: (
        "Your roles were changed",
        "An administrator changed the roles, and so the permissions, of your account.",
    ),
    account_disabled: (
        "Your account was disabled",
        "An administrator disabled your account: it can no longer sign in.",
    ),
};
