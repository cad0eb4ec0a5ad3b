//! The tables, once for both backends, in portable SQL types: ids and enums are `Text`,
//! times are `Timestamp` holding UTC, JSON documents are `Text`, digests and ciphertext
//! are `Binary`. Both migration folders create exactly these columns.

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        display_name -> Text,
        tenant_admin -> Bool,
        created_at -> Timestamp,
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        tier -> Text,
        created_at -> Timestamp,
        created_by -> Text,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    memberships (team_id, user_id) {
        team_id -> Text,
        user_id -> Text,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    virtual_accounts (id) {
        id -> Text,
        team_id -> Text,
        name -> Text,
        role -> Text,
        expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        created_by -> Text,
    }
}

diesel::table! {
    tokens (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        virtual_account_id -> Nullable<Text>,
        name -> Nullable<Text>,
        digest -> Binary,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    vault_connections (id) {
        id -> Text,
        team_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        vault_type -> Text,
        settings -> Text,
        secret_version -> BigInt,
        last_verified_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        created_by -> Text,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    storage_secrets (id) {
        id -> Text,
        team_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        secret_type -> Text,
        auth_method -> Text,
        storage_mode -> Text,
        vault_connection_id -> Nullable<Text>,
        field_mappings -> Nullable<Text>,
        credentials_version -> BigInt,
        credentials_updated_at -> Timestamp,
        created_at -> Timestamp,
        created_by -> Text,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    locations (id) {
        id -> Text,
        team_id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        location_type -> Text,
        bucket_name -> Text,
        region -> Nullable<Text>,
        endpoint_url -> Nullable<Text>,
        secret_id -> Text,
        created_at -> Timestamp,
        created_by -> Text,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> Timestamp,
        team_id -> Nullable<Text>,
        actor_id -> Nullable<Text>,
        actor_kind -> Nullable<Text>,
        action -> Text,
        resource_type -> Text,
        resource_id -> Nullable<Text>,
        resource_name -> Nullable<Text>,
        outcome -> Text,
        detail -> Nullable<Text>,
        request_id -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    credential_blobs (team_id, kind, record_id, version) {
        tenant -> Text,
        team_id -> Text,
        kind -> Text,
        record_id -> Text,
        version -> BigInt,
        key_id -> Text,
        wrapped_key -> Binary,
        nonce -> Binary,
        ciphertext -> Binary,
        created_at -> Timestamp,
    }
}

diesel::table! {
    credential_gc (team_id, kind, record_id) {
        team_id -> Text,
        kind -> Text,
        record_id -> Text,
        recorded_at -> Timestamp,
        prune_below -> Nullable<BigInt>,
    }
}

diesel::table! {
    team_secret_counts (team_id, shard) {
        team_id -> Text,
        shard -> SmallInt,
        storage_secrets -> BigInt,
    }
}

diesel::table! {
    identity_epoch (id) {
        id -> Integer,
        epoch -> BigInt,
    }
}

diesel::joinable!(memberships -> teams (team_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(virtual_accounts -> teams (team_id));
diesel::joinable!(vault_connections -> teams (team_id));
diesel::joinable!(storage_secrets -> teams (team_id));
diesel::joinable!(locations -> storage_secrets (secret_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    teams,
    memberships,
    virtual_accounts,
    tokens,
    vault_connections,
    storage_secrets,
    locations,
    audit_events,
    credential_blobs,
    credential_gc,
);

// Secret groups (migration `secret_groups`).

diesel::table! {
    secret_groups (id) {
        id -> Text,
        team_id -> Text,
        name -> Text,
        integration_id -> Text,
        created_at -> Timestamp,
        created_by -> Text,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    group_secrets (id) {
        id -> Text,
        group_id -> Text,
        key_name -> Text,
        version -> BigInt,
        created_at -> Timestamp,
        created_by -> Text,
        updated_at -> Timestamp,
        updated_by -> Text,
    }
}

diesel::table! {
    group_secret_versions (id) {
        id -> Text,
        secret_id -> Text,
        version -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::table! {
    group_secret_reads (secret_id, virtual_account_id) {
        secret_id -> Text,
        virtual_account_id -> Text,
        read_at -> Timestamp,
    }
}

diesel::joinable!(secret_groups -> teams (team_id));
diesel::joinable!(group_secrets -> secret_groups (group_id));
diesel::joinable!(group_secret_versions -> group_secrets (secret_id));
diesel::joinable!(group_secret_reads -> group_secrets (secret_id));

diesel::allow_tables_to_appear_in_same_query!(
    teams,
    secret_groups,
    group_secrets,
    group_secret_versions,
    group_secret_reads,
);

// The credential store the rows use (migration `credential_store_binding`).
diesel::table! {
    credential_store_binding (id) {
        id -> Integer,
        backend -> Text,
        location -> Text,
        phase -> Text,
        other_backend -> Nullable<Text>,
        other_location -> Nullable<Text>,
        updated_at -> Timestamp,
    }
}

// The master keys stored values may be sealed under (migration `master_keys`).
diesel::table! {
    master_keys (id) {
        id -> Text,
        active -> Bool,
        created_at -> Timestamp,
    }
}

diesel::table! {
    retired_master_keys (id) {
        id -> Text,
        retired_at -> Timestamp,
    }
}

diesel::table! {
    sealed_token_pepper (id) {
        id -> Integer,
        key_id -> Text,
        wrapped_key -> Binary,
        nonce -> Binary,
        ciphertext -> Binary,
        created_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(master_keys, retired_master_keys, credential_blobs, sealed_token_pepper);
