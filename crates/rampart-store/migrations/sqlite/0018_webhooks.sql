-- Signed webhooks from a durable outbox (issue 19).
--
-- `webhook_endpoints`: where to deliver, the signing secret sealed with the master key (and,
-- for a rotation's overlap, the previous one until `previous_until`), and the failure streak
-- that disables an endpoint after `webhooks.disable_after_days`.
-- `webhook_filters`: the events an endpoint takes (`exact` action names, or a `prefix`:
-- `auth.` for `auth.*`, empty for `*`).
-- `webhook_messages`: the outbox. A row per (event, endpoint), written in the transaction that
-- records the event (the store's `insert_event`), so a committed event is never without its
-- deliveries and a rolled-back one never has any. Workers claim due rows for a while
-- (`claimed_until`); a claim that runs out (a worker killed mid-delivery) is claimed again, so
-- every message is delivered at least once, always under its event's id (`webhook-id`).
-- `webhook_attempts`: the delivery log, one row per attempt.

CREATE TABLE webhook_endpoints (
    id              BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    enabled         INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    previous_until  TEXT,
    created_by      BLOB REFERENCES users (id) ON DELETE SET NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    failing_since   TEXT,
    disabled_reason TEXT
) STRICT;

CREATE TABLE webhook_filters (
    endpoint_id BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('exact', 'prefix')),
    pattern     TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, kind, pattern)
) STRICT;

CREATE TABLE webhook_messages (
    event_id        BLOB NOT NULL CHECK (length(event_id) = 16),
    endpoint_id     BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_until   TEXT,
    created_at      TEXT NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
) STRICT;
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id              BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    event_id        BLOB NOT NULL,
    endpoint_id     BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    at              TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('delivered', 'failed')),
    http_status     INTEGER,
    latency_ms      INTEGER NOT NULL,
    error           TEXT,
    response        TEXT,
    next_attempt_at TEXT
) STRICT;
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, at);
