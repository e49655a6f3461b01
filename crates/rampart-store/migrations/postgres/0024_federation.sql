-- Federation (issue 23): identities another service vouches for, linked to accounts.
--
-- `user_identities`: one row per (provider, the provider's stable user id), linked to one
-- account; `username` and `display_name` are personal data shown back to the user and go with
-- the account (deleted with it). `last_used_at`: the last sign-in through it.
-- `federation_replays`: payloads seen once and refused again until they would be stale anyway
-- (`expires_at`, then purged): a Telegram widget payload's `hash`, later OpenID nonces.

CREATE TABLE user_identities (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider     TEXT NOT NULL,
    subject      TEXT NOT NULL,
    username     TEXT,
    display_name TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    UNIQUE (provider, subject)
);

CREATE INDEX user_identities_by_user ON user_identities (user_id);

CREATE TABLE federation_replays (
    provider   TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (provider, nonce)
);

CREATE INDEX federation_replays_by_expiry ON federation_replays (expires_at);

-- A step-up's first factor: `pwd` for a password login, `fed` after an external identity, so
-- the session it opens names what was really used (`amr`).
ALTER TABLE mfa_challenges ADD COLUMN first_factor TEXT NOT NULL DEFAULT 'pwd';
