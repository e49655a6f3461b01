-- Transit encryption keys (issue 20): named keys with versions, Vault's transit engine in
-- shape. A version's material is sealed with the master key (bound to the key's name and the
-- version); `min_decryption_version` refuses older ciphertexts; a key is deleted only when
-- `deletion_allowed`.

CREATE TABLE transit_keys (
    name                   TEXT PRIMARY KEY NOT NULL,
    type                   TEXT NOT NULL CHECK (type IN ('aes256-gcm96', 'chacha20-poly1305', 'ed25519', 'hmac')),
    derived                INTEGER NOT NULL CHECK (derived IN (0, 1)),
    deletion_allowed       INTEGER NOT NULL CHECK (deletion_allowed IN (0, 1)),
    min_decryption_version INTEGER NOT NULL,
    latest_version         INTEGER NOT NULL,
    created_by             BLOB,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
) STRICT;

CREATE TABLE transit_key_versions (
    name       TEXT NOT NULL REFERENCES transit_keys (name) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    material   TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (name, version)
) STRICT;
