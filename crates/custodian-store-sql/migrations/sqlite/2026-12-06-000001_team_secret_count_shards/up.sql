-- The same table as on PostgreSQL, where a team's count is spread over several rows so that
-- concurrent creates do not wait for each other. SQLite writes one transaction at a time,
-- so it keeps one row per team (shard 0). Rebuilt for the new primary key, its triggers
-- dropped first and made again.
DROP TRIGGER storage_secrets_counted_insert;
DROP TRIGGER storage_secrets_counted_delete;
CREATE TABLE team_secret_counts_new (
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    shard SMALLINT NOT NULL DEFAULT 0,
    storage_secrets BIGINT NOT NULL,
    PRIMARY KEY (team_id, shard)
);
INSERT INTO team_secret_counts_new (team_id, shard, storage_secrets)
    SELECT team_id, 0, storage_secrets FROM team_secret_counts;
DROP TABLE team_secret_counts;
ALTER TABLE team_secret_counts_new RENAME TO team_secret_counts;

CREATE TRIGGER storage_secrets_counted_insert AFTER INSERT ON storage_secrets
BEGIN
    INSERT INTO team_secret_counts (team_id, shard, storage_secrets) VALUES (NEW.team_id, 0, 1)
        ON CONFLICT (team_id, shard) DO UPDATE SET storage_secrets = storage_secrets + 1;
END;
CREATE TRIGGER storage_secrets_counted_delete AFTER DELETE ON storage_secrets
BEGIN
    UPDATE team_secret_counts SET storage_secrets = storage_secrets - 1 WHERE team_id = OLD.team_id AND shard = 0;
END;
