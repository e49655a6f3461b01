-- Master-key rotation (issue 20, part 1): the keys Rampart used to derive from the master key on
-- every start (the audit chain's and checkpoints', the backup-code, e-mail code, login-throttle
-- and CSRF keys) are kept here, sealed with the master key like every other secret, so their
-- values outlive the master key they were first derived from: a rotation re-seals them, and the
-- audit chain, stored backup codes and pending codes stay valid. A purpose missing at start-up is
-- inserted as the current master key's derivation (what it was before this table existed);
-- `origin_key_id` names the master key it was derived from (the audit checkpoints' `key_id`).

CREATE TABLE root_keys (
    purpose       TEXT PRIMARY KEY,
    sealed        TEXT NOT NULL,
    origin_key_id TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
