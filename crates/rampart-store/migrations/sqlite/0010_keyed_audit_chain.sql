-- The keyed audit chain (issue 15, item 2). From here on an event's link is an HMAC under a key
-- derived from the master key, over the previous link, the MAC of the newest checkpoint and the
-- event; each checkpoint carries the MAC of the one before it. Events and checkpoints written
-- before this migration keep their unkeyed links: the origin row below records where they end,
-- and `Store::migrate` seals it (an HMAC over that boundary and its link) in the run that
-- applies this migration, and never again.
ALTER TABLE audit_checkpoints ADD COLUMN prev_mac BLOB CHECK (prev_mac IS NULL OR length(prev_mac) = 32);
-- The newest checkpoint, kept beside the head so an append links to it under the same lock.
ALTER TABLE audit_head ADD COLUMN checkpoint_seq INTEGER;
ALTER TABLE audit_head ADD COLUMN checkpoint_mac BLOB NOT NULL
    DEFAULT x'0000000000000000000000000000000000000000000000000000000000000000'
    CHECK (length(checkpoint_mac) = 32);
UPDATE audit_head SET
    checkpoint_seq = (SELECT MAX(seq) FROM audit_checkpoints),
    checkpoint_mac = COALESCE((SELECT mac FROM audit_checkpoints ORDER BY seq DESC LIMIT 1), checkpoint_mac)
WHERE id = 1;
CREATE TABLE audit_chain_origin (
    id                 INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    -- The last event linked the old (unkeyed) way; NULL when there was none.
    legacy_through_seq INTEGER,
    -- That event's link, and the origin's MAC: set together when sealed.
    legacy_head        BLOB CHECK (legacy_head IS NULL OR length(legacy_head) = 32),
    key_id             TEXT,
    mac                BLOB CHECK (mac IS NULL OR length(mac) = 32)
) STRICT;
INSERT INTO audit_chain_origin (id, legacy_through_seq) VALUES (1, (SELECT MAX(seq) FROM audit_events));
DROP INDEX audit_events_unchained;
