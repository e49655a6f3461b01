-- Accounts: password history and age, sessions, refresh tokens, login throttling, and the
-- single-use tokens sent by e-mail. Every secret is stored as its SHA-256 only.

ALTER TABLE users ADD COLUMN password_changed_at TIMESTAMPTZ;

CREATE TABLE password_history (
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, created_at);

CREATE TABLE sessions (
    id                  UUID PRIMARY KEY,
    user_id             UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at          TIMESTAMPTZ NOT NULL,
    last_active_at      TIMESTAMPTZ NOT NULL,
    idle_expires_at     TIMESTAMPTZ NOT NULL,
    absolute_expires_at TIMESTAMPTZ NOT NULL,
    ip                  TEXT,
    user_agent          TEXT,
    amr                 JSONB NOT NULL DEFAULT '[]',
    cookie_hash         BYTEA UNIQUE,
    revoked_at          TIMESTAMPTZ,
    revoked_reason      TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE refresh_tokens (
    hash       BYTEA PRIMARY KEY CHECK (length(hash) = 32),
    session_id UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE login_throttle (
    key               TEXT PRIMARY KEY,
    failures          BIGINT NOT NULL,
    window_started_at TIMESTAMPTZ NOT NULL,
    last_failure_at   TIMESTAMPTZ NOT NULL,
    locked_until      TIMESTAMPTZ
);

CREATE TABLE account_tokens (
    hash       BYTEA PRIMARY KEY CHECK (length(hash) = 32),
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password', 'expired_password')),
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);
CREATE INDEX account_tokens_user ON account_tokens (user_id, purpose);
