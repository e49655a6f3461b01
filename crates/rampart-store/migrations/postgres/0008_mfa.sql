-- Second factors. The TOTP secret is stored sealed with the master key (AES-256-GCM, AAD = the
-- user id; `key_id` names the master key that sealed it, so the key can rotate). Backup codes
-- and mfa_tokens are stored as hashes only.

CREATE TABLE mfa_totp (
    user_id    UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    enabled_at TIMESTAMPTZ,
    last_step  BIGINT NOT NULL DEFAULT -1
);

CREATE TABLE mfa_backup_codes (
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BYTEA NOT NULL CHECK (length(hash) = 32),
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, hash)
);

CREATE TABLE mfa_challenges (
    hash        BYTEA PRIMARY KEY CHECK (length(hash) = 32),
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    cookie_mode BOOLEAN NOT NULL,
    ip          TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    failures    BIGINT NOT NULL DEFAULT 0,
    -- The e-mailed fallback code (mfa.email_fallback): its keyed hash, and when it was sent.
    email_code_hash    BYTEA,
    email_code_sent_at TIMESTAMPTZ,
    used_at     TIMESTAMPTZ
);
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);
