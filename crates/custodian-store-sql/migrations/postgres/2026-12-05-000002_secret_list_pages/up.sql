-- How many storage secrets each team holds, kept by the database itself with every insert
-- and delete, so that a list page and a tier-limit check read one row instead of
-- counting a team's rows.
CREATE TABLE team_secret_counts (
    team_id TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    storage_secrets BIGINT NOT NULL
);
INSERT INTO team_secret_counts (team_id, storage_secrets)
    SELECT team_id, COUNT(*) FROM storage_secrets GROUP BY team_id;

CREATE FUNCTION storage_secrets_counted() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER storage_secrets_counted AFTER INSERT OR DELETE ON storage_secrets
    FOR EACH ROW EXECUTE FUNCTION storage_secrets_counted();

-- A page of a team's secrets is ordered by name, then id: an index in that order lets
-- the database read the page's rows in order instead of sorting the whole team.
CREATE INDEX storage_secrets_team_name_id_idx ON storage_secrets (team_id, name, id);
