CREATE TEMPORARY TABLE team_secret_totals AS
    SELECT team_id, SUM(storage_secrets)::BIGINT AS storage_secrets FROM team_secret_counts GROUP BY team_id;
DELETE FROM team_secret_counts;
ALTER TABLE team_secret_counts DROP CONSTRAINT team_secret_counts_pkey;
ALTER TABLE team_secret_counts DROP COLUMN shard;
ALTER TABLE team_secret_counts ADD PRIMARY KEY (team_id);
INSERT INTO team_secret_counts (team_id, storage_secrets) SELECT team_id, storage_secrets FROM team_secret_totals;
DROP TABLE team_secret_totals;

CREATE OR REPLACE FUNCTION storage_secrets_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO team_secret_counts (team_id, storage_secrets) VALUES (NEW.team_id, 1)
            ON CONFLICT (team_id) DO UPDATE SET storage_secrets = team_secret_counts.storage_secrets + 1;
    ELSE
        UPDATE team_secret_counts SET storage_secrets = storage_secrets - 1 WHERE team_id = OLD.team_id;
    END IF;
    RETURN NULL;
END
$$;
