-- Fewer indexes for a create to write (each one is a page more per insert).
--
-- A page of a team's secrets is ordered by name: names are unique within a team, so the
-- unique (team_id, name) index already yields the rows in page order, and the
-- (team_id, name, id) index only repeated it.
DROP INDEX storage_secrets_team_name_id_idx;

-- Only external secrets name a vault connection. The index serves the lookups of the
-- secrets that use a connection, which never look for a null: managed secrets need no
-- entry in it.
DROP INDEX storage_secrets_vault_connection_id_idx;
CREATE INDEX storage_secrets_vault_connection_id_idx ON storage_secrets (vault_connection_id)
    WHERE vault_connection_id IS NOT NULL;
