-- Secret groups: named groups of key/value application secrets. Values are not here: version
-- n of a key lives in the credential store (kind `group-secret`, record id = the key's id).
-- Names and keys use the "C" collation: they sort bytewise, as on SQLite.

-- Group names are unique in the tenant (the deployment), as FQNs name groups by name alone.
-- A team keeps its groups (RESTRICT): it is deleted only once it holds none.
CREATE TABLE secret_groups (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    team_id TEXT COLLATE "C" NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    name TEXT COLLATE "C" NOT NULL,
    integration_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL,
    CONSTRAINT secret_groups_name_key UNIQUE (name)
);
CREATE INDEX secret_groups_team_id_idx ON secret_groups (team_id);

-- One key of a group; `version` is its current (newest) version.
CREATE TABLE group_secrets (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    group_id TEXT COLLATE "C" NOT NULL REFERENCES secret_groups (id) ON DELETE CASCADE,
    key_name TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL,
    CONSTRAINT group_secrets_group_key_name_key UNIQUE (group_id, key_name)
);

CREATE TABLE group_secret_versions (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    secret_id TEXT COLLATE "C" NOT NULL REFERENCES group_secrets (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    CONSTRAINT group_secret_versions_secret_version_key UNIQUE (secret_id, version)
);

-- The latest read of each key's value by each virtual account (`activeDeploymentsCount`).
-- No foreign key to the account: a read stays counted until it ages out.
CREATE TABLE group_secret_reads (
    secret_id TEXT COLLATE "C" NOT NULL REFERENCES group_secrets (id) ON DELETE CASCADE,
    virtual_account_id TEXT COLLATE "C" NOT NULL,
    read_at TIMESTAMP NOT NULL,
    PRIMARY KEY (secret_id, virtual_account_id)
);
CREATE INDEX group_secret_reads_secret_read_at_idx ON group_secret_reads (secret_id, read_at);
