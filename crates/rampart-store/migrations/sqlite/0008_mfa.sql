-- Second factors. The TOTP secret is stored sealed with the master key (AES-256-GCM, AAD = the
-- user id; `key_id` names the master key that sealed it, so the key can rotate). Backup codes
-- and mfa_tokens are stored as hashes only.

CREATE TABLE mfa_totp (
    user_id    BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    -- NULL: set up, waiting for the first right code.
    enabled_at TEXT,
    -- The last time step a code was accepted at; only later steps are accepted next.
    last_step  INTEGER NOT NULL DEFAULT -1
) STRICT;

-- HMAC-SHA256 (key derived from the master key) of each 80-bit code.
CREATE TABLE mfa_backup_codes (
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BLOB NOT NULL CHECK (length(hash) = 32),
    created_at TEXT NOT NULL,
    used_at    TEXT,
    PRIMARY KEY (user_id, hash)
) STRICT;

-- The mfa_token of a step-up login: single use, short-lived, bound to the login attempt.
CREATE TABLE mfa_challenges (
    hash        BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    cookie_mode INTEGER NOT NULL CHECK (cookie_mode IN (0, 1)),
    ip          TEXT,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0,
    -- The e-mailed fallback code (mfa.email_fallback): its keyed hash, and when it was sent.
    email_code_hash    BLOB,
    email_code_sent_at TEXT,
    used_at     TEXT
) STRICT;
CREATE INDEX mfa_challenges_expiry ON mfa_challenges (expires_at);
