DROP INDEX storage_secrets_vault_connection_id_idx;
CREATE INDEX storage_secrets_vault_connection_id_idx ON storage_secrets (vault_connection_id);
CREATE INDEX storage_secrets_team_name_id_idx ON storage_secrets (team_id, name, id);
