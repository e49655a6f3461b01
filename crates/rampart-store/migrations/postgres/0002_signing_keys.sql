-- Access-token signing keys. The private key is sealed with the master key (AES-256-GCM,
-- bound to the kid); the public JWK is stored as published.
CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL CHECK (alg IN ('EdDSA', 'ES256')),
    private_sealed TEXT NOT NULL,
    public_jwk     JSONB NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    retired_at     TIMESTAMPTZ
);
-- At most one current (unretired) key.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
