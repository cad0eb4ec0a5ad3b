-- Back to 8 rows per team for new counts; rows of shards 8 to 63 stay and are still summed.
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
