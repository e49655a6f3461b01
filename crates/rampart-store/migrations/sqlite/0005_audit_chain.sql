-- The head of the audit hash chain: the hash of the newest event. Appending an event locks
-- this row, links the event to it and moves it (see `insert_event!`). Events written before
-- this migration are linked once by `Store::migrate`.
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    hash BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
INSERT INTO audit_head (id, hash) VALUES (1, zeroblob(32));
-- Events not yet linked (only those written before this migration); keeps the start-up check cheap.
CREATE INDEX audit_events_unchained ON audit_events (seq) WHERE hash IS NULL;
