-- How many storage secrets each team holds, kept by the database itself with every insert
-- and delete, so that a list page and a tier-limit check read one row instead of
-- counting a team's rows (a million rows took 90 ms to count).
CREATE TABLE team_secret_counts (
    team_id TEXT PRIMARY KEY NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    storage_secrets BIGINT NOT NULL
);
INSERT INTO team_secret_counts (team_id, storage_secrets)
    SELECT team_id, COUNT(*) FROM storage_secrets GROUP BY team_id;

CREATE TRIGGER storage_secrets_counted_insert AFTER INSERT ON storage_secrets
BEGIN
    INSERT INTO team_secret_counts (team_id, storage_secrets) VALUES (NEW.team_id, 1)
        ON CONFLICT (team_id) DO UPDATE SET storage_secrets = storage_secrets + 1;
END;
CREATE TRIGGER storage_secrets_counted_delete AFTER DELETE ON storage_secrets
BEGIN
    UPDATE team_secret_counts SET storage_secrets = storage_secrets - 1 WHERE team_id = OLD.team_id;
END;

-- A page of a team's secrets is ordered by name, then id: an index in that order lets
-- the database read the page's rows in order instead of sorting the whole team.
CREATE INDEX storage_secrets_team_name_id_idx ON storage_secrets (team_id, name, id);
