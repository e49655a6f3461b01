-- Signed checkpoints of the audit hash chain: an HMAC (key derived from the master key) over
-- one link `(seq, hash)` and the time it was signed. Verification checks each against the
-- chain; a retention purge cuts the log at one, which then anchors the remaining chain.
CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY NOT NULL,
    hash      BLOB NOT NULL CHECK (length(hash) = 32),
    signed_at TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    mac       BLOB NOT NULL CHECK (length(mac) = 32)
) STRICT;
-- Query filters on resources and outcomes.
CREATE INDEX audit_events_resource ON audit_events (resource_type, resource_id);
