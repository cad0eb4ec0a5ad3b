-- Custodian's schema on SQLite. Ids are uuid text, times are UTC `YYYY-MM-DD HH:MM:SS.ffffff`
-- text written by the adapter, enums are their wire spelling, JSON documents are text.

CREATE TABLE users (
    id TEXT PRIMARY KEY NOT NULL,
    email TEXT NOT NULL,
    display_name TEXT NOT NULL,
    tenant_admin BOOLEAN NOT NULL,
    created_at TIMESTAMP NOT NULL,
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE teams (
    id TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    tier TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    CONSTRAINT teams_name_key UNIQUE (name)
);

CREATE TABLE memberships (
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX memberships_user_id_idx ON memberships (user_id);

CREATE TABLE virtual_accounts (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    CONSTRAINT virtual_accounts_team_name_key UNIQUE (team_id, name)
);

-- A token belongs to exactly one user or one virtual account, and goes with it.
CREATE TABLE tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT REFERENCES users (id) ON DELETE CASCADE,
    virtual_account_id TEXT REFERENCES virtual_accounts (id) ON DELETE CASCADE,
    name TEXT,
    digest BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    revoked_at TIMESTAMP,
    last_used_at TIMESTAMP,
    CONSTRAINT tokens_digest_key UNIQUE (digest),
    CONSTRAINT tokens_one_owner CHECK ((user_id IS NULL) <> (virtual_account_id IS NULL))
);
CREATE INDEX tokens_user_id_idx ON tokens (user_id);
CREATE INDEX tokens_virtual_account_id_idx ON tokens (virtual_account_id);

-- Team-owned resources are RESTRICTed: a team is deleted only once it holds none.
CREATE TABLE vault_connections (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    description TEXT,
    vault_type TEXT NOT NULL,
    settings TEXT NOT NULL,
    secret_version BIGINT NOT NULL,
    last_verified_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL,
    CONSTRAINT vault_connections_team_name_key UNIQUE (team_id, name),
    CONSTRAINT vault_connections_team_id_key UNIQUE (team_id, id)
);

-- An external secret's connection must be of the same team (composite foreign key).
CREATE TABLE storage_secrets (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    description TEXT,
    secret_type TEXT NOT NULL,
    auth_method TEXT NOT NULL,
    storage_mode TEXT NOT NULL,
    vault_connection_id TEXT,
    field_mappings TEXT,
    credentials_version BIGINT NOT NULL,
    credentials_updated_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL,
    CONSTRAINT storage_secrets_team_name_key UNIQUE (team_id, name),
    CONSTRAINT storage_secrets_team_id_key UNIQUE (team_id, id),
    CONSTRAINT storage_secrets_vault_connection_fkey FOREIGN KEY (team_id, vault_connection_id)
        REFERENCES vault_connections (team_id, id) ON DELETE RESTRICT,
    CONSTRAINT storage_secrets_storage_mode CHECK (
        (storage_mode = 'managed' AND vault_connection_id IS NULL AND field_mappings IS NULL)
        OR (storage_mode = 'external' AND vault_connection_id IS NOT NULL AND field_mappings IS NOT NULL)
    )
);
CREATE INDEX storage_secrets_vault_connection_id_idx ON storage_secrets (vault_connection_id);

-- A location's secret must be of the same team (composite foreign key).
CREATE TABLE locations (
    id TEXT PRIMARY KEY NOT NULL,
    team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    description TEXT,
    location_type TEXT NOT NULL,
    bucket_name TEXT NOT NULL,
    region TEXT,
    endpoint_url TEXT,
    secret_id TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    created_by TEXT NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    updated_by TEXT NOT NULL,
    CONSTRAINT locations_team_name_key UNIQUE (team_id, name),
    CONSTRAINT locations_secret_fkey FOREIGN KEY (team_id, secret_id)
        REFERENCES storage_secrets (team_id, id) ON DELETE RESTRICT
);
CREATE INDEX locations_secret_id_idx ON locations (secret_id);

-- Audit events outlive what they describe: no foreign keys.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    occurred_at TIMESTAMP NOT NULL,
    team_id TEXT,
    actor_id TEXT,
    actor_kind TEXT,
    action TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT,
    resource_name TEXT,
    outcome TEXT NOT NULL,
    detail TEXT,
    request_id TEXT,
    client_ip TEXT,
    user_agent TEXT
);
CREATE INDEX audit_events_team_time_idx ON audit_events (team_id, occurred_at DESC, id DESC);

-- The local credential store: one envelope-encrypted blob per record version.
CREATE TABLE credential_blobs (
    tenant TEXT NOT NULL,
    team_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    wrapped_key BLOB NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (team_id, kind, record_id, version)
);

-- Records whose credentials could not be deleted from the store, for `custodian gc`.
CREATE TABLE credential_gc (
    team_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (team_id, kind, record_id)
);
