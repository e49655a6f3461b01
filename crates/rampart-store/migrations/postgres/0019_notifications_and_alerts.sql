-- Security e-mails and alert rules from durable outboxes (issue 19).
--
-- `mail_outbox`: every e-mail Rampart sends. A security notice (`kind` one of the notice kinds,
-- `event_id` the event it tells of) is written in the transaction that records its event (the
-- store's `insert_event`), so a committed change is never without its notice. A message built
-- whole by a use case (a reset link, a sign-in code, an alert) is `kind = 'message'` with its
-- recipient, subject and text sealed with the master key in `sealed` (they hold single-use
-- links). Workers claim due rows for a while (`claimed_until`) as the webhook outbox does;
-- a sent notice stays (`state = 'sent'`, `sent_at`) for the hourly cap and for merging.
-- `notification_prefs`: the notices a user turned off (no row: every notice on).
-- `known_devices`: the devices (browser family | system | network) each user signed in from,
-- and when last, for "a sign-in from a new device" (kept by the notice worker).
-- `alert_rules`: threshold rules over the audit log (built-in ones have fixed ids); `last_fired_at`
-- is moved by a conditional update, so one incident fires once however many instances watch.

CREATE TABLE mail_outbox (
    id              UUID PRIMARY KEY,
    kind            TEXT NOT NULL,
    user_id         UUID REFERENCES users (id) ON DELETE CASCADE,
    event_id        UUID,
    sealed          TEXT,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_until   TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ,
    note            TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX mail_outbox_user_sent ON mail_outbox (user_id, sent_at) WHERE state = 'sent';
CREATE INDEX mail_outbox_user ON mail_outbox (user_id, created_at);

CREATE TABLE notification_prefs (
    user_id          UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    new_sign_in      BOOLEAN NOT NULL,
    security_changes BOOLEAN NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE known_devices (
    user_id   UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mark      TEXT NOT NULL,
    last_seen TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, mark)
);

CREATE TABLE alert_rules (
    id            UUID PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    action        TEXT NOT NULL,
    outcome       TEXT CHECK (outcome IN ('success', 'failure', 'denied')),
    severity      TEXT CHECK (severity IN ('info', 'warning', 'critical')),
    count         INTEGER NOT NULL CHECK (count >= 1),
    window_secs   INTEGER NOT NULL CHECK (window_secs >= 1),
    cooldown_secs INTEGER NOT NULL CHECK (cooldown_secs >= 0),
    channels      TEXT NOT NULL DEFAULT '[]',
    enabled       BOOLEAN NOT NULL,
    builtin       BOOLEAN NOT NULL,
    last_fired_at TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

INSERT INTO alert_rules (id, name, action, outcome, severity, count, window_secs, cooldown_secs, enabled, builtin, created_at, updated_at) VALUES
    ('0192a000000070008000000000000001', 'failed sign-ins', 'auth.login', 'failure', NULL, 50, 300, 900, TRUE, TRUE, '2026-12-06T00:00:00Z', '2026-12-06T00:00:00Z'),
    ('0192a000000070008000000000000002', 'lockouts', 'auth.lockout', NULL, NULL, 10, 600, 1800, TRUE, TRUE, '2026-12-06T00:00:00Z', '2026-12-06T00:00:00Z'),
    ('0192a000000070008000000000000003', 'audit verification failed', 'audit.verified', 'failure', NULL, 1, 60, 3600, TRUE, TRUE, '2026-12-06T00:00:00Z', '2026-12-06T00:00:00Z'),
    ('0192a000000070008000000000000004', 'a role grants every permission', 'role.changed', NULL, 'critical', 1, 60, 0, TRUE, TRUE, '2026-12-06T00:00:00Z', '2026-12-06T00:00:00Z'),
    ('0192a000000070008000000000000005', 'rate-limit refusals', 'ratelimit.exceeded', NULL, NULL, 200, 60, 900, TRUE, TRUE, '2026-12-06T00:00:00Z', '2026-12-06T00:00:00Z'),
    ('0192a000000070008000000000000006', 'automatic IP blocks', 'ip.blocked', NULL, NULL, 1, 60, 600, TRUE, TRUE, '2026-12-06T00:00:00Z', '2026-12-06T00:00:00Z');

-- A webhook endpoint's body: Standard Webhooks (`standard`) or a Slack-compatible incoming
-- webhook's `{"text": …}` (`slack`, for alert channels).
ALTER TABLE webhook_endpoints ADD COLUMN format TEXT NOT NULL DEFAULT 'standard' CHECK (format IN ('standard', 'slack'));
