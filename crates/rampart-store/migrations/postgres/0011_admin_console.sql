-- The administrator's console (issue 18): when each user last signed in (set with every new
-- session), for the user list's filters and columns.

ALTER TABLE users ADD COLUMN last_login_at TIMESTAMPTZ;
CREATE INDEX users_last_login ON users (last_login_at);
-- Sessions still running, counted by the dashboard.
CREATE INDEX sessions_live ON sessions (idle_expires_at) WHERE revoked_at IS NULL;
