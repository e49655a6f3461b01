-- Foundation schema (PostgreSQL): users, roles, and the security-event log.

CREATE TABLE users (
    id             UUID PRIMARY KEY,
    email          TEXT NOT NULL UNIQUE,
    name           TEXT,
    password_hash  TEXT,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);

CREATE TABLE roles (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    permissions JSONB NOT NULL DEFAULT '[]',
    builtin     BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE user_roles (
    user_id   UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role_name TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE ON UPDATE CASCADE,
    PRIMARY KEY (user_id, role_name)
);
CREATE INDEX user_roles_role ON user_roles (role_name);

INSERT INTO roles (name, description, permissions, builtin) VALUES
    ('user', 'Every account: its own profile, sessions, factors and keys.', '[]', TRUE),
    ('moderator', 'Reads users and the audit log.', '["users:read","audit:read"]', TRUE),
    ('admin', 'Everything.', '["*"]', TRUE);

CREATE TABLE audit_events (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            UUID NOT NULL UNIQUE,
    ts            TIMESTAMPTZ NOT NULL,
    action        TEXT NOT NULL,
    outcome       TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    severity      TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    actor_type    TEXT NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system', 'anonymous')),
    actor_id      UUID,
    resource_type TEXT,
    resource_id   TEXT,
    ip            TEXT,
    user_agent    TEXT,
    request_id    TEXT,
    details       JSONB NOT NULL DEFAULT '{}',
    prev_hash     BYTEA,
    hash          BYTEA
);
CREATE INDEX audit_events_ts ON audit_events (ts);
CREATE INDEX audit_events_action ON audit_events (action);
CREATE INDEX audit_events_actor ON audit_events (actor_id);
