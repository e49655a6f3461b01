-- API keys: only the SHA-256 of a key and a short display prefix are stored.
CREATE TABLE api_keys (
    id                     BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    user_id                BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                   TEXT NOT NULL,
    prefix                 TEXT NOT NULL,
    hash                   BLOB NOT NULL UNIQUE CHECK (length(hash) = 32),
    scopes                 TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(scopes)),
    rate_limit_requests    INTEGER,
    rate_limit_per_seconds INTEGER,
    created_at             TEXT NOT NULL,
    expires_at             TEXT,
    last_used_at           TEXT,
    revoked_at             TEXT,
    rotated_to             BLOB
) STRICT;
CREATE INDEX api_keys_user ON api_keys (user_id);

-- Requests per key and hour, written in batches.
CREATE TABLE api_key_usage (
    key_id   BLOB NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    hour     TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, hour)
) STRICT;
