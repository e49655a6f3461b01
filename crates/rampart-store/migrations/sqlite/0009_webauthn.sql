-- WebAuthn (issue 4): registered authenticators and the state of ceremonies in flight.

-- A registered authenticator. `passkey` is webauthn-rs's credential (public key, counter,
-- flags) as JSON; `credential_id` is the authenticator's id for it, unique across accounts.
CREATE TABLE webauthn_credentials (
    id            BLOB PRIMARY KEY NOT NULL,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    credential_id BLOB NOT NULL UNIQUE,
    passkey       TEXT NOT NULL,
    -- The last signature counter seen; only a higher one is accepted next (0 = no counter).
    counter       INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
) STRICT;
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

-- A ceremony's server-side state (the challenge): single use (deleted when taken), short-lived.
-- `kind`: register | login (step-up, bound to an mfa_token's hash) | passkey (no user yet).
CREATE TABLE webauthn_challenges (
    id         BLOB PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('register', 'login', 'passkey')),
    user_id    BLOB REFERENCES users (id) ON DELETE CASCADE,
    mfa_hash   BLOB,
    state      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
