-- Accounts: password history and age, sessions, refresh tokens, login throttling, and the
-- single-use tokens sent by e-mail. Every secret is stored as its SHA-256 only.

ALTER TABLE users ADD COLUMN password_changed_at TEXT;

CREATE TABLE password_history (
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
) STRICT;
CREATE INDEX password_history_user ON password_history (user_id, created_at);

CREATE TABLE sessions (
    id                  BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    user_id             BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at          TEXT NOT NULL,
    last_active_at      TEXT NOT NULL,
    idle_expires_at     TEXT NOT NULL,
    absolute_expires_at TEXT NOT NULL,
    ip                  TEXT,
    user_agent          TEXT,
    amr                 TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(amr)),
    cookie_hash         BLOB UNIQUE,
    revoked_at          TEXT,
    revoked_reason      TEXT
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);

-- One row per refresh token ever issued; `used_at` set when it was exchanged. Presenting a
-- used one again is reuse.
CREATE TABLE refresh_tokens (
    hash       BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
    session_id BLOB NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- Failed-attempt counters. `key` is `id:<keyed hash of the e-mail>` or `ip:<address>`.
CREATE TABLE login_throttle (
    key               TEXT PRIMARY KEY NOT NULL,
    failures          INTEGER NOT NULL,
    window_started_at TEXT NOT NULL,
    last_failure_at   TEXT NOT NULL,
    locked_until      TEXT
) STRICT;

CREATE TABLE account_tokens (
    hash       BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'expired_password')),
    user_id    BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT
) STRICT;
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
