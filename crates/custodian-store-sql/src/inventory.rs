//! [`CredentialInventory`] over the SQL database: the credential-store binding row and the
//! stored credentials the rows point at.

use std::collections::HashSet;

use chrono::{NaiveDateTime, Utc};
use custodian_domain::{StorageMode, TeamId};
use custodian_ports::{
    ConflictKind, CredentialInventory, CredentialKey, CredentialKind, CredentialRef, MigrationPhase, RefCursor,
    RepoError, StoreBackend, StoreBinding, StoreId,
};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::Database;
use crate::convert::{db_time, id_text};
use crate::db::{transaction, with_conn};
use crate::error::DbError;
use crate::schema::{
    credential_store_binding, group_secret_versions, group_secrets, secret_groups, storage_secrets, vault_connections,
};

const T: &str = "credential_store_binding";

/// The one row of `credential_store_binding`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = credential_store_binding, treat_none_as_null = true, treat_none_as_default_value = false)]
struct BindingRow {
    id: i32,
    backend: String,
    location: String,
    phase: String,
    other_backend: Option<String>,
    other_location: Option<String>,
    updated_at: NaiveDateTime,
}

impl BindingRow {
    fn of(binding: &StoreBinding, at: NaiveDateTime) -> Self {
        let (phase, other) = match &binding.phase {
            MigrationPhase::Settled => ("settled", None),
            MigrationPhase::Copying { to } => ("copying", Some(to)),
            MigrationPhase::Retiring { from } => ("retiring", Some(from)),
        };
        Self {
            id: 1,
            backend: binding.store.backend.as_str().to_owned(),
            location: binding.store.location.clone(),
            phase: phase.to_owned(),
            other_backend: other.map(|s| s.backend.as_str().to_owned()),
            other_location: other.map(|s| s.location.clone()),
            updated_at: at,
        }
    }

    fn into_binding(self) -> Result<StoreBinding, DbError> {
        let other = match (self.other_backend, self.other_location) {
            (Some(backend), Some(location)) => Some(StoreId::new(
                StoreBackend::parse(&backend).ok_or(DbError::corrupt(T, "other_backend"))?,
                location,
            )),
            (None, None) => None,
            _ => return Err(DbError::corrupt(T, "other_location")),
        };
        let phase = match (self.phase.as_str(), other) {
            ("settled", None) => MigrationPhase::Settled,
            ("copying", Some(to)) => MigrationPhase::Copying { to },
            ("retiring", Some(from)) => MigrationPhase::Retiring { from },
            _ => return Err(DbError::corrupt(T, "phase")),
        };
        let backend = StoreBackend::parse(&self.backend).ok_or(DbError::corrupt(T, "backend"))?;
        Ok(StoreBinding {
            store: StoreId::new(backend, self.location),
            phase,
        })
    }
}

/// The credential-store binding and inventory of a [`Database`].
#[derive(Debug, Clone)]
pub struct SqlCredentialInventory {
    db: Database,
}

impl SqlCredentialInventory {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// `(team id, record id, version)` rows of one kind, turned into references.
fn references_of(
    rows: Vec<(String, String, i64)>,
    kind: CredentialKind,
    table: &str,
) -> Result<Vec<CredentialRef>, DbError> {
    rows.into_iter()
        .map(|(team, record, version)| {
            let team = Uuid::parse_str(&team).map_err(|_| DbError::corrupt(table, "team_id"))?;
            let record = Uuid::parse_str(&record).map_err(|_| DbError::corrupt(table, "id"))?;
            Ok(CredentialRef {
                key: CredentialKey {
                    team_id: TeamId::from(team),
                    kind,
                    record_id: record,
                },
                version,
            })
        })
        .collect()
}

#[async_trait::async_trait]
impl CredentialInventory for SqlCredentialInventory {
    async fn binding(&self) -> Result<Option<StoreBinding>, RepoError> {
        with_conn!(self.db, |conn| {
            let row: Option<BindingRow> = credential_store_binding::table
                .select(BindingRow::as_select())
                .first(conn)
                .await
                .optional()?;
            row.map(BindingRow::into_binding).transpose()
        })
    }

    async fn replace_binding(&self, expected: Option<&StoreBinding>, next: &StoreBinding) -> Result<(), RepoError> {
        let now = db_time(Utc::now());
        let next = BindingRow::of(next, now);
        let expected = expected.map(|b| BindingRow::of(b, now));
        // One statement that writes only while the row is still `expected`, so concurrent
        // replaces cannot both pass a read made before either wrote (PostgreSQL runs writes
        // in READ COMMITTED): a second insert does nothing once the first holds the row, and
        // an update re-checks its filter against the row another writer committed.
        transaction!(self.db, |conn| {
            let written = match &expected {
                None => {
                    diesel::insert_into(credential_store_binding::table)
                        .values(&next)
                        .on_conflict_do_nothing()
                        .execute(conn)
                        .await?
                }
                Some(expected) => {
                    let mut update = diesel::update(credential_store_binding::table.find(1))
                        .filter(credential_store_binding::backend.eq(&expected.backend))
                        .filter(credential_store_binding::location.eq(&expected.location))
                        .filter(credential_store_binding::phase.eq(&expected.phase))
                        .into_boxed();
                    update = match &expected.other_backend {
                        Some(backend) => update.filter(credential_store_binding::other_backend.eq(backend)),
                        None => update.filter(credential_store_binding::other_backend.is_null()),
                    };
                    update = match &expected.other_location {
                        Some(location) => update.filter(credential_store_binding::other_location.eq(location)),
                        None => update.filter(credential_store_binding::other_location.is_null()),
                    };
                    update.set(&next).execute(conn).await?
                }
            };
            if written != 1 {
                return Err(DbError::Repo(RepoError::Conflict(ConflictKind::Stale)));
            }
            // A group's integration is the store its values are in: it follows the switch.
            if expected.as_ref().is_some_and(|e| e.backend != next.backend) {
                diesel::update(secret_groups::table)
                    .set(secret_groups::integration_id.eq(&next.backend))
                    .execute(conn)
                    .await?;
            }
            Ok(())
        })
    }

    async fn references(
        &self,
        kind: CredentialKind,
        after: Option<RefCursor>,
        limit: u32,
    ) -> Result<Vec<CredentialRef>, RepoError> {
        let limit = i64::from(limit);
        // Records hold one version each (storage secrets, vault connections): the next page
        // starts at the next record. Group keys hold several: after (record, version).
        let after_id = after.map(|c| id_text(c.record_id));
        let after_version = after.map_or(0, |c| c.version);
        with_conn!(self.db, |conn| {
            match kind {
                CredentialKind::StorageSecret => {
                    let mut query = storage_secrets::table
                        .filter(storage_secrets::storage_mode.eq(StorageMode::Managed.as_str()))
                        .select((
                            storage_secrets::team_id,
                            storage_secrets::id,
                            storage_secrets::credentials_version,
                        ))
                        .order(storage_secrets::id)
                        .limit(limit)
                        .into_boxed();
                    if let Some(after) = &after_id {
                        query = query.filter(storage_secrets::id.gt(after.clone()));
                    }
                    references_of(query.load(conn).await?, kind, "storage_secrets")
                }
                CredentialKind::VaultConnection => {
                    let mut query = vault_connections::table
                        .select((
                            vault_connections::team_id,
                            vault_connections::id,
                            vault_connections::secret_version,
                        ))
                        .order(vault_connections::id)
                        .limit(limit)
                        .into_boxed();
                    if let Some(after) = &after_id {
                        query = query.filter(vault_connections::id.gt(after.clone()));
                    }
                    references_of(query.load(conn).await?, kind, "vault_connections")
                }
                CredentialKind::GroupSecret => {
                    let mut query = group_secret_versions::table
                        .inner_join(group_secrets::table.inner_join(secret_groups::table))
                        .select((
                            secret_groups::team_id,
                            group_secrets::id,
                            group_secret_versions::version,
                        ))
                        .order((group_secrets::id, group_secret_versions::version))
                        .limit(limit)
                        .into_boxed();
                    if let Some(after) = after_id.clone() {
                        query = query.filter(
                            group_secrets::id.gt(after.clone()).or(group_secrets::id
                                .eq(after)
                                .and(group_secret_versions::version.gt(after_version))),
                        );
                    }
                    references_of(query.load(conn).await?, kind, "group_secret_versions")
                }
            }
        })
    }

    async fn referenced(&self, candidates: &[CredentialRef]) -> Result<Vec<CredentialRef>, RepoError> {
        let mut found = Vec::new();
        for kind in CredentialKind::ALL.iter().copied() {
            let ids: Vec<String> = candidates
                .iter()
                .filter(|c| c.key.kind == kind)
                .map(|c| id_text(c.key.record_id))
                .collect();
            if ids.is_empty() {
                continue;
            }
            let rows = with_conn!(self.db, |conn| {
                match kind {
                    CredentialKind::StorageSecret => references_of(
                        storage_secrets::table
                            .filter(storage_secrets::storage_mode.eq(StorageMode::Managed.as_str()))
                            .filter(storage_secrets::id.eq_any(&ids))
                            .select((
                                storage_secrets::team_id,
                                storage_secrets::id,
                                storage_secrets::credentials_version,
                            ))
                            .load(conn)
                            .await?,
                        kind,
                        "storage_secrets",
                    ),
                    CredentialKind::VaultConnection => references_of(
                        vault_connections::table
                            .filter(vault_connections::id.eq_any(&ids))
                            .select((
                                vault_connections::team_id,
                                vault_connections::id,
                                vault_connections::secret_version,
                            ))
                            .load(conn)
                            .await?,
                        kind,
                        "vault_connections",
                    ),
                    CredentialKind::GroupSecret => references_of(
                        group_secret_versions::table
                            .inner_join(group_secrets::table.inner_join(secret_groups::table))
                            .filter(group_secrets::id.eq_any(&ids))
                            .select((
                                secret_groups::team_id,
                                group_secrets::id,
                                group_secret_versions::version,
                            ))
                            .load(conn)
                            .await?,
                        kind,
                        "group_secret_versions",
                    ),
                }
            })?;
            let wanted: HashSet<&CredentialRef> = candidates.iter().collect();
            found.extend(rows.into_iter().filter(|r| wanted.contains(r)));
        }
        Ok(found)
    }
}
