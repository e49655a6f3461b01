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
-- (`claimed_until`, `FOR UPDATE SKIP LOCKED` here so instances share the work); a claim that
-- runs out (a worker killed mid-delivery) is claimed again, so every message is delivered at
-- least once, always under its event's id (`webhook-id`).
-- `webhook_attempts`: the delivery log, one row per attempt.

CREATE TABLE webhook_endpoints (
    id              UUID PRIMARY KEY,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    enabled         BOOLEAN NOT NULL,
    secret          TEXT NOT NULL,
    previous_secret TEXT,
    previous_until  TIMESTAMPTZ,
    created_by      UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    failing_since   TIMESTAMPTZ,
    disabled_reason TEXT
);

CREATE TABLE webhook_filters (
    endpoint_id UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('exact', 'prefix')),
    pattern     TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, kind, pattern)
);

CREATE TABLE webhook_messages (
    event_id        UUID NOT NULL,
    endpoint_id     UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until   TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at) WHERE state = 'pending';

CREATE TABLE webhook_attempts (
    id              UUID PRIMARY KEY,
    event_id        UUID NOT NULL,
    endpoint_id     UUID NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    at              TIMESTAMPTZ NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('delivered', 'failed')),
    http_status     INTEGER,
    latency_ms      BIGINT NOT NULL,
    error           TEXT,
    response        TEXT,
    next_attempt_at TIMESTAMPTZ
);
CREATE INDEX webhook_attempts_endpoint ON webhook_attempts (endpoint_id, at);
