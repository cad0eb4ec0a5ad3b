DROP TRIGGER storage_secrets_counted_insert;
DROP TRIGGER storage_secrets_counted_delete;
CREATE TABLE team_secret_counts_old (
    team_id TEXT PRIMARY KEY NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    storage_secrets BIGINT NOT NULL
);
INSERT INTO team_secret_counts_old (team_id, storage_secrets)
    SELECT team_id, SUM(storage_secrets) FROM team_secret_counts GROUP BY team_id;
DROP TABLE team_secret_counts;
ALTER TABLE team_secret_counts_old RENAME TO team_secret_counts;

CREATE TRIGGER storage_secrets_counted_insert AFTER INSERT ON storage_secrets
BEGIN
    INSERT INTO team_secret_counts (team_id, storage_secrets) VALUES (NEW.team_id, 1)
        ON CONFLICT (team_id) DO UPDATE SET storage_secrets = storage_secrets + 1;
END;
CREATE TRIGGER storage_secrets_counted_delete AFTER DELETE ON storage_secrets
BEGIN
    UPDATE team_secret_counts SET storage_secrets = storage_secrets - 1 WHERE team_id = OLD.team_id;
END;
