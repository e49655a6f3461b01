-- IP allow and block rules (networks as normalised CIDR text), optionally expiring.
CREATE TABLE ip_rules (
    id         UUID PRIMARY KEY,
    network    TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('allow', 'block')),
    scope      TEXT NOT NULL CHECK (scope IN ('all', 'admin')),
    reason     TEXT NOT NULL DEFAULT '',
    automatic  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ
);
CREATE INDEX ip_rules_expires ON ip_rules (expires_at);
