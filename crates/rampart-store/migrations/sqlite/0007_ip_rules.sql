-- IP allow and block rules (networks as normalised CIDR text), optionally expiring.
CREATE TABLE ip_rules (
    id         BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    network    TEXT NOT NULL,
    action     TEXT NOT NULL CHECK (action IN ('allow', 'block')),
    scope      TEXT NOT NULL CHECK (scope IN ('all', 'admin')),
    reason     TEXT NOT NULL DEFAULT '',
    automatic  INTEGER NOT NULL DEFAULT 0 CHECK (automatic IN (0, 1)),
    created_at TEXT NOT NULL,
    expires_at TEXT
) STRICT;
CREATE INDEX ip_rules_expires ON ip_rules (expires_at);
