-- Erasure by crypto-shredding (issue 20, item 4).
--
-- `person_keys`: each user's data key, wrapped under the audit log's personal-data key (derived
-- from the master key). An audit event whose actor is a user keeps that user's address, browser
-- and the names in its details sealed under this key (`audit_events.personal`); the chain links
-- the sealed form, so destroying the key (`wrapped` set to NULL: the row stays as a tombstone,
-- so no later event creates a new key for the erased user) makes those fields unreadable while
-- every event still verifies. No foreign key: the tombstone outlives the user row.
-- `audit_events.ip_tag`: a keyed hash of a sealed event's address, so the audit log can still
-- be searched by address; erasure clears it.
-- `users.erase_after`: an erasure asked for and not yet done (the account is disabled until then).
CREATE TABLE person_keys (
    user_id    BLOB PRIMARY KEY NOT NULL CHECK (length(user_id) = 16),
    wrapped    BLOB,
    created_at TEXT NOT NULL,
    erased_at  TEXT
) STRICT;

ALTER TABLE audit_events ADD COLUMN personal TEXT;
ALTER TABLE audit_events ADD COLUMN ip_tag BLOB;
CREATE INDEX audit_events_ip_tag ON audit_events (ip_tag) WHERE ip_tag IS NOT NULL;

ALTER TABLE users ADD COLUMN erase_after TEXT;
CREATE INDEX users_erase_after ON users (erase_after) WHERE erase_after IS NOT NULL;
