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
    id              BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    kind            TEXT NOT NULL,
    user_id         BLOB REFERENCES users (id) ON DELETE CASCADE,
    event_id        BLOB,
    sealed          TEXT,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_until   TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT,
    note            TEXT
) STRICT;
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX mail_outbox_user_sent ON mail_outbox (user_id, sent_at) WHERE state = 'sent';
CREATE INDEX mail_outbox_user ON mail_outbox (user_id, created_at);

CREATE TABLE notification_prefs (
    user_id          BLOB PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    new_sign_in      INTEGER NOT NULL CHECK (new_sign_in IN (0, 1)),
    security_changes INTEGER NOT NULL CHECK (security_changes IN (0, 1)),
    updated_at       TEXT NOT NULL
) STRICT;

CREATE TABLE known_devices (
    user_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mark      TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (user_id, mark)
) STRICT;

CREATE TABLE alert_rules (
    id            BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    name          TEXT NOT NULL UNIQUE,
    action        TEXT NOT NULL,
    outcome       TEXT CHECK (outcome IN ('success', 'failure', 'denied')),
    severity      TEXT CHECK (severity IN ('info', 'warning', 'critical')),
    count         INTEGER NOT NULL CHECK (count >= 1),
    window_secs   INTEGER NOT NULL CHECK (window_secs >= 1),
    cooldown_secs INTEGER NOT NULL CHECK (cooldown_secs >= 0),
    channels      TEXT NOT NULL DEFAULT '[]',
    enabled       INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    builtin       INTEGER NOT NULL CHECK (builtin IN (0, 1)),
    last_fired_at TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

INSERT INTO alert_rules (id, name, action, outcome, severity, count, window_secs, cooldown_secs, enabled, builtin, created_at, updated_at) VALUES
    (X'0192a000000070008000000000000001', 'failed sign-ins', 'auth.login', 'failure', NULL, 50, 300, 900, 1, 1, '2026-12-06T00:00:00.000000Z', '2026-12-06T00:00:00.000000Z'),
    (X'0192a000000070008000000000000002', 'lockouts', 'auth.lockout', NULL, NULL, 10, 600, 1800, 1, 1, '2026-12-06T00:00:00.000000Z', '2026-12-06T00:00:00.000000Z'),
    (X'0192a000000070008000000000000003', 'audit verification failed', 'audit.verified', 'failure', NULL, 1, 60, 3600, 1, 1, '2026-12-06T00:00:00.000000Z', '2026-12-06T00:00:00.000000Z'),
    (X'0192a000000070008000000000000004', 'a role grants every permission', 'role.changed', NULL, 'critical', 1, 60, 0, 1, 1, '2026-12-06T00:00:00.000000Z', '2026-12-06T00:00:00.000000Z'),
    (X'0192a000000070008000000000000005', 'rate-limit refusals', 'ratelimit.exceeded', NULL, NULL, 200, 60, 900, 1, 1, '2026-12-06T00:00:00.000000Z', '2026-12-06T00:00:00.000000Z'),
    (X'0192a000000070008000000000000006', 'automatic IP blocks', 'ip.blocked', NULL, NULL, 1, 60, 600, 1, 1, '2026-12-06T00:00:00.000000Z', '2026-12-06T00:00:00.000000Z');

-- A webhook endpoint's body: Standard Webhooks (`standard`) or a Slack-compatible incoming
-- webhook's `{"text": …}` (`slack`, for alert channels).
ALTER TABLE webhook_endpoints ADD COLUMN format TEXT NOT NULL DEFAULT 'standard' CHECK (format IN ('standard', 'slack'));
