DROP TABLE sealed_token_pepper;
ALTER TABLE credential_blobs DROP CONSTRAINT credential_blobs_key_id_fkey;
DROP INDEX credential_blobs_key_id;
DROP TABLE retired_master_keys;
DROP TABLE master_keys;
