-- Every create in a team bumped the team's one counter row and held it until its commit,
-- so a team's creates committed one after another. The count is now spread over up to 8
-- rows per team, one per database session (`pg_backend_pid() % 8`), and summed when read:
-- creates on different connections do not wait for each other.
ALTER TABLE team_secret_counts ADD COLUMN shard SMALLINT NOT NULL DEFAULT 0;
ALTER TABLE team_secret_counts DROP CONSTRAINT team_secret_counts_pkey;
ALTER TABLE team_secret_counts ADD PRIMARY KEY (team_id, shard);

CREATE OR REPLACE FUNCTION storage_secrets_counted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO team_secret_counts (team_id, shard, storage_secrets)
            VALUES (NEW.team_id, pg_backend_pid() % 8, 1)
            ON CONFLICT (team_id, shard) DO UPDATE SET storage_secrets = team_secret_counts.storage_secrets + 1;
    ELSE
        -- This session's row when it has one, else any of the team's rows: only the sum
        -- counts. None is left when the team itself is being deleted.
        UPDATE team_secret_counts SET storage_secrets = storage_secrets - 1
            WHERE team_id = OLD.team_id AND shard = pg_backend_pid() % 8;
        IF NOT FOUND THEN
            UPDATE team_secret_counts SET storage_secrets = storage_secrets - 1
                WHERE team_id = OLD.team_id
                  AND shard = (SELECT min(shard) FROM team_secret_counts WHERE team_id = OLD.team_id);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
