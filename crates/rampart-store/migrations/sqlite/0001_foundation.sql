-- Foundation schema (SQLite): users, roles, and the security-event log.
-- Ids are UUIDv7 stored as 16-byte BLOBs; times are RFC 3339 UTC text; JSON is text.

CREATE TABLE users (
    id             BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    email          TEXT NOT NULL UNIQUE,
    name           TEXT,
    password_hash  TEXT,
    email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
) STRICT;

CREATE TABLE roles (
    name        TEXT PRIMARY KEY NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    permissions TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(permissions)),
    builtin     INTEGER NOT NULL DEFAULT 0 CHECK (builtin IN (0, 1))
) STRICT;

CREATE TABLE user_roles (
    user_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_name TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE ON UPDATE CASCADE,
    PRIMARY KEY (user_id, role_name)
) STRICT;
CREATE INDEX user_roles_role ON user_roles (role_name);

INSERT INTO roles (name, description, permissions, builtin) VALUES
    ('user', 'Every account: its own profile, sessions, factors and keys.', '[]', 1),
    ('moderator', 'Reads users and the audit log.', '["users:read","audit:read"]', 1),
    ('admin', 'Everything.', '["*"]', 1);

-- One row per security event. `seq` orders the log; `prev_hash`/`hash` are filled by the
-- audit feature's hash chain.
CREATE TABLE audit_events (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            BLOB NOT NULL UNIQUE CHECK (length(id) = 16),
    ts            TEXT NOT NULL,
    action        TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    severity      TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    actor_type    TEXT NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system', 'anonymous')),
    actor_id      BLOB,
    resource_type TEXT,
    resource_id   TEXT,
    ip            TEXT,
    user_agent    TEXT,
    request_id    TEXT,
    details       TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(details)),
    prev_hash     BLOB,
    hash          BLOB
) STRICT;
CREATE INDEX audit_events_ts ON audit_events (ts);
CREATE INDEX audit_events_action ON audit_events (action);
CREATE INDEX audit_events_actor ON audit_events (actor_id);
