-- WebAuthn (issue 4): registered authenticators and the state of ceremonies in flight.

CREATE TABLE webauthn_credentials (
    id            UUID PRIMARY KEY,
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    credential_id BYTEA NOT NULL UNIQUE,
    passkey       TEXT NOT NULL,
    counter       BIGINT NOT NULL DEFAULT 0,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ
);
CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id);

CREATE TABLE webauthn_challenges (
    id         UUID PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('register', 'login', 'passkey')),
    user_id    UUID REFERENCES users (id) ON DELETE CASCADE,
    mfa_hash   BYTEA,
    state      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
