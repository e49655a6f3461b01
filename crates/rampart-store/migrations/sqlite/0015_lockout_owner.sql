-- A sign-in lockout names the account it locks (issue 18: the console's "locked" filter).
-- The row's key stays the keyed hash of the submitted address (it also counts addresses that
-- have no account); `user_id` is set only when a lock falls on an existing account.

ALTER TABLE login_throttle ADD COLUMN user_id BLOB REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX login_throttle_user ON login_throttle (user_id) WHERE user_id IS NOT NULL;
