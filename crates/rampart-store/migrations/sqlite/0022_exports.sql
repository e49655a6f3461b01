-- Bulk exports under four-eyes control (issue 20, export controls). An export is recorded when
-- requested, with its frozen filter (`filter`, plus `through_seq` for audit events: the newest
-- event when it was counted; `as_of` for accounts: those created by then) and the rows counted,
-- so the rows downloaded are the rows counted. Over `exports.approval_threshold_rows` it waits
-- for a second administrator (`approved_by` is never `requested_by`); it is downloaded once
-- (`ready` → `downloaded` in one conditional update) before `expires_at`.

CREATE TABLE exports (
    id           BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
    kind         TEXT NOT NULL CHECK (kind IN ('users', 'audit')),
    format       TEXT NOT NULL CHECK (format IN ('jsonl', 'csv')),
    filter       TEXT NOT NULL,
    through_seq  INTEGER,
    as_of        TEXT NOT NULL,
    rows         INTEGER NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending_approval', 'ready', 'downloaded')),
    requested_by BLOB NOT NULL,
    approved_by  BLOB,
    approved_at  TEXT,
    downloaded_at TEXT,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    CHECK (approved_by IS NULL OR approved_by <> requested_by)
) STRICT;
CREATE INDEX exports_created ON exports (created_at);
