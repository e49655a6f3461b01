-- API keys: only the SHA-256 of a key and a short display prefix are stored.
CREATE TABLE api_keys (
    id                     UUID PRIMARY KEY,
    user_id                UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    prefix                 TEXT NOT NULL,
    hash                   BYTEA NOT NULL UNIQUE CHECK (length(hash) = 32),
    scopes                 JSONB NOT NULL DEFAULT '[]',
    rate_limit_requests    BIGINT,
    rate_limit_per_seconds BIGINT,
    created_at             TIMESTAMPTZ NOT NULL,
    expires_at             TIMESTAMPTZ,
    last_used_at           TIMESTAMPTZ,
    revoked_at             TIMESTAMPTZ,
    rotated_to             UUID
);
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE api_key_usage (
    key_id   UUID NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    hour     TIMESTAMPTZ NOT NULL,
    requests BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, hour)
);
