DROP TABLE sealed_token_pepper;
CREATE TABLE credential_blobs_old (
    tenant TEXT NOT NULL,
    team_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (team_id, kind, record_id, version)
);
INSERT INTO credential_blobs_old SELECT * FROM credential_blobs;
DROP TABLE credential_blobs;
ALTER TABLE credential_blobs_old RENAME TO credential_blobs;
DROP TABLE retired_master_keys;
DROP TABLE master_keys;
