-- The master keys stored values may be sealed under. `custodian keys rotate` adds one and
-- makes it the active key (new values are sealed under it); `custodian keys remove` deletes
-- an old one, which the foreign key below refuses while any value is still sealed under
-- it, and records it as retired so that no server sealing under it again is accepted.
CREATE TABLE master_keys (
    id TEXT PRIMARY KEY NOT NULL,
    active BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX master_keys_one_active ON master_keys (active) WHERE active;

CREATE TABLE retired_master_keys (
    id TEXT PRIMARY KEY NOT NULL,
    retired_at TIMESTAMP NOT NULL
);

INSERT INTO master_keys (id, active, created_at)
    SELECT DISTINCT key_id, FALSE, CURRENT_TIMESTAMP FROM credential_blobs;

-- SQLite adds a foreign key only by rebuilding the table.
CREATE TABLE credential_blobs_new (
    tenant TEXT NOT NULL,
    team_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    key_id TEXT NOT NULL REFERENCES master_keys (id),
    wrapped_key BLOB NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (team_id, kind, record_id, version)
);
INSERT INTO credential_blobs_new SELECT * FROM credential_blobs;
DROP TABLE credential_blobs;
ALTER TABLE credential_blobs_new RENAME TO credential_blobs;
CREATE INDEX credential_blobs_key_id ON credential_blobs (key_id);

-- The token pepper of a deployment whose keyring comes from configured master keys,
-- sealed under the active key: it outlives the key it was first derived from, so tokens
-- keep working after that key is rotated out.
CREATE TABLE sealed_token_pepper (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    key_id TEXT NOT NULL REFERENCES master_keys (id),
    wrapped_key BLOB NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX sealed_token_pepper_key_id ON sealed_token_pepper (key_id);
